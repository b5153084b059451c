"""The light map pages (``/maps/dispatcher``, ``/maps/planner``) in a real Chromium against a real server process,
with every request to a non-loopback address blocked: the dispatcher map loads, draws grids from vector tiles,
pans (and asks for the new tiles), filters on the server, shows the server's clusters with their numbers,
opens popups from tile properties and moves every overlay to GCJ-02 with the 高德 basemap; precincts,
co-building units, region outlines and the heat map come from tiles too; the planner map draws buildings by
distance, the uncovered ones and the stations' rings by viewport. The same dispatcher checks run on a city of
ten towns (``CITY_TOWNS``). Screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import shapely
from browsers import ARGS, CHROMIUM, Offline
from servers import serving
from stores import open_test_store

from gridmap.maps.incidents import OPEN_STATUSES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN_TOKEN = "tiles-browser-admin-token"
AMAP = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
CLUSTER_ZOOM = 13
"""Below the server's POINTS_MIN_ZOOM (15): incidents come as clusters; the sample county is all in view."""
PAGE_LIMIT_BYTES = 200_000
"""The light page carries no features: the sample county's embedded page is 2.5 MB, this one tens of KB."""

if not CHROMIUM.exists():  # .ci/run installs it; elsewhere: apt-get install chromium
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' brings Playwright")


@pytest.fixture(scope="module")
def server(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("tiles_server")
    db = copy_store(sample_db, folder, "sample.gpkg")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")} | {
        "GRIDMAP_ADMIN_TOKEN": ADMIN_TOKEN, "GRIDMAP_AMAP_TILE_URL": AMAP}
    with serving(db, log=folder / "server.log", env=env) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _total(server: str, params: list[tuple[str, str]]) -> int:
    answer = httpx.get(f"{server}/v1/incidents", params=[*params, ("limit", "1")],
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code == 200, answer.text
    return answer.json()["total"]


def _settled(p) -> None:
    """Every tile asked for has arrived (or failed) and no tile layer is still loading."""
    p.wait_for_timeout(50)  # let Leaflet ask for the tiles of the new view first
    p.wait_for_function("window.gridmap.tiles.settled()", timeout=20_000)


def _visible(p, layer: str) -> dict:
    return p.evaluate("layer => window.gridmap.tiles.visible(layer)", layer)


def _click_point(grid: shapely.Geometry, avoid: shapely.Geometry) -> tuple[float, float]:
    minx, miny, maxx, maxy = grid.bounds
    xs, ys = np.meshgrid(np.linspace(minx, maxx, 25), np.linspace(miny, maxy, 25))
    points = shapely.points(xs.ravel(), ys.ravel())
    inside = points[shapely.contains(grid, points)]
    score = shapely.distance(inside, avoid) + shapely.distance(inside, grid.boundary)
    best = inside[int(np.argmax(score))]
    return best.x, best.y


def _cluster_numbers(p) -> int:
    """The sum of the numbers written on the clusters visible on the map."""
    return p.evaluate("""() => { const box = window.gridmap.map.getContainer().getBoundingClientRect(); let n = 0;
        document.querySelectorAll('.gm-cluster-count span').forEach(s => { const r = s.getBoundingClientRect();
            if (r.width && r.right > box.left && r.left < box.right && r.bottom > box.top && r.top < box.bottom)
                n += parseInt(s.textContent, 10); });
        return n; }""")


def _layers_from_tiles(p) -> None:
    """Precincts, co-building units and the heat map: switched on, they draw from tiles."""
    for name in ("派出所辖区", "共建单位（驻区单位）", "事件热力图"):
        p.locator(".leaflet-control-layers-overlays label", has_text=name).locator("input").check()
    _settled(p)
    p.wait_for_function("window.gridmap.tiles.heat._latlngs.length > 0", timeout=10_000)
    assert _visible(p, "precincts")["features"] > 0 and _visible(p, "regions")["features"] > 0
    p.evaluate("() => { window.gridmap.map.setZoom(15, {animate: false}); }")
    _settled(p)
    assert _visible(p, "units")["features"] > 0
    for name in ("派出所辖区", "共建单位（驻区单位）", "事件热力图"):
        p.locator(".leaflet-control-layers-overlays label", has_text=name).locator("input").uncheck()
    p.evaluate(f"() => {{ window.gridmap.map.setZoom({CLUSTER_ZOOM}, {{animate: false}}); }}")
    _settled(p)


def test_tiled_dispatcher_loads_pans_filters_and_clusters(server, browser, sample_layers):
    page = httpx.get(f"{server}/maps/dispatcher", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert page.status_code == 200 and len(page.content) < PAGE_LIMIT_BYTES
    assert "<script src=\"/static/vendor/leaflet.vectorgrid/" in page.text

    offline = Offline(browser)
    try:
        offline.sign_in(server, ADMIN_TOKEN)
        offline.open(f"{server}/maps/dispatcher")
        p = offline.page
        for name in ("行政区划", "网格", "派出所辖区", "楼栋（放大到 16 级显示）", "党群服务站", "共建单位（驻区单位）", "事件",
                     "事件热力图"):
            assert name in offline.overlays()
        p.wait_for_function("window.gridmap.tiles.features.grids > 0", timeout=20_000)
        _settled(p)
        assert p.locator(".gm-legend").is_visible() and "网格：未办结事件数" in p.locator(".gm-legend").inner_text()
        grid_codes = set(sample_layers["grids"]["code"])
        assert 0 < _visible(p, "grids")["features"]

        # The clusters in view count the open incidents the listing counts (the county is all in view).
        p.evaluate(f"() => {{ window.gridmap.map.setZoom({CLUSTER_ZOOM}, {{animate: false}}); }}")
        _settled(p)
        open_params = [("status", s) for s in sorted(OPEN_STATUSES)]
        assert _visible(p, "incidents")["incidents"] == _total(server, open_params)
        assert _cluster_numbers(p) == _total(server, open_params)  # the numbers on the map say the same
        _layers_from_tiles(p)
        offline.shot("dispatcher_tiles")

        # Filter: closed incidents of the last 30 days, counted on the server.
        p.select_option(".gm-filter select[name=status]", "closed")
        p.wait_for_function("window.gridmap.filter.status.join() === 'closed'")
        _settled(p)
        closed = _visible(p, "incidents")["incidents"]
        assert closed == _total(server, [("status", "closed")]) and closed != _total(server, open_params)
        p.wait_for_function("() => document.querySelectorAll('.gm-cluster-count span').length > 0")
        assert _cluster_numbers(p) == closed

        # Pan: new tiles are asked for and drawn.
        before = p.evaluate("window.gridmap.tiles.requests")
        p.evaluate("() => { window.gridmap.map.setZoom(window.gridmap.map.getZoom() + 2, {animate: false}); }")
        p.evaluate("() => { window.gridmap.map.panBy([400, 200], {animate: false}); }")
        _settled(p)
        assert p.evaluate("window.gridmap.tiles.requests") > before
        assert _visible(p, "grids")["features"] > 0

        # Click a grid away from stations, incidents and footprints: the popup comes from tile properties.
        grids = sample_layers["grids"].set_index("code")
        code = sorted(grid_codes)[3]
        grid = grids.loc[code, "geometry"]
        avoid = shapely.union_all([*shapely.buffer(np.asarray(sample_layers["stations"].geometry.values), 0.0004),
                                   *shapely.buffer(np.asarray(sample_layers["buildings"].geometry.values), 0.00005)])
        p.select_option(".gm-filter select[name=status]", "")
        minx, miny, maxx, maxy = grid.bounds
        p.evaluate("b => { window.gridmap.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {animate: false}); }",
                   [minx, miny, maxx, maxy])
        _settled(p)
        incidents = sample_layers.get("incidents")
        if incidents is not None and len(incidents):
            avoid = shapely.union_all([avoid, *shapely.buffer(np.asarray(incidents.geometry.values), 0.0003)])
        lon, lat = _click_point(grid, avoid)
        x, y = p.evaluate("ll => { const pt = window.gridmap.map.latLngToContainerPoint(ll); return [pt.x, pt.y]; }",
                          [lat, lon])
        p.mouse.click(x, y)
        p.wait_for_selector(".leaflet-popup-content")
        assert p.evaluate("window.gridmap.popup.layer") == "grids"
        assert grids.loc[code, "name"] in p.locator(".leaflet-popup-content").inner_text()
        offline.shot("dispatcher_tiles_popup")

        # 高德: the tiles are asked for again in GCJ-02.
        p.locator(".leaflet-control-layers-base label", has_text="高德").click()
        p.wait_for_function("window.gridmap.gcj02 === true")
        assert "gcj02=1" in p.evaluate("window.gridmap.tiles.layers.grids._url")
        _settled(p)
        assert _visible(p, "grids")["features"] > 0
        offline.check_offline()
    finally:
        offline.close()


# -- a city of ten towns (issue #10) ------------------------------------------------------------------------

CITY_TOWNS = 10
"""A county of 运城: 1,050 grids, 47,750 buildings, 54,000 incidents (geodata/build_city.py)."""


@pytest.fixture(scope="module")
def city_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The ten-town city with its incident history, built once for this module (about a minute), served."""
    import importlib.util
    import sys

    from gridmap.bootstrap import load_sample

    folder = tmp_path_factory.mktemp("tiles_city")
    generator = Path(__file__).resolve().parent.parent / "geodata" / "build_city.py"
    if "build_city" not in sys.modules:  # geodata/ is not a package: loaded from its file, as tests/test_city.py
        spec = importlib.util.spec_from_file_location("build_city", generator)
        module = importlib.util.module_from_spec(spec)
        sys.modules["build_city"] = module
        spec.loader.exec_module(module)
    city = sys.modules["build_city"].build_city(CITY_TOWNS, folder / "city", fmt="gpkg")
    db = folder / "city.gpkg"
    load_sample(open_test_store(db), city.out)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")} | {"GRIDMAP_ADMIN_TOKEN": ADMIN_TOKEN}
    with serving(db, log=folder / "server.log", env=env) as base:
        yield base


def test_the_dispatcher_map_of_a_ten_town_city_loads_pans_filters_and_shows_clusters(city_server, browser):
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    page = httpx.get(f"{city_server}/maps/dispatcher", headers=auth, timeout=120)
    assert page.status_code == 200 and len(page.content) < PAGE_LIMIT_BYTES  # no features in the page
    grids = httpx.get(f"{city_server}/v1/grids", headers=auth, timeout=120).json()["features"]
    assert len(grids) == 105 * CITY_TOWNS
    xs = [x for g in grids for ring in g["geometry"]["coordinates"] for x, _ in (ring if g["geometry"]["type"] == "Polygon" else ring[0])]
    ys = [y for g in grids for ring in g["geometry"]["coordinates"] for _, y in (ring if g["geometry"]["type"] == "Polygon" else ring[0])]

    offline = Offline(browser)
    try:
        offline.sign_in(city_server, ADMIN_TOKEN)
        offline.open(f"{city_server}/maps/dispatcher")
        p = offline.page
        p.wait_for_function("window.gridmap.tiles.firstDrawn !== null", timeout=30_000)
        _settled(p)
        assert _visible(p, "regions")["features"] > 0  # town outlines at every zoom; grids from zoom 10

        # The whole city in view: the clusters and the numbers written on them count every open incident.
        p.evaluate("b => { window.gridmap.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {animate: false}); }",
                   [min(xs), min(ys), max(xs), max(ys)])
        _settled(p)
        assert p.evaluate("window.gridmap.map.getZoom()") < CLUSTER_ZOOM + 2
        open_params = [("status", s) for s in sorted(OPEN_STATUSES)]
        open_total = _total(city_server, open_params)
        assert open_total > 1000
        assert _visible(p, "incidents")["incidents"] == open_total
        assert _cluster_numbers(p) == open_total
        offline.shot("dispatcher_city_10")

        # Filter on the server: closed incidents of the last 30 days.
        p.select_option(".gm-filter select[name=status]", "closed")
        p.wait_for_function("window.gridmap.filter.status.join() === 'closed'")
        _settled(p)
        closed = _total(city_server, [("status", "closed")])
        assert _visible(p, "incidents")["incidents"] == closed and _cluster_numbers(p) == closed
        p.select_option(".gm-filter select[name=days]", "30")
        _settled(p)
        recent = _visible(p, "incidents")["incidents"]
        assert 0 < recent < closed and _cluster_numbers(p) == recent

        # Pan and zoom: new tiles asked for and drawn, each in a few seconds at most on a loaded machine.
        for dx, dy in ((500, 0), (0, 400)):
            before = p.evaluate("window.gridmap.tiles.requests")
            p.evaluate(f"() => {{ window.gridmap.map.panBy([{dx}, {dy}], {{animate: false}}); }}")
            _settled(p)
            assert p.evaluate("window.gridmap.tiles.requests") > before
        ring = grids[len(grids) // 2]["geometry"]["coordinates"][0]
        ring = ring[0] if grids[len(grids) // 2]["geometry"]["type"] == "MultiPolygon" else ring
        centre = [sum(y for _, y in ring) / len(ring), sum(x for x, _ in ring) / len(ring)]
        p.evaluate("c => { window.gridmap.map.setView(c, 16, {animate: false}); }", centre)  # street zoom: points
        _settled(p)
        assert _visible(p, "grids")["features"] > 0 and _visible(p, "buildings")["features"] > 0
        assert p.evaluate("window.gridmap.tiles.errors") == 0
        offline.check_offline()
    finally:
        offline.close()
