"""三清单 (issue #13 §2): needs, resources, projects, the matching of resources to needs and the promotion
of incidents to needs, on both store backends, for every kind of caller."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyproj
import pytest
import shapely
from cogov_world import HOME, OTHER, World, member_body, need_body, world_fixture

from gridmap.cogov.categories import NEED_CATEGORIES

world = world_fixture("lists")

GEOD = pyproj.Geod(ellps="WGS84")


def _inside(w: World, grid_code: str) -> tuple[float, float]:
    grids = w.layers["grids"]
    p = shapely.point_on_surface(grids[grids["code"] == grid_code].geometry.iloc[0])
    return p.x, p.y


def _need(w: World, title: str = "八家巷小区没有路灯", *, role: str = "admin", **kwargs: Any) -> dict[str, Any]:
    return w.post("/v1/needs", role, json=need_body(title, **kwargs)).json()


def _move(w: World, path: str, action: str, role: str = "admin", *, expect: int = 200, **body: Any) -> Any:
    etag = w.get(path).headers["ETag"]
    return w.post(f"{path}/transitions", role, json={"action": action, **body}, headers={"If-Match": etag},
                  expect=expect)


def _accepted(w: World, title: str = "八家巷小区没有路灯", **kwargs: Any) -> dict[str, Any]:
    need = _need(w, title, **kwargs)
    return _move(w, f"/v1/needs/{need['id']}", "accept").json()


def _resource(w: World, provider: tuple[str, str], category: str, communities: list[str], role: str = "admin",
              **extra: Any) -> dict[str, Any]:
    body = {"provider": {"kind": provider[0], "code": provider[1]}, "category": category,
            "description": f"{category}（测试）", "communities": communities, **extra}
    return w.post("/v1/resources", role, json=body).json()


# needs ------------------------------------------------------------------------------------------------

def test_a_need_is_placed_in_the_grid_that_the_lookup_gives(world: World) -> None:
    lon, lat = _inside(world, world.home_grid)
    by_point = _need(world, role="worker", lon=lon, lat=lat)
    assert (by_point["grid_code"], by_point["status"]) == (world.home_grid, "collected")
    address = "双塔社区丰林小区3号楼"
    looked_up = world.client.get("/v1/lookup", params={"address": address}).json()
    by_address = _need(world, role="community", address=address)
    assert by_address["grid_code"] == looked_up["grid"]["code"] and by_address["match_level"] == "building"
    unplaced = _need(world)
    assert (unplaced["grid_code"], unplaced["lon"]) == (None, None)
    got = world.get(f"/v1/needs/{by_point['id']}", "worker")
    assert got.headers["ETag"] == '"1"' and got.json() == by_point


def test_a_need_must_be_where_its_community_is_and_of_a_known_category(world: World) -> None:
    lon, lat = _inside(world, "140821100010-01")
    elsewhere = world.post("/v1/needs", json=need_body(lon=lon, lat=lat), expect=422).json()
    assert "不在 140821100014" in elsewhere["detail"]
    unknown = world.post("/v1/needs", json=need_body(category="修路灯"), expect=422).json()
    assert "需求类别" in unknown["detail"] and "道路亮化" in unknown["detail"]
    world.post("/v1/needs", json=need_body(address="火星基地"), expect=422)


def test_needs_are_listed_by_community_grid_status_and_category(world: World) -> None:
    lon, lat = _inside(world, world.home_grid)
    heating = _need(world, "周家巷供暖未接通", category="供暖", households=124, lon=lon, lat=lat)
    listed = world.get("/v1/needs", params={"category": "供暖", "grid": world.home_grid}).json()
    assert heating["id"] in {n["id"] for n in listed["items"]}
    assert all(n["category"] == "供暖" and n["grid_code"] == world.home_grid for n in listed["items"])
    for title in ("法院小区旱厕", "同济巷小区墙体倾斜"):
        _need(world, title, category="隐患修复")
    collected = world.get("/v1/needs", params={"status": "collected", "community": HOME, "limit": 2}).json()
    assert len(collected["items"]) == 2 and collected["total"] >= 3
    assert all(n["status"] == "collected" for n in collected["items"])
    world.post("/v1/needs", json=need_body("崇相西社区的需求", community=OTHER))
    theirs = world.get("/v1/needs", "outsider", params={"limit": 500}).json()
    assert theirs["total"] >= 1 and all(n["community_code"] == OTHER for n in theirs["items"])
    world.get("/v1/needs", params={"status": "open"}, expect=422)


def test_a_need_goes_collected_accepted_done_or_rejected_with_a_reason(world: World) -> None:
    need = _need(world)
    path = f"/v1/needs/{need['id']}"
    refused = _move(world, path, "reject", "worker", expect=422).json()
    assert "理由" in refused["detail"]
    _move(world, path, "accept", "worker")
    done = _move(world, path, "complete", "community").json()
    assert (done["status"], done["status_label"]) == ("done", "已办结") and done["done_at"]
    assert "不能受理" in _move(world, path, "accept", expect=409).json()["detail"]

    other = _need(world, "法院小区旱厕", category="环境卫生")
    rejected = _move(world, f"/v1/needs/{other['id']}", "reject", reason="已列入县住建局改造计划").json()
    assert (rejected["status"], rejected["reason"]) == ("rejected", "已列入县住建局改造计划")
    again = _move(world, f"/v1/needs/{other['id']}", "reopen").json()
    assert (again["status"], again["reason"]) == ("collected", None)

    history = world.get(f"{path}/history", "worker").json()
    assert [h["action"] for h in history] == ["create", "accept", "complete"]
    assert [(h["before"] or {}).get("status") for h in history] == [None, "collected", "accepted"]
    assert history[1]["actor"] == f"worker:{world.codes['worker']}"


def test_a_change_needs_the_current_version(world: World) -> None:
    need = _need(world)
    path = f"/v1/needs/{need['id']}"
    world.post(f"{path}/transitions", json={"action": "accept"}, expect=428)
    _move(world, path, "accept")
    stale = world.post(f"{path}/transitions", json={"action": "complete"}, headers={"If-Match": '"1"'}, expect=412)
    assert "版本" in stale.json()["detail"]
    assert world.get(path).json()["status"] == "accepted"


def test_who_may_read_and_change_needs(world: World) -> None:
    need = _need(world, role="worker")
    path = f"/v1/needs/{need['id']}"
    world.post("/v1/needs", "public", json=need_body(), expect=401)
    world.post("/v1/needs", "planner", json=need_body(), expect=403)
    world.post("/v1/needs", "outsider", json=need_body(), expect=403)
    world.post("/v1/needs", "outsider", json=need_body(community=OTHER))
    for role, status in (("public", 401), ("outsider", 403), ("planner", 200), ("community", 200)):
        world.get(path, role, expect=status)
        world.get(f"{path}/history", role, expect=status)
        world.get(f"{path}/matches", role, expect=status)
    for role, status in (("public", 401), ("outsider", 403), ("planner", 403)):
        etag = world.get(path).headers["ETag"]
        world.post(f"{path}/transitions", role, json={"action": "accept"}, headers={"If-Match": etag}, expect=status)
    assert world.get(path).json()["version"] == 1


# incidents become needs -------------------------------------------------------------------------------

def _report(w: World, grid: str, text: str) -> dict[str, Any]:
    lon, lat = _inside(w, grid)
    return w.post("/v1/incidents", "public", json={
        "category": "infra.streetlight", "lon": lon, "lat": lat, "description": text,
        "address": "临猗县双塔社区八家巷小区2号楼3单元502室", "reporter": {"name": "韩秀英", "phone": "13987654321"}}).json()


def test_an_incident_becomes_a_need_linked_both_ways(world: World) -> None:
    incident = _report(world, world.home_grid, "我是韩秀英，电话13987654321，巷子里的路灯又坏了")
    need = world.post(f"/v1/incidents/{incident['id']}/promote", "worker",
                      json={"category": "道路亮化", "households": 40}).json()
    assert (need["incident_id"], need["source"], need["grid_code"]) == (incident["id"], "事件转化", world.home_grid)
    assert need["category"] == "道路亮化" and need["households"] == 40 and need["title"].startswith("路灯")
    assert "13987654321" not in need["description"] and "韩秀英" not in need["description"]
    assert "502" not in need["address"]
    linked = world.get("/v1/needs", "worker", params={"incident_id": incident["id"]}).json()
    assert [n["id"] for n in linked["items"]] == [need["id"]] and linked["total"] == 1
    assert world.get("/v1/needs", params={"incident_id": incident["id"] + 100000}).json()["total"] == 0
    twice = world.post(f"/v1/incidents/{incident['id']}/promote", json={"category": "道路亮化"}, expect=409)
    assert str(need["id"]) in twice.json()["detail"]
    assert world.get(f"/v1/needs/{need['id']}/history").json()[0]["action"] == "promote"


def test_who_may_promote_an_incident(world: World) -> None:
    incident = _report(world, world.home_grid, "路灯不亮")
    path = f"/v1/incidents/{incident['id']}/promote"
    for role, status in (("public", 401), ("planner", 403), ("outsider", 403)):
        world.post(path, role, json={"category": "道路亮化"}, expect=status)
    world.post("/v1/incidents/999999/promote", json={"category": "道路亮化"}, expect=404)
    world.post(path, "community", json={"category": "道路亮化"})


# resources --------------------------------------------------------------------------------------------

def test_resources_name_a_known_provider_and_the_communities_they_serve(world: World) -> None:
    member = world.post("/v1/registrations/members", json=member_body("贾强", "13966660001")).json()
    offer = _resource(world, ("member", member["code"]), "志愿服务", [HOME, OTHER], "worker")
    assert offer["provider"] == {"kind": "member", "code": member["code"], "name": None}
    assert offer["community_code"] == HOME and offer["community_names"] == ["双塔社区", "崇相西社区"]
    for provider, words in ((("member", "M99999"), "M99999"), (("team", "T9999"), "T9999"), (("unit", "U999"), "U999")):
        bad = world.post("/v1/resources", json={"provider": {"kind": provider[0], "code": provider[1]},
                                                "category": "资金", "description": "x", "communities": [HOME]},
                         expect=422)
        assert words in bad.json()["detail"]
    world.post("/v1/resources", json={"provider": {"kind": "unit", "code": "U026"}, "category": "钱",
                                      "description": "x", "communities": [HOME]}, expect=422)
    serving_other = world.get("/v1/resources", params={"community": OTHER}).json()["items"]
    assert offer["id"] in {r["id"] for r in serving_other} and all(OTHER in r["communities"] for r in serving_other)
    world.post("/v1/resources", "outsider", expect=403, json={"provider": {"kind": "unit", "code": "U026"},
                                                              "category": "资金", "description": "x",
                                                              "communities": [HOME]})
    world.post("/v1/resources", "planner", expect=403, json={"provider": {"kind": "unit", "code": "U026"},
                                                             "category": "资金", "description": "x",
                                                             "communities": [HOME]})
    assert world.get(f"/v1/resources/{offer['id']}/history", "community").json()[0]["action"] == "create"
    world.get(f"/v1/resources/{offer['id']}", "outsider", expect=403)


# matching ---------------------------------------------------------------------------------------------

def _every(w: World, path: str) -> list[dict[str, Any]]:
    """Every item of a listing, page by page."""
    items: list[dict[str, Any]] = []
    while True:
        page = w.get(path, params={"limit": 500, "offset": len(items)}).json()
        items += page["items"]
        if len(items) >= page["total"] or not page["items"]:
            return items


class _Lazy(dict):  # type: ignore[type-arg]
    """Records read by code when first asked for."""

    def __init__(self, read: Any) -> None:
        super().__init__()
        self.read = read

    def __missing__(self, code: str) -> Any:
        self[code] = self.read(code)
        return self[code]


def _independent_ranking(w: World, need: dict[str, Any], today: date) -> list[tuple[float, float | None, int]]:
    """The matching rule of docs/cogovernance.md computed from the listings and the layers: geodesic
    distances (the service measures in a projected CRS), providers' places and skills read afresh."""
    layers = w.layers
    resources = _every(w, "/v1/resources")
    members = _Lazy(lambda code: w.get(f"/v1/members/{code}").json())
    teams = _Lazy(lambda code: w.get(f"/v1/teams/{code}").json())
    units, grids, stations, regions = layers["units"], layers["grids"], layers["stations"], layers["regions"]

    def rep(frame: Any, code: str) -> tuple[float, float]:
        p = frame[frame["code"] == code].geometry.iloc[0].representative_point()
        return p.x, p.y

    def provider(kind: str, code: str) -> tuple[tuple[float, float] | None, set[str]]:
        if kind == "unit":
            row = units[units["code"] == code].iloc[0]
            return (row.geometry.x, row.geometry.y), {s.strip() for s in row["resources"].split(";")}
        if kind == "member":
            m = members[code]
            return (rep(grids, m["grid_code"]) if m["grid_code"] else rep(regions, m["community_code"])), set(m["skills"])
        t = teams[code]
        skills = {s for c in t["members"] for s in members[c]["skills"]}
        return (rep(stations, t["station_code"]) if t["station_code"] else rep(regions, t["community_code"])), skills

    wanted = NEED_CATEGORIES[need["category"]]
    out = []
    for r in resources:
        until = date.fromisoformat(r["available_until"]) if r["available_until"] else None
        if (until and until < today) or r["quantity"] == 0:
            continue
        where, skills = provider(r["provider"]["kind"], r["provider"]["code"])
        fits, knows = r["category"] in wanted.resources, bool(skills & set(wanted.skills))
        if not fits and not knows:
            continue
        metres = GEOD.inv(need["lon"], need["lat"], where[0], where[1])[2] if where else None
        score = 40 * fits + 20 * knows + 30 * (need["community_code"] in r["communities"])
        score += 20 * max(0.0, 1 - metres / 5000) if metres is not None else 0
        score += 5 if until and (until - today).days <= 14 else 10
        out.append((score, metres, r["id"]))
    return out


def test_matches_rank_as_an_independent_computation_ranks_them(world: World) -> None:
    today = datetime.now(UTC).date()
    lon, lat = _inside(world, world.home_grid)
    need = _need(world, "八家巷小区路灯", lon=lon, lat=lat)
    electrician = world.post("/v1/registrations/members",
                             json=member_body("电工甲", "13977770001", grid=world.home_grid, skills=("电工",))).json()
    fixer = world.post("/v1/registrations/members", json=member_body("维修乙", "13977770002", skills=("维修",))).json()
    team = world.post("/v1/teams", json={"name": "亮化服务队", "community_code": HOME, "station_code": "S028",
                                         "members": [fixer["code"]]}).json()
    made = {
        "power": _resource(world, ("unit", "U029"), "设备", [HOME]),
        "far_funds": _resource(world, ("unit", "U001"), "资金", [OTHER]),
        "electrician": _resource(world, ("member", electrician["code"]), "志愿服务", [HOME]),
        "team_soon": _resource(world, ("team", team["code"]), "资金", [HOME],
                               available_until=(today + timedelta(days=7)).isoformat()),
        "venue": _resource(world, ("unit", "U026"), "场地", [HOME]),
        "expired": _resource(world, ("unit", "U029"), "资金", [HOME],
                             available_until=(today - timedelta(days=1)).isoformat()),
        "none_left": _resource(world, ("unit", "U029"), "设备", [HOME], quantity=0),
    }
    answer = world.get(f"/v1/needs/{need['id']}/matches", "worker", params={"limit": 100}).json()
    got = [item["resource"]["id"] for item in answer["items"]]
    mine = {rid: (score, metres) for score, metres, rid in _independent_ranking(world, need, today)}
    assert set(got) == set(mine) and answer["total"] == len(mine)
    for item in answer["items"]:
        score, metres = mine[item["resource"]["id"]]
        assert item["score"] == pytest.approx(score, abs=0.15)
        assert item["factors"]["distance_m"] == pytest.approx(metres, rel=0.005, abs=1)
    for a, b in itertools.pairwise(got):  # descending score, nearer first on a tie (beyond measuring noise)
        assert mine[a][0] >= mine[b][0] - 0.15, (a, b)
    for name in ("venue", "expired", "none_left"):
        assert made[name]["id"] not in got, name
    assert got.index(made["power"]["id"]) < got.index(made["team_soon"]["id"]) < got.index(made["far_funds"]["id"])
    reasons = {item["resource"]["id"]: item["reasons"] for item in answer["items"]}
    assert "类别相符：设备可用于道路亮化" in reasons[made["power"]["id"]]
    assert "具备相关技能：照明" in reasons[made["power"]["id"]]
    assert "具备相关技能：电工" in reasons[made["electrician"]["id"]]
    assert "未登记服务该社区" in reasons[made["far_funds"]["id"]]
    assert any("即将到期" in r for r in reasons[made["team_soon"]["id"]])
    assert world.get(f"/v1/needs/{need['id']}/matches", params={"limit": 1}).json()["items"][0]["resource"]["id"] == got[0]


# projects ---------------------------------------------------------------------------------------------

def _project(w: World, needs: list[int], resources: list[int], role: str = "admin", expect: int = 201, **extra: Any):
    body = {"title": "八家巷小区道路亮化", "community_code": HOME, "needs": needs, "resources": resources,
            "lead_unit_code": "U026", "planned_start": "2025-04-01", "planned_end": "2025-05-31", **extra}
    return w.post("/v1/projects", role, json=body, expect=expect)


def test_a_project_takes_accepted_needs_to_done_and_counts_households(world: World) -> None:
    a, b = _accepted(world, households=60), _accepted(world, "临街路灯", households=24)
    funds = _resource(world, ("unit", "U029"), "资金", [HOME])
    project = _project(world, [a["id"], b["id"]], [funds["id"]], "worker").json()
    assert (project["status"], project["households"], project["lead_unit_name"]) == ("planned", 84, "临猗二中")
    for need in (a, b):
        moved = world.get(f"/v1/needs/{need['id']}").json()
        assert (moved["status"], moved["project_id"]) == ("in_project", project["id"])
    path = f"/v1/projects/{project['id']}"
    _move(world, path, "start", "community")
    done = _move(world, path, "complete", "worker", note="路灯已安装").json()
    assert (done["status"], done["households_benefited"]) == ("completed", 84)
    assert {world.get(f"/v1/needs/{n['id']}").json()["status"] for n in (a, b)} == {"done"}
    assert world.get(f"/v1/needs/{a['id']}/history").json()[-1]["action"] == "project"
    assert "评分" in _move(world, path, "evaluate", expect=422).json()["detail"]
    rated = _move(world, path, "evaluate", rating=5).json()
    assert (rated["status"], rated["rating"]) == ("evaluated", 5)
    assert [h["action"] for h in world.get(f"{path}/history", "planner").json()] == [
        "create", "start", "complete", "evaluate"]
    assert project["id"] in {p["id"] for p in world.get("/v1/projects", params={"status": "evaluated"}).json()["items"]}


def test_households_benefited_may_be_given_and_a_cancelled_project_gives_its_needs_back(world: World) -> None:
    need = _accepted(world, households=10)
    project = _project(world, [need["id"]], []).json()
    path = f"/v1/projects/{project['id']}"
    _move(world, path, "start")
    _move(world, path, "cancel", note="资金未落实")
    back = world.get(f"/v1/needs/{need['id']}").json()
    assert (back["status"], back["project_id"]) == ("accepted", None)
    assert "不能开工" in _move(world, path, "start", expect=409).json()["detail"]
    again = _project(world, [need["id"]], []).json()
    _move(world, f"/v1/projects/{again['id']}", "start")
    assert _move(world, f"/v1/projects/{again['id']}", "complete", households_benefited=12).json()[
        "households_benefited"] == 12


def test_a_project_is_refused_for_needs_not_accepted_or_elsewhere_and_resources_not_serving_it(world: World) -> None:
    collected = _need(world)
    assert "已受理" in _project(world, [collected["id"]], [], expect=422).json()["detail"]
    elsewhere = world.post("/v1/needs", json=need_body(community=OTHER)).json()
    _move(world, f"/v1/needs/{elsewhere['id']}", "accept")
    assert "不是本项目的社区" in _project(world, [elsewhere["id"]], [], expect=422).json()["detail"]
    far = _resource(world, ("unit", "U001"), "资金", [OTHER])
    accepted = _accepted(world)
    assert "未登记服务" in _project(world, [accepted["id"]], [far["id"]], expect=422).json()["detail"]
    _project(world, [accepted["id"]], [], lead_unit_code="U999", expect=422)
    _project(world, [424242], [], expect=422)
    assert world.get(f"/v1/needs/{accepted['id']}").json()["status"] == "accepted", "nothing moved"


def test_who_may_run_projects_and_stale_versions(world: World) -> None:
    need = _accepted(world)
    _project(world, [need["id"]], [], "public", expect=401)
    _project(world, [need["id"]], [], "planner", expect=403)
    _project(world, [need["id"]], [], "outsider", expect=403)
    project = _project(world, [need["id"]], [], "community").json()
    path = f"/v1/projects/{project['id']}"
    world.get(path, "outsider", expect=403)
    world.get(path, "public", expect=401)
    assert world.get(path, "planner").json()["id"] == project["id"]
    for role, status in (("outsider", 403), ("planner", 403), ("public", 401)):
        _move(world, path, "start", role, expect=status)
    _move(world, path, "start")
    world.post(f"{path}/transitions", json={"action": "complete"}, headers={"If-Match": '"1"'}, expect=412)
    world.post(f"{path}/transitions", json={"action": "complete"}, expect=428)
    assert world.get(path).json()["status"] == "in_progress"
    listed = world.get("/v1/projects", "outsider").json()
    assert all(p["community_code"] == OTHER for p in listed["items"])


# corrections ------------------------------------------------------------------------------------------

def _patch(w: World, path: str, body: dict[str, Any], role: str = "admin", *, expect: int = 200) -> Any:
    headers = {**w.headers[role], "If-Match": w.get(path).headers["ETag"]}
    answer = w.client.patch(path, json=body, headers=headers)
    assert answer.status_code == expect, answer.text
    return answer


def test_an_offer_that_runs_out_or_is_withdrawn_is_no_longer_matched(world: World) -> None:
    lon, lat = _inside(world, world.home_grid)
    need = _need(world, lon=lon, lat=lat)
    offer = _resource(world, ("unit", "U029"), "设备", [HOME])
    matches = f"/v1/needs/{need['id']}/matches"
    assert offer["id"] in {i["resource"]["id"] for i in world.get(matches, params={"limit": 100}).json()["items"]}
    path = f"/v1/resources/{offer['id']}"
    changed = _patch(world, path, {"quantity": 0, "communities": [HOME, OTHER]}, "worker").json()
    assert (changed["quantity"], changed["community_names"]) == (0, ["双塔社区", "崇相西社区"])
    assert offer["id"] not in {i["resource"]["id"] for i in world.get(matches, params={"limit": 100}).json()["items"]}
    _patch(world, path, {"quantity": 5})
    assert offer["id"] in {i["resource"]["id"] for i in world.get(matches, params={"limit": 100}).json()["items"]}
    _patch(world, path, {"status": "withdrawn"})
    assert offer["id"] not in {i["resource"]["id"] for i in world.get(matches, params={"limit": 100}).json()["items"]}
    _patch(world, path, {"quantity": 1}, "outsider", expect=403)
    _patch(world, path, {"quantity": 1}, "planner", expect=403)
    assert [h["action"] for h in world.get(f"{path}/history").json()] == ["create", "update", "update", "update"]


def test_a_need_is_described_better_until_it_is_done(world: World) -> None:
    need = _need(world)
    path = f"/v1/needs/{need['id']}"
    better = _patch(world, path, {"households": 124, "category": "供暖", "title": "壕村供暖"}, "community").json()
    assert (better["households"], better["category"], better["title"], better["status"]) == (124, "供暖", "壕村供暖",
                                                                                           "collected")
    _patch(world, path, {"category": "修路灯"}, expect=422)
    _patch(world, path, {"status": "done"}, expect=422)  # statuses change only through transitions
    _move(world, path, "accept")
    _move(world, path, "complete")
    assert "不能再修改" in _patch(world, path, {"households": 1}, expect=409).json()["detail"]
