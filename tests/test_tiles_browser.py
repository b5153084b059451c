"""The light dispatcher page (``/maps/dispatcher?mode=tiles``) in a real Chromium against a real server process,
with every request to a non-loopback address blocked: it loads, draws grids from vector tiles, pans (and asks
for the new tiles), filters on the server, shows the server's clusters, opens popups from tile properties
and moves every overlay to GCJ-02 with the 高德 basemap. Screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import shapely
from browsers import ARGS, CHROMIUM, Offline
from servers import serving

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
def server(sample_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("tiles_server")
    db = folder / "sample.gpkg"
    shutil.copy(sample_db, db)
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


def test_tiled_dispatcher_loads_pans_filters_and_clusters(server, browser, sample_layers):
    page = httpx.get(f"{server}/maps/dispatcher?mode=tiles", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert page.status_code == 200 and len(page.content) < PAGE_LIMIT_BYTES
    assert "<script src=\"/static/vendor/leaflet.vectorgrid/" in page.text

    offline = Offline(browser)
    try:
        offline.sign_in(server, ADMIN_TOKEN)
        offline.open(f"{server}/maps/dispatcher?mode=tiles")
        p = offline.page
        for name in ("网格", "楼栋（放大到 16 级显示）", "党群服务站", "事件"):
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
        offline.shot("dispatcher_tiles")

        # Filter: closed incidents of the last 30 days, counted on the server.
        p.select_option(".gm-filter select[name=status]", "closed")
        p.wait_for_function("window.gridmap.filter.status.join() === 'closed'")
        _settled(p)
        closed = _visible(p, "incidents")["incidents"]
        assert closed == _total(server, [("status", "closed")]) and closed != _total(server, open_params)

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
