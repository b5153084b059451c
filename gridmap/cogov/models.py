"""Request bodies of the co-governance API (validated by pydantic: a bad body is a 422 naming the field).

Vocabularies (need categories, resource categories) are checked by the services, with messages that list
what is allowed; the shapes are checked here.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

Code = Annotated[str, Field(min_length=1, max_length=40)]
Text = Annotated[str, Field(min_length=1, max_length=100)]
Skill = Annotated[str, Field(min_length=1, max_length=20)]
MAX_LIST = 200
"""Members of a team, needs or resources of a project, communities a resource serves."""


class Contact(BaseModel):
    name: str | None = Field(None, max_length=50)
    phone: str | None = Field(None, max_length=30)


class UnitRegistrationCreate(BaseModel):
    """双报到 of a co-building unit at a community (a unit may register at several)."""

    unit_code: Code = Field(examples=["U001"], description="共建单位编码（units 图层）")
    community_code: Code = Field(examples=["140821100014"])
    registered_on: date
    contact: Contact | None = Field(None, description="联系人（电话属个人信息，社区外脱敏）")


class MemberRegistrationCreate(BaseModel):
    """双报到 of an in-service Party member at the community where they live."""

    name: str = Field(min_length=1, max_length=50)
    phone: str = Field(min_length=5, max_length=30)
    unit_code: Code = Field(description="所在单位编码（units 图层）")
    community_code: Code
    grid_code: Code | None = Field(None, description="所在网格；须属于该社区")
    skills: list[Skill] = Field(default_factory=list, max_length=20, examples=[["法律咨询", "维修"]])
    registered_on: date


class TeamCreate(BaseModel):
    """党员服务团队: members (codes such as M00001) working from a 党群服务站."""

    name: str = Field(min_length=1, max_length=100)
    community_code: Code
    station_code: Code | None = None
    members: list[Code] = Field(min_length=1, max_length=MAX_LIST)


class NeedCreate(BaseModel):
    """需求清单: what residents of a community need (located by lon/lat or address when given)."""

    community_code: Code
    title: str = Field(min_length=1, max_length=200)
    category: Text = Field(examples=["道路亮化"])
    description: str = Field("", max_length=4000)
    households: int = Field(ge=0, le=1_000_000, description="涉及户数")
    source: Text = Field(examples=["居民提出"])
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    address: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _pair(self) -> NeedCreate:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("经度和纬度须同时给出")
        return self


class NeedTransition(BaseModel):
    action: Literal["accept", "reject", "complete", "reopen"]
    note: str | None = Field(None, max_length=2000)
    reason: str | None = Field(None, max_length=2000, description="reject: 不予受理的理由（必填）")


class Promote(BaseModel):
    """An incident becomes a need (a recurring incident is often a need in disguise)."""

    category: Text = Field(examples=["道路亮化"])
    title: str | None = Field(None, max_length=200, description="默认取事件类别和位置")
    households: int = Field(0, ge=0, le=1_000_000)
    note: str | None = Field(None, max_length=2000)


class Provider(BaseModel):
    kind: Literal["unit", "member", "team"]
    code: Code = Field(examples=["U001", "M00001", "T0001"])


class ResourceCreate(BaseModel):
    """资源清单: what a unit, member or team offers, and the communities it offers it to."""

    provider: Provider
    category: Text = Field(examples=["资金"])
    description: str = Field(min_length=1, max_length=2000)
    quantity: float | None = Field(None, ge=0, le=1e12)
    communities: list[Code] = Field(min_length=1, max_length=MAX_LIST)
    available_until: date | None = None


class ProjectCreate(BaseModel):
    """项目清单: needs and resources agreed into a practical project (为民办实事)."""

    title: str = Field(min_length=1, max_length=200)
    community_code: Code
    needs: list[int] = Field(min_length=1, max_length=MAX_LIST)
    resources: list[int] = Field(default_factory=list, max_length=MAX_LIST)
    lead_unit_code: Code
    planned_start: date | None = None
    planned_end: date | None = None

    @model_validator(mode="after")
    def _order(self) -> ProjectCreate:
        if self.planned_start and self.planned_end and self.planned_end < self.planned_start:
            raise ValueError("计划完成日期不能早于计划开始日期")
        return self


class ProjectTransition(BaseModel):
    action: Literal["start", "complete", "evaluate", "cancel"]
    note: str | None = Field(None, max_length=2000)
    rating: int | None = Field(None, ge=1, le=5, description="evaluate: 居民评价（1–5，必填）")
    households_benefited: int | None = Field(None, ge=0, le=1_000_000,
                                             description="complete: 受益户数（默认为所含需求的户数之和）")


# changes (PATCH): only the fields sent are changed -------------------------------------------------------

RecordStatus = Literal["active", "withdrawn"]
"""``withdrawn``: a registration, team or offer that no longer holds (kept, with its history; the report
counts active ones)."""


class UnitRegistrationChange(BaseModel):
    contact: Contact | None = None
    status: RecordStatus | None = None


class MemberChange(BaseModel):
    phone: str | None = Field(None, min_length=5, max_length=30)
    unit_code: Code | None = None
    grid_code: str | None = Field(None, max_length=40, description="新的网格（须属于本社区）；空字符串表示不编入网格")
    skills: list[Skill] | None = Field(None, max_length=20)
    status: RecordStatus | None = None


class TeamChange(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=100)
    station_code: Code | None = None
    members: list[Code] | None = Field(None, min_length=1, max_length=MAX_LIST)
    status: RecordStatus | None = None


class ResourceChange(BaseModel):
    description: str | None = Field(None, min_length=1, max_length=2000)
    quantity: float | None = Field(None, ge=0, le=1e12)
    communities: list[Code] | None = Field(None, min_length=1, max_length=MAX_LIST)
    available_until: date | None = None
    status: RecordStatus | None = None


class NeedChange(BaseModel):
    title: str | None = Field(None, min_length=1, max_length=200)
    category: Text | None = None
    description: str | None = Field(None, max_length=4000)
    households: int | None = Field(None, ge=0, le=1_000_000)
