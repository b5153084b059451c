"""The residents' pages over HTTP (issue #15 §3): ``/report`` takes a report through the public intake and
``/status`` follows it with the 回执码, as the reporter may see it.

The pages are Chinese and load nothing from outside; a form creates exactly the incident it describes (the
same intake as ``POST /v1/incidents``: source 居民上报, routed to the grid's worker), bad input is a Chinese
message and stores nothing, the status page shows the reporter's time line and public replies and nothing
of the staff's notes, actors or the worker-only fields, feedback is taken once (then the 409's meaning in
plain words), a wrong 回执码 is a kind 404, the public rate limit is said kindly with its wait, and
receipts never reach the request log.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from fastapi.testclient import TestClient
from incident_fixtures import ADMIN, act, api, incident_db, place, roles  # noqa: F401
from PIL import Image
from stores import store_settings

from gridmap.api import create_app
from gridmap.auth import ANONYMOUS
from gridmap.incidents import photos
from gridmap.incidents.categories import CATEGORIES
from gridmap.logs import ACCESS_LOGGER
from gridmap.web.residents import STEP_WORDS

pytestmark = pytest.mark.usefixtures("api")

PAGE_WEIGHT_LIMIT = 500_000
"""Bytes of /report with every script and stylesheet it loads, before map tiles (issue #15: ≤ 500 KB)."""
_ASSET = re.compile(r'<(?:script src|link rel="stylesheet" href)="(?P<url>[^"]+)"')
_ERROR = re.compile(r'<p class="error" role="alert" id="(?:form|status)-error">(?P<text>[^<]*)</p>')


def key_of(page: str) -> str:
    return re.search(r'name="key" value="([^"]+)"', page).group(1)


def error_of(page: str) -> str:
    found = _ERROR.search(page)
    return unescape(found.group("text")) if found else ""


def incident_count(api: TestClient) -> int:
    return api.get("/v1/incidents", params={"limit": 1}, headers=ADMIN).json()["total"]


def code_of(location: str) -> str:
    """The 回执码 in ``/status/{code}?new=1``."""
    return unquote(urlparse(location).path.removeprefix("/status/"))


def submit(api: TestClient, fields: dict, *, files=None, headers=None, follow: bool = False):
    data = {"key": key_of(api.get("/report").text), **fields}
    return api.post("/report", data=data, files=files, headers=headers, follow_redirects=follow)


def form_for(place, **extra) -> dict:
    return {"category": "infra.streetlight", "description": "小区东门口的路灯不亮，已经三天了",
            "lon": f"{place.lon:.6f}", "lat": f"{place.lat:.6f}", "name": "路秀绒", "phone": "13912345678", **extra}


def reported(api: TestClient, place, **extra) -> tuple[str, int]:
    """A report sent through the page: its 回执码 and id."""
    answer = submit(api, form_for(place, **extra))
    assert answer.status_code == 303, answer.text[:500]
    code = code_of(answer.headers["location"])
    return code, int(code.split("-")[0])


def jpeg(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(out, "JPEG")
    return out.getvalue()


# /report ---------------------------------------------------------------------------------------------

class TestTheReportPage:
    def test_it_is_a_chinese_form_with_every_category_in_plain_words(self, api) -> None:
        page = api.get("/report")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert '<html lang="zh-CN">' in html and "<title>我要反映" in html and "使用我的位置" in html
        for code, category in CATEGORIES.items():
            assert f'value="{code}"' in html and category.name in html and category.hint in html
        assert html.count('data-private="1"') == sum(c.sensitive for c in CATEGORIES.values())
        assert 'action="/report"' in html and 'name="photos"' in html and 'type="file"' in html

    def test_it_loads_only_local_assets_and_stays_small(self, api) -> None:
        page = api.get("/report")
        urls = [m.group("url") for m in _ASSET.finditer(page.text)]
        assert any(u.endswith("leaflet.js") for u in urls) and any(u.endswith("/report.js") for u in urls)
        assert all(u.startswith("/static/") for u in urls), urls
        assert "//" not in "".join(urls) and "cdn" not in page.text.lower()
        weight = len(page.content)
        for url in urls:
            asset = api.get(url)
            assert asset.status_code == 200, url
            weight += len(asset.content)
        assert weight < PAGE_WEIGHT_LIMIT, weight
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "default-src 'none'" in policy
        assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "same-origin"

    def test_each_page_gets_a_new_form_key(self, api) -> None:
        assert key_of(api.get("/report").text) != key_of(api.get("/report").text)


class TestSubmitting:
    def test_a_form_creates_the_incident_it_describes(self, api, place) -> None:
        before = incident_count(api)
        answer = submit(api, form_for(place))
        assert answer.status_code == 303 and answer.headers["location"].startswith("/status/")
        assert answer.headers["location"].endswith("?new=1")
        code = code_of(answer.headers["location"])
        incident_id, receipt = code.split("-")
        assert incident_count(api) == before + 1
        stored = api.get(f"/v1/incidents/{incident_id}", headers=ADMIN).json()
        assert stored["category"]["code"] == "infra.streetlight"
        assert stored["description"] == "小区东门口的路灯不亮，已经三天了"
        assert (stored["location"]["lon"], stored["location"]["lat"]) == (round(place.lon, 6), round(place.lat, 6))
        assert stored["reporter"] == {"name": "路秀绒", "phone": "13912345678"}
        assert stored["source"] == "居民上报" and stored["status"] == "reported"
        assert stored["grid"]["code"] == place.grid_code and stored["assignee"] is not None
        # the receipt in the code is the intake's own: the API reads the report with it
        assert api.get(f"/v1/incidents/{incident_id}", headers={"X-Receipt": receipt}).status_code == 200

    def test_the_receipt_page_names_the_code_the_grid_and_the_worker_with_a_public_contact(
            self, api, place, sample_layers) -> None:
        answer = submit(api, form_for(place), follow=True)
        assert answer.status_code == 200
        html = answer.text
        code = code_of(str(answer.url))
        assert "已收到您的反映" in html and f'id="receipt-code">{code}<' in html
        stored = api.get(f"/v1/incidents/{code.split('-')[0]}", headers=ADMIN).json()
        workers = sample_layers["workers"].set_index("code")
        assignee = workers.loc[stored["assignee"]["code"]]
        assert stored["grid"]["name"] in html and assignee["name"] in html
        assert f'href="tel:{assignee["phone"]}"' in html  # the worker's work phone: a public contact
        assert "13912345678" not in html and "路秀绒" not in html  # the reporter's own data, masked

    def test_an_address_instead_of_a_point(self, api) -> None:
        answer = submit(api, {"category": "sanitation.cleaning", "description": "楼下垃圾没清运",
                              "address": "丰林小区3号楼"})
        assert answer.status_code == 303, error_of(answer.text)
        stored = api.get(f"/v1/incidents/{code_of(answer.headers['location']).split('-')[0]}", headers=ADMIN).json()
        assert stored["location"]["match_level"] == "building" and stored["location"]["address"] == "丰林小区3号楼"
        looked_up = api.get("/v1/lookup", params={"address": "丰林小区3号楼"}).json()
        assert stored["grid"]["code"] == looked_up["grid"]["code"]

    def test_photos_go_with_the_report(self, api, place) -> None:
        files = [("photos", ("路灯1.jpg", jpeg(), "image/jpeg")), ("photos", ("路灯2.jpg", jpeg(80, 60), "image/jpeg"))]
        answer = submit(api, form_for(place), files=files)
        assert answer.status_code == 303, error_of(answer.text)
        code = code_of(answer.headers["location"])
        incident_id, receipt = code.split("-")
        state = api.app.state  # read through the photo service, as the reporter may
        listed = photos.list_photos(store=state.store, coverage=state.coverage.get(), incident_id=int(incident_id),
                                    actor=ANONYMOUS, receipt=receipt)
        assert [p["stage"] for p in listed] == ["intake", "intake"]
        assert "&photos=0" not in answer.headers["location"]
        page = api.get(answer.headers["location"]).text  # the reporter sees their photos, by the receipt
        thumbnails = re.findall(r'<img src="([^"]+)"', page)
        assert thumbnails == [f"{p['thumbnail_url']}?receipt={receipt}" for p in listed]
        for url in thumbnails:
            shown = api.get(unescape(url))
            assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"

    def test_photos_may_be_large_a_form_without_them_may_not(self, api, place) -> None:
        noise = np.random.default_rng(15).integers(0, 256, (700, 700, 3), dtype=np.uint8)
        out = io.BytesIO()
        Image.fromarray(noise).save(out, "JPEG", quality=95)
        assert len(out.getvalue()) > 256 << 10  # past the intake's 64 KB, and the 1 MB of other routes' default
        answer = submit(api, form_for(place), files=[("photos", ("大图.jpg", out.getvalue(), "image/jpeg"))] * 3)
        assert answer.status_code == 303, answer.text[:300]
        bulky = submit(api, form_for(place, description="灯" * 3000, address="丰" * 30000))
        assert bulky.status_code == 413  # a form without photos keeps the intake's limit

    def test_the_page_script_gets_json(self, api, place) -> None:
        answer = submit(api, form_for(place), headers={"Accept": "application/json"})
        assert answer.status_code == 201
        body = answer.json()
        assert body["code"] == f"{body['id']}-{body['receipt']}" and body["status_url"].startswith("/status/")
        assert body["grid"]["code"] == place.grid_code and body["handler"]["phone"]
        refused = submit(api, {"category": "infra.road", "description": ""}, headers={"Accept": "application/json"})
        assert refused.status_code == 422 and refused.json() == {"error": "invalid_input", "detail": "请简单描述一下问题"}

    def test_the_form_posts_as_the_public_whoever_is_signed_in(self, api, place) -> None:
        answer = submit(api, form_for(place), headers=ADMIN)
        stored = api.get(f"/v1/incidents/{code_of(answer.headers['location']).split('-')[0]}", headers=ADMIN).json()
        assert stored["source"] == "居民上报" and stored["priority"] == "normal"

    def test_a_resent_form_is_one_report(self, api, place) -> None:
        fields = {**form_for(place), "key": key_of(api.get("/report").text)}
        before = incident_count(api)
        first = api.post("/report", data=fields, follow_redirects=False)
        again = api.post("/report", data=fields, follow_redirects=False)
        assert first.headers["location"] == again.headers["location"] and incident_count(api) == before + 1
        changed = api.post("/report", data={**fields, "description": "换了说法"}, follow_redirects=False)
        assert changed.status_code == 409 and "已经提交过了" in error_of(changed.text)
        assert incident_count(api) == before + 1

    def test_a_form_from_another_site_is_refused(self, api, place) -> None:
        before = incident_count(api)
        answer = submit(api, form_for(place), headers={"Origin": "https://evil.example"})
        assert answer.status_code == 403 and "其他网站" in error_of(answer.text)
        assert incident_count(api) == before


BAD_FORMS = {
    "no category": ({"category": ""}, "请选择问题类别"),
    "unknown category": ({"category": "infra.nothing"}, "问题类别不在列表中"),
    "no description": ({"description": "  "}, "请简单描述一下问题"),
    "description too long": ({"description": "灯" * 4001}, "最多 4000 字"),
    "no place": ({"lon": "", "lat": ""}, "请告诉我们问题在哪里"),
    "half a point": ({"lat": ""}, "位置不完整"),
    "not a number": ({"lon": "东经110度"}, "经度不是数字"),
    "outside the service area": ({"lon": "116.4", "lat": "39.9"}, "不在本系统的服务范围内"),
    "an address that names no building": ({"lon": "", "lat": "", "address": "北京市朝阳区"}, "无法定位到楼栋"),
    "phone too long": ({"phone": "1" * 31}, "电话最多 30 位"),
}


@pytest.mark.parametrize("change,said", BAD_FORMS.values(), ids=BAD_FORMS.keys())
def test_bad_input_is_said_in_chinese_and_stores_nothing(api, place, change, said) -> None:
    before = incident_count(api)
    fields = form_for(place, **change)
    answer = submit(api, fields)
    assert answer.status_code == 422
    message = error_of(answer.text)
    assert said in message and re.search(r"[\u4e00-\u9fff]", message)
    assert incident_count(api) == before
    if change.get("description", "x").strip() and len(fields["description"]) < 100:
        assert fields["description"] in answer.text  # what was typed is kept
    assert 'value="13912345678"' in answer.text or "phone" in change


def test_a_file_that_is_not_a_photo_refuses_the_whole_form(api, place) -> None:
    before = incident_count(api)
    answer = submit(api, form_for(place), files=[("photos", ("路灯.jpg", b"not a picture at all", "image/jpeg"))])
    assert answer.status_code in (415, 422) and re.search(r"[\u4e00-\u9fff]", error_of(answer.text))
    assert incident_count(api) == before


def test_five_photos_are_one_too_many(api, place) -> None:
    before = incident_count(api)
    files = [("photos", (f"{i}.jpg", jpeg(), "image/jpeg")) for i in range(5)]
    answer = submit(api, form_for(place), files=files)
    assert answer.status_code == 422 and "最多 4 张照片" in error_of(answer.text)
    assert incident_count(api) == before


# /status ---------------------------------------------------------------------------------------------

NOTE, REPLY = "内部备注：报修单号 A-1177，供电所王工", "已联系供电所，明天上午维修"


class TestTheStatusPage:
    def test_it_shows_the_public_time_line_and_nothing_of_the_staff(self, api, place, roles) -> None:
        code, incident_id = reported(api, place)
        incident = {"id": incident_id}
        assert act(api, incident, "accept", roles.dispatcher, note=NOTE, reply=REPLY).status_code == 200
        assert act(api, incident, "dispatch", roles.dispatcher, note="派给专职网格员").status_code == 200
        assert act(api, incident, "supervise", roles.dispatcher, note="督办：尽快").status_code == 200
        assert act(api, incident, "start", roles.worker).status_code == 200
        page = api.get(f"/status/{code}")
        assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
        html = page.text
        assert "正在处理" in html  # in_progress, in a resident's words
        timeline = re.search(r'<ol class="timeline" id="timeline">(.*?)</ol>', html, re.S).group(1)
        steps = re.findall(r'<span class="step">([^<]+)</span>', timeline)
        assert steps == [STEP_WORDS[a] for a in ("report", "accept", "dispatch", "start")]
        assert REPLY in timeline
        full = api.get(f"/v1/incidents/{incident_id}", headers=ADMIN).json()
        events = api.get(f"/v1/incidents/{incident_id}/history", headers=ADMIN).json()
        hidden = [NOTE, "报修单号", "派给专职网格员", "督办：尽快", "13912345678", "路秀绒",
                  *(e["actor"] for e in events if e["actor"] != "public"),
                  *(u["name"] for u in full["suggested_units"]), *full["flags"]]
        assert [h for h in hidden if h and h in html] == []

    def test_the_status_page_takes_the_code_in_the_query_or_as_id_and_receipt(self, api, place) -> None:
        code, incident_id = reported(api, place)
        receipt = code.split("-")[1]
        for params in ({"receipt": code}, {"receipt": f" {code.upper()} "}, {"id": incident_id, "receipt": receipt},
                       {"receipt": code.replace("-", "－")}):
            page = api.get("/status", params=params)
            assert page.status_code == 200 and "办理经过" in page.text, params

    def test_without_a_code_it_asks_for_one(self, api) -> None:
        page = api.get("/status")
        assert page.status_code == 200 and "查询办理进度" in page.text and 'name="receipt"' in page.text

    @pytest.mark.parametrize("wrong", ["wrong", "1-", "999999999-0123456789abcdef01234567", "x" * 100])
    def test_a_wrong_code_is_a_kind_404(self, api, place, wrong) -> None:
        for page in (api.get(f"/status/{wrong}"), api.get("/status", params={"receipt": wrong})):
            assert page.status_code == 404 and "没有找到这个回执码对应的反映" in error_of(page.text)
            assert page.headers["content-type"].startswith("text/html")

    def test_another_reports_receipt_finds_nothing(self, api, place) -> None:
        _, incident_id = reported(api, place)
        other, _ = reported(api, place)
        forged = f"{incident_id}-{other.split('-')[1]}"
        page = api.get(f"/status/{forged}")
        assert page.status_code == 404 and "路灯不亮" not in page.text

    def test_status_pages_are_private_to_the_browser(self, api, place) -> None:
        code, _ = reported(api, place)
        page = api.get(f"/status/{code}")
        assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "same-origin"
        assert "<script" not in page.text  # nothing to run, nothing loaded from elsewhere


class TestFeedback:
    def test_feedback_once_then_the_409_in_plain_words(self, api, place, roles) -> None:
        code, incident_id = reported(api, place)
        page = api.get(f"/status/{code}").text
        assert 'id="feedback-form"' not in page and "办理完成后，您可以在这里评价" in page
        early = api.post(f"/status/{code}/feedback", data={"rating": "5"})
        assert early.status_code == 422 and "处置完成后才能评价" in error_of(early.text)
        for step, who in (("accept", roles.dispatcher), ("dispatch", roles.dispatcher), ("start", roles.worker),
                          ("resolve", roles.worker)):
            assert act(api, {"id": incident_id}, step, who).status_code == 200
        assert 'id="feedback-form"' in api.get(f"/status/{code}").text
        unrated = api.post(f"/status/{code}/feedback", data={"comment": "很好"})
        assert unrated.status_code == 422 and "请先选择满意程度" in error_of(unrated.text)
        given = api.post(f"/status/{code}/feedback", data={"rating": "4", "comment": "处理得很及时"},
                         follow_redirects=False)
        assert given.status_code == 303 and given.headers["location"].endswith("?rated=1")
        thanked = api.get(given.headers["location"]).text
        assert "谢谢您的评价" in thanked and "★★★★☆" in thanked and 'id="feedback-form"' not in thanked
        stored = api.get(f"/v1/incidents/{incident_id}", headers=ADMIN).json()
        assert (stored["rating"], stored["comment"]) == (4, "处理得很及时")
        again = api.post(f"/status/{code}/feedback", data={"rating": "1", "comment": "改主意了"})
        assert again.status_code == 409 and "每件事只能评价一次" in error_of(again.text)
        assert api.get(f"/v1/incidents/{incident_id}", headers=ADMIN).json()["rating"] == 4

    def test_feedback_with_a_wrong_code_is_the_kind_404(self, api) -> None:
        answer = api.post("/status/999999999-0123456789abcdef01234567/feedback", data={"rating": "5"})
        assert answer.status_code == 404 and "没有找到" in error_of(answer.text)


# the public rate limit ---------------------------------------------------------------------------

BURST, WINDOW_S = 2, 3


@pytest.fixture
def limited(sample_db, copy_store, tmp_path: Path) -> Iterator[TestClient]:
    """A tiny window, so recovery is seconds away: 2 reports in any 3 seconds, from one address."""
    db = copy_store(sample_db, tmp_path, "limited.gpkg")
    app = create_app(store_settings(db=db, load_sample_if_empty=False, intake_burst=BURST,
                                    intake_rate_per_minute=BURST * 60 / WINDOW_S))
    with TestClient(app, client=("198.51.100.9", 5000)) as client:
        yield client


def test_the_rate_limit_is_said_kindly_with_its_wait(limited, place) -> None:
    assert submit(limited, form_for(place)).status_code == 303
    api_report = {"category": "infra.road", "description": "路面坑洼", "lon": place.lon, "lat": place.lat}
    assert limited.post("/v1/incidents", json=api_report).status_code == 201  # one budget with the API
    refused = submit(limited, form_for(place, description="第三次反映"))
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= WINDOW_S
    message = error_of(refused.text)
    assert f"请 {wait} 秒后" in message and "不用重填" in message and "第三次反映" in refused.text
    as_json = submit(limited, form_for(place), headers={"Accept": "application/json"})
    assert as_json.status_code == 429 and "秒后" in as_json.json()["detail"] and as_json.headers["retry-after"]


# the request log ---------------------------------------------------------------------------------

def test_receipts_never_reach_the_request_log(api, place, caplog) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        code, incident_id = reported(api, place)
        receipt = code.split("-")[1]
        api.get(f"/status/{code}")
        api.get("/status", params={"receipt": code})
        api.get("/status", params={"id": incident_id, "receipt": receipt})
        api.post(f"/status/{code}/feedback", data={"rating": "3"})
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) >= 5
    assert not [line for line in lines if receipt in line or "路秀绒" in line or "13912345678" in line]
    routes = {r.msg["route"] for r in caplog.records if r.name == ACCESS_LOGGER and isinstance(r.msg, dict)}
    assert {"/report", "/status", "/status/{code}", "/status/{code}/feedback"} <= routes
    assert {r.msg["role"] for r in caplog.records if r.name == ACCESS_LOGGER and isinstance(r.msg, dict)
            and r.msg["route"].startswith(("/report", "/status"))} == {"public"}
