"""Maps (issue #5) without a browser: GCJ-02 reference values, display geometry, offline assets, pages,
cache, CLI export and the import rules that keep folium in ``layers/`` and FastAPI in ``api/``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import shapely
from stores import store_settings
from typer.testing import CliRunner

from gridmap.coverage.service import Coverage
from gridmap.geo import gcj02_to_wgs84, wgs84_to_gcj02
from gridmap.layers import assets
from gridmap.layers.geometry import simplify_coverage
from gridmap.maps import MapCache, MapContext
from gridmap.maps.basemaps import basemaps
from gridmap.maps.build import map_page
from gridmap.maps.incidents import COLUMNS, OPEN_STATUSES, fingerprint, synthetic_incidents
from gridmap.settings import Settings

PACKAGE = Path(__file__).resolve().parent.parent / "gridmap"
needs_assets = pytest.mark.skipif(not Settings().map_assets.is_dir(),
                                  reason="map assets not installed (npm ci --prefix assets)")
ADMIN = {"Authorization": "Bearer test-admin-token"}
"""The maps need a sign-in (issue #9): these tests read them as the conftest app's admin."""


@pytest.fixture(scope="module")
def coverage(sample_layers) -> Coverage:
    return Coverage.from_layers(sample_layers, revision="test")


@pytest.fixture(scope="module")
def incidents(coverage):
    return synthetic_incidents(coverage, 5000)


# -- WGS84 <-> GCJ-02 -----------------------------------------------------------------------------

# Published pairs: the test table of googollee/eviltransform (wgsLat, wgsLng, gcjLat, gcjLng) and the
# README example of wandergis/coordtransform (wgs84togcj02(116.404, 39.915)).
REFERENCE = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
    (39.915, 116.404, 39.91640428150164, 116.41024449916938),  # Beijing, coordtransform
]


@pytest.mark.parametrize(("wlat", "wlng", "glat", "glng"), REFERENCE)
def test_wgs84_to_gcj02_matches_published_values(wlat, wlng, glat, glng):
    lng, lat = wgs84_to_gcj02(wlng, wlat)
    assert float(lng) == pytest.approx(glng, abs=1e-9)
    assert float(lat) == pytest.approx(glat, abs=1e-9)


@pytest.mark.parametrize(("wlat", "wlng", "glat", "glng"), REFERENCE)
def test_gcj02_to_wgs84_inverts_to_a_centimetre(wlat, wlng, glat, glng):
    lng, lat = gcj02_to_wgs84(glng, glat)
    assert abs(float(lng) - wlng) < 1e-7 and abs(float(lat) - wlat) < 1e-7


def test_gcj02_leaves_points_outside_china_alone():
    lng, lat = wgs84_to_gcj02([2.35, -74.0], [48.85, 40.7])
    assert lng.tolist() == [2.35, -74.0] and lat.tolist() == [48.85, 40.7]


# -- display geometry -------------------------------------------------------------------------------

def test_grid_simplification_keeps_the_coverage_gap_free(sample_layers):
    grids = sample_layers["grids"]
    display = simplify_coverage(grids, tolerance_m=3.0)
    geoms = np.asarray(display.geometry.values)
    assert bool(shapely.coverage_is_valid(geoms))  # no overlaps, shared edges match exactly
    assert shapely.get_num_coordinates(geoms).sum() <= shapely.get_num_coordinates(np.asarray(grids.geometry.values)).sum()
    union = shapely.union_all(geoms)
    original = shapely.union_all(np.asarray(grids.geometry.values))
    # no slivers: the union has no more holes than the original, and areas agree
    holes = lambda g: sum(len(p.interiors) for p in getattr(g, "geoms", [g]))
    assert holes(union) <= holes(original)
    assert sum(shapely.area(geoms)) == pytest.approx(union.area, rel=1e-9)
    assert union.area == pytest.approx(original.area, rel=1e-3)


def test_display_coordinates_have_six_decimals(sample_layers):
    coords = shapely.get_coordinates(np.asarray(simplify_coverage(sample_layers["grids"]).geometry.values))
    assert np.allclose(coords, np.round(coords, 6), atol=1e-12)


# -- offline assets ---------------------------------------------------------------------------------

def test_every_folium_resource_has_a_local_file_or_is_dropped():
    for name, path in assets.RESOURCES.items():
        assert path is None or path.startswith(("vendor/", "gridmap/")), name
    assert (assets.OWN_STATIC / "gridmap.js").is_file()


def test_an_unknown_resource_is_an_error_not_a_cdn_request():
    import folium

    m = folium.Map(tiles=None)
    m.default_js = [*m.default_js, ("something_new", "https://cdn.example.com/x.js")]
    with pytest.raises(ValueError, match="something_new"):
        assets.localise(m.get_root())


@needs_assets
def test_served_pages_link_only_local_files(client):
    for path in ("/maps/dispatcher", "/maps/worker/W0002", "/maps/planner", "/maps/public"):
        response = client.get(path, headers=ADMIN)
        assert response.status_code == 200, response.text
        html = response.text
        links = re.findall(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"', html)
        assert links and all(link.startswith("/static/") for link in links), links
        for link in links:
            assert client.get(link).status_code == 200, link
        # The only absolute URLs left are the basemap tile templates.
        urls = set(re.findall(r'"(https?://[^"]+)"', html))
        assert all("{z}" in u or "TILEMATRIX" in u for u in urls), urls


@needs_assets
def test_stylesheets_fonts_and_images_are_served_too(client):
    css = client.get("/static/vendor/@fortawesome/fontawesome-free/css/solid.min.css").text
    assert client.get("/static/vendor/@fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2").status_code == 200
    assert "fa-solid-900.woff2" in css
    assert client.get("/static/vendor/leaflet/dist/images/layers.png").status_code == 200


def test_missing_assets_give_a_readable_503(sample_db, tmp_path):
    from fastapi.testclient import TestClient

    from gridmap.api import create_app

    settings = store_settings(db=sample_db, load_sample_if_empty=False, map_assets=tmp_path / "nothing",
                        admin_token="test-admin-token")
    with TestClient(create_app(settings)) as c:
        response = c.get("/maps/dispatcher", headers=ADMIN)
    assert response.status_code == 503
    assert "npm ci --prefix assets" in response.json()["detail"]


# -- pages, cache -----------------------------------------------------------------------------------

@needs_assets
def test_dispatcher_page_with_5000_incidents_is_within_the_size_budget(coverage, incidents):
    ctx = MapContext(coverage, basemaps(Settings()), incidents)
    html = map_page("dispatcher", ctx)
    assert len(html.encode()) <= 5 * 1024 * 1024
    for label in ("网格", "楼栋", "事件", "党群服务站", "派出所辖区", "行政区划", "事件热力图", "共建单位"):
        assert label in html
    assert "gcj02" in html  # the 高德 basemap is flagged so overlays shift


def test_synthetic_incidents_follow_the_contract(incidents):
    assert list(incidents.columns[:-1]) == COLUMNS
    assert len(incidents) == 5000 and incidents.crs.to_epsg() == 4326
    assert str(incidents["reported_at"].dt.tz) == "UTC"
    assert incidents["grid_code"].notna().all()


def test_fingerprint_changes_with_any_incident(incidents):
    changed = incidents.copy()
    changed.loc[changed.index[0], "status"] = "closed" if changed["status"].iat[0] != "closed" else "reported"
    assert fingerprint(incidents) == fingerprint(incidents.copy())
    assert fingerprint(incidents) != fingerprint(changed)


def test_map_cache_builds_once_per_revision():
    cache, built = MapCache(), []

    def build():
        built.append(1)
        return f"page {len(built)}"

    assert cache.get("dispatcher", "r1", build) == "page 1"
    assert cache.get("dispatcher", "r1", build) == "page 1"
    assert cache.get("dispatcher", "r2", build) == "page 2"  # new data: rebuilt
    assert cache.get("dispatcher", "r2", build) == "page 2"
    assert len(built) == 2


@needs_assets
def test_pages_are_cached_and_rebuilt_when_incidents_change(sample_db, coverage, incidents):
    from fastapi.testclient import TestClient

    from gridmap.api import create_app

    current = {"frame": incidents.iloc[:100]}
    settings = store_settings(db=sample_db, load_sample_if_empty=False, admin_token="test-admin-token")
    app = create_app(settings)
    with TestClient(app, headers=ADMIN) as c:
        app.state.map_incidents = lambda store, coverage: current["frame"]
        first = c.get("/maps/dispatcher?mode=embedded")
        assert "（100 件）" in first.text
        assert c.get("/maps/dispatcher?mode=embedded", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
        hits = app.state.map_cache.hits
        assert c.get("/maps/dispatcher?mode=embedded").text == first.text and app.state.map_cache.hits == hits + 1
        current["frame"] = incidents.iloc[:200]
        second = c.get("/maps/dispatcher?mode=embedded")
        assert second.headers["etag"] != first.headers["etag"] and "（200 件）" in second.text


@needs_assets
def test_unknown_worker_and_bad_radius(client):
    assert client.get("/maps/worker/W9999", headers=ADMIN).status_code == 404
    assert client.get("/maps/planner?radius=10", headers=ADMIN).status_code == 422


@needs_assets
def test_worker_map_shows_only_their_grid(client, coverage):
    grid = coverage.workers.set_index("code").loc["W0002", "grid_code"]
    html = client.get("/maps/worker/W0002", headers=ADMIN).text
    assert coverage.grid_ref(grid)["name"] in html
    other = next(code for code in coverage.grids["code"] if code != grid)
    assert coverage.grid_ref(other)["name"] + '"' not in html
    assert "附近的党群服务站" in html and "width=device-width" in html


@needs_assets
def test_a_worker_map_reads_only_its_grids_open_incidents(sample_db, copy_store, coverage, tmp_path):
    """A worker's map costs the same in a city as in a town: the page reads its grids' open incidents from
    the store's index (never the whole history) and draws only its grid."""

    from fastapi.testclient import TestClient

    from gridmap.api import create_app
    from gridmap.store.base import IncidentQuery

    db = copy_store(sample_db, tmp_path)
    settings = store_settings(db=db, load_sample_if_empty=False, admin_token="test-admin-token")
    with TestClient(create_app(settings), headers=ADMIN) as c:
        store = c.app.state.store
        total = store.query_incidents(IncidentQuery(), limit=0)[1]
        worker = coverage.workers.set_index("code").loc["W0002"]
        open_in_grid = store.query_incidents(IncidentQuery(statuses=tuple(sorted(OPEN_STATUSES)),
                                                           grids=(worker["grid_code"],)), limit=0)[1]
        read = store.incident_rows_read
        html = c.get("/maps/worker/W0002").text
        assert store.incident_rows_read - read == open_in_grid < total
        assert f"未办结事件 <b>{open_in_grid}<" in html  # the card counts what was read


# -- CLI export -------------------------------------------------------------------------------------

@needs_assets
def test_cli_exports_a_self_contained_file(sample_db, tmp_path):
    from gridmap.cli import app

    out = tmp_path / "worker.html"
    result = CliRunner().invoke(app, ["map", "worker", "W0002", "--db", str(sample_db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert 'src="/static' not in html and 'href="/static' not in html
    assert "L.Control.Locate" in html and "data:font/woff2;base64," in html


@needs_assets
def test_cli_can_ship_assets_beside_the_file(sample_db, tmp_path):
    from gridmap.cli import app

    out = tmp_path / "planner.html"
    result = CliRunner().invoke(app, ["map", "planner", "--db", str(sample_db), "--out", str(out),
                                      "--assets", "beside"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    links = re.findall(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"', html)
    assert links and all((tmp_path / link).is_file() for link in links), links
    assert (tmp_path / "planner_files/vendor/@fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2").is_file()


def test_cli_rejects_an_unknown_map(sample_db, tmp_path):
    from gridmap.cli import app

    result = CliRunner().invoke(app, ["map", "atlas", "--db", str(sample_db), "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 2


# -- import rules (house style) ----------------------------------------------------------------------

def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module if node.module.startswith("gridmap.api") else node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_folium_stays_in_layers_and_fastapi_in_api(path):
    rel = path.relative_to(PACKAGE).as_posix()
    imported = _imports(path)
    if not rel.startswith("layers/"):
        assert not imported & {"folium", "branca"}, f"{rel} imports folium"
    if not rel.startswith("api/"):
        assert not imported & {"fastapi", "starlette"}, f"{rel} imports FastAPI"
        assert not any(name.startswith("gridmap.api") for name in imported), f"{rel} imports gridmap.api"
