"""未呼先应 (issue #13 §4): 包楼院 assignments (defaulting to the worker's grid's buildings) and patrols
(track, visits, findings reported as incidents, far tracks flagged, coverage over a period), for every
kind of caller, on both stores."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pyproj
import pytest
import shapely
import shapely.geometry
from cogov_fixtures import OTHER, Cogov, world_fixture

from gridmap.cogov.service_models import BUILDING_ASSIGNMENT, PATROL

world = world_fixture("patrols")


def _coverage(w: Cogov, code: str) -> dict[str, Any]:
    return w.get(f"/v1/workers/{code}/coverage").json()


def _grid_buildings(w: Cogov, code: str) -> list[str]:
    """The worker's grid's buildings, as the public coverage answer lists them."""
    return sorted(f["properties"]["code"] for f in _coverage(w, code)["buildings"]["features"])


def _walk(w: Cogov, code: str, steps: int = 5) -> list[list[float]]:
    """A walk across the inside of the worker's grid."""
    grid = shapely.geometry.shape(_coverage(w, code)["grids"]["features"][0]["geometry"])
    inner = shapely.buffer(grid, -0.0003)
    minx, miny, maxx, maxy = inner.bounds
    line = shapely.LineString([(minx, (miny + maxy) / 2), (maxx, (miny + maxy) / 2)]).intersection(inner)
    line = line if line.geom_type == "LineString" else max(line.geoms, key=lambda g: g.length)
    return [[round(p.x, 6), round(p.y, 6)] for p in (line.interpolate(i / (steps - 1), normalized=True)
                                                     for i in range(steps))]


def _geodesic(points: list[list[float]]) -> float:
    geod = pyproj.Geod(ellps="WGS84")
    return sum(geod.inv(a[0], a[1], b[0], b[1])[2] for a, b in pairwise(points))


def _patrol(w: Cogov, code: str, **overrides: Any) -> dict[str, Any]:
    buildings = _grid_buildings(w, code)
    body = {"worker_code": code, "started_at": "2026-06-01T01:00:00Z", "ended_at": "2026-06-01T02:30:00Z",
            "track": {"type": "LineString", "coordinates": _walk(w, code)},
            "visits": [{"building_code": buildings[0], "households_visited": 6, "note": "独居老人情况正常"}],
            "findings": []}
    return {**body, **overrides}


# 包楼院 ----------------------------------------------------------------------------------------------

def test_a_workers_buildings_default_to_their_grids(world: Cogov) -> None:
    code = world.codes["mate"]
    answer = world.get(f"/v1/workers/{code}/buildings", role="worker")
    assert answer.status_code == 200 and answer.headers["ETag"] == '"0"'
    view = answer.json()
    assert view["source"] == "default"
    assert sorted(b["code"] for b in view["buildings"]) == _grid_buildings(world, code)
    assert view["total"] == len(view["buildings"]) > 0
    community = world.get(f"/v1/workers/{world.codes['community']}/buildings").json()
    expected = sorted(f["properties"]["code"] for f in _coverage(world, world.codes["community"])["buildings"]["features"])
    assert sorted(b["code"] for b in community["buildings"]) == expected
    assert world.get(f"/v1/workers/{code}/buildings", role="outsider").status_code == 403
    assert world.get(f"/v1/workers/{code}/buildings", role="planner").status_code == 200
    assert world.get(f"/v1/workers/{code}/buildings", role="public").status_code == 401
    assert world.get("/v1/workers/W9999/buildings").status_code == 404


def test_assigning_buildings_takes_the_version_and_stays_in_the_community(world: Cogov) -> None:
    code = world.codes["mate"]
    path = f"/v1/workers/{code}/buildings"
    chosen = _grid_buildings(world, code)[:3]
    before = world.total(BUILDING_ASSIGNMENT)
    put = world.client.put
    assert put(path, json={"buildings": chosen}, headers=world.headers["community"]).status_code == 428
    assert put(path, json={"buildings": chosen}, headers={**world.headers["community"], "If-Match": '"1"'}
               ).status_code == 412
    for role, status in (("outsider", 403), ("planner", 403), ("public", 401)):
        assert put(path, json={"buildings": chosen}, headers={**world.headers[role], "If-Match": '"0"'}
                   ).status_code == status
    elsewhere = _grid_buildings(world, world.codes["outsider"])[:1]
    bad = put(path, json={"buildings": chosen + elsewhere}, headers={**world.headers["community"], "If-Match": '"0"'})
    assert bad.status_code == 422 and "不在网格员" in bad.json()["detail"]
    assert put(path, json={"buildings": ["NO-SUCH"]}, headers={**world.headers["community"], "If-Match": '"0"'}
               ).status_code == 422
    assert put(path, json={"buildings": chosen + chosen[:1]},
               headers={**world.headers["community"], "If-Match": '"0"'}).status_code == 422
    assert world.total(BUILDING_ASSIGNMENT) == before
    done = put(path, json={"buildings": chosen}, headers={**world.headers["community"], "If-Match": '"0"'})
    assert done.status_code == 200, done.text
    assert done.headers["ETag"] == '"1"' and done.json()["source"] == "assigned"
    assert [b["code"] for b in done.json()["buildings"]] == chosen
    again = put(path, json={"buildings": chosen[:1]}, headers={**world.headers["dispatcher"], "If-Match": '"1"'})
    assert again.status_code == 200 and again.json()["version"] == 2 and again.json()["total"] == 1
    assert put(path, json={"buildings": chosen}, headers={**world.headers["worker"], "If-Match": '"1"'}
               ).status_code == 412


# patrols ----------------------------------------------------------------------------------------

def test_a_worker_records_their_patrol_and_findings_become_incidents(world: Cogov) -> None:
    code = world.codes["worker"]
    walk = _walk(world, code)
    finding = {"category": "infra.streetlight", "description": "3号楼前路灯不亮", "lon": walk[2][0], "lat": walk[2][1]}
    answer = world.post("/v1/patrols", _patrol(world, code, findings=[finding]), role="worker")
    assert answer.status_code == 201, answer.text
    patrol = answer.json()
    assert patrol["distance_m"] == pytest.approx(_geodesic(walk), abs=0.1)
    assert patrol["flags"] == [] and patrol["outside_m"] == 0
    assert patrol["date"] == "2026-06-01" and patrol["started_at"] == "2026-06-01T01:00:00Z"
    incident_id = patrol["findings"][0]["incident_id"]
    incident = world.get(f"/v1/incidents/{incident_id}").json()
    assert (incident["source"], incident["category"]["code"], incident["description"]) == \
        ("网格员巡查", "infra.streetlight", "3号楼前路灯不亮")
    assert incident["grid"]["code"] == world.worker(code)["grid_code"]
    assert world.get(f"/v1/patrols/{patrol['id']}", role="mate").json()["track"]["coordinates"] == walk
    assert world.get(f"/v1/patrols/{patrol['id']}", role="planner").json()["track"] is None
    assert world.get(f"/v1/patrols/{patrol['id']}", role="outsider").status_code == 403


@pytest.mark.parametrize("role, status", [("dispatcher", 201), ("admin", 201), ("mate", 403), ("community", 403),
                                          ("outsider", 403), ("planner", 403), ("public", 401)])
def test_only_the_worker_or_the_command_centre_records_a_patrol(world: Cogov, role: str, status: int) -> None:
    before = world.total(PATROL)
    answer = world.post("/v1/patrols", _patrol(world, world.codes["worker"]), role=role)
    assert answer.status_code == status, answer.text
    assert world.total(PATROL) == before + (status == 201)


def test_a_track_far_outside_the_grid_is_flagged(world: Cogov) -> None:
    code = world.codes["worker"]
    far = _walk(world, world.codes["outsider"])
    answer = world.post("/v1/patrols", _patrol(world, code, track={"type": "LineString", "coordinates": far}))
    assert answer.status_code == 201
    assert answer.json()["flags"] == ["track_outside_grid"] and answer.json()["outside_m"] > 300


@pytest.mark.parametrize("change, words", [
    ({"visits": [{"building_code": "NO-SUCH", "households_visited": 1}]}, "楼栋"),
    ({"findings": [{"category": "no.such", "description": "x", "lon": 110.76, "lat": 35.14}]}, "类别"),
    ({"findings": [{"category": "infra.streetlight", "description": "x", "lon": 116.4, "lat": 39.9}]}, "服务范围"),
    ({"ended_at": "2026-06-01T00:30:00Z"}, "结束时间"),
    ({"track": {"type": "LineString", "coordinates": [[110.76, 35.14]]}}, "请求参数有误"),
    ({"track": {"type": "Point", "coordinates": [[110.76, 35.14], [110.77, 35.14]]}}, "请求参数有误"),
    ({"track": {"type": "LineString", "coordinates": [[110.76, 35.14], [200, 35.14]]}}, "经纬度"),
    ({"worker_code": "W9999"}, "不存在"),
])
def test_bad_patrols_are_refused_and_nothing_is_stored(world: Cogov, change: dict, words: str) -> None:
    before = world.total(PATROL)
    incidents = world.get("/v1/incidents", params={"limit": 1}).json()["total"]
    good = {"category": "infra.streetlight", "description": "路灯不亮", "lon": 110.7693, "lat": 35.1425}
    body = {**_patrol(world, world.codes["worker"], findings=[good]), **change}
    answer = world.post("/v1/patrols", body, role="dispatcher")
    assert answer.status_code == 422, answer.text
    assert words in answer.json()["detail"]
    assert world.total(PATROL) == before
    assert world.get("/v1/incidents", params={"limit": 1}).json()["total"] == incidents


def test_a_workers_patrols_over_a_period(world: Cogov) -> None:
    code = world.codes["community"]  # a community-level worker: their buildings are the community's
    buildings = [b["code"] for b in world.get(f"/v1/workers/{code}/buildings").json()["buildings"]]
    walks = [("2026-07-01T00:30:00Z", buildings[:3]), ("2026-07-10T00:30:00Z", buildings[2:5]),
             ("2026-08-20T00:30:00Z", buildings[5:6])]
    track = {"type": "LineString", "coordinates": _walk(world, world.codes["worker"])}
    for started, visited in walks:
        answer = world.post("/v1/patrols", {"worker_code": code, "started_at": started,
                                            "ended_at": started.replace("00:30", "02:00"), "track": track,
                                            "visits": [{"building_code": b, "households_visited": 2} for b in visited]},
                            role="community")
        assert answer.status_code == 201, answer.text
    july = world.get(f"/v1/workers/{code}/patrols", role="worker", params={"since": "2026-07-01", "until": "2026-08-01"})
    assert july.status_code == 200, july.text
    got = july.json()
    assert got["total"] == 2 and len(got["items"]) == 2 and "track" not in got["items"][0]
    assert got["distance_m"] == pytest.approx(2 * _geodesic(track["coordinates"]), abs=0.2)
    assert got["buildings_visited"] == 5 and got["visited"] == sorted(buildings[:5])
    assert got["assigned_buildings"] == len(buildings)
    assert got["visited_share"] == round(5 / len(buildings), 4)
    # as of 2026-08-01, buildings not visited since 2026-07-02: all but those of 07-10
    stale = {b["code"] for b in got["not_visited"]}
    assert stale == set(buildings) - set(buildings[2:5])
    assert {b["code"]: b["last_visited"] for b in got["not_visited"]}[buildings[0]] == "2026-07-01"
    paged = world.get(f"/v1/workers/{code}/patrols", params={"limit": 1, "offset": 1}).json()
    assert paged["total"] == 3 and [p["date"] for p in paged["items"]] == ["2026-07-10"]
    assert world.get(f"/v1/workers/{code}/patrols", role="outsider").status_code == 403
    assert world.get(f"/v1/workers/{code}/patrols", role="public").status_code == 401
    assert world.get(f"/v1/workers/{code}/patrols", params={"since": "昨天"}).status_code == 422


def test_outsiders_workers_are_their_own_communitys(world: Cogov) -> None:
    code = world.codes["outsider"]
    assert world.get(f"/v1/workers/{code}/buildings", role="outsider").json()["community_code"] == OTHER
    assert world.post("/v1/patrols", _patrol(world, code), role="outsider").status_code == 201


def test_a_resent_patrol_is_stored_once(world: Cogov) -> None:
    code = world.codes["worker"]
    walk = _walk(world, code)
    finding = {"category": "sanitation.cleaning", "description": "楼道堆放杂物", "lon": walk[1][0], "lat": walk[1][1]}
    body = _patrol(world, code, findings=[finding], started_at="2026-09-09T01:00:00Z", ended_at="2026-09-09T02:00:00Z")
    patrols, incidents = world.total(PATROL), world.get("/v1/incidents", params={"limit": 1}).json()["total"]
    key = {"Idempotency-Key": "phone-42-0909"}
    first = world.post("/v1/patrols", body, role="worker", headers=key)
    again = world.post("/v1/patrols", body, role="worker", headers=key)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["findings"][0]["incident_id"] == first.json()["findings"][0]["incident_id"]
    assert world.total(PATROL) == patrols + 1
    assert world.get("/v1/incidents", params={"limit": 1}).json()["total"] == incidents + 1
    other = world.post("/v1/patrols", {**body, "visits": []}, role="worker", headers=key)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]
    elsewhere = world.post("/v1/patrols", body, role="dispatcher", headers=key)  # the key is the sender's own
    assert elsewhere.status_code == 201 and elsewhere.json()["id"] != first.json()["id"]


def test_a_finding_can_be_a_need_for_the_list(world: Cogov) -> None:
    code = world.codes["worker"]
    walk = _walk(world, code)
    need = {"category": "道路亮化", "description": "小区西侧巷道没有路灯，老人夜间出行不便", "lon": walk[3][0],
            "lat": walk[3][1], "as_need": True, "households": 36}
    light = {"category": "infra.streetlight", "description": "路灯不亮", "lon": walk[2][0], "lat": walk[2][1]}
    answer = world.post("/v1/patrols", _patrol(world, code, findings=[light, need]), role="worker")
    assert answer.status_code == 201, answer.text
    reported, listed = answer.json()["findings"]
    assert "incident_id" in reported and "need_id" not in reported
    stored = world.store.get_entity("need", listed["need_id"])
    assert (stored["source"], stored["category"], stored["households"], stored["status"]) == \
        ("网格员走访", "道路亮化", 36, "collected")
    assert stored["community_code"] == world.worker(code)["community_code"]
    assert stored["title"] == need["description"][:40]


@pytest.mark.parametrize("case, status", [("incident category", 422), ("another community", 403)])
def test_a_need_finding_is_checked_before_anything_is_written(world: Cogov, case: str, status: int) -> None:
    code = world.codes["worker"]
    walk = _walk(world, code)
    light = {"category": "infra.streetlight", "description": "路灯不亮", "lon": walk[2][0], "lat": walk[2][1]}
    elsewhere = _walk(world, world.codes["outsider"])[0]
    need = {"category": "infra.streetlight" if case == "incident category" else "道路亮化", "description": "缺路灯",
            "lon": walk[1][0] if case == "incident category" else elsewhere[0],
            "lat": walk[1][1] if case == "incident category" else elsewhere[1], "as_need": True}
    before = (world.total(PATROL), world.total("need"), world.get("/v1/incidents", params={"limit": 1}).json()["total"])
    answer = world.post("/v1/patrols", _patrol(world, code, findings=[light, need]), role="worker")
    assert answer.status_code == status, answer.text
    after = (world.total(PATROL), world.total("need"), world.get("/v1/incidents", params={"limit": 1}).json()["total"])
    assert after == before
