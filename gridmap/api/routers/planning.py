"""Station planning: coverage of today's stations, sites for new ones, the scenarios runs leave (#6, #9).

Every endpoint here is for planners, dispatchers and admins (401 without a token, 403 for workers):
see ``gridmap.planning.service.check_planning_actor`` and docs/security.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import ActorDep, CoverageDep, Offset, RowId, StoreDep
from gridmap.api.responses import FastJSONResponse
from gridmap.auth import Actor
from gridmap.planning import export, scenarios
from gridmap.planning.models import StationsRequest
from gridmap.planning.scope import MAX_CODE_LENGTH, Area
from gridmap.planning.service import (
    SitingResult,
    check_planning_actor,
    plan_coverage,
    plan_stations,
    planner_for,
)

router = APIRouter(prefix="/v1/planning", tags=["planning"])

Format = Annotated[Literal["json", "geojson", "csv"], Query(alias="format", description="json、geojson 或 csv")]


async def planning_actor(actor: ActorDep) -> Actor:
    check_planning_actor(actor)
    return actor


PlannerDep = Annotated[Actor, Depends(planning_actor)]


def _csv(text: str, name: str, headers: dict[str, str] | None = None) -> Response:
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', **(headers or {})})


def _proposals(result: SitingResult, fmt: str, answer: dict[str, Any], name: str,
               headers: dict[str, str]) -> Response:
    if fmt == "csv":
        return _csv(export.proposals_csv(result), f"{name}.csv", headers)
    if fmt == "geojson":
        return FastJSONResponse(export.proposals_geojson(result), media_type="application/geo+json",
                                headers=headers)
    return FastJSONResponse(answer, headers=headers)


@router.get("/coverage", summary="服务站覆盖分析：各社区、网格在服务半径内的户数与人口，可限于一个区域或范围（规划、调度、管理）")
async def coverage(
    coverage: CoverageDep,
    store: StoreDep,
    actor: PlannerDep,
    radius_m: Annotated[float, Query(description="服务半径（米），常用 300 / 500 / 1000")] = 500,
    metric: Annotated[Literal["network", "euclidean"], Query(description="network 步行路网；euclidean 直线")] = "network",
    community: Annotated[str | None, Query(max_length=MAX_CODE_LENGTH, description="只看这个社区（社区代码）")] = None,
    town: Annotated[str | None, Query(max_length=MAX_CODE_LENGTH, description="只看这个乡镇（街道）（乡镇代码）")] = None,
    county: Annotated[str | None, Query(max_length=MAX_CODE_LENGTH, description="只看这个县（市、区）（县级代码）")] = None,
    bbox: Annotated[str | None, Query(max_length=200, description=(
        "只看这个范围内的楼栋：最小经度,最小纬度,最大经度,最大纬度（WGS84）；范围外的服务站照样计入覆盖"))] = None,
    fmt: Format = "json",
) -> Any:
    def run() -> dict[str, Any]:
        area = Area.of(community=community, town=town, county=county, bbox=bbox)
        return plan_coverage(coverage=coverage, store=store, radius_m=radius_m, metric=metric, area=area, actor=actor)

    report = await run_in_threadpool(run)
    if fmt == "csv":
        return _csv(export.coverage_csv(report), f"coverage_{metric}_{radius_m:g}m.csv")
    if fmt == "geojson":
        geometries = planner_for(coverage, store).grid_geometries()
        return FastJSONResponse(export.coverage_geojson(report, geometries), media_type="application/geo+json")
    return FastJSONResponse(report)


@router.post("/stations", summary="新服务站选址：最大覆盖、集合覆盖或 p-中位（HiGHS 精确求解），可限于一个区域或范围；结果保存为规划方案")
async def stations(body: StationsRequest, coverage: CoverageDep, store: StoreDep, actor: PlannerDep,
                   fmt: Format = "json") -> Any:
    """The run is saved as a scenario (``scenario`` in the answer, ``X-Scenario-ID`` for exports);
    ``/maps/planner?scenario=ID`` shows its sites."""
    request = body.to_request()

    def run() -> tuple[SitingResult, dict[str, Any]]:
        result = plan_stations(coverage=coverage, store=store, request=request, actor=actor)
        return result, scenarios.save(store=store, result=result, created_by=actor.label, name=body.name)

    scenarios.check_name(body.name)
    result, saved = await run_in_threadpool(run)
    answer = {**result.answer, "scenario": {"id": saved["id"], "name": saved["name"], "map": saved["map"]}}
    headers = {"X-Scenario-ID": str(saved["id"])}
    return _proposals(result, fmt, answer, f"proposals_{request.objective}", headers)


@router.get("/scenarios", summary="规划方案列表（最新在前）：谁、何时、参数与主要结果")
async def list_scenarios(
    store: StoreDep,
    actor: PlannerDep,
    limit: Annotated[int, Query(ge=1, le=scenarios.MAX_PAGE)] = 50,
    offset: Offset = 0,
) -> Any:
    return FastJSONResponse(await run_in_threadpool(lambda: scenarios.listing(store=store, limit=limit,
                                                                              offset=offset)))


@router.get("/scenarios/{scenario_id}", summary="一个规划方案：参数、覆盖前后、各站点（json、geojson 或 csv）")
async def get_scenario(scenario_id: RowId, store: StoreDep, actor: PlannerDep, fmt: Format = "json") -> Any:
    scenario = await run_in_threadpool(lambda: scenarios.get(store=store, scenario_id=scenario_id))
    if fmt == "json":
        return FastJSONResponse(scenario)
    return _proposals(scenarios.as_result(scenario), fmt, scenario, f"scenario_{scenario_id}", {})
