"""The role × endpoint matrix of docs/security.md: every route of the OpenAPI and every map page, for
every kind of caller, answers the status the policy gives, and personal strings planted in reports
(a name, a phone, an ID number, a room) appear only in the answers of those allowed to read them.

A route added to the API without a row here fails ``test_every_route_has_a_row``.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import shapely
import shapely.geometry
from fastapi.testclient import TestClient
from stores import open_test_store, store_settings

from gridmap import auth
from gridmap.api import create_app
from gridmap.store import GeoPackageStore

ADMIN_TOKEN = "matrix-admin-token"
ROLES = ("public", "reporter", "worker", "mate", "community", "outsider", "planner", "dispatcher", "admin")
"""worker: the assigned grid worker; mate: another worker of that grid; community: the community's
网格长 (no grid); outsider: a worker of another community; reporter: the public with the receipt."""
PERSONAL_READERS = frozenset({"worker", "dispatcher", "admin"})
"""Who may read the planted reporter's name, phone, ID number and room: staff and the assignee."""

PLANTED_NAME, PLANTED_PHONE, PLANTED_ID, PLANTED_ROOM = "韩秀英", "13987654321", "140821198804150027", "1502室"
MARKERS = (PLANTED_NAME, PLANTED_PHONE, PLANTED_ID, PLANTED_ROOM, "单元1502")


@dataclass
class World:
    client: TestClient
    headers: dict[str, dict[str, str]]
    codes: dict[str, str]
    grid_code: str
    incidents: dict[str, int] = field(default_factory=dict)
    receipts: dict[int, str] = field(default_factory=dict)


def _point_inside(grid: Any) -> tuple[float, float]:
    inner = shapely.buffer(grid.geometry, -0.0006)
    p = shapely.point_on_surface(inner if not inner.is_empty else grid.geometry)
    return p.x, p.y


def _plant(client: TestClient, lon: float, lat: float, category: str) -> dict:
    body = {"category": category, "lon": lon, "lat": lat,
            "description": f"我是{PLANTED_NAME}，电话{PLANTED_PHONE}，身份证{PLANTED_ID}，住2单元{PLANTED_ROOM}",
            "address": f"临猗县双塔社区丰林小区3号楼2单元{PLANTED_ROOM}",
            "reporter": {"name": PLANTED_NAME, "phone": PLANTED_PHONE}}
    answer = client.post("/v1/incidents", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _advance(client: TestClient, incident_id: int, actions: tuple[str, ...]) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for action in actions:
        version = client.get(f"/v1/incidents/{incident_id}", headers=admin).json()["version"]
        done = client.post(f"/v1/incidents/{incident_id}/transitions", json={"action": action},
                           headers={**admin, "If-Match": f'"{version}"'})
        assert done.status_code == 200, done.text


def _actors(store: GeoPackageStore, layers: dict) -> tuple[dict[str, dict[str, str]], dict[str, str], str]:
    workers, grids = layers["workers"], layers["grids"]
    staffed = set(workers.loc[workers["role"] == "兼职网格员", "grid_code"])
    grid = grids[(grids["community_code"] == "140821100014") & grids["code"].isin(staffed)].sort_values("code").iloc[0]
    own = workers[workers["grid_code"] == grid["code"]]
    codes = {
        "worker": own[own["role"] == "专职网格员"]["code"].iat[0],
        "mate": own[own["role"] == "兼职网格员"]["code"].iat[0],
        "community": workers[(workers["grid_code"] == "") & (workers["community_code"] == grid["community_code"])
                             & (workers["role"] == "网格长")]["code"].iat[0],
        "outsider": workers[(workers["grid_code"] != "")
                            & (workers["community_code"] != grid["community_code"])]["code"].iat[0],
    }
    headers: dict[str, dict[str, str]] = {"public": {}, "reporter": {}}
    for role, code in codes.items():
        headers[role] = {"Authorization": f"Bearer {auth.create_token(store, role='worker', worker_code=code)[1]}"}
    for role in ("planner", "dispatcher"):
        headers[role] = {"Authorization": f"Bearer {auth.create_token(store, role=role)[1]}"}
    headers["admin"] = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return headers, codes, grid


@pytest.fixture(scope="module")
def world(sample_db, copy_store, sample_layers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    db = copy_store(sample_db, tmp_path_factory.mktemp("matrix"), "matrix.gpkg")
    headers, codes, grid = _actors(open_test_store(db), sample_layers)
    settings = store_settings(db=db, load_sample_if_empty=False, admin_token=ADMIN_TOKEN)
    with TestClient(create_app(settings)) as client:
        w = World(client, headers, codes, grid["code"])
        lon, lat = _point_inside(grid)
        for name, category in (("public", "sanitation.cleaning"), ("sensitive", "dispute.family"),
                               ("handled", "infra.water"), ("history", "infra.road")):
            planted = _plant(client, lon, lat, category)
            w.incidents[name] = planted["id"]
            w.receipts[planted["id"]] = planted["receipt"]
        _advance(client, w.incidents["handled"], ("accept", "dispatch", "start", "resolve"))
        _advance(client, w.incidents["history"], ("accept",))
        yield w


# the matrix ---------------------------------------------------------------------------------------

def every(status: int, **overrides: int) -> dict[str, int]:
    return {role: overrides.get(role, status) for role in ROLES}


def staff(ok: int, *, readers: tuple[str, ...] = ("dispatcher", "admin"), signed_in: int = 403) -> dict[str, int]:
    """401 for the public (with or without a receipt), ``ok`` for ``readers``, ``signed_in`` for the rest."""
    return {role: 401 if role in ("public", "reporter") else ok if role in readers else signed_in for role in ROLES}


IN_SCOPE = ("worker", "mate", "community", "planner", "dispatcher", "admin")


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expected: dict[str, int]
    build: Callable[[World], dict[str, Any]] = lambda w: {}
    target: str | None = None
    """The planted incident the row is about: the reporter's receipt is sent for it."""

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _incident(name: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"path_params": {"incident_id": w.incidents[name]}}


def _new_report(w: World) -> dict[str, Any]:
    return {"json": {"category": "infra.sign", "description": "路牌倒了", "lon": 110.7693, "lat": 35.1425}}


def _supervise(w: World) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    incident_id = w.incidents["history"]
    version = w.client.get(f"/v1/incidents/{incident_id}", headers=admin).json()["version"]
    return {"path_params": {"incident_id": incident_id}, "json": {"action": "supervise"},
            "headers": {"If-Match": f'"{version}"'}}


def _scenario(w: World) -> int:
    run = w.client.post("/v1/planning/stations", json={"k": 1, "radius_m": 500, "metric": "euclidean"},
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    return run.json()["scenario"]["id"]


def _planted_tile(w: World) -> dict[str, Any]:
    """The zoom-16 incidents tile holding the planted reports: points with popup properties, not clusters."""
    grid = w.client.get(f"/v1/grids/{w.grid_code}").json()
    lon, lat = _point_inside(SimpleNamespace(geometry=shapely.geometry.shape(grid["geometry"])))
    z = 16
    x = int((lon + 180) / 360 * 2 ** z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z)
    return {"path_params": {"layer": "incidents", "z": z, "x": x, "y": y}}


ROWS: list[Row] = [
    Row("GET", "/health", every(200)),
    Row("GET", "/v1/lookup", every(200), lambda w: {"params": {"lon": 110.7693, "lat": 35.1425}}),
    Row("POST", "/v1/lookup/batch", every(200), lambda w: {"json": ["丰林小区3号楼", {"lon": 110.77, "lat": 35.14}]}),
    Row("GET", "/v1/grids", every(200)),
    Row("GET", "/v1/grids/{code}", every(200), lambda w: {"path_params": {"code": w.grid_code}}),
    Row("GET", "/v1/workers/{code}/coverage", every(200), lambda w: {"path_params": {"code": w.codes["worker"]}}),
    Row("GET", "/v1/communities", every(200)),
    Row("GET", "/v1/stations", every(200)),
    Row("GET", "/v1/categories", every(200)),
    Row("POST", "/v1/incidents", every(201), _new_report),
    Row("GET", "/v1/incidents", staff(200, readers=(*IN_SCOPE, "outsider"))),
    Row("GET", "/v1/incidents/stats", staff(200, readers=("planner", "dispatcher", "admin"))),
    Row("GET", "/v1/incidents/{incident_id}", {**staff(200, readers=IN_SCOPE), "reporter": 200},
        _incident("public"), target="public"),
    Row("GET", "/v1/incidents/{incident_id}/history",
        {**staff(200, readers=("worker", "mate", "community", "dispatcher", "admin")), "reporter": 200},
        _incident("history"), target="history"),
    Row("POST", "/v1/incidents/{incident_id}/transitions", staff(200), _supervise, target="history"),
    Row("POST", "/v1/incidents/{incident_id}/feedback", {**every(401), "reporter": 200},
        lambda w: {"path_params": {"incident_id": w.incidents["handled"]}, "json": {"rating": 4}}, target="handled"),
    Row("GET", "/open311/v2/services.json", every(200)),
    Row("GET", "/open311/v2/requests.json", every(200)),
    Row("POST", "/open311/v2/requests.json", every(201),
        lambda w: {"data": {"service_code": "infra.sign", "lat": "35.1425", "long": "110.7693", "description": "路牌"}}),
    Row("GET", "/open311/v2/requests/{request_id}.json", every(200),
        lambda w: {"path_params": {"request_id": w.incidents["public"]}}),
    Row("POST", "/v1/admin/import", staff(422, readers=("admin",)), lambda w: {"content": b"not a package"}),
    Row("POST", "/v1/admin/tokens", staff(201, readers=("admin",)), lambda w: {"json": {"role": "planner"}}),
    Row("DELETE", "/v1/admin/tokens/{token_id}", staff(404, readers=("admin",)),
        lambda w: {"path_params": {"token_id": "no-such-token"}}),
    Row("GET", "/v1/planning/coverage", staff(200, readers=("planner", "dispatcher", "admin")),
        lambda w: {"params": {"radius_m": 500, "metric": "euclidean"}}),
    Row("POST", "/v1/planning/stations", staff(200, readers=("planner", "dispatcher", "admin")),
        lambda w: {"json": {"k": 1, "radius_m": 500, "metric": "euclidean", "time_limit_s": 20}}),
    Row("GET", "/v1/planning/scenarios", staff(200, readers=("planner", "dispatcher", "admin"))),
    Row("GET", "/v1/planning/scenarios/{scenario_id}", staff(200, readers=("planner", "dispatcher", "admin")),
        lambda w: {"path_params": {"scenario_id": _scenario(w)}}),
    Row("GET", "/metrics", staff(200, readers=("admin",))),  # TestClient's address is not loopback
    Row("GET", "/maps/dispatcher", staff(200)),
    Row("GET", "/maps/planner", staff(200, readers=("planner", "dispatcher", "admin"))),
    Row("GET", "/maps/worker/{code}", staff(200, readers=("worker", "dispatcher", "admin")),
        lambda w: {"path_params": {"code": w.codes["worker"]}}),
    Row("GET", "/maps/public", every(200)),
    Row("GET", "/tiles/{layer}/{z}/{x}/{y}.pbf", every(200), _planted_tile),
    Row("GET", "/login", every(200)),
    Row("POST", "/login", every(401), lambda w: {"data": {"token": "gm_not_a_token"}}),
    Row("GET", "/logout", every(200)),  # without a session: a redirect to /login, followed
    Row("POST", "/logout", every(200)),
]

# the standard address library (#12): suggestions for everyone; edits and not-found texts for staff

_ALIASES = itertools.count(1)


def _new_alias(w: World) -> dict[str, Any]:
    return {"json": {"type": "alias", "alias": f"矩阵别名{next(_ALIASES)}", "target_code": "U001"}}


def _library_entry(w: World) -> int:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    found = w.client.get("/v1/addresses/entries", params={"type": "alias"}, headers=admin).json()["items"]
    if found:
        return found[0]["id"]
    return w.client.post("/v1/addresses", json=_new_alias(w)["json"], headers=admin).json()["id"]


def _library_path(w: World) -> dict[str, Any]:
    return {"path_params": {"entry_id": _library_entry(w)}}


def _library_correction(w: World) -> dict[str, Any]:
    entry_id = _library_entry(w)
    version = w.client.get(f"/v1/addresses/{entry_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    return {"path_params": {"entry_id": entry_id}, "json": {"note": "俗称"},
            "headers": {"If-Match": f'"{version["version"]}"'}}


ROWS += [
    Row("GET", "/v1/addresses", every(200), lambda w: {"params": {"q": "丰林"}}),
    Row("POST", "/v1/addresses", staff(201), _new_alias),
    Row("GET", "/v1/addresses/entries", staff(200)),
    Row("GET", "/v1/addresses/unmatched", staff(200)),
    Row("GET", "/v1/addresses/{entry_id}", staff(200), _library_path),
    Row("PATCH", "/v1/addresses/{entry_id}", staff(200), _library_correction),
    Row("GET", "/v1/addresses/{entry_id}/history", staff(200), _library_path),
]


# co-governance, issue #13 §3-5: activities, meetings, 包楼院, patrols, the report ----------------------
COGOV_WRITERS = ("worker", "mate", "community", "dispatcher", "admin")
"""Staff records of the planted grid's community: its workers, the command centre; not planners."""


def _admin_json(w: World, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = w.client.request(method, path, json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def _community(w: World) -> str:
    return w.grid_code.rsplit("-", 1)[0]


def _activity_body(w: World) -> dict[str, Any]:
    units = w.client.app.state.coverage.get().units
    unit = sorted(units.loc[units["community_code"] == _community(w), "code"])[0]
    return {"type": "环境整治", "community_code": _community(w), "date": "2026-04-10", "units": [unit], "hours": 2,
            "beneficiaries": 30}


def _meeting_body(w: World) -> dict[str, Any]:
    return {"community_code": _community(w), "kind": "调解", "date": "2026-04-12",
            "items": [{"topic": "邻里漏水纠纷", "decision": "协商赔偿", "outcome": "resolved"}]}


def _record(kind: str) -> Callable[[World], dict[str, Any]]:
    """A new activity or meeting of the planted grid's community, named in the path."""
    def build(w: World) -> dict[str, Any]:
        body = _activity_body(w) if kind == "activity" else _meeting_body(w)
        path = "/v1/activities" if kind == "activity" else "/v1/meetings"
        return {"path_params": {f"{kind}_id": _admin_json(w, "POST", path, body)["id"]}}
    return build


def _record_change(kind: str, change: dict[str, Any]) -> Callable[[World], dict[str, Any]]:
    def build(w: World) -> dict[str, Any]:
        spec = _record(kind)(w)
        return {**spec, "json": change, "headers": {"If-Match": '"1"'}}
    return build


def _member(w: World) -> dict[str, Any]:
    from gridmap.cogov import kinds
    from gridmap.store.base import EntityQuery

    store = w.client.app.state.store
    code = kinds.member_code(store.query_entities(EntityQuery(kind=kinds.MEMBER))[1] + 1)
    store.insert_entities(kinds.MEMBER, [{"key": code, "name": "王建国", "community_code": _community(w),
                                          "registered_on": "2026-01-05", "status": "active"}], actor="test", at="2026-01-05")
    return {"path_params": {"code": code}}


def _assign(w: World) -> dict[str, Any]:
    path = f"/v1/workers/{w.codes['worker']}/buildings"
    current = _admin_json(w, "GET", path)
    return {"path_params": {"code": w.codes["worker"]}, "json": {"buildings": [b["code"] for b in current["buildings"]]},
            "headers": {"If-Match": f'"{current["version"]}"'}}


def _patrol_body(w: World) -> dict[str, Any]:
    return {"worker_code": w.codes["worker"], "started_at": "2026-06-01T01:00:00Z", "ended_at": "2026-06-01T02:00:00Z",
            "track": {"type": "LineString", "coordinates": [[110.7693, 35.1425], [110.7700, 35.1430]]}, "visits": []}


def _patrol(w: World) -> dict[str, Any]:
    return {"path_params": {"patrol_id": _admin_json(w, "POST", "/v1/patrols", _patrol_body(w))["id"]}}


def _worker_path(w: World) -> dict[str, Any]:
    return {"path_params": {"code": w.codes["worker"]}}


ROWS += [
    Row("POST", "/v1/activities", staff(201, readers=COGOV_WRITERS), lambda w: {"json": _activity_body(w)}),
    Row("GET", "/v1/activities", staff(200, readers=(*IN_SCOPE, "outsider"))),
    Row("GET", "/v1/activities/{activity_id}", staff(200, readers=IN_SCOPE), _record("activity")),
    Row("PATCH", "/v1/activities/{activity_id}", staff(200, readers=COGOV_WRITERS),
        _record_change("activity", {"hours": 3})),
    Row("GET", "/v1/activities/{activity_id}/history", staff(200, readers=IN_SCOPE), _record("activity")),
    Row("GET", "/v1/members/{code}/hours", staff(200, readers=IN_SCOPE), _member),
    Row("POST", "/v1/meetings", staff(201, readers=COGOV_WRITERS), lambda w: {"json": _meeting_body(w)}),
    Row("GET", "/v1/meetings", staff(200, readers=(*IN_SCOPE, "outsider"))),
    Row("GET", "/v1/meetings/{meeting_id}", staff(200, readers=IN_SCOPE), _record("meeting")),
    Row("PATCH", "/v1/meetings/{meeting_id}", staff(200, readers=COGOV_WRITERS),
        _record_change("meeting", {"compound": "丰林小区"})),
    Row("GET", "/v1/meetings/{meeting_id}/history", staff(200, readers=IN_SCOPE), _record("meeting")),
    Row("GET", "/v1/workers/{code}/buildings", staff(200, readers=IN_SCOPE), _worker_path),
    Row("PUT", "/v1/workers/{code}/buildings", staff(200, readers=COGOV_WRITERS), _assign),
    Row("POST", "/v1/patrols", staff(201, readers=("worker", "dispatcher", "admin")), lambda w: {"json": _patrol_body(w)}),
    Row("GET", "/v1/patrols/{patrol_id}", staff(200, readers=IN_SCOPE), _patrol),
    Row("GET", "/v1/workers/{code}/patrols", staff(200, readers=IN_SCOPE), _worker_path),
    Row("GET", "/v1/cogovernance/report", staff(200, readers=(*IN_SCOPE, "outsider"))),
]

# co-governance, issue #13 §1-2: registrations (双报到) and the three lists (三清单) --------------------------
_UNITS_USED: dict[int, set[str]] = {}
"""Units registered so far, per world (each backend's world has its own store and its 72 units)."""


def _free_unit(w: World) -> str:
    """A unit not yet registered at the planted community (a unit registers at a community once)."""
    units = w.client.app.state.coverage.get().units
    used = _UNITS_USED.setdefault(id(w), set())
    code = next(c for c in sorted(units["code"]) if c not in used)
    used.add(code)
    return code


def _unit_registration(w: World) -> dict[str, Any]:
    return {"unit_code": _free_unit(w), "community_code": _community(w), "registered_on": "2026-03-01",
            "contact": {"name": "王芳", "phone": "13912340001"}}


def _new_member(w: World) -> dict[str, Any]:
    return {"name": "李明", "phone": "13912345679", "unit_code": "U026", "community_code": _community(w),
            "grid_code": w.grid_code, "skills": ["维修"], "registered_on": "2026-03-01"}


def _table(text: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"content": text.format(community=_community(w), unit=_free_unit(w)).encode(),
                      "headers": {"Content-Type": "text/csv"}}


def _registered(kind: str) -> Callable[[World], dict[str, Any]]:
    """A record of §1 made by the admin in the planted community, named in the path."""
    def build(w: World) -> dict[str, Any]:
        if kind == "unit":
            return {"path_params": {"registration_id": _admin_json(w, "POST", "/v1/registrations/units",
                                                                   _unit_registration(w))["id"]}}
        member = _admin_json(w, "POST", "/v1/registrations/members", _new_member(w))
        if kind == "member":
            return {"path_params": {"code": member["code"]}}
        team = _admin_json(w, "POST", "/v1/teams", {"name": "党员服务队", "community_code": _community(w),
                                                    "members": [member["code"]]})
        return {"path_params": {"code": team["code"]}}
    return build


def _team_body(w: World) -> dict[str, Any]:
    member = _admin_json(w, "POST", "/v1/registrations/members", _new_member(w))
    return {"json": {"name": "党员服务队", "community_code": _community(w), "members": [member["code"]]}}


def _need_body(w: World) -> dict[str, Any]:
    lon, lat = _point_inside(w.client.app.state.coverage.get().grids.set_index("code").loc[w.grid_code])
    return {"community_code": _community(w), "title": "路灯不亮", "category": "道路亮化", "description": "夜间出行不便",
            "households": 20, "source": "居民提出", "lon": lon, "lat": lat}


def _need(w: World, *, accepted: bool = False) -> int:
    need = _admin_json(w, "POST", "/v1/needs", _need_body(w))
    if accepted:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", "If-Match": '"1"'}
        assert w.client.post(f"/v1/needs/{need['id']}/transitions", json={"action": "accept"},
                             headers=admin).status_code == 200
    return need["id"]


def _resource_body(w: World) -> dict[str, Any]:
    return {"provider": {"kind": "unit", "code": "U026"}, "category": "资金", "description": "路灯经费",
            "communities": [_community(w)]}


def _project_body(w: World) -> dict[str, Any]:
    return {"title": "道路亮化", "community_code": _community(w), "needs": [_need(w, accepted=True)], "resources": [],
            "lead_unit_code": "U026"}


def _promote(w: World) -> dict[str, Any]:
    lon, lat = _point_inside(w.client.app.state.coverage.get().grids.set_index("code").loc[w.grid_code])
    incident = _plant(w.client, lon, lat, "infra.streetlight")
    return {"path_params": {"incident_id": incident["id"]}, "json": {"category": "道路亮化", "households": 5}}


ROWS += [
    Row("POST", "/v1/registrations/units", staff(201, readers=COGOV_WRITERS), lambda w: {"json": _unit_registration(w)}),
    Row("POST", "/v1/registrations/units/import", staff(201, readers=COGOV_WRITERS),
        _table("单位编码,社区编码,报到日期\n{unit},{community},2026-03-01\n")),
    Row("GET", "/v1/registrations/units", staff(200, readers=(*IN_SCOPE, "outsider"))),
    Row("GET", "/v1/registrations/units/{registration_id}", staff(200, readers=IN_SCOPE), _registered("unit")),
    Row("GET", "/v1/registrations/units/{registration_id}/history", staff(200, readers=IN_SCOPE), _registered("unit")),
    Row("POST", "/v1/registrations/members", staff(201, readers=COGOV_WRITERS), lambda w: {"json": _new_member(w)}),
    Row("POST", "/v1/registrations/members/import", staff(201, readers=COGOV_WRITERS),
        _table("姓名,手机,单位编码,社区编码,技能,报到日期\n李明,13912345679,U026,{community},维修,2026-03-01\n")),
    Row("GET", "/v1/members", staff(200, readers=(*IN_SCOPE, "outsider"))),
    Row("GET", "/v1/members/{code}", staff(200, readers=IN_SCOPE), _registered("member")),
    Row("GET", "/v1/members/{code}/history", staff(200, readers=IN_SCOPE), _registered("member")),
    Row("POST", "/v1/teams", staff(201, readers=COGOV_WRITERS), _team_body),
    Row("GET", "/v1/teams", staff(200, readers=(*IN_SCOPE, "outsider"))),
    Row("GET", "/v1/teams/{code}", staff(200, readers=IN_SCOPE), _registered("team")),
    Row("GET", "/v1/teams/{code}/history", staff(200, readers=IN_SCOPE), _registered("team")),
    Row("POST", "/v1/needs", staff(201, readers=COGOV_WRITERS), lambda w: {"json": _need_body(w)}),
    Row("GET", "/v1/needs", staff(200, readers=(*IN_SCOPE, "outsider"))),
    Row("GET", "/v1/needs/{need_id}", staff(200, readers=IN_SCOPE), lambda w: {"path_params": {"need_id": _need(w)}}),
    Row("POST", "/v1/needs/{need_id}/transitions", staff(200, readers=COGOV_WRITERS),
        lambda w: {"path_params": {"need_id": _need(w)}, "json": {"action": "accept"}, "headers": {"If-Match": '"1"'}}),
    Row("GET", "/v1/needs/{need_id}/history", staff(200, readers=IN_SCOPE),
        lambda w: {"path_params": {"need_id": _need(w)}}),
    Row("GET", "/v1/needs/{need_id}/matches", staff(200, readers=IN_SCOPE),
        lambda w: {"path_params": {"need_id": _need(w)}}),
    Row("POST", "/v1/incidents/{incident_id}/promote", staff(201, readers=COGOV_WRITERS), _promote),
    Row("POST", "/v1/resources", staff(201, readers=COGOV_WRITERS), lambda w: {"json": _resource_body(w)}),
    Row("GET", "/v1/resources", staff(200, readers=(*IN_SCOPE, "outsider"))),
    Row("GET", "/v1/resources/{resource_id}", staff(200, readers=IN_SCOPE),
        lambda w: {"path_params": {"resource_id": _admin_json(w, "POST", "/v1/resources", _resource_body(w))["id"]}}),
    Row("GET", "/v1/resources/{resource_id}/history", staff(200, readers=IN_SCOPE),
        lambda w: {"path_params": {"resource_id": _admin_json(w, "POST", "/v1/resources", _resource_body(w))["id"]}}),
    Row("POST", "/v1/projects", staff(201, readers=COGOV_WRITERS), lambda w: {"json": _project_body(w)}),
    Row("GET", "/v1/projects", staff(200, readers=(*IN_SCOPE, "outsider"))),
    Row("GET", "/v1/projects/{project_id}", staff(200, readers=IN_SCOPE),
        lambda w: {"path_params": {"project_id": _admin_json(w, "POST", "/v1/projects", _project_body(w))["id"]}}),
    Row("POST", "/v1/projects/{project_id}/transitions", staff(200, readers=COGOV_WRITERS),
        lambda w: {"path_params": {"project_id": _admin_json(w, "POST", "/v1/projects", _project_body(w))["id"]},
                   "json": {"action": "start"}, "headers": {"If-Match": '"1"'}}),
    Row("GET", "/v1/projects/{project_id}/history", staff(200, readers=IN_SCOPE),
        lambda w: {"path_params": {"project_id": _admin_json(w, "POST", "/v1/projects", _project_body(w))["id"]}}),
]


def _corrected(build: Callable[[World], dict[str, Any]], change: dict[str, Any]) -> Callable[[World], dict[str, Any]]:
    """A new record of §1-2 (version 1) and a correction of it."""
    return lambda w: {**build(w), "json": change, "headers": {"If-Match": '"1"'}}


ROWS += [
    Row("PATCH", "/v1/registrations/units/{registration_id}", staff(200, readers=COGOV_WRITERS),
        _corrected(_registered("unit"), {"contact": {"name": "马丽", "phone": "13900009999"}})),
    Row("PATCH", "/v1/members/{code}", staff(200, readers=COGOV_WRITERS),
        _corrected(_registered("member"), {"skills": ["维修", "电工"]})),
    Row("PATCH", "/v1/teams/{code}", staff(200, readers=COGOV_WRITERS), _corrected(_registered("team"), {"name": "亮化队"})),
    Row("PATCH", "/v1/needs/{need_id}", staff(200, readers=COGOV_WRITERS),
        _corrected(lambda w: {"path_params": {"need_id": _need(w)}}, {"households": 30})),
    Row("PATCH", "/v1/resources/{resource_id}", staff(200, readers=COGOV_WRITERS),
        _corrected(lambda w: {"path_params": {"resource_id": _admin_json(w, "POST", "/v1/resources",
                                                                         _resource_body(w))["id"]}}, {"quantity": 2})),
]

# OGC API Features (#14 §4): the public layers for everyone; buildings, precincts, units and incidents (as
# incidents_for_map cuts them) for anyone signed in; an incident outside the caller's scope does not exist (404)
SIGNED_IN = (*IN_SCOPE, "outsider")

ROWS += [
    Row("GET", "/ogc", every(200)),
    Row("GET", "/ogc/conformance", every(200)),
    Row("GET", "/ogc/api", every(200)),
    Row("GET", "/ogc/collections", every(200)),
    Row("GET", "/ogc/collections/{collectionId}", staff(200, readers=SIGNED_IN),
        lambda w: {"path_params": {"collectionId": "buildings"}}),
    Row("GET", "/ogc/collections/{collectionId}/queryables", staff(200, readers=SIGNED_IN),
        lambda w: {"path_params": {"collectionId": "buildings"}}),
    Row("GET", "/ogc/collections/{collectionId}/items", staff(200, readers=SIGNED_IN),
        lambda w: {"path_params": {"collectionId": "incidents"}, "params": {"limit": 10000}}),
    Row("GET", "/ogc/collections/{collectionId}/items/{featureId}", staff(200, readers=IN_SCOPE, signed_in=404),
        lambda w: {"path_params": {"collectionId": "incidents", "featureId": w.incidents["public"]}}),
]

# the topology report, issue #14 §2: admins, dispatchers and planners (gridmap/topology/roles.py)
TOPOLOGY_READERS = ("planner", "dispatcher", "admin")
ROWS += [
    Row("GET", "/v1/topology", staff(200, readers=TOPOLOGY_READERS)),
    Row("GET", "/maps/topology", staff(200, readers=TOPOLOGY_READERS)),
]

# boundary versions, issue #14 §3: every signed-in role (access.check_versions_read); the sample's one version
ROWS += [
    Row("GET", "/v1/versions", staff(200, readers=SIGNED_IN)),
    Row("GET", "/v1/versions/{a}/diff/{b}", staff(200, readers=SIGNED_IN), lambda w: {"path_params": {"a": 1, "b": 1}}),
    Row("GET", "/maps/versions", staff(200, readers=SIGNED_IN), lambda w: {"params": {"a": 1, "b": 1}}),
]

# the console pages, issue #15 §1-2 (access.check_console): dispatchers and admins the dispatch console, every
# worker their own 我的任务 (their scope's incidents, cut as the JSON API cuts them); planners none. Actions go
# through the incident service (a worker may not 督办: 403); findings are a worker's patrol reports

CONSOLE_USERS = ("worker", "mate", "community", "outsider", "dispatcher", "admin")
WORKERS = ("worker", "mate", "community", "outsider")


def _console_action(w: World) -> dict[str, Any]:
    """督办 on the "history" report through the page's form, from the version it has now."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    incident_id = w.incidents["history"]
    version = w.client.get(f"/v1/incidents/{incident_id}", headers=admin).json()["version"]
    return {"path_params": {"incident_id": incident_id}, "data": {"action": "supervise", "version": version}}


ROWS += [
    Row("GET", "/console", staff(200, readers=CONSOLE_USERS)),
    Row("GET", "/console/queue", staff(200, readers=CONSOLE_USERS)),
    Row("GET", "/console/revision", staff(200, readers=CONSOLE_USERS)),
    Row("GET", "/console/incidents/{incident_id}", staff(200, readers=("worker", "mate", "community", "dispatcher",
                                                                       "admin")), _incident("public")),
    Row("POST", "/console/incidents/{incident_id}/actions", staff(200), _console_action),  # 303 to the page, followed
    Row("POST", "/console/findings", staff(200, readers=WORKERS),  # 303 to 我的任务, followed
        lambda w: {"data": {"category": "infra.sign", "description": "路牌倒了", "lon": "110.7693", "lat": "35.1425"}}),
]


def _console_photo_action(w: World) -> dict[str, Any]:
    """开始处置 with a 处置前 photo through the page's form (multipart), on a report of its own for each role,
    dispatched to the grid's worker: the photo is checked before the transition, as who may act decides."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    lon, lat = _point_inside(w.client.app.state.coverage.get().grids.set_index("code").loc[w.grid_code])
    incident_id = _plant(w.client, lon, lat, "sanitation.cleaning")["id"]
    _advance(w.client, incident_id, ("accept",))
    version = w.client.get(f"/v1/incidents/{incident_id}", headers=admin).json()["version"]
    done = w.client.post(f"/v1/incidents/{incident_id}/transitions", headers={**admin, "If-Match": f'"{version}"'},
                         json={"action": "dispatch", "assignee": w.codes["worker"]})
    assert done.status_code == 200, done.text
    return {"path_params": {"incident_id": incident_id}, "data": {"action": "start", "version": version + 1},
            "files": [("photos", ("before.jpg", _jpeg(), "image/jpeg"))]}


ROWS += [  # the same route as above, with photos: 303 to the page, followed
    Row("POST", "/console/incidents/{incident_id}/actions",
        staff(200, readers=("worker", "mate", "community", "dispatcher", "admin")), _console_photo_action),
]

# the residents' pages, issue #15 §3: public, no sign-in; a report goes through the public intake (the form
# acts as the public whoever is signed in) and lands on its status page; /status reads with the 回执码 alone

def _page_report(w: World) -> dict[str, Any]:
    return {"data": {"category": "infra.sign", "description": "路牌倒了", "lon": "110.7693", "lat": "35.1425"}}


def _status_code(name: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"path_params": {"code": f"{w.incidents[name]}-{w.receipts[w.incidents[name]]}"}}


def _handled_code(w: World) -> dict[str, Any]:
    """A new report, handled, named by its 回执码 (each role rates a report of its own: feedback is once)."""
    lon, lat = _point_inside(w.client.app.state.coverage.get().grids.set_index("code").loc[w.grid_code])
    planted = _plant(w.client, lon, lat, "infra.water")
    _advance(w.client, planted["id"], ("accept", "dispatch", "start", "resolve"))
    return {"path_params": {"code": f"{planted['id']}-{planted['receipt']}"}, "data": {"rating": "5"}}


ROWS += [
    Row("GET", "/report", every(200)),
    Row("POST", "/report", every(200), _page_report),  # 303 to the new report's status page, followed
    Row("GET", "/status", every(200)),
    Row("GET", "/status/{code}", every(200), _status_code("public")),
    Row("POST", "/status/{code}/feedback", every(200), _handled_code),  # 303 back to the status page, followed
]

# incident photos, issue #15 §4 (access.check_photo_add / check_photo_read / photo_visible / public_photo): the
# reporter adds intake photos to their own report and sees their own; staff and workers in scope see them;
# workers add intake photos only to their own patrol reports; planners and workers of other grids see none

_PHOTOS: dict[tuple[int, int], str] = {}
"""(world, incident) → the photo: one per world (each backend has its own)."""


def _jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 120, 40)).save(out, "JPEG")
    return out.getvalue()


def _photo(w: World) -> str:
    """A photo the reporter of the "history" report (a public category) added with the receipt."""
    incident_id = w.incidents["history"]
    key = (id(w), incident_id)
    if key not in _PHOTOS:
        added = w.client.post(f"/v1/incidents/{incident_id}/photos", data={"stage": "intake"},
                              files=[("files", ("a.jpg", _jpeg(), "image/jpeg"))],
                              headers={"X-Receipt": w.receipts[incident_id]})
        assert added.status_code == 201, added.text
        _PHOTOS[key] = added.json()[0]["id"]
    return _PHOTOS[key]


def _photo_upload(w: World) -> dict[str, Any]:
    return {"path_params": {"incident_id": w.incidents["public"]}, "data": {"stage": "intake"},
            "files": [("files", ("a.jpg", _jpeg(), "image/jpeg"))]}


PHOTO_READERS = ("worker", "mate", "community", "dispatcher", "admin")
ROWS += [
    Row("POST", "/v1/incidents/{incident_id}/photos", {**staff(201), "reporter": 201}, _photo_upload, target="public"),
    Row("GET", "/v1/incidents/{incident_id}/photos", {**staff(200, readers=PHOTO_READERS), "reporter": 200},
        _incident("public"), target="public"),
    Row("GET", "/v1/photos/{photo_id}", {**staff(200, readers=PHOTO_READERS), "reporter": 200},
        lambda w: {"path_params": {"photo_id": _photo(w)}}, target="history"),
    Row("GET", "/v1/photos/{photo_id}/thumbnail", {**staff(200, readers=PHOTO_READERS), "reporter": 200},
        lambda w: {"path_params": {"photo_id": _photo(w)}}, target="history"),
    Row("GET", "/open311/v2/media/{photo_id}.jpg", every(200), lambda w: {"path_params": {"photo_id": _photo(w)}}),
]

SENSITIVE_ROWS = [
    Row("GET", "/open311/v2/requests/{request_id}.json", every(404),
        lambda w: {"path_params": {"request_id": w.incidents["sensitive"]}}),
    Row("GET", "/v1/incidents/{incident_id}", {**staff(200, readers=IN_SCOPE), "reporter": 200},
        _incident("sensitive"), target="sensitive"),
    Row("GET", "/status/{code}", every(200), _status_code("sensitive")),  # the reporter's view, by its code
]
"""Rows about a sensitive report, checked the same way (not counted as routes)."""


def _call(w: World, row: Row, role: str) -> Any:
    spec = row.build(w)
    path = row.path.format(**spec.pop("path_params", {}))
    headers = {**w.headers[role], **spec.pop("headers", {})}
    if role == "reporter" and row.target is not None:
        headers["X-Receipt"] = w.receipts[w.incidents[row.target]]
    return w.client.request(row.method, path, headers=headers, **spec)


def _leaks(text: str) -> list[str]:
    return [m for m in MARKERS if m in text or json.dumps(m)[1:-1] in text]


# the tests ------------------------------------------------------------------------------------------

def test_every_route_has_a_row(world: World) -> None:
    schema = world.client.get("/openapi.json").json()
    routes = {f"{method.upper()} {path}" for path, ops in schema["paths"].items() for method in ops}
    assert routes - {r.id for r in ROWS} == set(), "a route without a row in the role matrix"
    assert {r.id for r in ROWS} - routes == set(), "a row for a route that no longer exists"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", ROWS + SENSITIVE_ROWS, ids=lambda r: r.id)
def test_status_and_personal_data_by_role(world: World, row: Row, role: str) -> None:
    answer = _call(world, row, role)
    assert answer.status_code == row.expected[role], answer.text[:300]
    if role not in PERSONAL_READERS:
        assert _leaks(answer.text) == [], f"personal data shown to {role}"


@pytest.mark.parametrize("role", sorted(PERSONAL_READERS))
def test_those_allowed_do_read_the_planted_data(world: World, role: str) -> None:
    """The leak check above is not vacuous: the planted strings are in the store and shown to these."""
    answer = world.client.get(f"/v1/incidents/{world.incidents['public']}", headers=world.headers[role])
    assert set(_leaks(answer.text)) == set(MARKERS)
