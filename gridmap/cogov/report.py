"""The county's co-governance report (issue #13 §5): registrations, activities, the three lists,
meetings and mediation, patrols, and a paragraph saying it the way the county's own report does
("全县72家县直单位及1969名在职党员到社区报到，开展环境整治、政策宣讲……等活动86次……").

Every figure is counted from the stored records (``query_entities``), the same records the listings
show, so a figure can always be checked against a listing. The counting rules:

- registrations (units, members) and teams: registered before the end of the period (``until``),
  whatever the start: the report says how many *are* registered. Units count once however many
  communities they serve (a county-wide figure of distinct units; a community's: those registered there).
- activities, meetings, mediation cases, patrols: held in [since, until) (their ``date``).
- needs and projects: recorded in [since, until) (the day the record was created); ``done`` and
  ``completed`` are their status now; households benefited are those of completed (or evaluated) projects.
- patrol coverage: the buildings assigned to the workers in scope (包楼院, by default their grids')
  visited in the period, over all of them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from gridmap.access import record_communities
from gridmap.auth import Actor
from gridmap.cogov import kinds
from gridmap.cogov.activities import period_activities
from gridmap.cogov.assignments import assignments
from gridmap.cogov.meetings import mediation_counts, period_meetings
from gridmap.cogov.patrols import period_patrols
from gridmap.cogov.service_models import ACTIVITY_TYPES, check_community, in_period, parse_day
from gridmap.coverage.tables import write_csv, write_xlsx
from gridmap.errors import Forbidden, InvalidInput
from gridmap.store.base import EntityQuery, Store

DONE_PROJECT: Final = (kinds.PROJECT_COMPLETED, kinds.PROJECT_EVALUATED)
ACTIVE: Final = (None, "active")
"""Member statuses that count as registered (a record without a status predates them)."""


def _day(record: dict[str, Any]) -> str | None:
    """The day a record counts for: its own date where it has one, else the day it was recorded."""
    for name in ("date", "registered_on", "collected_at"):
        if record.get(name):
            return str(record[name])[:10]
    return str(record.get("created_at") or "")[:10] or None


def _records(store: Store, kind: str, community: str | None) -> list[dict[str, Any]]:
    rows, _ = store.query_entities(EntityQuery(kind=kind, communities=(community,) if community else None))
    return rows


def _registered(store: Store, kind: str, community: str | None, until: str | None) -> list[dict[str, Any]]:
    return [r for r in _records(store, kind, community) if in_period(_day(r), None, until)]


def _recorded(store: Store, kind: str, community: str | None, since: str | None, until: str | None
              ) -> list[dict[str, Any]]:
    return [r for r in _records(store, kind, community) if in_period(_day(r), since, until)]


def _project_categories(projects: list[dict[str, Any]], needs: list[dict[str, Any]]) -> dict[str, int]:
    """Completed projects by kind of 实事 (道路亮化, 老旧小区改造 …): the project's own category if it has
    one, else those of the needs it met; most frequent first, as the county's report lists them."""
    need_category = {r["n"]: r.get(kinds.CATEGORY) for r in needs}
    counts: Counter[str] = Counter()
    for project in projects:
        own = project.get(kinds.CATEGORY)
        found = {own} if own else {need_category.get(n) for n in project.get("needs", [])}
        counts.update(c for c in found if c)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def report_scope(actor: Actor, coverage: Any, community: str | None) -> str | None:
    """The community the report is about (None: the whole county). Workers get their own community's
    (asking for another is a 403); planners, dispatchers and admins any, or the county."""
    allowed = record_communities(actor, coverage)
    if community is not None:
        check_community(coverage, community)
    if allowed is None:
        return community
    if community is None:
        if len(allowed) != 1:
            raise Forbidden("只能查看本社区的共建共治报表")
        return next(iter(allowed))
    if community not in allowed:
        raise Forbidden("只能查看本社区的共建共治报表")
    return community


def build(*, store: Store, coverage: Any, actor: Actor, community: str | None = None, since: str | None = None,
          until: str | None = None) -> dict[str, Any]:
    community = report_scope(actor, coverage, community)
    since, until = parse_day(since, "since"), parse_day(until, "until")
    if since and until and since >= until:
        raise InvalidInput("since 应早于 until")
    units = {r.get("unit_code") for r in _registered(store, kinds.UNIT_REGISTRATION, community, until)}
    members = [r for r in _registered(store, kinds.MEMBER, community, until) if r.get("status") in ACTIVE]
    teams = _registered(store, kinds.TEAM, community, until)
    activities = period_activities(store, coverage, None, community=community, since=since, until=until)
    by_type = Counter(r["type"] for r in activities)
    every_need = _records(store, kinds.NEED, None)
    needs = [r for r in every_need if (community is None or r.get("community_code") == community)
             and in_period(_day(r), since, until)]
    needs_done = sum(1 for r in needs if r.get("status") == kinds.NEED_DONE)
    projects = _recorded(store, kinds.PROJECT, community, since, until)
    completed = [r for r in projects if r.get("status") in DONE_PROJECT]
    meetings = period_meetings(store, coverage, None, community=community, since=since, until=until)
    cases, resolved = mediation_counts(meetings)
    patrols = period_patrols(store, coverage, community=community, since=since, until=until)
    visited = {v["building_code"] for p in patrols for v in p.get("visits", [])}
    assigned = {b for codes in assignments(store, coverage, community).values() for b in codes}
    out = {
        "scope": {"community": community, "name": coverage.region_name(community) if community else _county(coverage)},
        "period": {"since": since, "until": until},
        "units_registered": len(units - {None}),
        "members_registered": len(members),
        "teams": len(teams),
        "activities": {"total": len(activities), "by_type": {t: by_type.get(t, 0) for t in ACTIVITY_TYPES},
                       "service_hours": round(sum(float(r["hours"]) * len(r.get("members", [])) for r in activities), 2),
                       "beneficiaries": sum(int(r.get("beneficiaries") or 0) for r in activities)},
        "needs": {"total": len(needs), "done": needs_done, "done_rate": _rate(needs_done, len(needs))},
        "projects": {"total": len(projects), "completed": len(completed),
                     "households_benefited": sum(int(r.get(kinds.HOUSEHOLDS_BENEFITED) or 0) for r in completed),
                     "by_category": _project_categories(completed, every_need)},
        "meetings": len(meetings),
        "mediation": {"cases": cases, "resolved": resolved, "rate": _rate(resolved, cases)},
        "patrols": {"count": len(patrols), "buildings_visited": len(visited),
                    "coverage_share": _rate(len(visited & assigned), len(assigned))},
    }
    out["summary"] = summary(out)
    return out


def _county(coverage: Any) -> str | None:
    counties = coverage.regions[coverage.regions["level"] == "county"]
    return str(counties["name"].iat[0]) if len(counties) else None


def _listed(names: list[str], *, most: int = 5) -> str:
    return "、".join(names[:most]) + ("等" if names else "")


def summary(r: dict[str, Any]) -> str:
    """The figures as the county's report says them: one paragraph, figures in the order it names them."""
    where = "全县" if r["scope"]["community"] is None else r["scope"]["name"] or r["scope"]["community"]
    period = r["period"]
    when = ""
    if period["since"] or period["until"]:
        when = f"{period['since'] or '建档以来'}至{period['until'] or '今'}，"
    kinds_held = [t for t, n in sorted(r["activities"]["by_type"].items(), key=lambda kv: -kv[1]) if n]
    done_kinds = list(r["projects"]["by_category"])
    parts = [f"{when}{where}{r['units_registered']}家共建单位及{r['members_registered']}名在职党员到社区报到"]
    if r["teams"]:
        parts.append(f"组建党员服务团队{r['teams']}支")
    parts.append(f"开展{_listed(kinds_held)}活动{r['activities']['total']}次")
    parts.append(f"收集群众需求{r['needs']['total']}件、办结{r['needs']['done']}件")
    projects = f"协同办理{_listed(done_kinds)}实事{r['projects']['completed']}件"
    if r["projects"]["households_benefited"]:
        projects += f"，惠及{r['projects']['households_benefited']}户"
    parts.append(projects)
    parts.append(f"召开议事协商会议{r['meetings']}次")
    mediation = r["mediation"]
    if mediation["cases"]:
        parts.append(f"调解矛盾纠纷{mediation['cases']}件、成功化解{mediation['resolved']}件")
    patrols = r["patrols"]
    if patrols["count"]:
        share = patrols["coverage_share"]
        covered = f"，覆盖包联楼栋的{share * 100:.1f}%" if share is not None else ""
        parts.append(f"网格员入户巡查{patrols['count']}次、走访楼栋{patrols['buildings_visited']}栋{covered}")
    return "，".join(parts) + "。"


def table(report: dict[str, Any]) -> tuple[list[str], list[list[object]]]:
    """The report as two columns (指标, 数值) for CSV and Excel."""
    rows: list[list[object]] = [
        ["范围", report["scope"]["name"] or ""],
        ["起始日期", report["period"]["since"] or ""],
        ["截止日期（不含）", report["period"]["until"] or ""],
        ["报到共建单位（家）", report["units_registered"]],
        ["报到在职党员（名）", report["members_registered"]],
        ["党员服务团队（支）", report["teams"]],
        ["开展活动（次）", report["activities"]["total"]],
        *[[f"活动：{t}（次）", n] for t, n in report["activities"]["by_type"].items()],
        ["党员服务时长（小时）", report["activities"]["service_hours"]],
        ["活动受益人数", report["activities"]["beneficiaries"]],
        ["群众需求（件）", report["needs"]["total"]],
        ["需求已办结（件）", report["needs"]["done"]],
        ["需求办结率", report["needs"]["done_rate"] if report["needs"]["done_rate"] is not None else ""],
        ["实事项目（个）", report["projects"]["total"]],
        ["实事项目已完成（件）", report["projects"]["completed"]],
        ["受益户数", report["projects"]["households_benefited"]],
        ["议事协商会议（次）", report["meetings"]],
        ["调解纠纷（件）", report["mediation"]["cases"]],
        ["调解成功（件）", report["mediation"]["resolved"]],
        ["调解成功率", report["mediation"]["rate"] if report["mediation"]["rate"] is not None else ""],
        ["巡查（次）", report["patrols"]["count"]],
        ["走访楼栋（栋）", report["patrols"]["buildings_visited"]],
        ["包联楼栋走访覆盖率", report["patrols"]["coverage_share"] if report["patrols"]["coverage_share"] is not None
         else ""],
        ["综述", report["summary"]],
    ]
    return ["指标", "数值"], rows


def as_file(report: dict[str, Any], fmt: str) -> tuple[bytes, str, str]:
    """(content, media type, file extension) of the report as CSV or .xlsx."""
    header, rows = table(report)
    if fmt == "csv":
        return write_csv(header, rows), "text/csv; charset=utf-8", "csv"
    if fmt == "xlsx":
        return (write_xlsx(header, rows),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")
    raise InvalidInput(f"format 应为 json、csv 或 xlsx，收到 {fmt!r}")
