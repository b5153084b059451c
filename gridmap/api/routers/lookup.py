from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from gridmap.api.deps import CoverageDep
from gridmap.coverage.service import parse_point
from gridmap.models import LookupAnswer

router = APIRouter(prefix="/v1", tags=["lookup"])


@router.get("/lookup", response_model=LookupAnswer, summary="谁负责这个地点：按经纬度（WGS84）查询网格与网格员")
async def lookup(
    coverage: CoverageDep,
    lon: Annotated[str | None, Query(description="经度 (WGS84)", examples=["110.7693"])] = None,
    lat: Annotated[str | None, Query(description="纬度 (WGS84)", examples=["35.1425"])] = None,
) -> JSONResponse:
    return JSONResponse(coverage.lookup(*parse_point(lon, lat)))
