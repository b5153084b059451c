"""The console pages in a real browser (issue #15 §1–2): Debian's Chromium driven by Playwright against
``gridmap serve`` in its own process, every request to a non-loopback address blocked.

A dispatcher signs in, sees a new report arrive without a reload, filters the queue, selects incidents on
the list and on the map (each selects in the other), then 受理 and 派遣 one on its page; a grid worker on a
390 × 844 page sees the task with the distance from where they stand and starts it, walks a patrol (the
browser's position moved by the test) that the page registers, and finishes the task with a photo whose
thumbnail then loads on the incident's page. Each step is checked
through the API as well. Screenshots land in tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyproj
import pytest
import shapely
from browsers import ARGS, CHROMIUM, Offline, sign_in_console, wait_js
from PIL import Image
from servers import serving
from stores import open_test_store

from gridmap import auth

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN_TOKEN = "console-browser-admin-token"

if not CHROMIUM.exists():  # .ci/run installs it; elsewhere: apt-get install chromium
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' brings Playwright")


@pytest.fixture(scope="module")
def served(sample_db, copy_store, sample_layers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``gridmap serve`` over a copy of the sample county, a dispatcher token and the token of the grid
    worker who covers ``lon, lat`` (a point well inside their grid)."""
    folder: Path = tmp_path_factory.mktemp("console_server")
    db = copy_store(sample_db, folder, "sample.gpkg")
    grids, workers = sample_layers["grids"], sample_layers["workers"]
    grid = grids[grids["code"].isin(set(workers.loc[workers["role"] == "专职网格员", "grid_code"]))].sort_values("code").iloc[3]
    inner = shapely.buffer(grid.geometry, -0.0008)
    point = shapely.point_on_surface(inner if not inner.is_empty else grid.geometry)
    worker = workers[(workers["grid_code"] == grid["code"]) & (workers["role"] == "专职网格员")]["code"].iat[0]
    store = open_test_store(db)
    _, dispatcher = auth.create_token(store, role="dispatcher", label="console browser test")
    _, own = auth.create_token(store, role="worker", worker_code=worker, label="console browser test")
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")} | {"GRIDMAP_ADMIN_TOKEN": ADMIN_TOKEN}
    with serving(db, log=folder / "server.log", env=env) as base:
        yield {"base": base, "dispatcher": dispatcher, "worker": own, "worker_code": worker, "grid": grid["code"],
               "lon": point.x, "lat": point.y}


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def report(base: str, lon: float, lat: float, category: str = "infra.streetlight") -> int:
    answer = httpx.post(f"{base}/v1/incidents", json={"category": category, "description": "路灯不亮，晚上很黑",
                                                     "lon": lon, "lat": lat, "reporter": {"name": "路秀绒"}})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def incident(base: str, incident_id: int) -> dict:
    return httpx.get(f"{base}/v1/incidents/{incident_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()


def advance(base: str, incident_id: int, action: str, **extra) -> None:
    version = incident(base, incident_id)["version"]
    done = httpx.post(f"{base}/v1/incidents/{incident_id}/transitions", json={"action": action, **extra},
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "If-Match": f'"{version}"'})
    assert done.status_code == 200, done.text


def test_a_dispatcher_sees_a_new_report_filters_selects_and_dispatches(served, browser) -> None:
    base, lon, lat = served["base"], served["lon"], served["lat"]
    o = Offline(browser, width=1400, height=900)
    page = o.page
    sign_in_console(o, base, served["dispatcher"])
    assert page.locator(".cs-tab.cs-active").inner_text().startswith("待受理")
    waiting = int(page.locator('[data-count="intake"]').inner_text())
    page.evaluate("window.__notReloaded = true")
    o.shot("console_queue")

    # a resident reports: it appears in 待受理 without a reload, and the count moves
    first = report(base, lon, lat)
    page.locator(f"#item-{first}").wait_for(timeout=20_000)
    assert page.evaluate("window.__notReloaded") is True
    assert int(page.locator('[data-count="intake"]').inner_text()) == waiting + 1
    second = report(base, lon + 0.0008, lat)
    page.locator(f"#item-{second}").wait_for(timeout=20_000)

    # filters: another category empties the list, the report's own brings it back; the map follows
    page.select_option("select[name=category]", "sanitation")
    page.locator(f"#item-{first}").wait_for(state="detached")
    assert page.evaluate("window.gridmap.tiles.incidentQuery.category") == "sanitation"
    page.select_option("select[name=category]", "infra.streetlight")
    page.locator(f"#item-{first}").wait_for()
    assert "category=infra.streetlight" in page.url
    listed = httpx.get(f"{base}/v1/incidents", params={"status": "reported", "category": "infra.streetlight"},
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    assert int(page.locator('[data-count="intake"]').inner_text()) == listed["total"]
    assert page.evaluate("window.gridmap.tiles.incidentQuery.status") == ["reported"]

    # list -> map: a click on a row selects it and brings the map to it
    page.click(f"#item-{first} .cs-item-body")
    assert page.evaluate("window.gridmapConsole.selected") == str(first)
    wait_js(page, "window.gridmapConsole.map.getZoom() >= 17", 10)  # the map flies there (an animation)
    # map -> list: a click on the other report's point selects its row
    wait_js(page, "window.gridmap.tiles.settled() && window.gridmap.tiles.visible('incidents').features >= 2")
    point = page.evaluate(f"(() => {{ const p = window.gridmapConsole.map.latLngToContainerPoint([{lat}, {lon + 0.0008}]);"
                          " return [p.x, p.y]; })()")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    wait_js(page, f"window.gridmapConsole.selected === '{second}'", 5)
    assert "cs-selected" in page.locator(f"#item-{second}").get_attribute("class")
    assert "cs-selected" not in page.locator(f"#item-{first}").get_attribute("class")
    assert page.evaluate("window.gridmap.popup.properties.id") == str(second)
    o.shot("console_selected")

    # 受理, then 派遣 to the covering worker (offered first), on the incident's page
    page.click(f"#item-{first} a.cs-open")
    wait_js(page, "!!(window.gridmap && window.gridmap.ready)")
    assert page.locator("form.cs-action").evaluate_all("fs => fs.map(f => f.dataset.action)") == \
        ["accept", "cancel", "supervise"]
    page.click("form[data-action=accept] button")
    page.wait_for_url(lambda url: "done=accept" in url)
    assert "已受理" in page.locator(".cs-done").inner_text()
    assert incident(base, first)["status"] == "accepted"
    assert page.locator("select[name=assignee] option:checked").get_attribute("value") == served["worker_code"]
    o.shot("console_incident")
    page.click("form[data-action=dispatch] button")
    page.wait_for_url(lambda url: "done=dispatch" in url)
    after = incident(base, first)
    assert after["status"] == "dispatched" and after["assignee"]["code"] == served["worker_code"]
    assert page.locator("#status").inner_text() == "派遣"
    o.check_offline()
    o.close()


def test_a_worker_on_a_phone_starts_a_task_patrols_and_finishes_it_with_a_photo(served, browser) -> None:
    base, lon, lat = served["base"], served["lon"], served["lat"]
    task = report(base, lon, lat, category="infra.road")
    advance(base, task, "accept")
    advance(base, task, "dispatch", assignee=served["worker_code"])
    o = Offline(browser, width=390, height=844)
    o.page.context.grant_permissions(["geolocation"], origin=base)
    o.page.context.set_geolocation({"latitude": lat, "longitude": lon + 0.002, "accuracy": 10})
    page = o.page
    sign_in_console(o, base, served["worker"])
    card = page.locator(f"#task-{task}")
    assert "我负责" in card.inner_text() and "派遣" in card.inner_text()
    wait_js(page, f"document.querySelector('#task-{task} [data-distance]').textContent.includes('米')")
    shown = card.locator("[data-distance]").inner_text()
    assert 150 <= int(shown.split()[1]) <= 220  # 0.002° of longitude here is about 182 m
    assert card.locator("a.cs-nav-link").first.get_attribute("href").startswith("geo:")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    o.shot("console_worker_tasks")
    card.locator("form[data-action=start] button").click()
    page.wait_for_url(lambda url: "done=start" in url)
    assert "已开始处置" in page.locator(".cs-done").inner_text()
    assert incident(base, task)["status"] == "in_progress"
    assert page.locator(f"#task-{task} form[data-action=resolve]").count() == 1
    o.shot("console_worker_started")

    # a patrol: the page records the track from the browser's positions and posts it to /v1/patrols when it ends
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    patrols = f"{base}/v1/workers/{served['worker_code']}/patrols"
    counted = httpx.get(patrols, headers=admin).json()
    page.click("#patrol-start")
    wait_js(page, "window.gridmapConsole.patrol && window.gridmapConsole.patrol.points.length === 1")
    page.context.set_geolocation({"latitude": lat + 0.001, "longitude": lon + 0.002, "accuracy": 10})
    wait_js(page, "window.gridmapConsole.patrol.points.length === 2")
    track = page.evaluate("window.gridmapConsole.patrol.points")
    page.click("#patrol-end")
    wait_js(page, "!!window.gridmapConsole.lastPatrol")
    assert "已登记巡查" in page.locator("#patrol-state").inner_text()
    walked = pyproj.Geod(ellps="WGS84").line_length([p[0] for p in track], [p[1] for p in track])
    assert 100 < walked < 120  # 0.001° of latitude is about 111 m
    now = httpx.get(patrols, headers=admin).json()
    assert now["total"] == counted["total"] + 1
    assert now["distance_m"] == pytest.approx(counted["distance_m"] + walked, abs=0.2)
    assert page.evaluate("window.gridmapConsole.lastPatrol.id") in [p["id"] for p in now["items"]]

    # 处置完成 with a photo from the task's form; its thumbnail then loads on the incident's page
    form = card.locator("form[data-action=resolve]")
    form.locator("textarea[name=note]").fill("已修补路面")
    form.locator("input[name=photos]").set_input_files(
        {"name": "after.jpg", "mimeType": "image/jpeg", "buffer": _photo()})
    assert form.locator("input[name=photos]").count() == 2  # a camera takes one at a time: another field
    assert "已选 1 张" in form.locator(".cs-photo-note").inner_text()
    form.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: "done=resolve" in url)
    assert "处置后照片 1 张已保存" in page.locator(".cs-done").inner_text()
    assert incident(base, task)["status"] == "resolved"
    listed = httpx.get(f"{base}/v1/incidents/{task}/photos", headers=admin).json()
    assert [p["stage"] for p in listed] == ["after"]
    page.goto(f"{base}/console/incidents/{task}")
    wait_js(page, "Array.from(document.querySelectorAll('#photos img')).every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("#photos img").count() == 1
    o.shot("console_worker_photos")
    o.check_offline()
    o.close()


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (40, 120, 200)).save(out, "JPEG")
    return out.getvalue()
