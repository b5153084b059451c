"""Request bodies for incidents (validated by pydantic: a bad body is a 422 naming the field)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

Source = Literal["居民上报", "居民来电", "12345热线", "网格员巡查", "网上", "Open311"]
PUBLIC_SOURCE = "居民上报"
"""The channel of a resident's own report (the public intake); Open311 reports say "Open311"."""
Priority = Literal["normal", "urgent"]

MAX_DESCRIPTION = 4000
"""As in Open311 GeoReport v2."""


class Reporter(BaseModel):
    name: str | None = Field(None, max_length=50)
    phone: str | None = Field(None, max_length=30)


class IncidentCreate(BaseModel):
    category: str = Field(description="叶子类别编码，见 GET /v1/categories", examples=["infra.streetlight"])
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    address: str | None = Field(None, max_length=200)
    reporter: Reporter | None = None
    source: Source | None = Field(None, description="来源渠道：公众上报固定为“居民上报”，网格员为“网格员巡查”；"
                                                    "只有指挥中心可以登记其他渠道")
    priority: Priority | None = Field(None, description="优先级：只有指挥中心可以设为 urgent")

    @model_validator(mode="after")
    def _located(self) -> IncidentCreate:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("经度和纬度须同时给出")
        if self.lon is None and not self.address:
            raise ValueError("需要经纬度 (lon, lat) 或地址 (address)")
        return self


class TransitionRequest(BaseModel):
    action: str = Field(examples=["accept"])
    note: str | None = Field(None, max_length=2000)
    assignee: str | None = Field(None, description="dispatch: 指派给该网格员（默认为网格的专职网格员）")
    merge_into: int | None = Field(None, description="cancel: 作为该事件的重复件合并")
    reply: str | None = Field(None, max_length=500, description="给上报居民的公开答复（居民凭回执可见；note 只有工作人员可见）")


class Feedback(BaseModel):
    receipt: str | None = Field(None, max_length=100, description="回执码（也可放在 X-Receipt 请求头中）")
    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=500)
