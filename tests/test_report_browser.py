"""The residents' pages in a real browser (issue #15 §3): Debian's Chromium, driven by Playwright, at a
phone's 390 × 844, against `gridmap serve` in its own process, every request to a non-loopback address
blocked (basemap tiles fail; the page works without them).

A resident fills the form, taps the map, adds a photo, submits and gets the receipt; the incident is
checked through the API; staff handle it; the resident opens /status, sees 已处理完成 and gives a rating.
"使用我的位置" takes the browser's position; on the GCJ-02 basemap (高德) a tap is kept in WGS84. Page
weight and time to interactive are measured (docs/benchmarks.md). Screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import io
import json
import os
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import unquote, urlparse

import pytest
import shapely
from browsers import ARGS, ARTIFACTS, CHROMIUM, TILE_HOSTS, Offline
from PIL import Image
from servers import serving
from stores import open_test_store

from gridmap import auth
from gridmap.geo import wgs84_to_gcj02

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not CHROMIUM.exists():  # .ci/run installs it; elsewhere: apt-get install chromium
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' brings Playwright")

PHONE = {"width": 390, "height": 844}
WEIGHT_LIMIT = 500_000
"""Bytes /report loads before map tiles (issue #15: ≤ 500 KB)."""
INTERACTIVE_LIMIT_S = 2.0
"""Time until the form's map is ready (issue #15: ≤ 2 s). The assertion allows a busy CI machine twice that."""


@pytest.fixture(scope="module")
def served(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory, sample_layers) -> Iterator[dict]:
    """`gridmap serve` over a copy of the sample county, with a dispatcher and the grid's worker tokens."""
    folder = tmp_path_factory.mktemp("report_server")
    db = copy_store(sample_db, folder, "sample.gpkg")
    grids, workers = sample_layers["grids"], sample_layers["workers"]
    grid = grids[grids["community_code"] == "140821100014"].sort_values("code").iloc[0]
    worker = workers[(workers["grid_code"] == grid["code"]) & (workers["role"] == "专职网格员")].iloc[0]
    store = open_test_store(db)
    dispatcher = auth.create_token(store, role="dispatcher", label="report browser test")[1]
    own = auth.create_token(store, role="worker", worker_code=worker["code"], label="report browser test")[1]
    store.close()
    inner = shapely.buffer(grid.geometry, -0.0008)
    spot = shapely.point_on_surface(inner if not inner.is_empty else grid.geometry)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}
    with serving(db, log=folder / "server.log", env=env) as base:
        yield {"base": base, "db": db, "dispatcher": dispatcher, "worker": own, "grid": grid, "spot": spot,
               "worker_name": worker["name"], "worker_phone": worker["phone"]}


@pytest.fixture
def phone(served) -> Iterator[Offline]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = Offline(browser, **PHONE)
        yield page
        page.close()
        browser.close()


def api(served: dict, method: str, path: str, *, token: str | None = None, body: dict | None = None,
        headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(served["base"] + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def act(served: dict, incident_id: int, action: str, token: str, **extra) -> None:
    _, current = api(served, "GET", f"/v1/incidents/{incident_id}", token=token)
    status, answer = api(served, "POST", f"/v1/incidents/{incident_id}/transitions", token=token,
                         body={"action": action, **extra}, headers={"If-Match": f'"{current["version"]}"'})
    assert status == 200, answer


def until(phone: Offline, expression: str, timeout_s: float = 20) -> None:
    """Waits for a JavaScript expression to be true. ``page.wait_for_function`` polls by evaluating a string
    in the page, which the pages' Content-Security-Policy (no 'unsafe-eval') refuses."""
    deadline = time.monotonic() + timeout_s
    while not phone.page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {expression}"
        phone.page.wait_for_timeout(50)


def open_form(phone: Offline, base: str) -> float:
    """Opens /report and waits until the map is ready; the seconds it took."""
    start = time.perf_counter()
    phone.page.goto(f"{base}/report")
    until(phone, "window.gridmap && window.gridmap.ready === true")
    return time.perf_counter() - start


def tap(phone: Offline, lon: float, lat: float, *, gcj02: bool = False) -> None:
    """A tap on the map where the point (WGS84) is drawn: shifted when the GCJ-02 basemap is shown."""
    if gcj02:
        glon, glat = wgs84_to_gcj02([lon], [lat])
        lon, lat = float(glon[0]), float(glat[0])
    phone.page.evaluate("([lat, lon]) => window.gridmap.map.setView([lat, lon], 17, {animate: false})", [lat, lon])
    x, y = phone.page.evaluate("([lat, lon]) => { const p = window.gridmap.map.latLngToContainerPoint([lat, lon]);"
                               " return [p.x, p.y]; }", [lat, lon])
    box = phone.page.locator("#map").bounding_box()
    phone.page.mouse.click(box["x"] + x, box["y"] + y)


def photo_with_gps() -> bytes:
    """A phone photo with its position in EXIF (the stored copy must not keep it)."""
    image = Image.new("RGB", (1200, 900), (90, 140, 200))
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (35.0, 9.0, 1.0), 3: "E", 4: (110.0, 46.0, 10.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=92)
    return out.getvalue()


def test_a_resident_reports_with_a_photo_and_follows_it_to_a_rating(served, phone):
    page, base, spot = phone.page, served["base"], served["spot"]
    weights: list[tuple[str, int]] = []
    page.on("requestfinished", lambda r: weights.append((r.url, (r.sizes() or {}).get("responseBodySize", 0))))

    interactive = open_form(phone, base)
    assert page.title().startswith("我要反映") and page.viewport_size == PHONE
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing wider than the phone
    loaded = sum(size for url, size in weights if not any(h in url for h in TILE_HOSTS))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report_page_weight.json").write_text(json.dumps(
        {"bytes": loaded, "interactive_s": round(interactive, 3), "requests": len(weights)}))
    assert loaded <= WEIGHT_LIMIT, loaded
    assert interactive <= 2 * INTERACTIVE_LIMIT_S, interactive
    phone.shot("report_form")

    page.select_option("#category", "infra.streetlight")
    page.fill("#description", "小区东门口的路灯晚上不亮，已经三天了")
    tap(phone, spot.x, spot.y)
    chosen = page.evaluate("window.report.place")
    assert chosen["how"] == "map"
    assert abs(chosen["lon"] - spot.x) < 2e-5 and abs(chosen["lat"] - spot.y) < 2e-5
    page.locator("#place-grid").wait_for()
    assert served["grid"]["name"] in page.locator("#place-grid").inner_text()
    page.set_input_files("#photos", files=[{"name": "路灯.jpg", "mimeType": "image/jpeg", "buffer": photo_with_gps()}])
    assert page.locator("#photo-list li").count() == 1
    page.fill("input[name=name]", "路女士")
    page.fill("input[name=phone]", "13912345678")
    phone.shot("report_filled")

    page.click("#submit")
    page.wait_for_url("**/status/**", timeout=30_000)
    code = page.locator("#receipt-code").inner_text().strip()
    assert "已收到您的反映" in page.content() and unquote(urlparse(page.url).path) == f"/status/{code}"
    handler = page.locator("#handler").inner_text()
    assert served["grid"]["name"] in handler and served["worker_name"] in handler and served["worker_phone"] in handler
    phone.shot("report_receipt")

    # through the API: the incident as given, routed to the grid, with the photo stored without its GPS
    incident_id, receipt = code.split("-")
    status, stored = api(served, "GET", f"/v1/incidents/{incident_id}", token=served["dispatcher"])
    assert status == 200 and stored["category"]["code"] == "infra.streetlight" and stored["source"] == "居民上报"
    assert stored["description"] == "小区东门口的路灯晚上不亮，已经三天了"
    assert stored["reporter"] == {"name": "路女士", "phone": "13912345678"}
    assert abs(stored["location"]["lon"] - spot.x) < 2e-5 and abs(stored["location"]["lat"] - spot.y) < 2e-5
    assert stored["grid"]["code"] == served["grid"]["code"]
    store = open_test_store(served["db"])
    try:
        kept = store.incident_photos([int(incident_id)])
        assert [p["stage"] for p in kept] == ["intake"]
        image = store.photo_bytes(kept[0]["id"], thumbnail=False)
    finally:
        store.close()
    assert not Image.open(io.BytesIO(image)).getexif().get_ifd(0x8825)

    # staff handle it; the reporter's page shows the steps and the public reply, then takes a rating
    for action, token, extra in (("accept", "dispatcher", {"note": "内部：供电所王工"}),
                                 ("dispatch", "dispatcher", {}), ("start", "worker", {}),
                                 ("resolve", "worker", {"reply": "路灯已修好"})):
        act(served, int(incident_id), action, served[token], **extra)
    page.goto(f"{base}/status?receipt={code}")
    assert page.locator("#status-words").inner_text() == "已处理完成，请您评价"
    timeline = page.locator("#timeline").inner_text()
    assert "路灯已修好" in timeline and "供电所王工" not in page.content()
    phone.shot("report_status")
    page.check("input[name=rating][value='4']")
    page.fill("#comment", "修得很快，谢谢")
    page.click("#feedback-form button[type=submit]")
    page.wait_for_url("**rated=1")
    assert "谢谢您的评价" in page.content() and "★★★★☆" in page.locator("#feedback").inner_text()
    status, rated = api(served, "GET", f"/v1/incidents/{incident_id}", headers={"X-Receipt": receipt})
    assert status == 200 and rated["rating"] == 4 and rated["comment"] == "修得很快，谢谢"
    phone.shot("report_rated")
    phone.check_offline()


def test_my_location_and_the_gcj02_basemap(served, phone):
    page, base, spot = phone.page, served["base"], served["spot"]
    page.context.grant_permissions(["geolocation"], origin=base)
    page.context.set_geolocation({"longitude": spot.x, "latitude": spot.y, "accuracy": 10})
    open_form(phone, base)
    page.click("#locate")
    until(phone, "window.report.place && window.report.place.how === 'gps'")
    chosen = page.evaluate("window.report.place")
    assert abs(chosen["lon"] - spot.x) < 1e-9 and abs(chosen["lat"] - spot.y) < 1e-9
    assert page.input_value("#lon") == f"{spot.x:.6f}"
    phone.shot("report_my_location")

    # 高德's tiles are in GCJ-02: the marker is drawn shifted, and a tap is kept in WGS84
    page.locator(".leaflet-control-layers").hover()
    page.get_by_text("高德地图（GCJ-02）").click()
    until(phone, "window.gridmap.gcj02 === true")
    target = (spot.x + 0.0004, spot.y - 0.0003)
    tap(phone, *target, gcj02=True)
    chosen = page.evaluate("window.report.place")
    assert chosen["how"] == "map"
    assert abs(chosen["lon"] - target[0]) < 2e-5 and abs(chosen["lat"] - target[1]) < 2e-5
    shown = page.evaluate("(() => { const m = []; window.gridmap.map.eachLayer(l => { if (l.getLatLng) "
                          "m.push(l.getLatLng()); }); return m[0]; })()")
    glon, glat = wgs84_to_gcj02([target[0]], [target[1]])
    assert abs(shown["lng"] - float(glon[0])) < 2e-5 and abs(shown["lat"] - float(glat[0])) < 2e-5
    phone.check_offline()


def test_address_suggestions_place_the_report(served, phone):
    page, base = phone.page, served["base"]
    open_form(phone, base)
    page.locator("#address").press_sequentially("丰林", delay=50)
    page.locator("#suggestions li").first.wait_for()
    options = page.locator("#suggestions li").all_inner_texts()
    assert options and all("丰林" in o for o in options)
    phone.shot("report_suggestions")
    page.locator("#suggestions li", has_text="丰林小区3号楼").first.click()
    until(phone, "window.report.place && window.report.place.how === 'address'")
    assert page.input_value("#address") == "丰林小区3号楼" and page.input_value("#lon") == ""
    assert "网格" in page.locator("#place-grid").inner_text()
    page.select_option("#category", "sanitation.cleaning")
    page.fill("#description", "楼下垃圾两天没清运")
    page.click("#submit")
    page.wait_for_url("**/status/**", timeout=30_000)
    code = page.locator("#receipt-code").inner_text().strip()
    status, stored = api(served, "GET", f"/v1/incidents/{code.split('-')[0]}", token=served["dispatcher"])
    assert status == 200 and stored["location"]["match_level"] == "building"
    assert stored["location"]["address"] == "丰林小区3号楼"
    phone.check_offline()


def test_a_form_with_a_mistake_stays_and_says_why(served, phone):
    page, base = phone.page, served["base"]
    open_form(phone, base)
    page.fill("#description", "路灯不亮")
    page.click("#submit")
    assert page.locator("#form-error").inner_text() == "请选择问题类别"
    page.select_option("#category", "infra.streetlight")
    page.click("#submit")
    assert "请告诉我们问题在哪里" in page.locator("#form-error").inner_text()
    page.fill("#address", "北京市朝阳区某某路")
    page.click("#submit")
    until(phone, "document.getElementById('form-error').textContent.includes('无法定位')")
    assert urlparse(page.url).path == "/report" and page.input_value("#description") == "路灯不亮"
    phone.shot("report_error")
    phone.check_offline()
