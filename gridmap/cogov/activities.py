"""双服务 activities: registered Party members and co-building units serving a community, and the
service hours each member adds up (issue #13 §3).

An activity names who served (member codes from the registrations, unit codes from the ``units``
layer), so its hours can be counted per member for any period; references are checked before the
record is written, so the report never counts an activity of a member nobody registered.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from gridmap import records
from gridmap.access import check_record_read, check_record_write
from gridmap.auth import Actor
from gridmap.cogov.kinds import MEMBER, PROJECT
from gridmap.cogov.service_models import (
    ACTIVITY,
    ACTIVITY_TYPES,
    ActivityChange,
    ActivityCreate,
    check_community,
    check_need,
    in_period,
    page,
    parse_day,
    scoped_records,
)
from gridmap.errors import InvalidInput, NotFound
from gridmap.store.base import EntityQuery, Store

LABEL = "活动"


def _check_members(store: Store, codes: list[str]) -> None:
    missing = [c for c in codes if store.find_entity(MEMBER, c) is None]
    if missing:
        raise InvalidInput(f"党员 {'、'.join(missing[:10])} 未登记（先在 /v1/registrations/members 报到）")


def _check_units(coverage: Any, codes: list[str]) -> None:
    known = set(coverage.units["code"]) if coverage.units is not None else set()
    missing = [c for c in codes if c not in known]
    if missing:
        raise InvalidInput(f"共建单位 {'、'.join(missing[:10])} 不存在")


def _check_station(coverage: Any, code: str | None, community_code: str) -> None:
    if code is None:
        return
    match = coverage.stations[coverage.stations["code"] == code]
    if not len(match):
        raise InvalidInput(f"党群服务站 {code} 不存在")
    if match["community_code"].iat[0] != community_code:
        raise InvalidInput(f"党群服务站 {code} 不在社区 {community_code}")


def _check_project(store: Store, project_id: int | None, community_code: str) -> None:
    if project_id is None:
        return
    project = store.get_entity(PROJECT, project_id)
    if project is None:
        raise InvalidInput(f"活动关联的项目 {project_id} 不存在")
    if project.get("community_code") != community_code:
        raise InvalidInput(f"活动关联的项目 {project_id} 不属于社区 {community_code}")


def create(*, store: Store, coverage: Any, actor: Actor, body: ActivityCreate) -> dict[str, Any]:
    """Record an activity after checking the actor's community first (403 before any 422: an outsider
    learns nothing about another community's members) and then every reference it names."""
    check_record_write(actor, coverage, body.community_code)
    check_community(coverage, body.community_code)
    _check_station(coverage, body.station_code, body.community_code)
    _check_members(store, body.members)
    _check_units(coverage, body.units)
    check_need(store, body.need_id, body.community_code, "活动")
    _check_project(store, body.project_id, body.community_code)
    record = body.model_dump(mode="json")
    return records.create(store, coverage, actor, ACTIVITY, [record])[0]


def get(*, store: Store, coverage: Any, actor: Actor, activity_id: int) -> dict[str, Any]:
    return records.get(store, coverage, actor, ACTIVITY, activity_id, label=LABEL)


def change(*, store: Store, coverage: Any, actor: Actor, activity_id: int, body: ActivityChange,
           if_match: int | None) -> dict[str, Any]:
    changes = body.model_dump(mode="json", exclude_unset=True)
    if not changes:
        raise InvalidInput("没有要修改的字段")
    current = records.fetch(store, ACTIVITY, activity_id, label=LABEL)
    check_record_write(actor, coverage, current.get("community_code"))
    members = changes.get("members", current.get("members", []))
    if not members and not changes.get("units", current.get("units", [])):
        raise InvalidInput("活动至少要有一名党员 (members) 或一个共建单位 (units)")
    _check_members(store, changes.get("members", []))
    _check_units(coverage, changes.get("units", []))
    return records.update(store, coverage, actor, ACTIVITY, activity_id, changes, if_match=if_match, label=LABEL)


def history(*, store: Store, coverage: Any, actor: Actor, activity_id: int) -> list[dict[str, Any]]:
    return records.history(store, coverage, actor, ACTIVITY, activity_id, label=LABEL)


def period_activities(store: Store, coverage: Any, actor: Actor | None, *, community: str | None = None,
                      type: str | None = None, member: str | None = None, unit: str | None = None,
                      since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
    """Activities held in [since, until) the actor may read (``actor`` None: all, for the report)."""
    if type is not None and type not in ACTIVITY_TYPES:
        raise InvalidInput(f"未知的活动类型 {type!r}（可选：{'、'.join(ACTIVITY_TYPES)}）")
    query = EntityQuery(kind=ACTIVITY, communities=(community,) if community else None,
                        fields=(("type", type),) if type else (),
                        contains=tuple((f, v) for f, v in (("members", member), ("units", unit)) if v))
    return [r for r in scoped_records(store, actor, coverage, query) if in_period(r.get("date"), since, until)]


def listing(*, store: Store, coverage: Any, actor: Actor, community: str | None = None, type: str | None = None,
            member: str | None = None, unit: str | None = None, since: str | None = None, until: str | None = None,
            limit: int = 50, offset: int = 0) -> dict[str, Any]:
    rows = period_activities(store, coverage, actor, community=community, type=type, member=member, unit=unit,
                             since=parse_day(since, "since"), until=parse_day(until, "until"))
    return page(rows, actor=actor, coverage=coverage, limit=limit, offset=offset)


def member_hours(*, store: Store, coverage: Any, actor: Actor, code: str, since: str | None = None,
                 until: str | None = None) -> dict[str, Any]:
    """A member's service hours in [since, until): every activity they served in, whichever community it
    was held in (双服务 counts the member's service, not the place), read by staff of the member's own
    community (the member's record decides who may read it)."""
    member = store.find_entity(MEMBER, code)
    if member is None:
        raise NotFound(f"党员 {code} 不存在")
    check_record_read(actor, coverage, member.get("community_code"))
    since, until = parse_day(since, "since"), parse_day(until, "until")
    served = period_activities(store, coverage, None, member=code, since=since, until=until)
    served.sort(key=lambda r: (r["date"], r["n"]))
    by_type: Counter[str] = Counter()
    for r in served:
        by_type[r["type"]] += float(r["hours"])
    return {
        "member": code,
        "community_code": member.get("community_code"),
        "period": {"since": since, "until": until},
        "hours": round(sum(float(r["hours"]) for r in served), 2),
        "activities": len(served),
        "by_type": {t: round(by_type[t], 2) for t in ACTIVITY_TYPES if t in by_type},
        "items": [{"id": r["n"], "date": r["date"], "type": r["type"], "community_code": r["community_code"],
                   "hours": r["hours"]} for r in served],
    }
