"""The maps in a real browser (Debian's Chromium driven by Playwright) against a real server process,
with every request to a non-loopback address blocked: the overlays must draw without any of them.

Screenshots of each map land in tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import shapely
from browsers import ARGS, CHROMIUM, Offline
from servers import serving

from gridmap.geo import wgs84_to_gcj02

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADDRESS = "临猗县双塔社区丰林小区三号楼2单元501"
ADMIN_TOKEN = "browser-test-admin-token"
"""The server's GRIDMAP_ADMIN_TOKEN: the maps need a sign-in (issue #9), pages sign in on /login with it."""

if not CHROMIUM.exists():  # .ci/run installs it; elsewhere: apt-get install chromium
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' brings Playwright")


@pytest.fixture(scope="module")
def server(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``gridmap serve`` in its own process over a copy of the sample county."""
    folder = tmp_path_factory.mktemp("map_server")
    db = copy_store(sample_db, folder, "sample.gpkg")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")} | {"GRIDMAP_ADMIN_TOKEN": ADMIN_TOKEN}
    with serving(db, log=folder / "server.log", env=env) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def offline(browser) -> Iterator:
    pages: list[Offline] = []

    def make(**kwargs) -> Offline:
        pages.append(Offline(browser, **kwargs))
        return pages[-1]

    yield make
    for p in pages:
        p.close()


def _drawn_features(page, name: str) -> int:
    """Vector features of an overlay actually on the map (canvas or SVG)."""
    return page.evaluate(
        """name => { let n = 0; const g = window.gridmap.overlays[name];
            (function walk(l) { if (l.eachLayer) l.eachLayer(walk); else if (l._map) n += 1; })(g); return n; }""",
        name,
    )


def _click_point(grid: shapely.Geometry, avoid: list[shapely.Geometry]) -> tuple[float, float]:
    """A point well inside ``grid`` and away from markers and footprints, for a click that lands on the grid."""
    minx, miny, maxx, maxy = grid.bounds
    xs, ys = np.meshgrid(np.linspace(minx, maxx, 25), np.linspace(miny, maxy, 25))
    points = shapely.points(xs.ravel(), ys.ravel())
    inside = points[shapely.contains(grid, points)]
    obstacles = shapely.union_all(avoid)
    score = shapely.distance(inside, obstacles) + shapely.distance(inside, grid.boundary)
    best = inside[int(np.argmax(score))]
    return best.x, best.y


def test_dispatcher_map_offline_click_search_and_amap(server, offline, sample_layers):
    page = offline()
    page.sign_in(server, ADMIN_TOKEN)
    seconds = page.open(f"{server}/maps/dispatcher?mode=embedded")  # the page the CLI exports, served
    p = page.page
    overlays = page.overlays()
    for expected in ("行政区划", "网格", "派出所辖区", "楼栋（放大到 16 级显示）", "党群服务站（77 个）", "事件热力图"):
        assert expected in overlays
    assert any(o.startswith("事件（") for o in overlays) and any(o.startswith("共建单位") for o in overlays)
    assert _drawn_features(p, "网格") == len(sample_layers["grids"])
    assert p.locator(".gm-legend").is_visible() and "网格：未办结事件数" in p.locator(".gm-legend").inner_text()
    assert p.locator(".leaflet-control-zoom-fullscreen, .leaflet-control-fullscreen a").count() >= 1
    assert p.locator(".leaflet-control-locate").count() == 1
    # the Font Awesome font came from gridmap itself
    assert p.evaluate("document.fonts.check('900 12px \"Font Awesome 6 Free\"')")
    page.shot("dispatcher")

    # Click a grid: its popup names the grid's worker.
    workers = sample_layers["workers"]
    worker = workers[workers["code"] == "W0002"].iloc[0]
    grids = sample_layers["grids"].set_index("code")
    grid = grids.loc[worker["grid_code"], "geometry"]
    def around(layer: str, degrees: float) -> list:  # display margins around icons and footprints
        return list(shapely.buffer(np.asarray(sample_layers[layer].geometry.values), degrees))

    avoid = around("stations", 0.0006) + around("units", 0.0006) + around("buildings", 0.00005)
    lon, lat = _click_point(grid, avoid)
    minx, miny, maxx, maxy = grid.bounds
    p.evaluate("b => { window.gridmap.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {animate: false}); }",
               [minx, miny, maxx, maxy])
    p.wait_for_timeout(300)
    x, y = p.evaluate("ll => { const pt = window.gridmap.map.latLngToContainerPoint(ll); return [pt.x, pt.y]; }",
                      [lat, lon])
    box = p.locator("#" + p.evaluate("window.gridmap.map.getContainer().id")).bounding_box()
    p.mouse.click(box["x"] + x, box["y"] + y)
    popup = p.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    assert worker["name"] in popup.inner_text() and grids.loc[worker["grid_code"], "name"] in popup.inner_text()
    page.shot("dispatcher_grid_popup")

    # Search an address: the map lands on the building the address matcher finds.
    answer = httpx.get(f"{server}/v1/lookup", params={"address": ADDRESS}).json()
    building = answer["match"]["building"]
    p.fill(".gm-search input", ADDRESS)
    p.press(".gm-search input", "Enter")
    p.wait_for_function("window.gridmap.searchResult && window.gridmap.searchResult.kind === 'building'")
    result = p.evaluate("window.gridmap.searchResult")
    assert result["code"] == building["code"] and result["grid"] == answer["grid"]["code"]
    centre = p.evaluate("(() => { const c = window.gridmap.map.getCenter(); return [c.lat, c.lng]; })()")
    assert centre == pytest.approx([answer["lat"], answer["lon"]], abs=2e-5)
    p.locator(".leaflet-popup-content", has_text=building["name"]).wait_for(timeout=5000)
    page.shot("dispatcher_search")

    # Switch to the 高德 basemap: overlays move by the GCJ-02 offset, and back.
    probe = """() => { let poly = null; window.gridmap.overlays['网格'].eachLayer(g => g.eachLayer && g.eachLayer(
                   l => { if (!poly) poly = l; }));
               let ll = poly.getLatLngs(); while (Array.isArray(ll)) ll = ll[0];
               const st = window.gridmap.overlays['党群服务站（77 个）'].getLayers()[0].getLatLng();
               const px = window.gridmap.map.latLngToContainerPoint(ll);
               return {lat: ll.lat, lng: ll.lng, x: px.x, y: px.y, slat: st.lat, slng: st.lng}; }"""
    p.evaluate("window.gridmap.map.setView([35.1425, 110.7693], 15, {animate: false}); 0")
    before = p.evaluate(probe)
    p.get_by_text("高德地图（GCJ-02）").click()
    p.wait_for_function("window.gridmap.gcj02 === true")
    after = p.evaluate(probe)
    glng, glat = wgs84_to_gcj02(before["lng"], before["lat"])
    assert after["lng"] == pytest.approx(float(glng), abs=1e-9) and after["lat"] == pytest.approx(float(glat), abs=1e-9)
    slng, slat = wgs84_to_gcj02(before["slng"], before["slat"])
    assert after["slng"] == pytest.approx(float(slng), abs=1e-9) and after["slat"] == pytest.approx(float(slat), abs=1e-9)
    assert np.hypot(after["x"] - before["x"], after["y"] - before["y"]) > 20  # hundreds of metres on screen
    page.shot("dispatcher_amap")
    p.get_by_text("OpenStreetMap").click()
    p.wait_for_function("window.gridmap.gcj02 === false")
    back = p.evaluate(probe)
    assert back["lng"] == pytest.approx(before["lng"], abs=1e-12) and back["lat"] == pytest.approx(before["lat"], abs=1e-12)
    page.check_offline()
    assert seconds < 10


def test_worker_map_on_a_phone(server, offline, sample_layers):
    page = offline(width=390, height=780)
    page.sign_in(server, ADMIN_TOKEN)
    page.open(f"{server}/maps/worker/W0002")
    p = page.page
    overlays = page.overlays()
    assert "我负责的网格" in overlays and "楼栋与住户" in overlays
    assert any(o.startswith("附近的党群服务站") for o in overlays) and any(o.startswith("未办结事件") for o in overlays)
    workers = sample_layers["workers"].set_index("code")
    card = p.locator(".gm-card")
    assert workers.loc["W0002", "name"] in card.inner_text()
    width = card.bounding_box()["width"]
    assert width <= 390 * 0.7  # the header leaves room for the map on a phone
    font = p.evaluate("parseFloat(getComputedStyle(document.querySelector('.leaflet-container')).fontSize)")
    assert font >= 15
    buildings_in_grid = int(np.sum(shapely.covers(
        sample_layers["grids"].set_index("code").loc[workers.loc["W0002", "grid_code"], "geometry"],
        shapely.point_on_surface(np.asarray(sample_layers["buildings"].geometry.values)))))
    assert _drawn_features(p, "楼栋与住户") == buildings_in_grid
    page.shot("worker_phone")
    page.check_offline()


def test_planner_map(server, offline):
    """The light planner page: buildings by distance, the uncovered ones, stations and rings come from tiles."""
    page = offline()
    page.sign_in(server, ADMIN_TOKEN)
    page.open(f"{server}/maps/planner")
    p = page.page
    overlays = page.overlays()
    assert "楼栋：到最近服务站的直线距离" in overlays and "党群服务站服务半径 300/500/1000 米" in overlays
    uncovered = next(o for o in overlays if o.startswith("未覆盖住户"))
    assert p.locator(".leaflet-control-measure").count() == 1
    assert "楼栋到最近服务站距离" in p.locator(".gm-legend").inner_text()
    p.evaluate("window.gridmap.map.setView([35.1425, 110.7693], 15, {animate: false}); 0")
    p.wait_for_timeout(50)
    p.wait_for_function("window.gridmap.tiles.settled()", timeout=20_000)
    assert p.evaluate("window.gridmap.tiles.visible('coverage').features") > 0
    stations = p.evaluate("window.gridmap.tiles.visible('stations').features")
    assert 0 < stations and _drawn_features(p, "党群服务站服务半径 300/500/1000 米") == stations * 3
    # the uncovered buildings drawn are those beyond the radius (the card's count, when all are in view)
    shown = p.evaluate("window.gridmap.tiles.visible('uncovered').features")
    assert 0 < shown <= int(uncovered.split("（")[1].split(" 栋")[0])
    page.shot("planner")
    page.check_offline()


def test_exported_dispatcher_file_with_5000_incidents(sample_db, offline, tmp_path):
    """The standalone file (everything inlined) opened from disk: clusters, filters, popups, heat map."""
    from typer.testing import CliRunner

    from gridmap.cli import app

    out = tmp_path / "dispatcher.html"
    result = CliRunner().invoke(app, ["map", "dispatcher", "--db", str(sample_db), "--out", str(out),
                                      "--demo-incidents", "5000"])
    assert result.exit_code == 0, result.output
    page = offline(allow_files=True)
    page.open(out.as_uri())
    p = page.page
    layer = "事件（5000 件）"
    assert layer in page.overlays()
    counts = "window.gridmap.overlays['%s'].getLayers()[0].gmCount" % layer
    open_count = p.evaluate(counts)
    assert 0 < open_count < 5000  # the dispatcher starts on 未办结
    p.select_option(".gm-filter select[name=status]", "")
    assert p.evaluate(counts) == 5000
    p.select_option(".gm-filter select[name=status]", "closed")
    closed = p.evaluate(counts)
    p.select_option(".gm-filter select[name=days]", "7")
    assert p.evaluate(counts) < closed
    p.select_option(".gm-filter select[name=status]", "@open")
    p.select_option(".gm-filter select[name=days]", "0")
    assert p.evaluate(counts) == open_count
    # a marker's popup: category, time, status, assignee
    text = p.evaluate("""() => { const c = window.gridmap.overlays['%s'].getLayers()[0];
        const m = c.gmMarkers.find(m => c.hasLayer(m)); c.zoomToShowLayer(m, () => {}); 
        window.gridmap.map.setView(m.getLatLng(), 19, {animate: false}); m.openPopup();
        return document.querySelector('.leaflet-popup-content') ? document.querySelector('.leaflet-popup-content').innerText : ''; }"""
                      % layer)
    for label in ("类别", "上报时间", "状态", "处置人"):
        assert label in text
    p.get_by_text("事件热力图").click()
    assert p.evaluate("window.gridmap.map.hasLayer(window.gridmap.overlays['事件热力图'])")
    p.evaluate("window.gridmap.map.setZoom(14, {animate: false}); 0")
    page.shot("dispatcher_export_5000_incidents")
    assert not page.errors, page.errors
    assert all(urlparse(u).scheme in ("http", "https") for u in page.blocked)
    page.check_offline()
