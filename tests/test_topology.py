"""The topology report (issue #14 §2) on crafted boundaries whose problem areas are measured here independently
(on the ellipsoid with pyproj.Geod, not in the UTM zone the report uses), the sample county's report, the
command line's exit codes, ``--fix``, the API and the map page."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from fastapi.testclient import TestClient
from packages import tiny_layers, write_package
from shapely.geometry import Polygon, box
from typer.testing import CliRunner

from gridmap.api import create_app
from gridmap.cli import app
from gridmap.package import read_package
from gridmap.settings import SAMPLE_PACKAGE, Settings
from gridmap.store import GeoPackageStore
from gridmap.topology import check_topology
from gridmap.topology.fix import snap_grids

GEOD = pyproj.Geod(ellps="WGS84")
A, B = "140821100014", "140821100016"
TOWN = "140821100"


def geod_area(geom: shapely.Geometry) -> float:
    """Area on the ellipsoid: an independent measure of what the report finds in UTM."""
    return sum(abs(GEOD.geometry_area_perimeter(p)[0]) for p in shapely.get_parts(geom))


def set_grid(layers: dict, code: str, geom: shapely.Geometry) -> None:
    grids = layers["grids"]
    grids.loc[grids["code"] == code, "geometry"] = gpd.GeoSeries([geom], index=grids.index[grids["code"] == code],
                                                                  crs=grids.crs)


def items(report, kind: str, level: str | None = None) -> list:
    return [i for i in report.items if i.kind == kind and (level is None or i.level == level)]


def town_gap(layers: dict) -> shapely.Geometry:
    regions = layers["regions"]
    town = regions[regions["code"] == TOWN].geometry.iat[0]
    return shapely.difference(town, shapely.union_all(regions[regions["level"] == "community"].geometry.values))


# each kind on crafted geometries -------------------------------------------------------------------

def test_tiny_package_has_only_the_towns_land_outside_communities() -> None:
    layers = tiny_layers()
    report = check_topology(layers)
    assert [(i.kind, i.level, i.codes) for i in report.items] == [("gap", "towns", (TOWN,))]
    assert report.errors == 0
    assert report.items[0].area_m2 == pytest.approx(geod_area(town_gap(layers)), rel=2e-3)


def test_overlap_between_grids_is_measured() -> None:
    layers = tiny_layers()
    set_grid(layers, f"{A}-02", box(110.7535, 35.12, 110.770, 35.16))
    found = items(check_topology(layers), "overlap")
    assert [(i.level, i.codes, i.parent) for i in found] == [("grids", (f"{A}-01", f"{A}-02"), A)]
    assert found[0].area_m2 == pytest.approx(geod_area(box(110.7535, 35.12, 110.755, 35.16)), rel=2e-3)
    assert found[0].severity == "error"


def test_overlap_between_communities_of_a_town() -> None:
    layers = tiny_layers()
    regions = layers["regions"]
    regions.loc[regions["code"] == B, "geometry"] = gpd.GeoSeries([box(110.768, 35.12, 110.80, 35.16)],
                                                                  index=regions.index[regions["code"] == B])
    found = items(check_topology(layers), "overlap", "communities")
    assert [(i.codes, i.parent) for i in found] == [((A, B), TOWN)]
    assert found[0].area_m2 == pytest.approx(geod_area(box(110.768, 35.12, 110.77, 35.16)), rel=2e-3)


def test_gap_inside_a_community_is_measured() -> None:
    layers = tiny_layers()
    set_grid(layers, f"{B}-02", box(110.785, 35.12, 110.799, 35.16))
    found = items(check_topology(layers), "gap", "communities")
    assert [(i.codes, i.severity) for i in found] == [((B,), "warning")]
    assert found[0].area_m2 == pytest.approx(geod_area(box(110.799, 35.12, 110.80, 35.16)), rel=2e-3)


def test_grid_crossing_its_community_boundary() -> None:
    layers = tiny_layers()
    set_grid(layers, f"{A}-01", box(110.738, 35.12, 110.755, 35.16))
    found = items(check_topology(layers), "crossing")
    assert [(i.level, i.codes, i.parent) for i in found] == [("grids", (f"{A}-01",), A)]
    assert found[0].area_m2 == pytest.approx(geod_area(box(110.738, 35.12, 110.74, 35.16)), rel=2e-3)


def _with_spike(width_deg: float) -> shapely.Geometry:
    """Grid B-01 with a strip of ``width_deg`` taken from its neighbour along the north of B-02."""
    return shapely.union(box(110.770, 35.12, 110.785, 35.16), box(110.785, 35.159, 110.790, 35.159 + width_deg))


def test_sliver_narrower_than_the_width_is_found_and_a_wider_part_is_not() -> None:
    layers = tiny_layers()
    thin = 0.000009  # about 1 m north-south
    set_grid(layers, f"{B}-01", _with_spike(thin))
    set_grid(layers, f"{B}-02", shapely.difference(box(110.785, 35.12, 110.800, 35.16), _with_spike(thin)))
    report = check_topology(layers, sliver_width_m=2.0)
    found = items(report, "sliver", "grids")
    assert [i.codes for i in found] == [(f"{B}-01",)]
    assert found[0].area_m2 == pytest.approx(geod_area(box(110.785, 35.159, 110.790, 35.159 + thin)), rel=0.02)
    assert items(report, "overlap") == [] and items(report, "gap", "communities") == []
    assert items(check_topology(layers, sliver_width_m=0.5), "sliver", "grids") == []


def test_invalid_geometry_is_reported_and_left_out_of_the_overlays() -> None:
    layers = tiny_layers()
    bowtie = Polygon([(110.740, 35.12), (110.755, 35.16), (110.755, 35.12), (110.740, 35.16)])
    set_grid(layers, f"{A}-01", bowtie)
    report = check_topology(layers)
    found = items(report, "invalid")
    assert [(i.level, i.codes) for i in found] == [("grids", (f"{A}-01",))]
    assert "Self-intersection" in found[0].extra["reason"]
    assert items(report, "overlap") == [] and items(report, "crossing") == []


def test_building_split_by_a_grid_edge_with_each_sides_share() -> None:
    layers = tiny_layers()
    buildings = layers["buildings"]
    footprint = box(110.7546, 35.14, 110.7556, 35.1404)
    buildings.loc[0, "geometry"] = footprint
    found = items(check_topology(layers), "split_building")
    assert [i.codes for i in found] == [("B001", f"{A}-02", f"{A}-01")]
    left = geod_area(box(110.7546, 35.14, 110.755, 35.1404)) / geod_area(footprint)
    shares = found[0].extra["shares"]
    assert shares[f"{A}-01"] == pytest.approx(left, abs=2e-3)
    assert shares[f"{A}-02"] == pytest.approx(1 - left, abs=2e-3)


def test_geojson_holds_the_problem_geometries() -> None:
    layers = tiny_layers()
    set_grid(layers, f"{A}-02", box(110.7535, 35.12, 110.770, 35.16))
    collection = check_topology(layers).to_geojson()
    kinds = [f["properties"]["kind"] for f in collection["features"]]
    assert sorted(kinds) == ["gap", "overlap"]
    overlap = next(f for f in collection["features"] if f["properties"]["kind"] == "overlap")
    assert shapely.geometry.shape(overlap["geometry"]).normalize().equals_exact(
        box(110.7535, 35.12, 110.755, 35.16).normalize(), 1e-6)
    assert overlap["properties"]["kind_name"] == "重叠"


# the sample county -----------------------------------------------------------------------------------

def test_sample_county_has_no_errors_only_the_towns_villages_outside_its_communities() -> None:
    """The sample holds the town's urban communities only: the rest of the town (its villages) is a gap of
    the town, a warning; grids, communities and buildings are clean."""
    layers = read_package(SAMPLE_PACKAGE).layers
    report = check_topology(layers)
    assert report.errors == 0
    towns = set(layers["regions"].loc[layers["regions"]["level"] == "town", "code"])
    assert {(i.kind, i.level) for i in report.items} <= {("gap", "towns")}
    assert {i.codes[0] for i in report.items} <= towns
    expected = sum(geod_area(g) for g in shapely.get_parts(town_gap(layers)) if geod_area(g) > 1.0)
    assert sum(i.area_m2 for i in report.items) == pytest.approx(expected, rel=2e-3)


# the command line ------------------------------------------------------------------------------------

def _package(tmp_path: Path, mutate=None) -> Path:
    layers = tiny_layers()
    if mutate:
        mutate(layers)
    return write_package(layers, tmp_path / "pkg")


def test_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    clean = _package(tmp_path)
    result = runner.invoke(app, ["check-topology", str(clean)])
    assert result.exit_code == 0, result.output
    assert "缝隙 1" in result.stdout
    assert runner.invoke(app, ["check-topology", str(clean), "--strict"]).exit_code == 1
    overlapping = _package(tmp_path / "o", lambda l: set_grid(l, f"{A}-02", box(110.7535, 35.12, 110.770, 35.16)))
    result = runner.invoke(app, ["check-topology", str(overlapping), "--json", "--geojson", str(tmp_path / "p.geojson")])
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert answer["counts"]["overlap"] == 1 and answer["errors"] == 1
    written = json.loads((tmp_path / "p.geojson").read_text(encoding="utf-8"))
    assert len(written["features"]) == len(answer["problems"])
    assert runner.invoke(app, ["check-topology", str(tmp_path / "missing")]).exit_code == 2
    assert runner.invoke(app, ["check-topology", str(clean), "--out", str(tmp_path / "x.geojson")]).exit_code == 2


def test_cli_reads_the_store(tmp_path: Path) -> None:
    db = tmp_path / "s.gpkg"
    GeoPackageStore(db).replace_layers(tiny_layers(), revision="tiny")
    result = CliRunner().invoke(app, ["check-topology", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "重叠 0" in result.stdout


# --fix ---------------------------------------------------------------------------------------------------

OVERSHOOT = 0.000003  # about 0.27 m west of the shared edge at 110.755


def _metric(geom: shapely.Geometry) -> shapely.Geometry:
    return gpd.GeoSeries([geom], crs="EPSG:4326").to_crs("EPSG:32649").iat[0]


def test_fix_snaps_a_tiny_overlap_away_moving_vertices_within_the_tolerance_only(tmp_path: Path) -> None:
    layers = tiny_layers()
    set_grid(layers, f"{A}-02", box(110.755 - OVERSHOOT, 35.12, 110.770, 35.16))
    set_grid(layers, f"{B}-02", box(110.785 - 0.0001, 35.12, 110.800, 35.16))  # a 9 m overlap: not noise
    before = check_topology(layers)
    assert {i.codes for i in items(before, "overlap")} == {(f"{A}-01", f"{A}-02"), (f"{B}-01", f"{B}-02")}
    result = snap_grids(layers, tolerance_m=0.5)
    assert [c.code for c in result.changes] == [f"{A}-02"]
    assert result.changes[0].vertices_moved == 2 and 0.2 < result.changes[0].max_move_m <= 0.5
    fixed = result.grids.set_index("code").geometry
    original = layers["grids"].set_index("code").geometry
    for code in original.index:
        moved = shapely.hausdorff_distance(_metric(original[code]), _metric(fixed[code]))
        assert moved <= 0.5 + 1e-6
        if code != f"{A}-02":
            assert np.array_equal(shapely.get_coordinates(original[code]), shapely.get_coordinates(fixed[code]))
    after = check_topology(result.layers(layers))
    assert {i.codes for i in items(after, "overlap")} == {(f"{B}-01", f"{B}-02")}
    assert fixed[f"{A}-02"].equals_exact(box(110.755, 35.12, 110.770, 35.16), 1e-9)


def test_cli_fix_is_a_dry_run_unless_out_is_given(tmp_path: Path) -> None:
    package = _package(tmp_path, lambda l: set_grid(l, f"{A}-02", box(110.755 - OVERSHOOT, 35.12, 110.770, 35.16)))
    before = (package / "grids.geojson").read_bytes()
    runner = CliRunner()
    dry = runner.invoke(app, ["check-topology", str(package), "--fix", "--json"])
    assert dry.exit_code == 1  # the package itself still overlaps
    answer = json.loads(dry.stdout)
    assert answer["fix"]["changed"] == 1 and answer["fix"]["written"] is None
    assert answer["fix"]["counts_after"]["overlap"] == 0
    assert (package / "grids.geojson").read_bytes() == before and not list(tmp_path.glob("*.gpkg"))
    out = tmp_path / "fixed.gpkg"
    written = runner.invoke(app, ["check-topology", str(package), "--fix", "--out", str(out)])
    assert out.exists() and "已写出" in written.stdout
    fixed = gpd.read_file(out, layer="grids")
    assert items(check_topology({**tiny_layers(), "grids": fixed}), "overlap") == []


# the API and the map page ------------------------------------------------------------------------------------

ADMIN = {"Authorization": "Bearer topo-admin"}


@pytest.fixture
def problem_client(tmp_path: Path):
    """A store holding boundaries the import would refuse (written past validation, as an old store might)."""
    layers = tiny_layers()
    set_grid(layers, f"{A}-02", box(110.7535, 35.12, 110.770, 35.16))
    db = tmp_path / "problems.gpkg"
    GeoPackageStore(db).replace_layers(layers, revision="problems")
    with TestClient(create_app(Settings(db=db, load_sample_if_empty=False, admin_token="topo-admin"))) as c:
        yield c


def test_api_json_and_geojson(problem_client: TestClient) -> None:
    answer = problem_client.get("/v1/topology", headers=ADMIN)
    assert answer.status_code == 200
    body = answer.json()
    assert body["counts"]["overlap"] == 1 and body["errors"] == 1 and not body["clean"]
    assert body["problems"][0]["area_m2"] == pytest.approx(geod_area(box(110.7535, 35.12, 110.755, 35.16)), rel=2e-3)
    geo = problem_client.get("/v1/topology", params={"format": "geojson"}, headers=ADMIN)
    assert geo.headers["content-type"].startswith("application/geo+json")
    assert len(geo.json()["features"]) == len(body["problems"])
    assert problem_client.get("/v1/topology").status_code == 401
    assert problem_client.get("/v1/topology", params={"sliver_width_m": 0}, headers=ADMIN).status_code == 422


def test_map_page_draws_every_kind_with_a_chinese_legend(problem_client: TestClient) -> None:
    page = problem_client.get("/maps/topology", headers=ADMIN)
    assert page.status_code == 200
    html = page.text
    for name in ("重叠（1 处）", "缝隙（1 处）", "狭长碎片（0 处）", "超出上级边界（0 处）", "几何无效（0 处）",
                 "楼栋被网格边界分割（0 处）", "网格边界", "边界拓扑检查"):
        assert name in html
    browser = problem_client.get("/maps/topology", headers={"Accept": "text/html"}, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"].startswith("/login")


# the import's overlap threshold -----------------------------------------------------------------------------

def test_import_refuses_overlaps_above_the_threshold_and_warns_below(tmp_path: Path, monkeypatch) -> None:
    """``GRIDMAP_IMPORT_MAX_OVERLAP_M2``: above it an overlap refuses the import (exit 1, nothing written);
    raised above the overlap, the import goes through with the overlap as a warning, which the topology
    report then shows."""
    overlap = box(110.7549, 35.12, 110.755, 35.16)
    area = geod_area(overlap)  # about 400 m²
    package = _package(tmp_path, lambda l: set_grid(l, f"{A}-02", box(110.7549, 35.12, 110.770, 35.16)))
    db = tmp_path / "store.gpkg"
    runner = CliRunner()
    refused = runner.invoke(app, ["import", str(package), "--db", str(db)])
    assert refused.exit_code == 1 and "重叠" in refused.output
    assert GeoPackageStore(db).revision() is None
    monkeypatch.setenv("GRIDMAP_IMPORT_MAX_OVERLAP_M2", str(round(area * 2)))
    taken = runner.invoke(app, ["import", str(package), "--db", str(db)])
    assert taken.exit_code == 0, taken.output
    assert "未超过导入阈值" in taken.output
    report = runner.invoke(app, ["check-topology", "--db", str(db), "--json"])
    assert report.exit_code == 1
    found = json.loads(report.stdout)["problems"]
    assert [(p["kind"], p["codes"]) for p in found if p["severity"] == "error"] == [("overlap", [f"{A}-01", f"{A}-02"])]
    assert found[0]["area_m2"] == pytest.approx(area, rel=2e-3)
    monkeypatch.setenv("GRIDMAP_IMPORT_MAX_OVERLAP_M2", str(round(area / 2)))
    assert runner.invoke(app, ["import", str(package), "--db", str(tmp_path / "other.gpkg")]).exit_code == 1


def test_sample_county_through_the_api_on_both_stores(client: TestClient) -> None:
    """The served report of the sample store (GeoPackage and PostGIS) is the package's: no errors."""
    headers = {"Authorization": "Bearer test-admin-token"}
    body = client.get("/v1/topology", headers=headers).json()
    expected = check_topology(read_package(SAMPLE_PACKAGE).layers).to_dict()
    assert body["errors"] == 0
    assert body["counts"] == expected["counts"]
    assert body["checked"] == expected["checked"]
    assert [p["area_m2"] for p in body["problems"]] == pytest.approx([p["area_m2"] for p in expected["problems"]],
                                                                     rel=1e-6)
    page = client.get("/maps/topology", headers=headers)
    assert page.status_code == 200 and f"缝隙（{expected['counts']['gap']} 处）" in page.text
