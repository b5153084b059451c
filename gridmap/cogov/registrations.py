"""双报到: co-building units and in-service Party members register at communities; service teams.

Every write goes through ``gridmap.records`` (scope per community, personal fields masked outside it,
the audit log). A member's code (``M00001``) is their per-kind number, kept in ``key`` so that it is
unique and can be found; a team's likewise (``T0001``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from gridmap import records
from gridmap.access import check_record_write
from gridmap.auth import Actor
from gridmap.cogov import kinds
from gridmap.cogov.models import MemberRegistrationCreate, TeamCreate, UnitRegistrationCreate
from gridmap.cogov.places import check_grid, community_name, station_row, unit_row
from gridmap.coverage.service import Coverage
from gridmap.errors import Conflict, InvalidInput
from gridmap.store.base import EntityQuery, Store

CODE_RETRIES = 50
"""Attempts at numbering new members or teams when other writers took the same numbers meanwhile: each
round at least one of the racing writers succeeds, and the others wait a little (jittered) and renumber."""


def unit_registration_record(coverage: Coverage, body: UnitRegistrationCreate) -> dict[str, Any]:
    """The stored form of a unit's registration; a unit registers at a community once (``key``)."""
    unit = unit_row(coverage, body.unit_code)
    contact = body.contact
    return {
        "key": f"{body.unit_code}@{body.community_code}",
        "unit_code": body.unit_code, "unit_name": unit["name"], "unit_category": unit["category"],
        "community_code": body.community_code, "community_name": community_name(coverage, body.community_code),
        "registered_on": body.registered_on.isoformat(),
        "contact_name": contact.name if contact else None, "contact_phone": contact.phone if contact else None,
        "status": "active",
    }


def member_record(coverage: Coverage, body: MemberRegistrationCreate) -> dict[str, Any]:
    unit = unit_row(coverage, body.unit_code)
    name = community_name(coverage, body.community_code)
    if body.grid_code:
        check_grid(coverage, body.grid_code, body.community_code)
    skills = list(dict.fromkeys(s.strip() for s in body.skills if s.strip()))
    return {
        "name": body.name.strip(), "phone": body.phone.strip(), "unit_code": body.unit_code, "unit_name": unit["name"],
        "community_code": body.community_code, "community_name": name, "grid_code": body.grid_code or None,
        "skills": skills, "registered_on": body.registered_on.isoformat(), "status": "active",
    }


def team_record(store: Store, coverage: Coverage, body: TeamCreate) -> dict[str, Any]:
    """A team's members must be registered members of the team's community."""
    name = community_name(coverage, body.community_code)
    station = None
    if body.station_code:
        station = station_row(coverage, body.station_code)
        if station["community_code"] != body.community_code:
            raise InvalidInput(f"党群服务站 {body.station_code} 不属于社区 {body.community_code}")
    codes = list(dict.fromkeys(body.members))
    for code in codes:
        member = find_member(store, code)
        if member is None:
            raise InvalidInput(f"党员 {code} 未报到（没有该编号）")
        if member["community_code"] != body.community_code:
            raise InvalidInput(f"党员 {code} 报到在社区 {member['community_code']}，不能加入本社区的服务团队")
    return {"name": body.name.strip(), "community_code": body.community_code, "community_name": name,
            "station_code": body.station_code, "station_name": station["name"] if station else None,
            "members": codes, "status": "active"}


# numbered records ---------------------------------------------------------------------------------

def _numbered(store: Store, coverage: Coverage, actor: Actor, kind: str, rows: list[dict[str, Any]],
              code_of: Callable[[int], str]) -> list[dict[str, Any]]:
    """Insert records whose ``key`` is the code of the number they will get: the numbers are predicted
    from the kind's count (records are never deleted, so the count is the highest number) and a race
    with another writer shows as a taken key (Conflict), after which the numbering is tried again."""
    for attempt in range(CODE_RETRIES):
        _, total = store.query_entities(EntityQuery(kind=kind), limit=0)
        numbered = [{**row, "key": code_of(total + i + 1)} for i, row in enumerate(rows)]
        try:
            stored = records.create(store, coverage, actor, kind, numbered)
        except Conflict:
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
            continue
        return [with_code(view, code_of) for view in stored]
    raise Conflict("同时登记的人过多，请稍后重试")


def with_code(view: dict[str, Any], code_of: Callable[[int], str]) -> dict[str, Any]:
    """A member's or team's view with its code shown (the code is the record's ``key``, not in views)."""
    return {"id": view["id"], "code": code_of(view["id"]), **{k: v for k, v in view.items() if k != "id"}}


def find_member(store: Store, code: str) -> dict[str, Any] | None:
    """The stored member with this code (``M00001``), or None."""
    return store.find_entity(kinds.MEMBER, code)


def find_team(store: Store, code: str) -> dict[str, Any] | None:
    return store.find_entity(kinds.TEAM, code)


# the services -------------------------------------------------------------------------------------

def register_units(store: Store, coverage: Coverage, actor: Actor, bodies: list[UnitRegistrationCreate]
                   ) -> list[dict[str, Any]]:
    for body in bodies:
        check_record_write(actor, coverage, body.community_code)
    rows = [unit_registration_record(coverage, b) for b in bodies]
    _no_repeats([r["key"] for r in rows], "同一单位在同一社区重复报到")
    try:
        return records.create(store, coverage, actor, kinds.UNIT_REGISTRATION, rows)
    except Conflict as exc:
        raise Conflict(f"该单位已在此社区报到（{exc.message.removeprefix('已存在：')}）") from None


def register_members(store: Store, coverage: Coverage, actor: Actor, bodies: list[MemberRegistrationCreate]
                     ) -> list[dict[str, Any]]:
    for body in bodies:
        check_record_write(actor, coverage, body.community_code)
    rows = [member_record(coverage, b) for b in bodies]
    return _numbered(store, coverage, actor, kinds.MEMBER, rows, kinds.member_code)


def create_team(store: Store, coverage: Coverage, actor: Actor, body: TeamCreate) -> dict[str, Any]:
    check_record_write(actor, coverage, body.community_code)
    return _numbered(store, coverage, actor, kinds.TEAM, [team_record(store, coverage, body)], kinds.team_code)[0]


def _no_repeats(keys: list[str], message: str) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise InvalidInput(f"{message}：{key}")
        seen.add(key)


def member_query(*, community: str | None, grid: str | None, skill: str | None, unit: str | None = None
                 ) -> EntityQuery:
    fields = (("unit_code", unit),) if unit else ()
    return EntityQuery(kind=kinds.MEMBER, communities=(community,) if community else None,
                       grids=(grid,) if grid else None, contains=(("skills", skill),) if skill else (),
                       fields=fields)
