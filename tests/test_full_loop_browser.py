"""The whole loop of issue #15 in a real browser, as people play it: Debian's Chromium driven by Playwright
against ``gridmap serve`` in its own process, every request to a non-loopback address aborted.

A resident on a 390 × 844 page reports a dark street light at /report with a phone photo (a JPEG made here,
carrying EXIF GPS) and gets the receipt; the dispatcher signs in at /login, finds the report in the /console
queue and on its map, accepts (受理) and dispatches (派遣) it to the grid's worker the page offers first; the
worker signs in on a 390 × 844 page, sees it in 我的任务, starts it (开始处置) and finishes it (处置完成) with a
photo; the dispatcher verifies (核查通过) and closes (结案); the resident opens /status with the receipt, sees
it done (已办结, the residents' words for 结案) and leaves a rating. Every step is checked through the JSON API
as well (status, assignee, the photos listed, the stored photos without their GPS). No request left
127.0.0.1: the only ones the pages tried were basemap tiles, aborted. Screenshots of every page visited land
in tests/artifacts/loop_*.png (git-ignored).

The GeoPackage store only: the pages are the same on PostGIS (tests/test_console_pages.py runs both) and a
second server would double the test's minute.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from urllib.parse import unquote, urlparse

import httpx
import pytest
import shapely
from browsers import ARGS, CHROMIUM, LOCAL_HOSTS, TILE_HOSTS, Offline, sign_in_console, wait_js
from PIL import Image
from servers import serving
from stores import open_test_store

from gridmap import auth

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.sqlite_only]

if not CHROMIUM.exists():  # .ci/run installs it; elsewhere: apt-get install chromium
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' brings Playwright")

ADMIN_TOKEN = "full-loop-browser-admin-token"
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1400, "height": 900}
GPS_IFD = 0x8825
DESCRIPTION = "丰林小区东门口的路灯晚上不亮，已经三天了"


@pytest.fixture(scope="module")
def served(sample_db, copy_store, sample_layers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``gridmap serve`` over a copy of the sample county; a dispatcher's token and the token of the full-time
    worker of the grid that covers ``spot`` (a point well inside it)."""
    folder = tmp_path_factory.mktemp("full_loop_server")
    db = copy_store(sample_db, folder, "sample.gpkg")
    grids, workers = sample_layers["grids"], sample_layers["workers"]
    grid = grids[grids["community_code"] == "140821100014"].sort_values("code").iloc[0]
    worker = workers[(workers["grid_code"] == grid["code"]) & (workers["role"] == "专职网格员")].iloc[0]
    inner = shapely.buffer(grid.geometry, -0.0008)
    spot = shapely.point_on_surface(inner if not inner.is_empty else grid.geometry)
    store = open_test_store(db)
    dispatcher = auth.create_token(store, role="dispatcher", label="full loop browser test")[1]
    own = auth.create_token(store, role="worker", worker_code=worker["code"], label="full loop browser test")[1]
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")} | {"GRIDMAP_ADMIN_TOKEN": ADMIN_TOKEN}
    with serving(db, log=folder / "server.log", env=env) as base:
        yield {"base": base, "dispatcher": dispatcher, "worker": own, "worker_code": worker["code"],
               "worker_name": worker["name"], "grid": grid["code"], "grid_name": grid["name"], "spot": spot}


@pytest.fixture
def browser() -> Iterator:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Watched(Offline):
    """An offline page that also remembers every request it made and every one that was answered."""

    def __init__(self, browser, **size) -> None:
        super().__init__(browser, **size)
        self.asked: list[str] = []
        self.answered: list[str] = []
        self.page.on("request", lambda r: self.asked.append(r.url))
        self.page.on("requestfinished", lambda r: self.answered.append(r.url))

    def check_nothing_left(self) -> None:
        """No request left 127.0.0.1: every answered request was the server's, and the only others the page
        tried were basemap tiles, aborted before leaving (or cancelled by a zoom before they were routed)."""
        self.check_offline()
        assert self.answered and all(urlparse(u).hostname in LOCAL_HOSTS for u in self.answered if
                                     urlparse(u).scheme in ("http", "https")), self.answered
        outside = [u for u in self.asked if urlparse(u).scheme in ("http", "https")
                   and urlparse(u).hostname not in LOCAL_HOSTS]
        assert all(any(h in (urlparse(u).hostname or "") for h in TILE_HOSTS) for u in outside), outside


def tap_map(page, lon: float, lat: float, zoom: int | None = 17) -> None:
    """A click on the page's map where the point (WGS84; the default basemap is not shifted) is drawn."""
    the_map = "(window.gridmapConsole && window.gridmapConsole.map) || window.gridmap.map"
    if zoom is not None:
        page.evaluate(f"([lat, lon]) => ({the_map}).setView([lat, lon], {zoom}, {{animate: false}})", [lat, lon])
    x, y = page.evaluate(f"([lat, lon]) => {{ const p = ({the_map}).latLngToContainerPoint([lat, lon]);"
                         " return [p.x, p.y]; }", [lat, lon])
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)


def phone_photo(colour: tuple[int, int, int]) -> bytes:
    """A phone's JPEG with where it was taken in its EXIF (lat 35°09′, lon 110°46′): stored copies must not keep it."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (35.0, 9.0, 1.0), 3: "E", 4: (110.0, 46.0, 10.0)})
    out = io.BytesIO()
    Image.new("RGB", (1200, 900), colour).save(out, "JPEG", exif=exif, quality=90)
    assert Image.open(io.BytesIO(out.getvalue())).getexif().get_ifd(GPS_IFD)  # the upload does carry GPS
    return out.getvalue()


def api_get(base: str, path: str, **headers: str) -> httpx.Response:
    return httpx.get(base + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}", **headers}, timeout=30)


def incident(base: str, incident_id: int) -> dict:
    answer = api_get(base, f"/v1/incidents/{incident_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def stored_photos(base: str, incident_id: int) -> list[dict]:
    """The incident's photos as the API lists them; each stored JPEG fetched and checked for GPS and device data."""
    listed = api_get(base, f"/v1/incidents/{incident_id}/photos")
    assert listed.status_code == 200, listed.text
    for photo in listed.json():
        data = api_get(base, f"/v1/photos/{photo['id']}")
        assert data.status_code == 200 and data.headers["content-type"] == "image/jpeg"
        exif = Image.open(io.BytesIO(data.content)).getexif()
        assert not exif.get_ifd(GPS_IFD) and 0x010F not in exif, dict(exif)
    return listed.json()


def click_action(o: Offline, action: str, root: str = "") -> None:
    o.page.click(f"{root} form[data-action={action}] button".strip())
    o.page.wait_for_url(lambda url: f"done={action}" in url)


def test_report_dispatch_handle_verify_close_and_rate(served, browser) -> None:
    base, spot = served["base"], served["spot"]
    pages: list[Watched] = []

    # 1. a resident on a phone reports with a photo and gets a receipt ---------------------------------------
    resident = Watched(browser, **PHONE)
    pages.append(resident)
    page = resident.page
    page.goto(f"{base}/report")
    wait_js(page, "window.gridmap && window.gridmap.ready === true")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    resident.shot("loop_report_form")
    page.select_option("#category", "infra.streetlight")
    page.fill("#description", DESCRIPTION)
    tap_map(page, spot.x, spot.y)
    page.locator("#place-grid").wait_for()
    assert served["grid_name"] in page.locator("#place-grid").inner_text()
    page.set_input_files("#photos", files=[{"name": "路灯.jpg", "mimeType": "image/jpeg",
                                            "buffer": phone_photo((90, 140, 200))}])
    page.fill("input[name=name]", "路秀绒")
    page.fill("input[name=phone]", "13912345678")
    resident.shot("loop_report_filled")
    page.click("#submit")
    page.wait_for_url("**/status/**", timeout=30_000)
    code = page.locator("#receipt-code").inner_text().strip()
    assert unquote(urlparse(page.url).path) == f"/status/{code}"
    assert served["worker_name"] in page.locator("#handler").inner_text()
    resident.shot("loop_report_receipt")
    number, receipt = code.split("-")
    incident_id = int(number)
    reported = incident(base, incident_id)
    assert reported["status"] == "reported" and reported["description"] == DESCRIPTION
    assert reported["grid"]["code"] == served["grid"] and reported["source"] == "居民上报"
    assert abs(reported["location"]["lon"] - spot.x) < 2e-5 and abs(reported["location"]["lat"] - spot.y) < 2e-5
    assert [p["stage"] for p in stored_photos(base, incident_id)] == ["intake"]

    # 2. the dispatcher signs in, finds it in the queue and on the map, accepts and dispatches it -------------
    desk = Watched(browser, **DESK)
    pages.append(desk)
    page = desk.page
    sign_in_console(desk, base, served["dispatcher"])
    assert page.locator(".cs-tab.cs-active").inner_text().startswith("待受理")
    row = page.locator(f"#item-{incident_id}")
    assert "路灯" in row.inner_text()  # the category, as the queue lists it
    desk.shot("loop_console_queue")
    page.evaluate("([lat, lon]) => window.gridmapConsole.map.setView([lat, lon], 18, {animate: false})",
                  [spot.y, spot.x])
    wait_js(page, "window.gridmap.tiles.settled() && window.gridmap.tiles.visible('incidents').features >= 1")
    tap_map(page, spot.x, spot.y, zoom=None)
    wait_js(page, f"window.gridmapConsole.selected === '{incident_id}'", 5)
    assert "cs-selected" in row.get_attribute("class")
    assert page.evaluate("window.gridmap.popup.properties.id") == str(incident_id)
    desk.shot("loop_console_selected")

    page.click(f"#item-{incident_id} a.cs-open")
    wait_js(page, "!!(window.gridmap && window.gridmap.ready)")
    assert page.locator("#photos img").count() >= 1  # the resident's photo, to those who may see it
    desk.shot("loop_incident")
    click_action(desk, "accept")
    assert incident(base, incident_id)["status"] == "accepted"
    offered = page.locator("select[name=assignee] option:checked").get_attribute("value")
    assert offered == served["worker_code"]  # the covering grid's worker is offered first
    desk.shot("loop_incident_accepted")
    click_action(desk, "dispatch")
    dispatched = incident(base, incident_id)
    assert dispatched["status"] == "dispatched" and dispatched["assignee"]["code"] == served["worker_code"]

    # 3. the worker signs in on a phone, sees it in 我的任务, starts and finishes it with a photo -----------------
    worker = Watched(browser, **PHONE)
    pages.append(worker)
    page = worker.page
    page.context.grant_permissions(["geolocation"], origin=base)
    page.context.set_geolocation({"latitude": spot.y, "longitude": spot.x + 0.001, "accuracy": 10})
    sign_in_console(worker, base, served["worker"])
    card = page.locator(f"#task-{incident_id}")
    assert "我负责" in card.inner_text() and "派遣" in card.inner_text()
    wait_js(page, f"document.querySelector('#task-{incident_id} [data-distance]').textContent.includes('米')")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    worker.shot("loop_worker_tasks")
    click_action(worker, "start", f"#task-{incident_id}")
    assert incident(base, incident_id)["status"] == "in_progress"
    card = page.locator(f"#task-{incident_id}")
    card.locator("form[data-action=resolve] textarea[name=note]").fill("已更换灯泡，路灯恢复照明")
    card.locator("form[data-action=resolve] input[name=photos]").set_input_files(
        files=[{"name": "修好了.jpg", "mimeType": "image/jpeg", "buffer": phone_photo((230, 200, 60))}])
    worker.shot("loop_worker_resolve_form")
    click_action(worker, "resolve", f"#task-{incident_id}")
    assert "照片 1 张已保存" in page.locator(".cs-done").inner_text()
    worker.shot("loop_worker_resolved")
    resolved = incident(base, incident_id)
    assert resolved["status"] == "resolved" and resolved["assignee"]["code"] == served["worker_code"]
    assert [p["stage"] for p in stored_photos(base, incident_id)] == ["intake", "after"]

    # 4. the dispatcher verifies and closes -------------------------------------------------------------------
    page = desk.page
    page.goto(f"{base}/console/incidents/{incident_id}")
    wait_js(page, "!!(window.gridmap && window.gridmap.ready)")
    assert page.locator("#photos img").count() >= 2  # 处置后 beside the resident's
    desk.shot("loop_incident_resolved")
    click_action(desk, "verify")
    assert incident(base, incident_id)["status"] == "verified"
    click_action(desk, "close")
    closed = incident(base, incident_id)
    assert closed["status"] == "closed" and closed["assignee"]["code"] == served["worker_code"]
    assert page.locator("#status").inner_text() == "结案"
    desk.shot("loop_incident_closed")

    # 5. the resident sees it closed on /status and leaves a rating ---------------------------------------------
    page = resident.page
    page.goto(f"{base}/status?receipt={code}")
    words = page.locator("#status-words")
    assert words.inner_text() == "已办结" and "status-closed" in words.get_attribute("class")
    assert "已办结" in page.locator("#timeline").inner_text()
    resident.shot("loop_status_closed")
    page.check("input[name=rating][value='5']")
    page.fill("#comment", "晚上亮了，谢谢网格员")
    page.click("#feedback-form button[type=submit]")
    page.wait_for_url("**rated=1")
    assert "★★★★★" in page.locator("#feedback").inner_text()
    resident.shot("loop_status_rated")
    as_reporter = httpx.get(f"{base}/v1/incidents/{incident_id}", headers={"X-Receipt": receipt}, timeout=30)
    assert as_reporter.status_code == 200
    assert as_reporter.json()["rating"] == 5 and as_reporter.json()["comment"] == "晚上亮了，谢谢网格员"
    assert incident(base, incident_id)["status"] == "closed"

    # no page loaded anything from outside ---------------------------------------------------------------------
    for o in pages:
        o.check_nothing_left()
        o.close()
