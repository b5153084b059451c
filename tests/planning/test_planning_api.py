"""Station planning through the real app and the real command line; exports; demand; the map layer."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point
from stores import open_test_store

from gridmap.planning.service import SitingRequest

ADMIN = {"Authorization": "Bearer test-admin-token"}
COUNTS = ("households", "households_covered", "population", "population_covered", "share")


@pytest.fixture(scope="module")
def as_planner(planning_api) -> TestClient:
    """Requests with a planner's token: every planning endpoint needs a planning role (issue #9)."""
    return TestClient(planning_api.client.app, headers=planning_api.planner)


# ------------------------------------------------------------------ GET /v1/planning/coverage


@pytest.mark.parametrize("metric", ["network", "euclidean"])
def test_coverage_endpoint_answers_per_community_and_grid(as_planner, planner, metric) -> None:
    r = as_planner.get("/v1/planning/coverage", params={"radius_m": 500, "metric": metric})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["radius_m"] == 500 and body["metric"] == metric
    assert set(COUNTS) <= set(body["total"])
    assert len(body["communities"]) == 13 and len(body["grids"]) == 105
    assert {"code", "name", *COUNTS} <= set(body["communities"][0])
    assert sum(c["households"] for c in body["communities"]) == body["total"]["households"] == 42306
    assert sum(g["households_covered"] for g in body["grids"]) == body["total"]["households_covered"]
    assert body == planner.coverage_report(radius_m=500, metric=metric) | {"revision": body["revision"]}
    assert [p["radius_m"] for p in body["presets"]] == [300, 500, 1000]


def test_coverage_exports_csv_and_geojson(as_planner) -> None:
    r = as_planner.get("/v1/planning/coverage", params={"radius_m": 300, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["level"] for row in rows].count("community") == 13
    assert rows[-1]["level"] == "total" and rows[-1]["name"] == "合计"
    g = as_planner.get("/v1/planning/coverage", params={"radius_m": 300, "format": "geojson"}).json()
    assert g["type"] == "FeatureCollection" and len(g["features"]) == 105
    assert g["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert "households_covered" in g["features"][0]["properties"]


@pytest.mark.parametrize("params", [{"radius_m": -5}, {"radius_m": 99999}, {"metric": "manhattan"}, {"format": "xls"}])
def test_coverage_rejects_bad_input_with_a_readable_message(as_planner, params) -> None:
    r = as_planner.get("/v1/planning/coverage", params=params)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_input"


# ------------------------------------------------------------------ POST /v1/planning/stations


def test_max_coverage_proposals_through_the_api(as_planner) -> None:
    r = as_planner.post("/v1/planning/stations",
                    json={"k": 4, "radius_m": 300, "objective": "max_coverage", "metric": "network"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["optimal"] is True and body["gap"] == 0
    assert len(body["proposals"]) == 4
    p = body["proposals"][0]
    assert {"lon", "lat", "candidate", "address", "community", "grid", "households_new"} <= set(p)
    assert p["community"]["name"].endswith("社区") and p["grid"]["name"].startswith(p["community"]["name"])
    assert body["after"]["households_covered"] - body["before"]["households_covered"] == sum(
        q["households_new"] for q in body["proposals"]) == body["objective_value"]
    changed = [c for c in body["communities"] if c["after"]["households_covered"] > c["before"]["households_covered"]]
    assert changed and all(set(COUNTS) <= set(c["before"]) for c in body["communities"])


def test_set_cover_reaches_the_target_with_the_fewest_sites(as_planner) -> None:
    body = as_planner.post("/v1/planning/stations", json={
        "radius_m": 500, "objective": "set_cover", "target_share": 0.97, "metric": "network",
        "candidate_spacing_m": 200}).json()
    assert body["after"]["share"] >= 0.97 > body["before"]["share"]
    assert body["optimal"] and body["k"] == len(body["proposals"]) == body["objective_value"]


def test_p_median_lowers_the_mean_walking_distance(as_planner) -> None:
    body = as_planner.post("/v1/planning/stations", json={
        "k": 3, "objective": "p_median", "metric": "euclidean", "candidate_spacing_m": 300}).json()
    assert body["optimal"]
    assert body["after"]["mean_distance_m"] < body["before"]["mean_distance_m"]
    assert body["objective_value"] == pytest.approx(body["after"]["mean_distance_m"], abs=0.1)


def test_proposals_export_as_geojson_and_csv(as_planner) -> None:
    request = {"k": 3, "radius_m": 300, "metric": "network"}
    g = as_planner.post("/v1/planning/stations?format=geojson", json=request)
    assert g.headers["content-type"].startswith("application/geo+json")
    features = g.json()["features"]
    assert len(features) == 3 and features[0]["geometry"]["type"] == "Point"
    assert features[0]["properties"]["community_name"] and "households_new" in features[0]["properties"]
    assert g.json()["properties"]["before"]["households"] == 42306
    c = as_planner.post("/v1/planning/stations?format=csv", json=request)
    rows = list(csv.DictReader(io.StringIO(c.content.decode("utf-8-sig"))))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3]
    assert [float(r["lon"]) for r in rows] == [f["geometry"]["coordinates"][0] for f in features]


@pytest.mark.parametrize("body", [
    {"k": 0}, {"objective": "best"}, {"radius_m": 0}, {"demand": "cars"}, {"demand": {"households": -1}},
    {"objective": "set_cover", "target_share": 1.5}, {"unknown": 1},
])
def test_stations_rejects_bad_requests(as_planner, body) -> None:
    r = as_planner.post("/v1/planning/stations", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_unreachable_target_is_explained(as_planner) -> None:
    r = as_planner.post("/v1/planning/stations", json={"objective": "set_cover", "target_share": 1.0, "radius_m": 30,
                                                   "metric": "euclidean"})
    assert r.status_code == 422 and "达不到" in r.json()["detail"]


def test_incident_demand_needs_a_planning_role_and_uses_last_years_incidents(planning_api) -> None:
    request = {"k": 2, "radius_m": 300, "demand": {"households": 1, "incidents": 1}, "metric": "euclidean"}
    assert planning_api.client.post("/v1/planning/stations", json=request).status_code == 401
    r = planning_api.client.post("/v1/planning/stations", json=request, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["before"]["demand"] == pytest.approx(2.0)  # two blended shares, each summing to 1
    assert len(body["proposals"]) == 2


# ------------------------------------------------------------------ demand and capacity in the planner


def test_incident_demand_counts_the_last_twelve_months_at_the_nearest_building(planner) -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    lonlat = planner.to_lonlat(planner.building_xy[[0, 0, 7, 9]] + 3.0)
    frame = gpd.GeoDataFrame(
        {"reported_at": [now - timedelta(days=10), now - timedelta(days=300), now - timedelta(days=400),
                         now - timedelta(days=30)]},
        geometry=[Point(x, y) for x, y in lonlat], crs="EPSG:4326",
    )
    w = planner.demand("incidents", incidents=frame, now=now)
    assert w[0] == 2 and w[7] == 0 and w[9] == 1 and w.sum() == 3  # the 400-day-old one is left out


def test_capacity_limits_what_each_new_site_serves(planner) -> None:
    base = SitingRequest(k=3, radius_m=300, metric="euclidean", candidate_spacing_m=250)
    free = planner.site(base).answer
    capped = planner.site(SitingRequest(**{**base.__dict__, "capacity": 200})).answer
    assert all(p["demand_served"] <= 200 + 1e-6 for p in capped["proposals"])
    assert capped["objective_value"] <= min(free["objective_value"], 600) + 1e-6
    assert capped["optimal"]


# ------------------------------------------------------------------ the command line


def gridmap(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gridmap", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_cli_plan_coverage_and_stations_with_exports(sample_db: Path, tmp_path: Path) -> None:
    cov = gridmap("plan", "coverage", "--radius-m", "500", "--metric", "network", "--db", sample_db, "--json")
    assert cov.returncode == 0, cov.stderr
    assert json.loads(cov.stdout)["total"]["households"] == 42306
    out = tmp_path / "sites.geojson"
    run = gridmap("plan", "stations", "-k", "3", "--radius-m", "300", "--db", sample_db, "--out", out)
    assert run.returncode == 0, run.stderr
    assert "已证明最优" in run.stdout and "新覆盖" in run.stdout
    features = json.loads(out.read_text(encoding="utf-8"))["features"]
    assert len(features) == 3
    table = tmp_path / "sites.csv"
    run = gridmap("plan", "stations", "-k", "3", "--radius-m", "300", "--db", sample_db, "--out", table, "--json")
    assert json.loads(run.stdout)["proposals"][0]["lon"] == features[0]["geometry"]["coordinates"][0]
    rows = list(csv.DictReader(io.StringIO(table.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 3 and rows[0]["community_name"]
    bad = gridmap("plan", "stations", "--objective", "nope", "--db", sample_db)
    assert bad.returncode == 1 and "objective" in bad.stderr


# ------------------------------------------------------------------ the planner map layer


def test_proposals_layer_draws_markers_rings_and_chinese_popups(planner) -> None:
    folium = pytest.importorskip("folium")
    from gridmap.layers.proposals import proposals_layer

    result = planner.site(SitingRequest(k=2, radius_m=500, metric="euclidean", candidate_spacing_m=250))
    overlay = proposals_layer(result.proposals)
    m = folium.Map(location=[35.14, 110.77])
    overlay.group.add_to(m)
    html = m.get_root().render()
    assert "规划站点 1" in html and "新覆盖户数" in html and "所在社区" in html
    circles = [c for c in overlay.group._children.values() if isinstance(c, folium.Circle)]
    assert len(circles) == 2 and all(c.options["radius"] == 500 for c in circles)
    assert overlay.legend[0]["id"] == "proposals"


def test_generated_candidates_are_on_streets_inside_grids_and_not_in_buildings(planner, sample_layers) -> None:
    cands = planner.candidates("generated", 100.0)
    assert len(cands) > 500
    lonlat = planner.to_lonlat(cands.xy)
    assert all(g is not None for g in planner.coverage.locate_grids(lonlat[:, 0], lonlat[:, 1]))
    footprints = sample_layers["buildings"].to_crs(planner.crs)
    points = gpd.GeoSeries(gpd.points_from_xy(cands.xy[:, 0], cands.xy[:, 1]), crs=planner.crs)
    assert not gpd.sjoin(gpd.GeoDataFrame(geometry=points), footprints, predicate="intersects").shape[0]
    snap = planner.network.snap(cands.xy)
    assert np.all(snap.access < 0.01)


# ------------------------------------------------------------------ a package with a candidates layer and no roads


def test_candidates_layer_is_imported_and_used(make_package, tmp_path: Path, copy_store) -> None:
    from gridmap.coverage.service import Coverage
    from gridmap.errors import InvalidInput
    from gridmap.importer import import_package
    from gridmap.planning.service import Planner

    def add_candidates(layers: dict) -> None:
        layers["candidates"] = gpd.GeoDataFrame(
            {"code": ["C1", "C2", "C3"], "name": ["文化广场", "八家巷口", "北环路口"]},
            geometry=[Point(110.7625, 35.1405), Point(110.7925, 35.1455), Point(110.745, 35.158)], crs="EPSG:4326",
        )

    store = open_test_store(copy_store.empty(tmp_path, "tiny.gpkg"))
    import_package(store, make_package(add_candidates))
    layers = store.read_layers()
    assert len(layers["candidates"]) == 3
    planner = Planner(Coverage.from_layers(layers, revision=store.revision()), roads=None,
                      candidates=layers["candidates"])
    answer = planner.site(SitingRequest(k=1, radius_m=300, metric="euclidean")).answer
    assert answer["candidates"]["source"] == "layer"
    (p,) = answer["proposals"]
    assert p["candidate"] in {"C1", "C2"} and p["households_new"] > 0
    with pytest.raises(InvalidInput, match="roads"):
        planner.coverage_report(radius_m=300, metric="network")


def test_planning_keeps_the_import_direction() -> None:
    """Domain code: no FastAPI, no folium, no typer, nothing from the API."""
    import ast

    root = Path(__file__).resolve().parents[2] / "gridmap" / "planning"
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        for name in names:
            assert not name.split(".")[0] in ("fastapi", "starlette", "folium", "typer"), (path.name, name)
            assert not name.startswith("gridmap.api") and not name.startswith("gridmap.layers"), (path.name, name)
