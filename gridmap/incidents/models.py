"""Request bodies for incidents (validated by pydantic: a bad body is a 422 naming the field)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

Source = Literal["居民来电", "12345热线", "网格员巡查", "网上", "Open311"]
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
    source: Source = "居民来电"
    priority: Priority = "normal"

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


class Feedback(BaseModel):
    receipt: str
    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=500)
