"""The co-governance layers (issue #13 §6) in a real Chromium against a real server process over the sample
county with its year of co-governance, every request to a non-loopback address blocked: on the dispatcher's
light page the needs, projects, resources and patrol-coverage layers draw from vector tiles when switched on,
a click on a need opens its popup from tile properties, and the legend names them in Chinese; the worker's
page draws their buildings by last visit. Screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from browsers import ARGS, CHROMIUM, Offline
from servers import serving
from stores import open_test_store

from gridmap.cogov.sample import load_cogov_sample
from gridmap.settings import SAMPLE_PACKAGE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN_TOKEN = "cogov-browser-admin-token"
HOME = "140821100014"  # 双塔社区

if not CHROMIUM.exists():  # .ci/run installs it; elsewhere: apt-get install chromium
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' brings Playwright")


@pytest.fixture(scope="module")
def server(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("cogov_maps_server")
    db = copy_store(sample_db, folder, "county.gpkg")
    load_cogov_sample(open_test_store(db), SAMPLE_PACKAGE / "cogov.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")} | {"GRIDMAP_ADMIN_TOKEN": ADMIN_TOKEN}
    with serving(db, log=folder / "server.log", env=env) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _settled(p) -> None:
    p.wait_for_timeout(50)
    p.wait_for_function("window.gridmap.tiles.settled()", timeout=20_000)


def _visible(p, layer: str) -> int:
    return p.evaluate("layer => window.gridmap.tiles.visible(layer).features", layer)


def test_the_dispatcher_draws_the_co_governance_layers_from_tiles(server, browser, sample_layers):
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    buildings = sample_layers["buildings"]
    grids = sample_layers["grids"]
    home = grids.loc[grids["community_code"] == HOME].geometry.union_all()
    points = buildings.geometry.representative_point()
    where = points[points.within(home)].iloc[0]  # a building of 双塔社区: the need is drawn over its footprint
    need = httpx.post(f"{server}/v1/needs", headers=admin, json={
        "community_code": HOME, "title": "浏览器测试需求：增设休闲座椅", "category": "环境美化", "households": 25,
        "source": "居民提出", "lon": where.x, "lat": where.y})
    assert need.status_code == 201, need.text

    offline = Offline(browser)
    try:
        offline.sign_in(server, ADMIN_TOKEN)
        offline.open(f"{server}/maps/dispatcher")
        p = offline.page
        legend = p.locator(".gm-legend").inner_text()
        for text in ("居民需求：办理状态", "已收集", "为民办实事项目：状态", "包楼院走访：近 30 天", "从未走访"):
            assert text in legend, text
        for name in ("共建资源（资源清单）", "为民办实事项目（项目清单）", "包楼院走访（近 30 天）"):
            p.locator(".leaflet-control-layers-overlays label", has_text=name).locator("input").check()
        p.locator(".leaflet-control-layers-overlays label", has_text="事件").first.locator("input").uncheck()
        p.evaluate("ll => { window.gridmap.map.setView(ll, 16, {animate: false}); }", [where.y, where.x])
        _settled(p)
        assert _visible(p, "needs") > 0 and _visible(p, "patrol_coverage") > 0
        x, y = p.evaluate("ll => { const pt = window.gridmap.map.latLngToContainerPoint(ll); return [pt.x, pt.y]; }",
                          [where.y, where.x])
        p.mouse.click(x, y)
        p.wait_for_selector(".leaflet-popup-content")
        assert p.evaluate("window.gridmap.popup.layer") == "needs"
        text = p.locator(".leaflet-popup-content").inner_text()
        assert "浏览器测试需求：增设休闲座椅" in text and "25 户" in text and "已收集" in text
        offline.shot("cogov_dispatcher_need_popup")
        p.evaluate("() => { window.gridmap.map.setZoom(12, {animate: false}); }")
        _settled(p)
        assert _visible(p, "projects") > 0 and _visible(p, "patrol_coverage") == 0  # footprints from zoom 14
        offline.check_offline()
    finally:
        offline.close()


def test_the_workers_page_draws_their_buildings_by_last_visit(server, browser, sample_layers):
    workers = sample_layers["workers"]
    code = workers[(workers["community_code"] == HOME) & (workers["grid_code"].fillna("") != "")]["code"].sort_values().iat[0]
    offline = Offline(browser)
    try:
        offline.sign_in(server, ADMIN_TOKEN)
        offline.open(f"{server}/maps/worker/{code}")
        names = offline.overlays()
        coverage = [n for n in names if n.startswith("包楼院走访（近 30 天）")]
        assert coverage and any(n.startswith("本社区居民需求") for n in names)
        drawn = offline.page.evaluate(
            """name => { let n = 0; const g = window.gridmap.overlays[name];
                (function walk(l) { if (l.eachLayer) l.eachLayer(walk); else if (l._map) n += 1; })(g); return n; }""",
            coverage[0])
        assert drawn > 0
        offline.shot("cogov_worker_patrol_coverage")
        offline.check_offline()
    finally:
        offline.close()
