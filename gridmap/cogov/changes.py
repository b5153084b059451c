"""Corrections to co-governance records after they are recorded (``PATCH`` with ``If-Match``): a member
moves to another grid or learns a skill, a unit's contact changes, a team gains members, an offer runs
out, a need is described better. Only the fields sent change; each is checked as on creation, and
``gridmap.records.update`` applies the version check, the community rules and the change log.

Needs change status only through their transitions, and not at all once done or rejected; projects only
through theirs.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gridmap import records
from gridmap.access import check_record_write
from gridmap.auth import Actor
from gridmap.cogov import kinds
from gridmap.cogov.categories import need_category
from gridmap.cogov.models import (
    MemberChange,
    NeedChange,
    ResourceChange,
    TeamChange,
    UnitRegistrationChange,
)
from gridmap.cogov.places import check_grid, community_name, station_row, unit_row
from gridmap.cogov.registrations import find_member
from gridmap.coverage.service import Coverage
from gridmap.errors import Conflict, InvalidInput
from gridmap.store.base import Store


def _sent(body: BaseModel) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise InvalidInput("没有要修改的字段")
    return changes


def _start(store: Store, coverage: Coverage, actor: Actor, kind: str, n: int, label: str,
           if_match: int | None) -> dict[str, Any]:
    """The record, once the actor may change it and names its current version (428/412 otherwise)."""
    record = records.fetch(store, kind, n, label=label)
    check_record_write(actor, coverage, record.get("community_code"))
    records.check_version(record, if_match)
    return record


def change_unit_registration(store: Store, coverage: Coverage, actor: Actor, n: int, body: UnitRegistrationChange,
                             *, if_match: int | None) -> dict[str, Any]:
    sent = _sent(body)
    _start(store, coverage, actor, kinds.UNIT_REGISTRATION, n, "单位报到", if_match)
    changes: dict[str, Any] = {}
    if "contact" in sent:
        contact = body.contact
        changes.update(contact_name=contact.name if contact else None, contact_phone=contact.phone if contact else None)
    if body.status is not None:
        changes["status"] = body.status
    return records.update(store, coverage, actor, kinds.UNIT_REGISTRATION, n, changes, if_match=if_match,
                          label="单位报到")


def change_member(store: Store, coverage: Coverage, actor: Actor, n: int, body: MemberChange, *,
                  if_match: int | None) -> dict[str, Any]:
    sent = _sent(body)
    record = _start(store, coverage, actor, kinds.MEMBER, n, "党员", if_match)
    changes: dict[str, Any] = {k: v for k, v in sent.items() if v is not None}
    if body.unit_code is not None:
        changes["unit_name"] = unit_row(coverage, body.unit_code)["name"]
    if "grid_code" in sent:
        changes["grid_code"] = body.grid_code or None
        if body.grid_code:
            check_grid(coverage, body.grid_code, record["community_code"])
    if body.skills is not None:
        changes["skills"] = list(dict.fromkeys(s.strip() for s in body.skills if s.strip()))
    if body.phone is not None:
        changes["phone"] = body.phone.strip()
    return records.update(store, coverage, actor, kinds.MEMBER, n, changes, if_match=if_match, label="党员")


def change_team(store: Store, coverage: Coverage, actor: Actor, n: int, body: TeamChange, *,
                if_match: int | None) -> dict[str, Any]:
    sent = _sent(body)
    record = _start(store, coverage, actor, kinds.TEAM, n, "服务团队", if_match)
    changes: dict[str, Any] = {k: v for k, v in sent.items() if v is not None}
    if "station_code" in sent:
        changes["station_code"], changes["station_name"] = body.station_code, None
        if body.station_code:
            station = station_row(coverage, body.station_code)
            if station["community_code"] != record["community_code"]:
                raise InvalidInput(f"党群服务站 {body.station_code} 不属于社区 {record['community_code']}")
            changes["station_name"] = station["name"]
    if body.members is not None:
        codes = list(dict.fromkeys(body.members))
        for code in codes:
            member = find_member(store, code)
            if member is None or member["community_code"] != record["community_code"]:
                raise InvalidInput(f"党员 {code} 不是本社区的报到党员")
        changes["members"] = codes
    if body.name is not None:
        changes["name"] = body.name.strip()
    return records.update(store, coverage, actor, kinds.TEAM, n, changes, if_match=if_match, label="服务团队")


def change_resource(store: Store, coverage: Coverage, actor: Actor, n: int, body: ResourceChange, *,
                    if_match: int | None) -> dict[str, Any]:
    sent = _sent(body)
    _start(store, coverage, actor, kinds.RESOURCE, n, "资源", if_match)
    changes: dict[str, Any] = {k: v for k, v in sent.items() if k in ("description", "quantity", "status")}
    if body.description is None:
        changes.pop("description", None)
    if body.communities is not None:
        communities = list(dict.fromkeys(body.communities))
        changes.update(communities=communities, community_names=[community_name(coverage, c) for c in communities],
                       community_code=communities[0])
    if "available_until" in sent:
        changes["available_until"] = body.available_until.isoformat() if body.available_until else None
    if body.status is None:
        changes.pop("status", None)
    return records.update(store, coverage, actor, kinds.RESOURCE, n, changes, if_match=if_match, label="资源")


def change_need(store: Store, coverage: Coverage, actor: Actor, n: int, body: NeedChange, *,
                if_match: int | None) -> dict[str, Any]:
    sent = _sent(body)
    record = _start(store, coverage, actor, kinds.NEED, n, "需求", if_match)
    if record["status"] in (kinds.NEED_DONE, kinds.NEED_REJECTED):
        raise Conflict("已办结或不予受理的需求不能再修改（可先重新收集）")
    if body.category is not None:
        need_category(body.category)
    changes = {k: v for k, v in sent.items() if v is not None}
    if "title" in changes:
        changes["title"] = changes["title"].strip()
    return records.update(store, coverage, actor, kinds.NEED, n, changes, if_match=if_match, label="需求")
