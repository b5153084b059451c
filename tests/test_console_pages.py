"""The console pages (issue #15 §1–2) over HTTP, through the real app, on both stores: who gets which page,
the queue's counts and pages equal the incident listing's under the same filters, the map's incident tiles
hold the same incidents, the action buttons are the workflow table's, a transition made through the page
changes the incident, a stale page changes nothing and says so, a worker sees only their grid.
"""

from __future__ import annotations

import math
import re
from urllib.parse import parse_qs, urlsplit

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from incident_fixtures import ADMIN, FIXTURE_ADMIN_TOKEN, act, api, incident_db, place, report, roles  # noqa: F401

from gridmap.incidents.workflow import STATUS_LABELS, TRANSITIONS
from gridmap.web.console import CONFLICT, PAGE_SIZE, QUEUES, Filters

pytestmark = pytest.mark.usefixtures("api")

HTML = {"Accept": "text/html"}


def html(headers: dict) -> dict:
    return {**headers, **HTML}


def counts(page: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-count="(\w+)">(\d+)<', page)}


def item_ids(page: str, kind: str = "item") -> list[int]:
    return [int(i) for i in re.findall(rf'class="cs-{kind}[^"]*" id="{kind}-(\d+)"', page)]


def forms(page: str) -> list[tuple[str, str]]:
    """(action, button label) of every action form on a page, in order."""
    found = re.findall(r'<form method="post" action="/console/incidents/\d+/actions"[^>]*data-action="(\w+)">(.*?)</form>',
                       page, flags=re.S)
    return [(action, re.search(r"<button[^>]*>([^<]+)</button>", body).group(1)) for action, body in found]


def expected_actions(status: str, role: str) -> list[tuple[str, str]]:
    """The workflow table read directly: actions from ``status`` for ``role``, with the table's labels."""
    return [(t.action, t.label) for t in TRANSITIONS.values() if status in t.sources and role in t.roles]


def listing_total(api: TestClient, params: dict, headers: dict) -> int:
    answer = api.get("/v1/incidents", params={**params, "limit": 1}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["total"]


# who gets which page --------------------------------------------------------------------------------

def test_who_gets_which_page(api, roles, place) -> None:
    incident = report(api, place)
    for who in (roles.dispatcher, ADMIN):
        page = api.get("/console", headers=html(who))
        assert page.status_code == 200 and "事件队列" in page.text and 'id="map"' in page.text
        assert page.headers["cache-control"] == "no-store" and "script-src 'self'" in page.headers["content-security-policy"]
        assert api.get(f"/console/incidents/{incident['id']}", headers=html(who)).status_code == 200
    worker = api.get("/console", headers=html(roles.worker))
    assert worker.status_code == 200 and "我的任务" in worker.text and "事件队列" not in worker.text

    # planners have no console: a Chinese refusal for a browser, 403 JSON otherwise
    for path in ("/console", f"/console/incidents/{incident['id']}"):
        refused = api.get(path, headers=html(roles.planner))
        assert refused.status_code == 403 and "无权查看" in refused.text and "csrf" not in refused.text
        assert api.get(path, headers=roles.planner).json()["error"] == "forbidden"
    for path in ("/console/queue", "/console/revision"):
        assert api.get(path, headers=roles.planner).status_code == 403

    # the public is sent to /login (a browser) or told to sign in (401), before anything is read
    for path in ("/console", f"/console/incidents/{incident['id']}"):
        to_login = api.get(path, headers=HTML, follow_redirects=False)
        assert to_login.status_code == 303
        assert to_login.headers["location"] == "/login?next=" + path.replace("/", "%2F")
        assert api.get(path).status_code == 401
    for path in ("/console/queue", "/console/revision"):
        assert api.get(path).status_code == 401
    assert api.post(f"/console/incidents/{incident['id']}/actions", data={"action": "accept", "version": 1}
                    ).status_code == 401


# the queue --------------------------------------------------------------------------------------------

FILTERS = [
    {},
    {"category": "infra"},
    {"category": "infra.streetlight", "period": "90"},
    {"community": "140821100014"},
    {"community": "140821100014", "overdue": True},
    {"period": "30", "order": "urgent"},
]


@pytest.mark.parametrize("chosen", FILTERS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "none")
def test_the_queue_counts_equal_the_listing(api, roles, chosen) -> None:
    filters = Filters(**chosen)
    params = {k: ("true" if v is True else v) for k, v in chosen.items()}
    page = api.get("/console", params=params, headers=html(roles.dispatcher))
    assert page.status_code == 200, page.text
    shown = counts(page.text)
    assert set(shown) == {q.key for q in QUEUES}
    from gridmap.incidents.service import utcnow

    now = utcnow()
    for q in QUEUES:
        listing = Filters(**{**chosen, "queue": q.key}).listing(now)
        assert shown[q.key] == listing_total(api, listing, roles.dispatcher), (q.key, listing)
    # the queues are the workflow's statuses: the four status queues and the rest add up to everything
    status_queues = [q for q in QUEUES if q.statuses]
    covered = {s for q in status_queues for s in q.statuses}
    rest = [s for s in STATUS_LABELS if s not in covered]
    everything = shown["all"]
    others = listing_total(api, {**Filters(**chosen).listing(now), "status": rest}, roles.dispatcher) if rest else 0
    assert sum(shown[q.key] for q in status_queues) + others == everything
    assert filters.queue == "intake"


@pytest.mark.parametrize("queue", ["handling", "overdue", "all"])
@pytest.mark.parametrize("order", ["newest", "urgent"])
def test_the_queue_lists_the_listing_page(api, roles, queue, order) -> None:
    from gridmap.incidents.service import utcnow

    filters = Filters(queue=queue, order=order)
    page = api.get("/console/queue", params={"queue": queue, "order": order}, headers=html(roles.dispatcher))
    listing = api.get("/v1/incidents", params={**filters.listing(utcnow()), "limit": PAGE_SIZE},
                      headers=roles.dispatcher).json()
    assert item_ids(page.text) == [i["id"] for i in listing["items"]]
    if order == "urgent":  # open ones first, the longest overdue first
        due = [i["due_at"] for i in listing["items"] if i["status"] not in ("resolved", "verified", "closed", "cancelled")
               and i["priority"] != "urgent"]
        assert due == sorted(due)
    second = api.get("/console/queue", params={"queue": queue, "order": order, "offset": PAGE_SIZE},
                     headers=html(roles.dispatcher))
    listing2 = api.get("/v1/incidents", params={**filters.listing(utcnow()), "limit": PAGE_SIZE, "offset": PAGE_SIZE},
                       headers=roles.dispatcher).json()
    assert item_ids(second.text) == [i["id"] for i in listing2["items"]]


def test_the_overdue_queue_holds_supervised_incidents_too(api, roles, place) -> None:
    incident = report(api, place, category="infra.road")
    assert act(api, incident, "supervise", roles.dispatcher).status_code == 200
    listed = api.get("/v1/incidents", params={"supervised": "true", "limit": 500}, headers=roles.dispatcher).json()
    assert incident["id"] in [i["id"] for i in listed["items"]]
    assert all(i["supervised"] and i["status"] not in ("resolved", "verified", "closed", "cancelled")
               for i in listed["items"])
    page = api.get("/console/queue", params={"queue": "overdue"}, headers=html(roles.dispatcher)).text
    assert counts(page)["overdue"] == listed["total"]


def _tile_ids(api: TestClient, headers: dict, bounds: tuple[float, float, float, float], params: dict,
              z: int = 15) -> set[int]:
    minx, miny, maxx, maxy = bounds

    def tile(lon: float, lat: float) -> tuple[int, int]:
        x = int((lon + 180) / 360 * 2 ** z)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z)
        return x, y

    x0, y0 = tile(minx, maxy)
    x1, y1 = tile(maxx, miny)
    found: set[int] = set()
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            answer = api.get(f"/tiles/incidents/{z}/{x}/{y}.pbf", params=params, headers=headers)
            assert answer.status_code == 200, answer.text
            layer = mapbox_vector_tile.decode(answer.content).get("incidents", {"features": []})
            found |= {int(f["properties"]["id"]) for f in layer["features"]}
    return found


@pytest.mark.parametrize("queue", ["handling", "overdue", "all"])
def test_the_map_asks_the_tiles_for_the_same_incidents(api, roles, place, queue) -> None:
    """The console hands its map the tile parameters of its filters; those tiles hold what the listing lists."""
    from gridmap.incidents.service import utcnow

    grid = api.get(f"/v1/grids/{place.grid_code}").json()
    coordinates = [c for ring in grid["geometry"]["coordinates"] for c in (ring if isinstance(ring[0][0], float) else ring[0])]
    bounds = (min(c[0] for c in coordinates), min(c[1] for c in coordinates),
              max(c[0] for c in coordinates), max(c[1] for c in coordinates))
    filters = Filters(queue=queue, grid=place.grid_code, category="infra")
    page = api.get("/console/queue", params={"queue": queue, "grid": place.grid_code, "category": "infra"},
                   headers=html(roles.dispatcher)).text
    tiles = re.search(r'data-tiles="([^"]+)"', page).group(1).replace("&#34;", '"')
    import json

    params = json.loads(tiles)
    listing = api.get("/v1/incidents", params={**filters.listing(utcnow()), "limit": 500}, headers=roles.dispatcher).json()
    assert _tile_ids(api, roles.dispatcher, bounds, params) == {i["id"] for i in listing["items"]}
    assert listing["total"] == counts(page)[queue]


# an incident's page and its actions -------------------------------------------------------------------

def _page(api: TestClient, incident_id: int, headers: dict) -> str:
    answer = api.get(f"/console/incidents/{incident_id}", headers=html(headers))
    assert answer.status_code == 200, answer.text
    return answer.text


def test_the_buttons_are_the_tables_actions_for_the_status_and_role(api, roles, place) -> None:
    steps = ["accept", "dispatch", "start", "resolve", "verify", "close"]
    incident = report(api, place)
    seen = set()
    for step in [None, *steps]:
        if step is not None:
            assert act(api, incident, step, ADMIN, assignee=roles.worker_code if step == "dispatch" else None
                       ).status_code == 200
        status = api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()["status"]
        seen.add(status)
        for role, headers in (("dispatcher", roles.dispatcher), ("admin", ADMIN), ("worker", roles.worker)):
            page = _page(api, incident["id"], headers)
            assert forms(page) == expected_actions(status, role), (status, role)
            assert f'>{STATUS_LABELS[status]}</span>' in page
    returned = report(api, place)
    for step in ("accept", "return"):
        assert act(api, returned, step, ADMIN, note="不属实").status_code == 200
    assert forms(_page(api, returned["id"], roles.dispatcher)) == expected_actions("returned", "dispatcher")
    assert seen == {"reported", "accepted", "dispatched", "in_progress", "resolved", "verified", "closed"}


def test_the_page_shows_the_reporter_as_the_role_allows(api, roles, place) -> None:
    incident = report(api, place)  # reported by 王小明, 13812345678; assigned at intake to the grid's worker
    assert "13812345678" in _page(api, incident["id"], roles.dispatcher)
    assignee = api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()["assignee"]["code"]
    mate = roles.mate if assignee == roles.worker_code else roles.worker
    shown = _page(api, incident["id"], mate)
    assert "13812345678" not in shown and "138****5678" in shown and "王小明" not in shown


def test_a_transition_through_the_page_changes_the_incident(api, roles, place) -> None:
    """Signed in on /login as a browser is: the session cookie, and the form's CSRF token."""
    browser = TestClient(api.app)  # the same app, its own cookie jar
    signed_in = browser.post("/login", data={"token": FIXTURE_ADMIN_TOKEN}, follow_redirects=False)
    assert signed_in.status_code == 303
    incident = report(api, place)
    page = browser.get(f"/console/incidents/{incident['id']}", headers=HTML).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    version = api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()["version"]

    # without the page's CSRF token a session's form is refused, and nothing changes
    refused = browser.post(f"/console/incidents/{incident['id']}/actions", data={"action": "accept", "version": version},
                           follow_redirects=False)
    assert refused.status_code == 403
    assert api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()["version"] == version

    done = browser.post(f"/console/incidents/{incident['id']}/actions",
                        data={"action": "accept", "version": version, "csrf": csrf, "back": "queue=intake"},
                        headers=HTML, follow_redirects=False)
    assert done.status_code == 303
    target = urlsplit(done.headers["location"])
    assert target.path == f"/console/incidents/{incident['id']}"
    assert parse_qs(target.query) == {"done": ["accept"], "back": ["queue=intake"]}
    after = api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()
    assert after["status"] == "accepted" and after["version"] == version + 1
    shown = browser.get(done.headers["location"], headers=HTML).text
    assert "已受理" in shown and 'href="/console?queue=intake"' in shown

    # 派遣: the covering grid's workers come first in the choice
    page = browser.get(f"/console/incidents/{incident['id']}", headers=HTML).text
    choice = re.search(r'<select name="assignee">(.*?)</select>', page, flags=re.S).group(1)
    first_group = re.search(r'<optgroup label="([^"]+)">(.*?)</optgroup>', choice, flags=re.S)
    assert first_group.group(1) == "本网格"
    covering = [w["code"] for w in api.get(f"/v1/grids/{place.grid_code}").json()["properties"]["workers"]]
    assert re.findall(r'option value="(\w+)"', first_group.group(2)) == covering
    done = browser.post(f"/console/incidents/{incident['id']}/actions",
                        data={"action": "dispatch", "version": after["version"], "csrf": csrf,
                              "assignee": roles.mate_code, "note": "请尽快处理"}, follow_redirects=False)
    assert done.status_code == 303
    after = api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()
    assert after["status"] == "dispatched" and after["assignee"]["code"] == roles.mate_code
    history = api.get(f"/v1/incidents/{incident['id']}/history", headers=ADMIN).json()
    assert [e["action"] for e in history] == ["report", "accept", "dispatch"] and history[-1]["note"] == "请尽快处理"

    # an action that needs a note says so on the page (422), and writes nothing
    missing = browser.post(f"/console/incidents/{incident['id']}/actions",
                           data={"action": "return", "version": after["version"], "csrf": csrf}, headers=HTML)
    assert missing.status_code == 422 and "需要填写原因" in missing.text
    assert api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()["version"] == after["version"]
    # a form from another site is refused, even with the token
    forged = browser.post(f"/console/incidents/{incident['id']}/actions", headers={"Origin": "http://evil.example"},
                          data={"action": "supervise", "version": after["version"], "csrf": csrf})
    assert forged.status_code == 403


def test_a_stale_page_shows_the_conflict_and_changes_nothing(api, roles, place) -> None:
    incident = report(api, place)
    drawn = api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()["version"]
    assert act(api, incident, "accept", ADMIN).status_code == 200  # someone else, meanwhile
    before = api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()
    events = api.get(f"/v1/incidents/{incident['id']}/history", headers=ADMIN).json()
    for action in ("accept", "cancel", "dispatch"):
        stale = api.post(f"/console/incidents/{incident['id']}/actions", headers=html(roles.dispatcher),
                         data={"action": action, "version": drawn, "note": "重复", "assignee": roles.worker_code})
        assert stale.status_code == 409 and CONFLICT in stale.text, action
        assert "cs-conflict" in stale.text
    assert api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json() == before
    assert api.get(f"/v1/incidents/{incident['id']}/history", headers=ADMIN).json() == events


# the worker's page ------------------------------------------------------------------------------------

def test_a_worker_sees_only_their_grid(api, roles, place) -> None:
    own = report(api, place)
    assert act(api, own, "accept", ADMIN).status_code == 200
    assert act(api, own, "dispatch", ADMIN, assignee=roles.worker_code).status_code == 200
    page = api.get("/console", headers=html(roles.worker)).text
    tasks = item_ids(page, "task")
    listing = api.get("/v1/incidents", params={"status": ["reported", "accepted", "dispatched", "in_progress",
                                                          "returned"], "limit": 500}, headers=roles.worker).json()
    assert sorted(tasks) == sorted(i["id"] for i in listing["items"]) and own["id"] in tasks
    assert {i["grid"]["code"] for i in listing["items"]} == {place.grid_code}
    mine = [i["id"] for i in listing["items"] if i["assignee"] and i["assignee"]["code"] == roles.worker_code]
    assert tasks[: len(mine)] == [t for t in tasks if t in mine]  # their own first
    task = re.search(rf'id="task-{own["id"]}".*?</li>', page, flags=re.S).group(0)
    assert forms(task) == expected_actions("dispatched", "worker") == [("start", "开始处置")]
    assert 'href="geo:' in task and "距离" in task
    assert "网格长" in page and "社区民警" in page and "楼栋" in page
    assert api.get("/console/queue", headers=html(roles.worker)).text.count('id="task-') == len(tasks)

    # another grid's worker: the incident does not open for them, nor do they list it
    assert api.get(f"/console/incidents/{own['id']}", headers=html(roles.outsider)).status_code == 403
    assert own["id"] not in item_ids(api.get("/console", headers=html(roles.outsider)).text, "task")
    # and the worker cannot take the centre's actions through the page
    refused = api.post(f"/console/incidents/{own['id']}/actions", headers=roles.worker,
                       data={"action": "supervise", "version": 3})
    assert refused.status_code == 403

    # 开始处置 from the task list comes back to the list
    version = api.get(f"/v1/incidents/{own['id']}", headers=ADMIN).json()["version"]
    started = api.post(f"/console/incidents/{own['id']}/actions", headers=html(roles.worker),
                       data={"action": "start", "version": version, "after": "tasks"}, follow_redirects=False)
    assert started.status_code == 303 and started.headers["location"] == f"/console?done=start#task-{own['id']}"
    assert api.get(f"/v1/incidents/{own['id']}", headers=ADMIN).json()["status"] == "in_progress"
    resolve = forms(re.search(rf'id="task-{own["id"]}".*?</li>',
                              api.get("/console", headers=html(roles.worker)).text, flags=re.S).group(0))
    assert resolve == [("resolve", "处置完成")]


def test_a_worker_reports_a_patrol_finding(api, roles, place) -> None:
    answer = api.post("/console/findings", headers=html(roles.worker), follow_redirects=False,
                      data={"category": "infra.sign", "description": "路牌被撞歪", "lon": place.lon, "lat": place.lat})
    assert answer.status_code == 303
    new_id = int(parse_qs(urlsplit(answer.headers["location"]).query)["reported"][0])
    stored = api.get(f"/v1/incidents/{new_id}", headers=ADMIN).json()
    assert stored["source"] == "网格员巡查" and stored["grid"]["code"] == place.grid_code
    assert (stored["location"]["lon"], stored["location"]["lat"]) == (place.lon, place.lat)
    far = api.post("/console/findings", headers=html(roles.worker),
                   data={"category": "infra.sign", "description": "路牌", "lon": 100.0, "lat": 30.0})
    assert far.status_code == 422 and "服务范围" in far.text and "我的任务" in far.text
    assert api.post("/console/findings", headers=roles.dispatcher,
                    data={"category": "infra.sign", "description": "x", "lon": place.lon, "lat": place.lat}
                    ).status_code == 403


def test_the_revision_moves_when_a_report_arrives(api, roles, place) -> None:
    before = api.get("/console/revision", headers=roles.dispatcher).json()["revision"]
    assert api.get("/console/revision", headers=roles.worker).json()["revision"] == before
    report(api, place)
    after = api.get("/console/revision", headers=roles.dispatcher)
    assert after.json()["revision"] != before and after.headers["cache-control"] == "no-store"


def test_the_page_shows_the_incidents_photos(api, roles, place) -> None:
    import io

    from PIL import Image

    from gridmap.auth import Actor
    from gridmap.incidents import photos

    incident = report(api, place)
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(jpeg, "JPEG")
    state = api.app.state
    added = photos.attach_photos(store=state.store, coverage=state.coverage.get(), incident_id=incident["id"],
                                 files=[("a.jpg", jpeg.getvalue(), "image/jpeg")], stage="intake",
                                 actor=Actor("dispatcher", token_id="t"))
    page = _page(api, incident["id"], roles.dispatcher)
    assert f'src="/v1/photos/{added[0]["id"]}/thumbnail"' in page and "上报照片" in page
    assert 'id="photos"' not in _page(api, report(api, place)["id"], roles.dispatcher)  # none: no section


# photos with 开始处置 and 处置完成 ---------------------------------------------------------------------

GPS = {1: "N", 2: (35.0, 8.0, 30.5), 3: "E", 4: (110.0, 46.0, 9.25)}


def photo(kind: str = "JPEG", gps: bool = False, colour: tuple[int, int, int] = (200, 60, 30)) -> bytes:
    """A small photo made here; ``gps``: with the EXIF GPS block a phone writes (where it was taken)."""
    import io

    from PIL import Image

    exif = Image.Exif()
    if gps:
        exif[0x010F] = "GridmapTestMake"
        exif.get_ifd(0x8825).update(GPS)
    out = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(out, kind, exif=exif.tobytes())
    return out.getvalue()


def signed_in(api: TestClient, headers: dict) -> TestClient:
    """A browser of its own (cookie jar) signed in on /login with the token behind ``headers``."""
    browser = TestClient(api.app)
    token = headers["Authorization"].split(" ", 1)[1]
    assert browser.post("/login", data={"token": token}, follow_redirects=False).status_code == 303
    return browser


def form_of(browser: TestClient, incident_id: int, action: str) -> dict:
    """The hidden fields of ``action``'s form on the incident's page, as the browser would send them."""
    page = browser.get(f"/console/incidents/{incident_id}", headers=HTML).text
    body = re.search(rf'<form [^>]*data-action="{action}">(.*?)</form>', page, flags=re.S)
    assert body is not None, f"no {action} form"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body.group(1)))


def photo_rows(api: TestClient, incident_id: int) -> tuple[list[dict], list[str], int]:
    """(the incident's photos as the admin lists them, its history's actions, photo rows in the whole store)."""
    from stores import query_raw

    store = api.app.state.store
    listed = api.get(f"/v1/incidents/{incident_id}/photos", headers=ADMIN).json()
    history = [e["action"] for e in api.get(f"/v1/incidents/{incident_id}/history", headers=ADMIN).json()]
    location = getattr(store, "url", None) or store.path
    return listed, history, query_raw(location, "SELECT count(*) FROM incident_photos")[0][0]


def dispatched(api: TestClient, roles, place) -> dict:
    incident = report(api, place)
    assert act(api, incident, "accept", ADMIN).status_code == 200
    assert act(api, incident, "dispatch", ADMIN, assignee=roles.worker_code).status_code == 200
    return incident


def test_start_and_resolve_carry_photos_without_their_location(api, roles, place) -> None:
    """开始处置 from 我的任务 with a 处置前 photo, 处置完成 on the incident's page with two 处置后 photos (one with
    EXIF GPS): the incident moves, the photos are listed under their stage, and what is stored has no GPS."""
    import io

    from PIL import Image

    incident = dispatched(api, roles, place)
    browser = signed_in(api, roles.worker)
    tasks = browser.get("/console", headers=HTML).text
    task = re.search(rf'id="task-{incident["id"]}".*?</li>', tasks, flags=re.S).group(0)
    start_form = re.search(r'<form [^>]*data-action="start">.*?</form>', task, flags=re.S).group(0)
    assert 'enctype="multipart/form-data"' in start_form and "处置前照片" in start_form
    assert re.search(r'<input type="file" name="photos" accept="image/\*" multiple capture="environment" data-max="4">',
                     start_form)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', start_form))
    started = browser.post(f"/console/incidents/{incident['id']}/actions", data=fields, headers=HTML,
                           files=[("photos", ("before.png", photo("PNG", colour=(20, 20, 200)), "image/png"))],
                           follow_redirects=False)
    assert started.status_code == 303, started.text[:500]
    assert started.headers["location"] == f"/console?done=start&photos=1#task-{incident['id']}"
    assert "已开始处置，处置前照片 1 张已保存" in browser.get(started.headers["location"], headers=HTML).text

    fields = form_of(browser, incident["id"], "resolve")
    resolved = browser.post(f"/console/incidents/{incident['id']}/actions", headers=HTML, follow_redirects=False,
                            data={**fields, "note": "已更换灯泡"},
                            files=[("photos", ("IMG_0001.JPG", photo(gps=True), "image/jpeg")),
                                   ("photos", ("IMG_0002.JPG", photo(colour=(30, 160, 60)), "image/jpeg"))])
    assert resolved.status_code == 303, resolved.text[:500]
    assert parse_qs(urlsplit(resolved.headers["location"]).query) == {"done": ["resolve"], "photos": ["2"]}

    after = api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()
    assert after["status"] == "resolved"
    listed, history, _ = photo_rows(api, incident["id"])
    assert [p["stage"] for p in listed] == ["before", "after", "after"]
    # photos checked first, the transition written, then the photos stored with their history row
    assert history[-4:] == ["start", "photo", "resolve", "photo"]
    store = api.app.state.store
    for p in listed:
        for thumbnail in (False, True):
            data = store.photo_bytes(p["id"], thumbnail=thumbnail)
            image = Image.open(io.BytesIO(data))
            assert image.format == "JPEG" and dict(image.getexif()) == {}
            assert b"GPS" not in data and b"Exif" not in data and b"GridmapTestMake" not in data

    # the page lists them, and their thumbnails load for the signed-in browser (the session cookie)
    page = browser.get(resolved.headers["location"], headers=HTML).text
    assert "已处置完成，处置后照片 2 张已保存" in page
    shown = re.search(r'<div class="cs-photos" id="photos">(.*?)</div>', page, flags=re.S).group(1)
    assert re.findall(r"<figcaption>(\w+)</figcaption>", shown) == ["处置前", "处置后"]
    thumbnails = re.findall(r'<img src="(/v1/photos/\w+/thumbnail)"', shown)
    assert thumbnails == [f"/v1/photos/{p['id']}/thumbnail" for p in listed]
    for url in thumbnails:
        served = browser.get(url)
        assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        assert served.content == store.photo_bytes(url.split("/")[3], thumbnail=True)


def test_a_refused_photo_leaves_the_incident_as_it_was(api, roles, place) -> None:
    """A text file named .jpg, a file over 8 MB, five photos, photos on an action that takes none: a 4xx page
    saying why in Chinese; the status, version and history unchanged, no photo stored anywhere."""
    incident = dispatched(api, roles, place)
    browser = signed_in(api, roles.worker)
    assert browser.post(f"/console/incidents/{incident['id']}/actions", headers=HTML,
                        data=form_of(browser, incident["id"], "start")).status_code == 200  # 303, followed
    before = api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()
    assert before["status"] == "in_progress"
    state = photo_rows(api, incident["id"])
    fields = {**form_of(browser, incident["id"], "resolve"), "note": "已处理"}
    big = b"\xff\xd8\xff" + b"\x00" * (8 << 20)  # over 8 MB: the body limit lets it through to be refused by name
    cases = [
        ([("photos", ("现场.jpg", "路灯已修好，这是文字不是照片".encode(), "image/jpeg"))], 422, "不是可识别的图片"),
        ([("photos", ("ok.jpg", photo(), "image/jpeg")), ("photos", ("big.jpg", big, "image/jpeg"))], 413, "过大"),
        ([("photos", (f"{i}.jpg", photo(), "image/jpeg")) for i in range(5)], 422, "最多上传 4 张"),
    ]
    for files, status, said in cases:
        answer = browser.post(f"/console/incidents/{incident['id']}/actions", data=fields, files=files,
                              headers=HTML)
        assert answer.status_code == status, (said, answer.text[:300])
        alert = re.search(r'<p class="cs-alert"[^>]*>(.*?)</p>', answer.text, flags=re.S).group(1)
        assert said in alert and "照片未保存，事件未作更改" in alert, alert
        assert api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json() == before
        assert photo_rows(api, incident["id"]) == state
    # photos only go with 开始处置 and 处置完成
    supervise = api.post(f"/console/incidents/{incident['id']}/actions", headers=html(roles.dispatcher),
                         data={"action": "supervise", "version": before["version"]},
                         files=[("photos", ("a.jpg", photo(), "image/jpeg"))])
    assert supervise.status_code == 422 and "不能附带照片" in supervise.text
    assert api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json() == before
    # an action form without photos keeps the default body limit (1 MB)
    long = api.post(f"/console/incidents/{incident['id']}/actions", headers=html(roles.worker),
                    data={"action": "resolve", "version": before["version"], "note": "长" * (1 << 19)})
    assert long.status_code == 413 and "请求体过大" in long.json()["detail"]
    assert photo_rows(api, incident["id"]) == state


def test_a_worker_of_another_grid_cannot_add_photos_through_an_action(api, roles, place) -> None:
    incident = dispatched(api, roles, place)
    assert act(api, incident, "start", roles.worker).status_code == 200
    before = api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()
    state = photo_rows(api, incident["id"])
    refused = api.post(f"/console/incidents/{incident['id']}/actions", headers=html(roles.outsider),
                       data={"action": "resolve", "version": before["version"]},
                       files=[("photos", ("a.jpg", photo(gps=True), "image/jpeg"))])
    assert refused.status_code == 403 and "csrf" not in refused.text
    assert api.post(f"/console/incidents/{incident['id']}/actions", headers=roles.outsider,
                    data={"action": "resolve", "version": before["version"]},
                    files=[("photos", ("a.jpg", photo(), "image/jpeg"))]).json()["error"] == "forbidden"
    assert api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json() == before
    assert photo_rows(api, incident["id"]) == state


def test_a_patrol_finding_carries_its_photos_without_their_location(api, roles, place) -> None:
    """未呼先应 with a photo: the finding is an incident with its 上报 photo, stored without the EXIF GPS;
    a file that is no photo refuses the whole finding (no incident, the form kept)."""
    from gridmap.store.base import IncidentQuery

    def count() -> int:
        return api.app.state.store.query_incidents(IncidentQuery(), limit=0)[1]

    before = count()
    refused = api.post("/console/findings", headers=html(roles.worker),
                       data={"category": "infra.sign", "description": "路牌被撞歪", "lon": place.lon, "lat": place.lat},
                       files=[("photos", ("现场.jpg", b"not a photo at all", "image/jpeg"))])
    assert refused.status_code == 422 and "路牌被撞歪" in refused.text
    assert count() == before
    answer = api.post("/console/findings", headers=html(roles.worker), follow_redirects=False,
                      data={"category": "infra.sign", "description": "路牌被撞歪", "lon": place.lon, "lat": place.lat},
                      files=[("photos", ("现场.jpg", photo(gps=True), "image/jpeg"))])
    assert answer.status_code == 303, answer.text[:300]
    new_id = int(parse_qs(urlsplit(answer.headers["location"]).query)["reported"][0])
    listed = api.get(f"/v1/incidents/{new_id}/photos", headers=ADMIN).json()
    assert [p["stage"] for p in listed] == ["intake"]
    data = api.app.state.store.photo_bytes(listed[0]["id"], thumbnail=False)
    assert b"GPS" not in data and b"Exif" not in data and b"GridmapTestMake" not in data
