"""需求清单: residents' needs, collected per community, placed in a grid, taken through
collected → accepted → in_project → done (or rejected with a reason).

``in_project`` and ``done`` by a project are set by ``gridmap.cogov.projects``; a need met without a
project (by an activity, by the community itself) is completed here. An incident can become a need
(``promote``): the need keeps ``incident_id`` and the key ``incident:<id>``, so an incident is promoted
once and its need is found from the incident (``GET /v1/needs?incident_id=``).
"""

from __future__ import annotations

from typing import Any, Final

from gridmap import records
from gridmap.access import check_incident_read, check_record_write, coarse_address, redact_text
from gridmap.auth import Actor
from gridmap.cogov import kinds
from gridmap.cogov.categories import PROMOTED_SOURCE, need_category
from gridmap.cogov.models import NeedCreate, NeedTransition, Promote
from gridmap.cogov.places import community_name, locate
from gridmap.coverage.service import Coverage
from gridmap.errors import Conflict, InvalidInput, NotFound
from gridmap.incidents.categories import CATEGORIES
from gridmap.records import now_iso
from gridmap.store.base import EntityQuery, Store

LABEL: Final = "需求"
STATUS_LABELS: Final = {kinds.NEED_COLLECTED: "已收集", kinds.NEED_ACCEPTED: "已受理", kinds.NEED_IN_PROJECT: "已立项",
                        kinds.NEED_DONE: "已办结", kinds.NEED_REJECTED: "不予受理"}

TRANSITIONS: Final = {
    "accept": ((kinds.NEED_COLLECTED,), kinds.NEED_ACCEPTED),
    "reject": ((kinds.NEED_COLLECTED, kinds.NEED_ACCEPTED), kinds.NEED_REJECTED),
    "complete": ((kinds.NEED_ACCEPTED,), kinds.NEED_DONE),
    "reopen": ((kinds.NEED_REJECTED,), kinds.NEED_COLLECTED),
}
"""action → (statuses it may start from, status it leads to); projects move needs in and out of in_project."""

ACTION_LABELS: Final = {"accept": "受理", "reject": "不予受理", "complete": "办结", "reopen": "重新收集"}


def promotion_key(incident_id: int) -> str:
    return f"incident:{incident_id}"


def _record(coverage: Coverage, *, community_code: str, title: str, category: str, description: str,
            households: int, source: str, place: dict[str, Any] | None, address: str | None) -> dict[str, Any]:
    need_category(category)
    name = community_name(coverage, community_code)
    if place is not None and place["community_code"] is None:
        raise InvalidInput(f"位置 ({place['lon']:.5f}, {place['lat']:.5f}) 不在任何社区内，请核对经纬度")
    if place is not None and place["community_code"] != community_code:
        raise InvalidInput(f"需求位置在社区 {place['community_code']}，不在 {community_code}（{name}）；请核对位置或社区")
    return {
        "title": title.strip(), "category": category, "description": description, "households": households,
        "source": source, "community_code": community_code, "community_name": name,
        "grid_code": place["grid_code"] if place else None,
        "lon": place["lon"] if place else None, "lat": place["lat"] if place else None,
        "address": address, "match_level": place["match_level"] if place else None,
        "status": kinds.NEED_COLLECTED, "status_label": STATUS_LABELS[kinds.NEED_COLLECTED],
        "incident_id": None, "project_id": None, "reason": None, "note": None,
        "collected_at": now_iso(), "accepted_at": None, "done_at": None, "rejected_at": None,
    }


def create(store: Store, coverage: Coverage, actor: Actor, body: NeedCreate) -> dict[str, Any]:
    check_record_write(actor, coverage, body.community_code)
    place = locate(coverage, lon=body.lon, lat=body.lat, address=body.address)
    record = _record(coverage, community_code=body.community_code, title=body.title, category=body.category,
                     description=body.description, households=body.households, source=body.source,
                     place=place, address=body.address)
    return records.create(store, coverage, actor, kinds.NEED, [record])[0]


def promote(store: Store, coverage: Coverage, actor: Actor, incident_id: int, body: Promote) -> dict[str, Any]:
    """The incident as a need of its community: its place, its category's name, its description with
    the reporter's personal data redacted (a need is read by the whole community's staff)."""
    incident = store.get_incident(incident_id)
    if incident is None:
        raise NotFound(f"事件 {incident_id} 不存在")
    check_incident_read(actor, coverage, incident)
    community = incident.get("community_code")
    check_record_write(actor, coverage, community)
    if not community:
        raise InvalidInput(f"事件 {incident_id} 不在任何社区内，无法转为社区需求")
    if incident["status"] == "cancelled":
        raise InvalidInput(f"事件 {incident_id} 已作废，不能转为需求")
    found = CATEGORIES.get(incident["category"])
    address = coarse_address(incident.get("address"))
    title = body.title or f"{found.name if found else incident['category']}：{address or incident.get('grid_code') or ''}"
    place = {"lon": incident["lon"], "lat": incident["lat"], "grid_code": incident.get("grid_code"),
             "community_code": community, "match_level": incident.get("match_level")}
    record = _record(coverage, community_code=community, title=title, category=body.category,
                     description=redact_text(incident.get("description"), names=(incident.get("reporter_name"),)) or "",
                     households=body.households, source=PROMOTED_SOURCE, place=place, address=address)
    record.update(key=promotion_key(incident_id), incident_id=incident_id, note=body.note,
                  incident_category=incident["category"])
    try:
        return records.create(store, coverage, actor, kinds.NEED, [record], action="promote")[0]
    except Conflict:
        existing = store.find_entity(kinds.NEED, promotion_key(incident_id))
        raise Conflict(f"事件 {incident_id} 已转为需求 {existing['n'] if existing else ''}") from None


def transition(store: Store, coverage: Coverage, actor: Actor, n: int, body: NeedTransition, *,
               if_match: int | None) -> dict[str, Any]:
    record = records.fetch(store, kinds.NEED, n, label=LABEL)
    check_record_write(actor, coverage, record.get("community_code"))
    records.check_version(record, if_match)
    starts, target = TRANSITIONS[body.action]
    if record["status"] not in starts:
        raise Conflict(f"需求当前为“{STATUS_LABELS[record['status']]}”，不能{ACTION_LABELS[body.action]}"
                       + ("（已立项的需求随项目办结）" if record["status"] == kinds.NEED_IN_PROJECT else ""))
    changes: dict[str, Any] = {"status": target, "status_label": STATUS_LABELS[target], "note": body.note}
    if body.action == "reject":
        if not (body.reason or "").strip():
            raise InvalidInput("不予受理须说明理由（reason）")
        changes.update(reason=body.reason, rejected_at=now_iso())
    elif body.action == "accept":
        changes["accepted_at"] = now_iso()
    elif body.action == "complete":
        changes["done_at"] = now_iso()
    elif body.action == "reopen":
        changes.update(reason=None, rejected_at=None)
    return records.update(store, coverage, actor, kinds.NEED, n, changes, if_match=if_match, label=LABEL,
                          action=body.action)


def query(*, community: str | None, grid: str | None, status: list[str] | None, category: str | None,
          incident_id: int | None) -> EntityQuery:
    for s in status or ():
        if s not in kinds.NEED_STATUSES:
            raise InvalidInput(f"需求状态“{s}”不存在；可用：{'、'.join(kinds.NEED_STATUSES)}")
    fields: list[tuple[str, Any]] = []
    if category:
        fields.append(("category", category))
    if incident_id is not None:
        fields.append(("key", promotion_key(incident_id)))
    return EntityQuery(kind=kinds.NEED, communities=(community,) if community else None,
                       grids=(grid,) if grid else None, statuses=tuple(status) if status else None,
                       fields=tuple(fields))
