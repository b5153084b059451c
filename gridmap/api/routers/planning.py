"""Station planning: coverage of today's stations, and sites for new ones (issue #6)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import ActorDep, CoverageDep, StoreDep
from gridmap.api.responses import FastJSONResponse
from gridmap.planning import export
from gridmap.planning.models import StationsRequest
from gridmap.planning.service import planner_for, plan_coverage, plan_stations

router = APIRouter(prefix="/v1/planning", tags=["planning"])

Format = Annotated[Literal["json", "geojson", "csv"], Query(alias="format", description="json、geojson 或 csv")]


def _csv(text: str, name: str) -> Response:
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/coverage", summary="服务站覆盖分析：各社区、网格在服务半径内的户数与人口")
async def coverage(
    coverage: CoverageDep,
    store: StoreDep,
    radius_m: Annotated[float, Query(description="服务半径（米），常用 300 / 500 / 1000")] = 500,
    metric: Annotated[Literal["network", "euclidean"], Query(description="network 步行路网；euclidean 直线")] = "network",
    fmt: Format = "json",
) -> Any:
    report = await run_in_threadpool(lambda: plan_coverage(coverage=coverage, store=store, radius_m=radius_m,
                                                           metric=metric))
    if fmt == "csv":
        return _csv(export.coverage_csv(report), f"coverage_{metric}_{radius_m:g}m.csv")
    if fmt == "geojson":
        geometries = planner_for(coverage, store).grid_geometries()
        return FastJSONResponse(export.coverage_geojson(report, geometries), media_type="application/geo+json")
    return FastJSONResponse(report)


@router.post("/stations", summary="新服务站选址：最大覆盖、集合覆盖或 p-中位（HiGHS 精确求解）")
async def stations(body: StationsRequest, coverage: CoverageDep, store: StoreDep, actor: ActorDep,
                   fmt: Format = "json") -> Any:
    """Incidents as demand need a token of a role that may read incident statistics (admin, dispatcher, planner)."""
    request = body.to_request()
    result = await run_in_threadpool(lambda: plan_stations(coverage=coverage, store=store, request=request,
                                                           actor=actor))
    if fmt == "csv":
        return _csv(export.proposals_csv(result), f"proposals_{request.objective}.csv")
    if fmt == "geojson":
        return FastJSONResponse(export.proposals_geojson(result), media_type="application/geo+json")
    return FastJSONResponse(result.answer)
