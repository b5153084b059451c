"""Request bodies of 双服务 activities, meetings, patrols and 包楼院 assignments (issue #13 §3–5), and the
few helpers their services share (store kinds, period parsing, period-filtered listings).

Bodies are pydantic models, so a malformed body is a 422 naming the field before anything is read;
what pydantic cannot know (does this member, building or need exist, is the worker in this community)
the services check, with Chinese messages, before anything is written.
"""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from gridmap.access import record_communities, shape_record
from gridmap.auth import Actor
from gridmap.cogov.kinds import NEED
from gridmap.errors import InvalidInput
from gridmap.records import view_of
from gridmap.store.base import EntityQuery, Store

# store kinds of sections 3-4 (those of sections 1-2 are in gridmap/cogov/kinds.py) ----------------
ACTIVITY: Final = "activity"
MEETING: Final = "meeting"
PATROL: Final = "patrol"
BUILDING_ASSIGNMENT: Final = "building_assignment"

ACTIVITY_TYPES: Final = ("环境整治", "政策宣讲", "隐患排查", "爱心公益", "志愿服务", "文体活动")
"""The six kinds of 双服务 activity the county's report names, in its order."""
ActivityType = Literal["环境整治", "政策宣讲", "隐患排查", "爱心公益", "志愿服务", "文体活动"]

MEETING_KINDS: Final = ("居民议事会", "季度共商会", "调解")
MeetingKind = Literal["居民议事会", "季度共商会", "调解"]
MEDIATION: Final = "调解"
MEDIATION_OUTCOMES: Final = ("resolved", "unresolved")

MAX_LIST: Final = 500
"""Members, units, attendees, items, visits, findings per record: a day's work, not a bulk import."""
MAX_TRACK_POINTS: Final = 20_000
"""A day's patrol at one fix every few seconds."""


def _check_codes(values: list[str], what: str) -> list[str]:
    cleaned = [v.strip() for v in values]
    if any(not v for v in cleaned):
        raise ValueError(f"{what}编码不能为空")
    if len(set(cleaned)) != len(cleaned):
        raise ValueError(f"{what}编码有重复")
    return cleaned


class ActivityCreate(BaseModel):
    """A 双服务 activity: who served (registered members, co-building units), where, how long, for whom."""

    type: ActivityType = Field(description="活动类型：" + "、".join(ACTIVITY_TYPES))
    community_code: str = Field(min_length=1, max_length=40)
    station_code: str | None = Field(None, max_length=40, description="党群服务站编码（可选）")
    date: dt.date
    title: str | None = Field(None, max_length=200)
    members: list[str] = Field(default_factory=list, max_length=MAX_LIST, description="参加的在职党员编码（M00001）")
    units: list[str] = Field(default_factory=list, max_length=MAX_LIST, description="参加的共建单位编码")
    hours: float = Field(gt=0, le=24, description="每名党员的服务时长（小时）")
    beneficiaries: int = Field(0, ge=0, le=1_000_000, description="受益人数")
    need_id: int | None = Field(None, ge=1)
    project_id: int | None = Field(None, ge=1)

    @field_validator("members")
    @classmethod
    def _members(cls, v: list[str]) -> list[str]:
        return _check_codes(v, "党员")

    @field_validator("units")
    @classmethod
    def _units(cls, v: list[str]) -> list[str]:
        return _check_codes(v, "单位")

    @model_validator(mode="after")
    def _someone(self) -> ActivityCreate:
        if not self.members and not self.units:
            raise ValueError("活动至少要有一名党员 (members) 或一个共建单位 (units)")
        return self


class ActivityChange(BaseModel):
    """Fields of an activity that may be corrected afterwards (the rest define what it was)."""

    title: str | None = Field(None, max_length=200)
    members: list[str] | None = Field(None, max_length=MAX_LIST)
    units: list[str] | None = Field(None, max_length=MAX_LIST)
    hours: float | None = Field(None, gt=0, le=24)
    beneficiaries: int | None = Field(None, ge=0, le=1_000_000)

    @field_validator("members")
    @classmethod
    def _members(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_codes(v, "党员")

    @field_validator("units")
    @classmethod
    def _units(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_codes(v, "单位")


class DecidedProject(BaseModel):
    """A project a meeting decided on for the item's need (项目清单 from 议事协商)."""

    title: str = Field(min_length=1, max_length=200)
    lead_unit_code: str = Field(min_length=1, max_length=40)
    resources: list[int] = Field(default_factory=list, max_length=MAX_LIST)
    planned_start: dt.date | None = None
    planned_end: dt.date | None = None


class MeetingItem(BaseModel):
    need_id: int | None = Field(None, ge=1)
    incident_id: int | None = Field(None, ge=1)
    topic: str = Field(min_length=1, max_length=500)
    decision: str | None = Field(None, max_length=2000)
    outcome: str | None = Field(None, max_length=500, description="调解：resolved（调解成功）或 unresolved（未成功）")
    project: DecidedProject | None = Field(None, description="决定立项：为该项的需求（须已受理）建立项目")

    @model_validator(mode="after")
    def _project_needs_a_need(self) -> MeetingItem:
        if self.project is not None and self.need_id is None:
            raise ValueError("决定立项的议题须关联需求 (need_id)")
        return self


class MeetingCreate(BaseModel):
    """A residents' council, a quarterly joint meeting or a mediation, with what it decided item by item."""

    community_code: str = Field(min_length=1, max_length=40)
    compound: str | None = Field(None, max_length=100, description="小区名称（可选）")
    kind: MeetingKind = Field(description="居民议事会、季度共商会或调解")
    date: dt.date
    attendees: list[str] = Field(default_factory=list, max_length=MAX_LIST,
                                 description="参会人员（党员、单位编码或姓名）")
    items: list[MeetingItem] = Field(min_length=1, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _outcomes(self) -> MeetingCreate:
        decided = [i.need_id for i in self.items if i.project is not None]
        if len(set(decided)) != len(decided):
            raise ValueError("同一需求在一次会议中只能立项一次")
        if self.kind == MEDIATION:
            for i, item in enumerate(self.items):
                if item.outcome not in MEDIATION_OUTCOMES:
                    raise ValueError(f"调解第 {i + 1} 项的结果 (outcome) 应为 resolved 或 unresolved")
        return self


class MeetingChange(BaseModel):
    """A later change to a meeting's record, e.g. a mediation that succeeded at a second sitting."""

    items: list[MeetingItem] | None = Field(None, min_length=1, max_length=MAX_LIST)
    attendees: list[str] | None = Field(None, max_length=MAX_LIST)
    compound: str | None = Field(None, max_length=100)


class Visit(BaseModel):
    building_code: str = Field(min_length=1, max_length=40)
    households_visited: int = Field(0, ge=0, le=10_000)
    note: str | None = Field(None, max_length=1000)


class Finding(BaseModel):
    """Something seen on a patrol: an incident for the closed loop (``category`` an incident category), or
    with ``as_need`` a need for the 需求清单 (``category`` a need category such as 道路亮化)."""

    category: str = Field(min_length=1, max_length=60,
                          description="事件类别编码（见 GET /v1/categories）；as_need 时为需求类别")
    description: str = Field(min_length=1, max_length=4000)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    as_need: bool = Field(False, description="登记为群众需求（需求清单），而不是上报事件")
    title: str | None = Field(None, max_length=200, description="as_need：需求标题（默认取描述的前 40 字）")
    households: int = Field(0, ge=0, le=1_000_000, description="as_need：涉及户数")


class Track(BaseModel):
    type: Literal["LineString"]
    coordinates: list[list[float]] = Field(min_length=2, max_length=MAX_TRACK_POINTS,
                                           description="[经度, 纬度(, 高程或时间, 时间)]")

    @field_validator("coordinates")
    @classmethod
    def _positions(cls, v: list[list[float]]) -> list[list[float]]:
        for i, p in enumerate(v):
            if not 2 <= len(p) <= 4:
                raise ValueError(f"轨迹第 {i + 1} 个点应为 [经度, 纬度] 加可选的第 3、4 个数")
            if not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90):
                raise ValueError(f"轨迹第 {i + 1} 个点的经纬度超出范围")
        return v


class PatrolCreate(BaseModel):
    """A patrol (未呼先应): the track walked, the buildings visited, what was found on the way."""

    worker_code: str = Field(min_length=1, max_length=40)
    started_at: datetime
    ended_at: datetime
    track: Track
    visits: list[Visit] = Field(default_factory=list, max_length=MAX_LIST)
    findings: list[Finding] = Field(default_factory=list, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _times(self) -> PatrolCreate:
        if _utc(self.ended_at) <= _utc(self.started_at):
            raise ValueError("结束时间 (ended_at) 应晚于开始时间 (started_at)")
        return self


class AssignmentSet(BaseModel):
    buildings: list[str] = Field(max_length=20_000, description="该网格员负责（包楼院）的楼栋编码")

    @field_validator("buildings")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        return _check_codes(v, "楼栋")


# shared helpers -----------------------------------------------------------------------------------

def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso_time(moment: datetime) -> str:
    """A moment as stored: UTC, seconds, ``Z`` (sorts as text, like incidents' times)."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_day(value: str | None, name: str) -> str | None:
    """A period bound as a day ``YYYY-MM-DD`` (a full time is cut to its day); 422 when unreadable."""
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        raise InvalidInput(f"{name} 应为日期，如 2026-01-31") from None


def in_period(day: str | None, since: str | None, until: str | None) -> bool:
    """``since`` inclusive, ``until`` exclusive, compared on the day (the first 10 characters)."""
    if day is None:
        return since is None and until is None
    day = day[:10]
    return (since is None or day >= since) and (until is None or day < until)


def scoped_records(store: Store, actor: Actor | None, coverage: Any, query: EntityQuery) -> list[dict[str, Any]]:
    """Every record of the query the actor may read (all of them for ``actor`` None: internal counts)."""
    if actor is not None:
        allowed = record_communities(actor, coverage)
        if allowed is not None:
            wanted = allowed if query.communities is None else allowed & set(query.communities)
            query = EntityQuery(kind=query.kind, communities=tuple(sorted(wanted)), grids=query.grids,
                                statuses=query.statuses, fields=query.fields, contains=query.contains,
                                updated_since=query.updated_since)
    rows, _ = store.query_entities(query)
    return rows


def page(rows: list[dict[str, Any]], *, actor: Actor, coverage: Any, limit: int, offset: int) -> dict[str, Any]:
    """``{items, total}`` of records already filtered (by a period the store cannot filter on)."""
    return {"items": [shape_record(view_of(r), actor=actor, coverage=coverage) for r in rows[offset:offset + limit]],
            "total": len(rows)}


def check_community(coverage: Any, code: str) -> None:
    """A record names a community of the package (422 otherwise: a typo must not create a new one)."""
    region = coverage.region(code)
    if region is None or region.get("level") != "community":
        raise InvalidInput(f"社区 {code} 不存在")


def check_need(store: Store, need_id: int | None, community_code: str, what: str) -> None:
    """A linked need exists and belongs to the same community (a decision cannot settle another's need)."""
    if need_id is None:
        return
    need = store.get_entity(NEED, need_id)
    if need is None:
        raise InvalidInput(f"{what}关联的需求 {need_id} 不存在")
    if need.get("community_code") != community_code:
        raise InvalidInput(f"{what}关联的需求 {need_id} 不属于社区 {community_code}")
