"""双服务 activities, members' service hours, 议事协商 meetings and mediation (issue #13 §3): every
workflow through the API, for every kind of caller, on both stores."""

from __future__ import annotations

from typing import Any

import pytest
from cogov_fixtures import HOME, OTHER, Cogov, world_fixture

from gridmap.cogov.service_models import ACTIVITY, MEETING

world = world_fixture("activities")


def _activity(w: Cogov, **overrides: Any) -> dict[str, Any]:
    body = {"type": "环境整治", "community_code": HOME, "station_code": w.stations(HOME)[0], "date": "2026-04-10",
            "members": [], "units": [w.units(HOME)[0]], "hours": 2.5, "beneficiaries": 40}
    return {**body, **overrides}


def _chinese(answer: Any) -> str:
    detail = answer.json()["detail"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in detail), detail
    return detail


# creating and reading -----------------------------------------------------------------------------

def test_a_worker_records_an_activity_of_their_community(world: Cogov) -> None:
    member = world.member()
    answer = world.post("/v1/activities", _activity(world, members=[member]), role="worker")
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert answer.headers["ETag"] == f'"{created["version"]}"' == '"1"'
    assert (created["type"], created["community_code"], created["members"], created["hours"]) == \
        ("环境整治", HOME, [member], 2.5)
    again = world.get(f"/v1/activities/{created['id']}", role="community")
    assert again.status_code == 200 and again.json() == created
    listed = world.get("/v1/activities", role="mate", params={"member": member}).json()
    assert [a["id"] for a in listed["items"]] == [created["id"]] and listed["total"] == 1


@pytest.mark.parametrize("role", ["dispatcher", "admin"])
def test_dispatchers_and_admins_record_anywhere(world: Cogov, role: str) -> None:
    answer = world.post("/v1/activities", _activity(world, community_code=OTHER, station_code=None,
                                                    units=[world.units(OTHER)[0]]), role=role)
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize("role, status", [("outsider", 403), ("planner", 403), ("public", 401)])
def test_others_cannot_record_and_nothing_is_stored(world: Cogov, role: str, status: int) -> None:
    before = world.total(ACTIVITY)
    answer = world.post("/v1/activities", _activity(world), role=role)
    assert answer.status_code == status
    _chinese(answer)
    assert world.total(ACTIVITY) == before


def test_reading_is_scoped_to_the_community(world: Cogov) -> None:
    created = world.post("/v1/activities", _activity(world, type="文体活动")).json()
    assert world.get(f"/v1/activities/{created['id']}", role="outsider").status_code == 403
    assert world.get(f"/v1/activities/{created['id']}", role="public").status_code == 401
    assert world.get(f"/v1/activities/{created['id']}", role="planner").status_code == 200
    outsider = world.get("/v1/activities", role="outsider").json()
    assert all(a["community_code"] == OTHER for a in outsider["items"])
    assert created["id"] not in [a["id"] for a in outsider["items"]]
    everything = world.get("/v1/activities", params={"limit": 500}).json()
    assert created["id"] in [a["id"] for a in everything["items"]]
    assert everything["total"] == world.total(ACTIVITY)


@pytest.mark.parametrize("change, words", [
    ({"type": "唱歌"}, "请求参数有误"),
    ({"hours": 0}, "请求参数有误"),
    ({"members": [], "units": []}, "至少要有一名党员"),
    ({"members": ["M99999"]}, "未登记"),
    ({"units": ["U999"]}, "不存在"),
    ({"station_code": "S001"}, "不在社区"),
    ({"community_code": "999999"}, "不存在"),
    ({"need_id": 9999}, "需求 9999 不存在"),
    ({"project_id": 9999}, "项目 9999 不存在"),
    ({"date": "2026-13-40"}, "请求参数有误"),
])
def test_bad_input_is_refused_in_chinese_and_nothing_is_stored(world: Cogov, change: dict, words: str) -> None:
    before = world.total(ACTIVITY)
    answer = world.post("/v1/activities", _activity(world, **change))
    assert answer.status_code == 422, answer.text
    assert words in _chinese(answer)
    assert world.total(ACTIVITY) == before


def test_a_need_of_another_community_cannot_be_linked(world: Cogov) -> None:
    need = world.need(OTHER)
    answer = world.post("/v1/activities", _activity(world, need_id=need))
    assert answer.status_code == 422 and "不属于社区" in _chinese(answer)
    mine = world.need(HOME)
    linked = world.post("/v1/activities", _activity(world, need_id=mine))
    assert linked.status_code == 201 and linked.json()["need_id"] == mine


# changing: If-Match, history --------------------------------------------------------------------

def test_a_change_needs_the_current_version_and_is_logged(world: Cogov) -> None:
    created = world.post("/v1/activities", _activity(world), role="worker").json()
    path = f"/v1/activities/{created['id']}"
    assert world.client.patch(path, json={"hours": 3}, headers=world.headers["worker"]).status_code == 428
    stale = world.client.patch(path, json={"hours": 3}, headers={**world.headers["worker"], "If-Match": '"7"'})
    assert stale.status_code == 412 and "版本" in _chinese(stale)
    assert world.client.patch(path, json={"hours": 3}, headers={**world.headers["planner"], "If-Match": '"1"'}
                              ).status_code == 403
    assert world.client.patch(path, json={"hours": 3}, headers={**world.headers["outsider"], "If-Match": '"1"'}
                              ).status_code == 403
    bad = world.client.patch(path, json={"members": ["M99998"]}, headers={**world.headers["worker"], "If-Match": '"1"'})
    assert bad.status_code == 422
    done = world.client.patch(path, json={"hours": 3, "beneficiaries": 55},
                              headers={**world.headers["worker"], "If-Match": '"1"'})
    assert done.status_code == 200, done.text
    assert (done.json()["hours"], done.json()["beneficiaries"], done.json()["version"]) == (3, 55, 2)
    assert done.headers["ETag"] == '"2"'
    log = world.get(f"{path}/history", role="community").json()
    assert [e["action"] for e in log] == ["create", "update"]
    assert (log[1]["before"]["hours"], log[1]["after"]["hours"]) == (2.5, 3)
    assert log[1]["actor"] == f"worker:{world.codes['worker']}"
    assert world.get(f"{path}/history", role="outsider").status_code == 403


# service hours ----------------------------------------------------------------------------------

def test_a_members_hours_add_up_per_period(world: Cogov) -> None:
    member, other = world.member(), world.member()
    held = [("2026-05-02", "环境整治", 2.0, [member]), ("2026-05-20", "政策宣讲", 1.5, [member, other]),
            ("2026-06-03", "志愿服务", 4.0, [member]), ("2026-06-04", "文体活动", 3.0, [other])]
    for day, kind, hours, members in held:
        answer = world.post("/v1/activities", _activity(world, date=day, type=kind, hours=hours, members=members,
                                                        units=[]), role="community")
        assert answer.status_code == 201, answer.text
    whole = world.get(f"/v1/members/{member}/hours", role="worker").json()
    assert (whole["hours"], whole["activities"]) == (7.5, 3)
    assert whole["by_type"] == {"环境整治": 2.0, "政策宣讲": 1.5, "志愿服务": 4.0}
    may = world.get(f"/v1/members/{member}/hours", params={"since": "2026-05-01", "until": "2026-06-01"}).json()
    assert (may["hours"], [i["date"] for i in may["items"]]) == (3.5, ["2026-05-02", "2026-05-20"])
    # the same figure from the listing, counted here
    listed = world.get("/v1/activities", params={"member": member, "since": "2026-05-01", "until": "2026-06-01"}).json()
    assert sum(a["hours"] for a in listed["items"]) == may["hours"]
    assert world.get(f"/v1/members/{member}/hours", role="outsider").status_code == 403
    assert world.get(f"/v1/members/{member}/hours", role="public").status_code == 401
    assert world.get("/v1/members/M99999/hours").status_code == 404
    assert world.get(f"/v1/members/{member}/hours", params={"since": "May"}).status_code == 422


def test_listing_filters_by_type_and_period(world: Cogov) -> None:
    world.post("/v1/activities", _activity(world, type="隐患排查", date="2026-08-08"))
    listed = world.get("/v1/activities", params={"type": "隐患排查", "since": "2026-08-01", "until": "2026-09-01"})
    assert listed.status_code == 200
    assert [a["date"] for a in listed.json()["items"]] == ["2026-08-08"]
    assert world.get("/v1/activities", params={"type": "跳舞"}).status_code == 422


# meetings and mediation ---------------------------------------------------------------------------

def _meeting(**overrides: Any) -> dict[str, Any]:
    body = {"community_code": HOME, "compound": "丰林小区", "kind": "居民议事会", "date": "2026-04-12",
            "attendees": ["张伟", "李娜"], "items": [{"topic": "八家巷小区无路灯", "decision": "协调临猗二中安装路灯"}]}
    return {**body, **overrides}


def test_a_council_links_its_items_to_needs_and_incidents(world: Cogov) -> None:
    need = world.need()
    incident = world.client.post("/v1/incidents", json={"category": "infra.streetlight", "description": "路灯不亮",
                                                       "lon": 110.7693, "lat": 35.1425}).json()["id"]
    body = _meeting(items=[{"need_id": need, "topic": "路灯", "decision": "立项安装"},
                           {"incident_id": incident, "topic": "路灯坏了", "decision": "报修", "outcome": "已报修"}])
    answer = world.post("/v1/meetings", body, role="community")
    assert answer.status_code == 201, answer.text
    assert [i.get("need_id") for i in answer.json()["items"]] == [need, None]
    assert world.get(f"/v1/meetings/{answer.json()['id']}", role="outsider").status_code == 403
    missing = world.post("/v1/meetings", _meeting(items=[{"incident_id": 10**9, "topic": "x", "decision": "y"}]))
    assert missing.status_code == 422 and "事件" in _chinese(missing)


def test_mediation_outcomes_are_resolved_or_unresolved(world: Cogov) -> None:
    before = world.total(MEETING)
    bad = world.post("/v1/meetings", _meeting(kind="调解", items=[{"topic": "邻里漏水纠纷", "decision": "协商赔偿",
                                                                  "outcome": "还行"}]))
    assert bad.status_code == 422 and "resolved" in _chinese(bad)
    unset = world.post("/v1/meetings", _meeting(kind="调解", items=[{"topic": "停车纠纷", "decision": "划线"}]))
    assert unset.status_code == 422
    assert world.total(MEETING) == before
    items = [{"topic": "邻里漏水纠纷，当事人王某某", "decision": "协商赔偿", "outcome": "resolved"},
             {"topic": "停车纠纷", "decision": "再议", "outcome": "unresolved"}]
    created = world.post("/v1/meetings", _meeting(kind="调解", items=items), role="worker")
    assert created.status_code == 201, created.text
    planner = world.get(f"/v1/meetings/{created.json()['id']}", role="planner").json()
    assert [i["outcome"] for i in planner["items"]] == ["resolved", "unresolved"]
    assert "王某某" not in str(planner) and planner["attendees"] == []
    own = world.get(f"/v1/meetings/{created.json()['id']}", role="mate").json()
    assert own["items"][0]["topic"].endswith("王某某")
    # a second sitting settles the parking dispute
    path = f"/v1/meetings/{created.json()['id']}"
    settled = [items[0], {**items[1], "outcome": "resolved"}]
    assert world.client.patch(path, json={"items": settled}, headers=world.headers["worker"]).status_code == 428
    wrong = [items[0], {**items[1], "outcome": "maybe"}]
    assert world.client.patch(path, json={"items": wrong},
                              headers={**world.headers["worker"], "If-Match": '"1"'}).status_code == 422
    done = world.client.patch(path, json={"items": settled}, headers={**world.headers["worker"], "If-Match": '"1"'})
    assert done.status_code == 200 and [i["outcome"] for i in done.json()["items"]] == ["resolved", "resolved"]
    history = world.get(f"{path}/history").json()
    assert [e["version"] for e in history] == [1, 2]
    mediations = world.get("/v1/meetings", params={"kind": "调解", "community": HOME}).json()
    assert created.json()["id"] in [m["id"] for m in mediations["items"]]


@pytest.mark.parametrize("role, status", [("outsider", 403), ("planner", 403), ("public", 401)])
def test_others_cannot_record_meetings(world: Cogov, role: str, status: int) -> None:
    before = world.total(MEETING)
    assert world.post("/v1/meetings", _meeting(), role=role).status_code == status
    assert world.total(MEETING) == before


def test_a_meeting_needs_an_item_and_a_known_kind(world: Cogov) -> None:
    assert world.post("/v1/meetings", _meeting(items=[])).status_code == 422
    assert world.post("/v1/meetings", _meeting(kind="座谈会")).status_code == 422
    assert world.get("/v1/meetings", params={"kind": "座谈会"}).status_code == 422


# a decision creates a project -------------------------------------------------------------------

def test_a_decision_creates_a_project_for_an_accepted_need(world: Cogov) -> None:
    need = world.need(status="accepted", households=40)
    unit = world.units(HOME)[0]
    item = {"need_id": need, "topic": "八家巷小区无路灯", "decision": "立项安装路灯",
            "project": {"title": "八家巷小区安装路灯", "lead_unit_code": unit, "planned_start": "2026-05-01"}}
    answer = world.post("/v1/meetings", _meeting(items=[item]), role="community")
    assert answer.status_code == 201, answer.text
    project_id = answer.json()["items"][0]["project_id"]
    project = world.store.get_entity("project", project_id)
    assert (project["title"], project["needs"], project["lead_unit_code"], project["status"]) == \
        ("八家巷小区安装路灯", [need], unit, "planned")
    assert world.store.get_entity("need", need)["status"] == "in_project"


@pytest.mark.parametrize("case", ["no need", "need not accepted", "unknown unit", "same need twice"])
def test_a_decided_project_is_checked_before_anything_is_written(world: Cogov, case: str) -> None:
    accepted, collected = world.need(status="accepted"), world.need(status="collected")
    unit = world.units(HOME)[0]
    good = {"need_id": accepted, "topic": "路灯", "decision": "立项", "project": {"title": "安装路灯", "lead_unit_code": unit}}
    items = {
        "no need": [{**good, "need_id": None}],
        "need not accepted": [{**good, "need_id": collected}],
        "unknown unit": [good, {**good, "need_id": world.need(status="accepted"),
                                "project": {"title": "x", "lead_unit_code": "U999"}}],
        "same need twice": [good, good],
    }[case]
    meetings, projects = world.total(MEETING), world.total("project")
    answer = world.post("/v1/meetings", _meeting(items=items))
    assert answer.status_code == 422, answer.text
    _chinese(answer)
    assert (world.total(MEETING), world.total("project")) == (meetings, projects)
    assert world.store.get_entity("need", accepted)["status"] == "accepted"


def test_a_change_keeps_the_decided_project_and_decides_no_new_one(world: Cogov) -> None:
    need = world.need(status="accepted")
    item = {"need_id": need, "topic": "路灯", "decision": "立项",
            "project": {"title": "安装路灯", "lead_unit_code": world.units(HOME)[0]}}
    created = world.post("/v1/meetings", _meeting(items=[item])).json()
    project_id = created["items"][0]["project_id"]
    path = f"/v1/meetings/{created['id']}"
    again = [{"need_id": need, "topic": "路灯", "decision": "立项，五月开工"},
             {"need_id": world.need(status="accepted"), "topic": "另一事项", "decision": "再立一项",
              "project": {"title": "x", "lead_unit_code": world.units(HOME)[0]}}]
    projects = world.total("project")
    refused = world.client.patch(path, json={"items": again}, headers={**world.headers["admin"], "If-Match": '"1"'})
    assert refused.status_code == 422 and world.total("project") == projects
    kept = world.client.patch(path, json={"items": again[:1]}, headers={**world.headers["admin"], "If-Match": '"1"'})
    assert kept.status_code == 200, kept.text
    assert kept.json()["items"][0]["project_id"] == project_id
    assert kept.json()["items"][0]["decision"] == "立项，五月开工"
