"""The co-governance report (issue #13 §5): every figure equals a count made here, independently,
from the listings (activities, meetings, a worker's buildings and patrols) and from the stored records
of §1–2; for a community and the whole county; as JSON, CSV and .xlsx; by role."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest
from cogov_fixtures import HOME, OTHER, Cogov, cogov_world

from gridmap.cogov import kinds
from gridmap.cogov.sample import load_cogov_sample
from gridmap.settings import SAMPLE_PACKAGE
from gridmap.store.base import EntityQuery

SINCE, UNTIL = "2026-01-01", "2027-01-01"
PERIOD = {"since": SINCE, "until": UNTIL}
TYPES = ("环境整治", "政策宣讲", "隐患排查", "爱心公益", "志愿服务", "文体活动")


def _walk(w: Cogov, code: str) -> list[list[float]]:
    import shapely
    import shapely.geometry

    grids = w.get(f"/v1/workers/{code}/coverage").json()["grids"]["features"]
    centre = shapely.geometry.shape(grids[0]["geometry"]).representative_point()
    return [[centre.x, centre.y], [centre.x + 0.0005, centre.y], [centre.x + 0.0005, centre.y + 0.0004]]


def _populate(w: Cogov) -> None:
    """A year (and a little either side) of co-governance in two communities."""
    for community, unit, day in ((HOME, 0, "2026-01-10"), (HOME, 1, "2026-02-10"), (OTHER, 0, "2026-03-10"),
                                 (HOME, 2, "2027-02-01")):
        code = sorted(set(w.units(HOME)) | set(w.units(OTHER)))[unit]
        w.insert(kinds.UNIT_REGISTRATION, {"key": f"{code}@{community}", "unit_code": code, "community_code": community,
                                           "registered_on": day, "status": "active"})
    members = [w.member(HOME, registered_on=d) for d in ("2026-01-05", "2026-02-05", "2026-03-05")]
    w.member(HOME, registered_on="2027-03-01")
    w.member(HOME, registered_on="2026-04-01", status="withdrawn")
    others = [w.member(OTHER, registered_on="2026-05-01") for _ in range(2)]
    for community, at in ((HOME, "2026-02-01T00:00:00.000Z"), (HOME, "2026-09-01T00:00:00.000Z"),
                          (OTHER, "2026-03-01T00:00:00.000Z")):
        w.insert(kinds.TEAM, {"key": f"T{w.total(kinds.TEAM) + 1:04d}", "name": "党员先锋队", "community_code": community,
                              "members": members[:2], "status": "active"}, at=at)
    lights = [w.need(HOME, category="道路亮化", status=kinds.NEED_DONE, at="2026-03-01T00:00:00.000Z") for _ in range(2)]
    walls = w.need(HOME, category="老旧小区改造", status=kinds.NEED_DONE, households=30, at="2026-04-01T00:00:00.000Z")
    heating = w.need(HOME, category="供暖", status=kinds.NEED_IN_PROJECT, households=124, at="2026-10-01T00:00:00.000Z")
    w.need(HOME, status=kinds.NEED_COLLECTED, at="2026-11-01T00:00:00.000Z")
    w.need(HOME, status=kinds.NEED_DONE, at="2025-11-01T00:00:00.000Z")  # before the period
    w.need(OTHER, category="环境美化", status=kinds.NEED_DONE, at="2026-05-01T00:00:00.000Z")
    w.project(HOME, needs=tuple(lights), status=kinds.PROJECT_COMPLETED, households_benefited=24,
              at="2026-03-05T00:00:00.000Z")
    w.project(HOME, needs=(walls,), status=kinds.PROJECT_EVALUATED, households_benefited=30,
              at="2026-04-05T00:00:00.000Z")
    w.project(HOME, needs=(heating,), status=kinds.PROJECT_IN_PROGRESS, at="2026-10-05T00:00:00.000Z")
    w.project(OTHER, status=kinds.PROJECT_COMPLETED, households_benefited=8, at="2026-05-05T00:00:00.000Z")
    w.project(HOME, status=kinds.PROJECT_COMPLETED, households_benefited=99, at="2025-06-05T00:00:00.000Z")
    for i, (day, kind) in enumerate((("2026-03-12", "环境整治"), ("2026-04-12", "政策宣讲"), ("2026-05-12", "环境整治"),
                                     ("2026-06-12", "文体活动"), ("2025-12-30", "志愿服务"), ("2027-01-01", "爱心公益"))):
        assert w.post("/v1/activities", {"type": kind, "community_code": HOME, "date": day, "members": members[:1 + i % 3],
                                         "units": [], "hours": 2, "beneficiaries": 10 * i}).status_code == 201
    assert w.post("/v1/activities", {"type": "隐患排查", "community_code": OTHER, "date": "2026-07-01",
                                     "members": others, "units": [], "hours": 3, "beneficiaries": 5}).status_code == 201
    meetings = [(HOME, "居民议事会", "2026-03-20", [{"topic": "路灯", "decision": "立项", "need_id": lights[0]}]),
                (HOME, "季度共商会", "2026-06-30", [{"topic": "供暖", "decision": "协调热力公司"}]),
                (HOME, "调解", "2026-07-15", [{"topic": "漏水", "decision": "赔偿", "outcome": "resolved"},
                                            {"topic": "停车", "decision": "划线", "outcome": "resolved"},
                                            {"topic": "噪音", "decision": "再议", "outcome": "unresolved"}]),
                (HOME, "调解", "2027-02-15", [{"topic": "宠物", "decision": "道歉", "outcome": "resolved"}]),
                (OTHER, "调解", "2026-08-15", [{"topic": "占道", "decision": "清理", "outcome": "resolved"}])]
    for community, kind, day, items in meetings:
        answer = w.post("/v1/meetings", {"community_code": community, "kind": kind, "date": day, "items": items})
        assert answer.status_code == 201, answer.text
    for code, day, n in ((w.codes["worker"], "2026-05-01", 2), (w.codes["worker"], "2026-06-01", 3),
                         (w.codes["mate"], "2026-06-02", 1), (w.codes["worker"], "2027-01-05", 4),
                         (w.codes["outsider"], "2026-06-03", 2)):
        buildings = [b["code"] for b in w.get(f"/v1/workers/{code}/buildings").json()["buildings"]][:n]
        answer = w.post("/v1/patrols", {"worker_code": code, "started_at": f"{day}T01:00:00Z",
                                        "ended_at": f"{day}T02:00:00Z",
                                        "track": {"type": "LineString", "coordinates": _walk(w, code)},
                                        "visits": [{"building_code": b, "households_visited": 3} for b in buildings]})
        assert answer.status_code == 201, answer.text


@pytest.fixture(scope="module")
def world(sample_db: Any, copy_store: Any, sample_layers: dict,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cogov]:
    db = copy_store(sample_db, tmp_path_factory.mktemp("report"), "report.gpkg")
    for w in cogov_world(db, sample_layers):
        _populate(w)
        yield w


# the independent count ----------------------------------------------------------------------------

def _in(day: str | None, period: dict[str, str] = PERIOD) -> bool:
    return day is not None and period["since"] <= day[:10] < period["until"]


def _all(w: Cogov, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        got = w.get(path, params={**params, "limit": 500, "offset": len(items)}).json()
        items += got["items"]
        if len(items) >= got["total"]:
            return items


def _stored(w: Cogov, kind: str, community: str | None) -> list[dict[str, Any]]:
    rows, _ = w.store.query_entities(EntityQuery(kind=kind, communities=(community,) if community else None))
    return rows


def _expected(w: Cogov, community: str | None, period: dict[str, str] = PERIOD) -> dict[str, Any]:
    where = {"community": community} if community else {}
    until = period["until"]
    units = {r["unit_code"] for r in _stored(w, kinds.UNIT_REGISTRATION, community) if r["registered_on"] < until}
    members = [r for r in _stored(w, kinds.MEMBER, community)
               if r["registered_on"] < until and r.get("status", "active") == "active"]
    teams = [r for r in _stored(w, kinds.TEAM, community) if r["created_at"] < until]
    needs = [r for r in _stored(w, kinds.NEED, community) if _in(r.get("collected_at") or r["created_at"], period)]
    projects = [r for r in _stored(w, kinds.PROJECT, community) if _in(r["created_at"], period)]
    completed = [r for r in projects if r["status"] in ("completed", "evaluated")]
    activities = _all(w, "/v1/activities", **where, **period)
    meetings = _all(w, "/v1/meetings", **where, **period)
    mediation = [i for m in meetings if m["kind"] == "调解" for i in m["items"]]
    workers = w.coverage.workers
    codes = workers["code"] if community is None else workers.loc[workers["community_code"] == community, "code"]
    patrols, visited, assigned = 0, set(), set()
    for code in codes:
        mine = w.get(f"/v1/workers/{code}/patrols", params=period).json()
        patrols += mine["total"]
        visited |= set(mine["visited"])
        assigned |= {b["code"] for b in w.get(f"/v1/workers/{code}/buildings").json()["buildings"]}
    resolved = sum(1 for i in mediation if i["outcome"] == "resolved")
    return {
        "units_registered": len(units),
        "members_registered": len(members),
        "teams": len(teams),
        "activities": {"total": len(activities), "by_type": {t: Counter(a["type"] for a in activities)[t] for t in TYPES}},
        "needs": {"total": len(needs), "done": sum(1 for r in needs if r["status"] == "done"),
                  "done_rate": round(sum(1 for r in needs if r["status"] == "done") / len(needs), 4)},
        "projects": {"total": len(projects), "completed": len(completed),
                     "households_benefited": sum(r["households_benefited"] for r in completed)},
        "meetings": len(meetings),
        "mediation": {"cases": len(mediation), "resolved": resolved, "rate": round(resolved / len(mediation), 4)},
        "patrols": {"count": patrols, "buildings_visited": len(visited),
                    "coverage_share": round(len(visited & assigned) / len(assigned), 4)},
    }


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    out = {k: report[k] for k in ("units_registered", "members_registered", "teams", "meetings", "mediation")}
    out["activities"] = {k: report["activities"][k] for k in ("total", "by_type")}
    out["needs"] = report["needs"]
    out["projects"] = {k: report["projects"][k] for k in ("total", "completed", "households_benefited")}
    out["patrols"] = report["patrols"]
    return out


@pytest.mark.parametrize("community", [HOME, None], ids=["community", "county"])
def test_the_figures_are_the_listings_counted(world: Cogov, community: str | None) -> None:
    params = {**PERIOD, **({"community": community} if community else {})}
    answer = world.get("/v1/cogovernance/report", role="dispatcher", params=params)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert _figures(report) == _expected(world, community)
    # not vacuous: what was put in shows
    assert report["activities"]["total"] >= 4 and report["mediation"]["cases"] >= 3 and report["patrols"]["count"] >= 3


def test_the_community_figures_by_hand(world: Cogov) -> None:
    """What _populate put in HOME, counted by reading it (guards the independent count itself)."""
    report = world.get("/v1/cogovernance/report", params={**PERIOD, "community": HOME}).json()
    assert (report["units_registered"], report["members_registered"], report["teams"]) == (2, 3, 2)
    assert report["activities"]["total"] == 4
    assert report["activities"]["by_type"] == {"环境整治": 2, "政策宣讲": 1, "隐患排查": 0, "爱心公益": 0,
                                               "志愿服务": 0, "文体活动": 1}
    assert report["needs"] == {"total": 5, "done": 3, "done_rate": 0.6}
    assert report["projects"]["total"] == 3 and report["projects"]["completed"] == 2
    assert report["projects"]["households_benefited"] == 54
    assert report["projects"]["by_category"] == {"老旧小区改造": 1, "道路亮化": 1}
    assert (report["meetings"], report["mediation"]) == (3, {"cases": 3, "resolved": 2, "rate": 0.6667})
    assert report["patrols"]["count"] == 3


def test_the_summary_says_it_like_the_county(world: Cogov) -> None:
    report = world.get("/v1/cogovernance/report", params=PERIOD).json()
    summary = report["summary"]
    assert summary.startswith(f"{SINCE}至{UNTIL}，全县{report['units_registered']}家共建单位及"
                              f"{report['members_registered']}名在职党员到社区报到")
    assert "开展环境整治、" in summary and f"等活动{report['activities']['total']}次" in summary
    assert f"等实事{report['projects']['completed']}件" in summary and "道路亮化" in summary
    assert f"调解矛盾纠纷{report['mediation']['cases']}件" in summary and summary.endswith("。")
    own = world.get("/v1/cogovernance/report", role="worker").json()
    assert own["summary"].startswith("双塔社区") and own["scope"]["community"] == HOME


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_report_as_a_table(world: Cogov, fmt: str) -> None:
    report = world.get("/v1/cogovernance/report", params={**PERIOD, "community": HOME}).json()
    answer = world.get("/v1/cogovernance/report", params={**PERIOD, "community": HOME, "format": fmt})
    assert answer.status_code == 200
    assert f"cogovernance-{HOME}.{fmt}" in answer.headers["content-disposition"]
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(answer.content))["结果"]
        rows = [[("" if c is None else str(c)) for c in row] for row in sheet.iter_rows(values_only=True)]
    table = dict(rows[1:])
    assert rows[0] == ["指标", "数值"]
    assert table["开展活动（次）"] == str(report["activities"]["total"])
    assert table["活动：环境整治（次）"] == str(report["activities"]["by_type"]["环境整治"])
    assert table["调解纠纷（件）"] == str(report["mediation"]["cases"])
    assert table["受益户数"] == str(report["projects"]["households_benefited"])
    assert table["综述"] == report["summary"]
    assert world.get("/v1/cogovernance/report", params={"format": "pdf"}).status_code == 422


@pytest.mark.parametrize("role, params, status", [
    ("public", {}, 401), ("worker", {}, 200), ("worker", {"community": OTHER}, 403),
    ("outsider", {}, 200), ("community", {"community": HOME}, 200), ("planner", {}, 200),
    ("dispatcher", {"community": OTHER}, 200), ("admin", {}, 200), ("admin", {"community": "nowhere"}, 422),
    ("admin", {"since": "2027-01-01", "until": "2026-01-01"}, 422), ("admin", {"since": "去年"}, 422),
])
def test_who_reads_which_report(world: Cogov, role: str, params: dict, status: int) -> None:
    answer = world.get("/v1/cogovernance/report", role=role, params=params)
    assert answer.status_code == status, answer.text
    if role == "outsider":
        assert answer.json()["scope"]["community"] == OTHER


# the sample county's year (geodata/build_cogov.py) --------------------------------------------------

SAMPLE_YEAR = {"since": "2025-11-27", "until": "2026-11-27"}


@pytest.fixture(scope="module")
def county(sample_db: Any, copy_store: Any, sample_layers: dict,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cogov]:
    db = copy_store(sample_db, tmp_path_factory.mktemp("county"), "county.gpkg")
    for w in cogov_world(db, sample_layers):
        load_cogov_sample(w.store, SAMPLE_PACKAGE / "cogov.json")
        yield w


def test_the_sample_countys_report_reproduces_its_figures(county: Cogov) -> None:
    """72 units and 1,969 members registered, 57 teams, 80+ activities, 28 projects done, 28 disputes
    settled (12 of them in 丰林小区, all mediated): the figures of 临猗县's report."""
    report = county.get("/v1/cogovernance/report", params=SAMPLE_YEAR).json()
    assert (report["units_registered"], report["members_registered"], report["teams"]) == (72, 1969, 57)
    assert report["activities"]["total"] >= 80 and all(report["activities"]["by_type"].values())
    assert report["projects"]["completed"] == 28 and report["mediation"]["resolved"] == 28
    assert {"道路亮化", "老旧小区改造", "隐患修复"} <= set(report["projects"]["by_category"])
    fenglin = [i for m in _all(county, "/v1/meetings", kind="调解", **SAMPLE_YEAR) if m["compound"] == "丰林小区"
               for i in m["items"]]
    assert len(fenglin) == 12 and {i["outcome"] for i in fenglin} == {"resolved"}
    assert "全县72家共建单位及1969名在职党员到社区报到" in report["summary"]
    assert _figures(report) == _expected(county, None, SAMPLE_YEAR)


def test_the_sample_loads_only_into_an_empty_store(county: Cogov) -> None:
    from gridmap.errors import Conflict

    with pytest.raises(Conflict):
        load_cogov_sample(county.store, SAMPLE_PACKAGE / "cogov.json")


@pytest.mark.sqlite_only
def test_a_fresh_served_store_gets_the_year_of_co_governance(tmp_path: Any) -> None:
    """``gridmap serve`` on an empty store loads the sample county with its co-governance records."""
    from gridmap.bootstrap import open_configured_store
    from gridmap.settings import Settings

    store = open_configured_store(Settings(db=tmp_path / "fresh.gpkg", load_sample_if_empty=True))
    _, members = store.query_entities(EntityQuery(kind=kinds.MEMBER), limit=1)
    _, projects = store.query_entities(EntityQuery(kind=kinds.PROJECT, statuses=("completed", "evaluated")), limit=1)
    assert (members, projects) == (1969, 28)
