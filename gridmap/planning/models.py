"""Request schema of ``POST /v1/planning/stations`` (pydantic; the checks with staff messages live in
``SitingRequest.check``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gridmap.planning.scenarios import MAX_NAME_LENGTH
from gridmap.planning.scope import MAX_CODE_LENGTH
from gridmap.planning.service import (
    DEFAULT_SPACING,
    MAX_K,
    MAX_SPACING_M,
    MAX_TIME_LIMIT_S,
    MIN_SPACING_M,
    SitingRequest,
)


class StationsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"k": 10, "radius_m": 500, "objective": "max_coverage", "demand": "households", "metric": "network"},
        {"radius_m": 300, "objective": "set_cover", "target_share": 0.9, "metric": "network"},
        {"k": 5, "objective": "p_median", "demand": {"households": 1, "incidents": 1}, "metric": "network"},
        {"k": 3, "radius_m": 500, "demand": "households+needs", "metric": "network"},
        {"k": 10, "radius_m": 500, "county": "140821"},
        {"k": 3, "radius_m": 300, "bbox": [110.75, 35.13, 110.79, 35.16]},
    ]})

    k: int = Field(5, description=f"新站点数（max_coverage、p_median；1 到 {MAX_K}）")
    radius_m: float = Field(500, description="服务半径（米）：300 / 500 / 1000 为 5、10、15 分钟生活圈")
    objective: Literal["max_coverage", "set_cover", "p_median"] = Field(
        "max_coverage", description="max_coverage 最大覆盖；set_cover 达到目标覆盖率的最少站点；p_median 平均步行距离最短")
    target_share: float = Field(0.95, description="set_cover 的目标覆盖率（0–1，含现有站点）")
    demand: Literal["households", "population", "incidents", "needs", "households+needs"] | dict[str, float] = Field(
        "households", description="需求：户数、人口、近 12 个月事件数、未办结居民需求涉及户数（needs）；"
                                  "households+needs 为楼栋户数加上该处未办结需求（已收集、已受理、已立项）涉及的户数；"
                                  "或加权组合如 {\"households\": 1, \"incidents\": 2}")
    metric: Literal["network", "euclidean"] = Field("network", description="network 步行路网距离；euclidean 直线距离")
    capacity: float | None = Field(None, description="每个新站点可服务的户数（需求单位）上限；不填为不限")
    candidates: Literal["auto", "layer", "generated"] = Field(
        "auto", description="候选站点：数据包的 candidates 图层，或沿街生成（路口与沿路点）")
    candidate_spacing_m: float = Field(
        DEFAULT_SPACING, description=f"沿街生成候选点的间距（米，{MIN_SPACING_M:.0f} 到 {MAX_SPACING_M:.0f}）")
    time_limit_s: float = Field(30, description=f"求解时限（秒，最多 {MAX_TIME_LIMIT_S:.0f}）；超时返回当前最好方案与最优性差距")
    community: str | None = Field(None, max_length=MAX_CODE_LENGTH,
                                  description="只在这个社区内选址（社区代码）；需求、候选点都限于该社区，范围外的现有站点照样计入覆盖")
    town: str | None = Field(None, max_length=MAX_CODE_LENGTH, description="只在这个乡镇（街道）内选址（乡镇代码）")
    county: str | None = Field(None, max_length=MAX_CODE_LENGTH, description="只在这个县（市、区）内选址（县级代码）")
    bbox: list[float] | None = Field(None, max_length=4, description=(
        "只在这个范围内选址：[最小经度, 最小纬度, 最大经度, 最大纬度]（WGS84），可与 community、town、county 之一同时使用"))
    name: str | None = Field(None, description=f"方案名称（可选，不超过 {MAX_NAME_LENGTH} 字）；每次选址都保存为一个规划方案")

    def to_request(self) -> SitingRequest:
        return SitingRequest(**self.model_dump(exclude={"name"}))
