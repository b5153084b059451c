from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from gridmap.api.deps import CoverageDep
from gridmap.coverage import areas
from gridmap.models import Community

router = APIRouter(prefix="/v1", tags=["areas"])


@router.get("/grids", summary="网格（GeoJSON FeatureCollection）")
def grids(
    coverage: CoverageDep,
    community: Annotated[str | None, Query(description="社区编码或名称")] = None,
) -> dict[str, Any]:
    return areas.grids_collection(coverage, community=community)


@router.get("/grids/{code}", summary="单个网格：边界、网格员、楼栋数与户数")
def grid(code: str, coverage: CoverageDep) -> dict[str, Any]:
    return areas.grid_feature(coverage, code)


@router.get("/workers/{code}/coverage", summary="网格员负责的范围：网格边界、楼栋、户数与人口")
def worker_coverage(code: str, coverage: CoverageDep) -> dict[str, Any]:
    return areas.worker_coverage(coverage, code)


@router.get("/communities", response_model=list[Community], summary="社区列表")
def communities(coverage: CoverageDep) -> list[dict[str, Any]]:
    return areas.communities(coverage)


@router.get("/stations", summary="党群服务站（GeoJSON FeatureCollection）")
def stations(
    coverage: CoverageDep,
    community: Annotated[str | None, Query(description="社区编码或名称")] = None,
) -> dict[str, Any]:
    return areas.stations_collection(coverage, community=community)
