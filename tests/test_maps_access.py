"""Maps behind sign-in (issue #9 §2): who may open which page, what each page draws for whom, and
the public map — through the real app over a copy of the sample county, with reports planted
through the public intake carrying a name, a phone, an ID number and a room number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from stores import store_settings

from gridmap import auth
from gridmap.access import is_public_asset, is_sensitive, round_position
from gridmap.api import create_app
from gridmap.maps.incidents import OPEN_STATUSES
from gridmap.maps.permissions import view_key
from gridmap.settings import Settings
from gridmap.store.base import IncidentQuery

ADMIN = "settings-admin-token-for-maps"
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
PLANTED = {"name": "欧阳测试", "phone": "13912345678", "id_number": "110101199003077777", "room": "3单元502室"}

needs_assets = pytest.mark.skipif(not Settings().map_assets.is_dir(),
                                  reason="map assets not installed (npm ci --prefix assets)")
pytestmark = needs_assets


@pytest.fixture(scope="module")
def app(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    db = copy_store(sample_db, tmp_path_factory.mktemp("maps_access"), "sample.gpkg")
    with TestClient(create_app(store_settings(db=db, load_sample_if_empty=False, admin_token=ADMIN))) as client:
        yield client.app


@pytest.fixture(scope="module")
def cast(app) -> dict[str, str]:
    """Worker codes: one with a grid, one of another grid, and a community-level worker (网格长)."""
    workers = app.state.coverage.get().workers
    staff = workers[workers["grid_code"].fillna("") != ""]
    own = staff.iloc[0]
    other = staff[staff["grid_code"] != own["grid_code"]].iloc[0]
    community = workers[(workers["grid_code"].fillna("") == "")].iloc[0]
    return {"own": own["code"], "other": other["code"], "community": community["code"]}


@pytest.fixture(scope="module")
def tokens(app, cast) -> dict[str, str]:
    store = app.state.store
    made = {"worker": auth.create_token(store, role="worker", worker_code=cast["own"])[1],
            "community": auth.create_token(store, role="worker", worker_code=cast["community"])[1],
            "planner": auth.create_token(store, role="planner")[1],
            "dispatcher": auth.create_token(store, role="dispatcher")[1],
            "admin": auth.create_token(store, role="admin")[1]}
    return {**made, "settings-admin": ADMIN}


@pytest.fixture(scope="module")
def planted(app, cast) -> dict[str, int]:
    """Two open reports in the own worker's grid, planted with personal data: one sensitive (家庭纠纷),
    one public (卫生保洁)."""
    coverage = app.state.coverage.get()
    grid = coverage.workers.set_index("code").loc[cast["own"], "grid_code"]
    point = coverage.grids.set_index("code").loc[grid, "geometry"].representative_point()
    resident = TestClient(app)
    made = {}
    for name, category in (("sensitive", "dispute.family"), ("public", "sanitation.cleaning")):
        response = resident.post("/v1/incidents", json={
            "category": category, "lon": point.x, "lat": point.y,
            "description": f"{PLANTED['name']} 电话 {PLANTED['phone']} 身份证 {PLANTED['id_number']} 住{PLANTED['room']}",
            "reporter": {"name": PLANTED["name"], "phone": PLANTED["phone"]}})
        assert response.status_code == 201, response.text
        made[name] = response.json()["id"]
    return made


def bearer(token: str) -> dict[str, str]:
    return {**JSON, "Authorization": f"Bearer {token}"}


def signed_in(app: FastAPI, token: str) -> TestClient:
    client = TestClient(app)
    assert client.post("/login", data={"token": token}, follow_redirects=False).status_code == 303
    return client


def incident_rows(html: str) -> list[dict]:
    """The incident points a page hands to its script (``GM.incidents(map, {columns, rows, …})``)."""
    found = []
    for match in re.finditer(r"GM\.incidents\([^,]+,\s*", html):
        options, _ = json.JSONDecoder().raw_decode(html, match.end())
        found += [dict(zip(options["columns"], row)) for row in options["rows"]]
    return found


def shows(html: str, text: str) -> bool:
    """``text`` anywhere in the page, as typed or as JSON escapes it (``\\u8bb8``)."""
    return text in html or json.dumps(text)[1:-1] in html


def stored(app: FastAPI) -> dict[int, dict]:
    rows, _ = app.state.store.query_incidents(IncidentQuery(), columns="fid AS id, category, status, grid_code, lon, lat")
    return {int(r["id"]): r for r in rows}


# -- who may open which page -------------------------------------------------------------------------

PAGES = ("dispatcher", "planner", "own", "other", "community", "public")
EXPECTED = {  # status of each page for each role
    "anonymous":      (401, 401, 401, 401, 401, 200),
    "worker":         (403, 403, 200, 403, 403, 200),
    "community":      (403, 403, 403, 403, 200, 200),
    "planner":        (403, 200, 403, 403, 403, 200),
    "dispatcher":     (200, 200, 200, 200, 200, 200),
    "admin":          (200, 200, 200, 200, 200, 200),
    "settings-admin": (200, 200, 200, 200, 200, 200),
}


def page_path(page: str, cast: dict[str, str]) -> str:
    return f"/maps/worker/{cast[page]}" if page in cast else f"/maps/{page}"


@pytest.mark.parametrize("how", ["bearer", "session"])
@pytest.mark.parametrize("role", list(EXPECTED))
def test_every_map_page_for_every_role(app, cast, tokens, role, how):
    if role == "anonymous":
        client, headers = TestClient(app), JSON
    elif how == "bearer":
        client, headers = TestClient(app), bearer(tokens[role])
    else:
        client, headers = signed_in(app, tokens[role]), JSON
    got = tuple(client.get(page_path(page, cast), headers=headers).status_code for page in PAGES)
    assert got == EXPECTED[role]


def test_without_sign_in_the_answer_is_a_401_without_layer_data(app, cast):
    for page in ("dispatcher", "planner", "own"):
        response = TestClient(app).get(page_path(page, cast), headers=JSON)
        assert response.status_code == 401 and response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["error"] == "unauthorized" and "登录" in body["detail"]
        assert len(response.content) < 500 and "GM." not in response.text and "Feature" not in response.text


def test_a_browser_without_sign_in_is_sent_to_the_sign_in_page(app):
    response = TestClient(app).get("/maps/planner", params={"radius": 300}, headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fmaps%2Fplanner%3Fradius%3D300"
    assert "GM." not in response.text
    landing = TestClient(app).get(response.headers["location"])
    assert '<input type="hidden" name="next" value="/maps/planner?radius=300">' in landing.text


def test_a_browser_signed_in_with_the_wrong_role_gets_a_chinese_refusal_without_map_data(app, tokens, cast):
    client = signed_in(app, tokens["worker"])
    response = client.get("/maps/dispatcher", headers=HTML)
    assert response.status_code == 403 and response.headers["content-type"].startswith("text/html")
    assert "无权查看" in response.text and f"/maps/worker/{cast['own']}" in response.text
    assert "GM." not in response.text and "Feature" not in response.text
    other = client.get(page_path("other", cast), headers=HTML)
    assert other.status_code == 403 and "只能查看自己的网格地图" in other.text


def test_an_unknown_worker_is_404_for_staff_and_403_for_a_worker(app, tokens):
    assert TestClient(app).get("/maps/worker/W9999", headers=bearer(tokens["dispatcher"])).status_code == 404
    assert TestClient(app).get("/maps/worker/W9999", headers=bearer(tokens["worker"])).status_code == 403


# -- what each page draws ------------------------------------------------------------------------------

def _open_in(app: FastAPI, grids: set[str]) -> set[int]:
    return {i for i, r in stored(app).items() if r["grid_code"] in grids and r["status"] in OPEN_STATUSES}


def test_a_worker_sees_only_their_grids_open_incidents(app, cast, tokens, planted):
    coverage = app.state.coverage.get()
    grid = coverage.workers.set_index("code").loc[cast["own"], "grid_code"]
    rows = incident_rows(TestClient(app).get(page_path("own", cast), headers=bearer(tokens["worker"])).text)
    assert {r["grid_code"] for r in rows} == {grid}
    assert {int(r["id"]) for r in rows} == _open_in(app, {grid})
    assert {planted["sensitive"], planted["public"]} <= {int(r["id"]) for r in rows}  # their own grid's, all of them


def test_a_community_level_worker_sees_their_communitys_grids(app, cast, tokens):
    coverage = app.state.coverage.get()
    community = coverage.workers.set_index("code").loc[cast["community"], "community_code"]
    grids = set(coverage.grids.loc[coverage.grids["community_code"] == community, "code"])
    page = TestClient(app).get(page_path("community", cast), headers=bearer(tokens["community"]))
    rows = incident_rows(page.text)
    assert rows and {r["grid_code"] for r in rows} <= grids
    assert {int(r["id"]) for r in rows} == _open_in(app, grids)


def test_no_map_page_carries_reporter_data_or_descriptions(app, cast, tokens, planted):
    pages = [(role, page) for role, page in (("dispatcher", "dispatcher"), ("dispatcher", "planner"),
                                              ("planner", "planner"), ("worker", "own"), ("community", "community"),
                                              ("dispatcher", "other"))]
    for role, page in pages:
        html = TestClient(app).get(page_path(page, cast), headers=bearer(tokens[role])).text
        for label, value in PLANTED.items():
            assert not shows(html, value), (role, page, label)
    public = TestClient(app).get("/maps/public").text
    assert not any(shows(public, value) for value in PLANTED.values())


def test_the_dispatcher_sees_every_incident_and_the_planner_none_in_person(app, tokens, planted):
    rows = incident_rows(TestClient(app).get("/maps/dispatcher?mode=embedded", headers=bearer(tokens["dispatcher"])).text)
    ids = {int(r["id"]) for r in rows}
    assert ids == set(stored(app)) and planted["sensitive"] in ids
    planner = TestClient(app).get("/maps/planner?mode=embedded", headers=bearer(tokens["planner"])).text
    for row in incident_rows(planner):  # the planner map draws no incident points today; if it ever does:
        assert not row.get("assignee_name")


# -- the public map -------------------------------------------------------------------------------------

def test_the_public_map_needs_no_sign_in_and_shows_public_incidents_rounded(app, planted):
    response = TestClient(app).get("/maps/public")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-cache"
    rows = incident_rows(response.text)
    records = stored(app)
    expected = {i for i, r in records.items() if not is_sensitive(r["category"])}
    assert {int(r["id"]) for r in rows} == expected
    assert planted["public"] in expected and planted["sensitive"] not in {int(r["id"]) for r in rows}
    for row in rows:
        record = records[int(row["id"])]
        lon, lat = ((record["lon"], record["lat"]) if is_public_asset(record["category"])
                    else round_position(record["lon"], record["lat"]))
        assert (row["lon"], row["lat"]) == pytest.approx((lon, lat), abs=1.01e-6)  # drawn with 6 decimals
        assert "assignee_name" not in row and "due_at" not in row


def test_the_public_map_shows_grids_stations_and_public_contacts_but_no_buildings_or_internal_layers(
        app, sample_layers, cast):
    html = TestClient(app).get("/maps/public").text
    assert "网格" in html and "党群服务站（77 个）" in html and "公开事件" in html
    for internal in ("楼栋（", "楼栋与住户", "未覆盖住户", "派出所辖区", "共建单位", "事件热力图", "超期事件"):
        assert not shows(html, internal), internal
    workers = sample_layers["workers"].set_index("code")
    assert shows(html, workers.loc[cast["own"], "name"]) and shows(html, workers.loc[cast["own"], "phone"])
    buildings = sample_layers["buildings"]
    named = buildings[buildings["name"].str.contains("号楼")]["name"].head(200)
    assert not [name for name in named if shows(html, name)]
    assert not [name for name in sample_layers["precincts"]["name"] if shows(html, name)]


def test_the_public_map_is_the_same_page_for_everyone(app, tokens):
    anonymous = TestClient(app).get("/maps/public")
    dispatcher = TestClient(app).get("/maps/public", headers=bearer(tokens["dispatcher"]))
    assert anonymous.text == dispatcher.text


# -- caching per view -----------------------------------------------------------------------------------

def test_a_cached_page_is_never_served_to_another_view(app, cast, tokens):
    cache = app.state.map_cache
    path = page_path("own", cast)
    report = {"category": "infra.streetlight", "description": "路灯不亮", "lon": 110.7693, "lat": 35.1425}
    assert TestClient(app).post("/v1/incidents", json=report).status_code == 201  # new data: pages rebuilt
    misses = cache.misses
    TestClient(app).get(path, headers=bearer(tokens["dispatcher"]))
    assert cache.misses == misses + 1
    misses = cache.misses
    assert TestClient(app).get(path, headers=bearer(tokens["worker"])).status_code == 200
    assert cache.misses == misses + 1  # built for the worker's own view, not taken from the dispatcher's
    hits = cache.hits
    assert TestClient(app).get(path, headers=bearer(tokens["worker"])).status_code == 200
    assert cache.hits == hits + 1


def test_view_keys_differ_by_role_and_scope(app, cast):
    coverage = app.state.coverage.get()
    actors = [auth.Actor("worker", cast["own"], "a"), auth.Actor("worker", cast["other"], "b"),
              auth.Actor("worker", cast["community"], "c"), auth.Actor("planner", None, "d"),
              auth.Actor("dispatcher", None, "e"), auth.Actor("admin", None, "f"), auth.ANONYMOUS]
    keys = [view_key(a, coverage) for a in actors]
    assert len(set(keys)) == len(keys)
    assert view_key(auth.Actor("worker", cast["own"], "another token"), coverage) == keys[0]


def test_each_session_gets_its_own_csrf_token_on_a_cached_page(app, tokens):
    first, second = signed_in(app, tokens["dispatcher"]), signed_in(app, tokens["dispatcher"])
    one, two = first.get("/maps/planner").text, second.get("/maps/planner").text
    token = lambda html: re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)
    assert token(one) != token(two) and token(one) not in two
    assert 'action="/logout"' in one and "退出登录" in one
    bearer_page = TestClient(app).get("/maps/planner", headers=bearer(tokens["dispatcher"])).text
    assert "csrf-token" not in bearer_page and 'action="/logout"' not in bearer_page


def test_signed_in_pages_are_private_to_the_browser(app, tokens):
    response = signed_in(app, tokens["planner"]).get("/maps/planner")
    assert response.headers["cache-control"] == "private, no-cache" and "Cookie" in response.headers["vary"]


def test_the_search_endpoint_the_maps_use_answers_a_signed_in_browser(app, tokens):
    client = signed_in(app, tokens["worker"])
    answer = client.get("/v1/lookup", params={"lon": 110.7693, "lat": 35.1425})
    assert answer.status_code == 200 and answer.json()["covered"] is True


# -- the co-governance layers (issue #13 §6; what each holds per role: tests/test_cogov_maps.py) ---------

COGOV_TILE_LAYERS = ("needs", "resources", "projects", "patrol_coverage")


@pytest.mark.parametrize("layer", COGOV_TILE_LAYERS)
def test_co_governance_tiles_need_a_sign_in_and_answer_every_signed_in_role(app, tokens, layer):
    path = f"/tiles/{layer}/14/13454/6552.pbf"
    anonymous = TestClient(app).get(path)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"
    assert len(anonymous.content) < 500
    for role, token in tokens.items():
        answer = TestClient(app).get(path, headers=bearer(token))
        assert answer.status_code == 200 and answer.headers["cache-control"] == "private, no-cache", role
    for name in ("居民需求", "共建资源", "为民办实事", "包楼院"):
        assert not shows(TestClient(app).get("/maps/public").text, name)
