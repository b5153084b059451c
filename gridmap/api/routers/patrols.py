"""未呼先应: 包楼院 assignments and patrols (issue #13 §4). Rules in ``gridmap.access``: a worker
records only their own patrols; assignments are staff records of the worker's community."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import ActorDep, CoverageDep, Offset, RowId, SettingsDep, StoreDep
from gridmap.api.routers.activities import Limit, Since, Until
from gridmap.api.versions import IfMatch, etag, if_match_version
from gridmap.cogov import assignments, patrols
from gridmap.cogov.service_models import AssignmentSet, PatrolCreate

router = APIRouter(prefix="/v1", tags=["co-governance"])


@router.get("/workers/{code}/buildings", summary="包楼院：网格员负责的楼栋（未分配时为其网格内全部楼栋）")
async def worker_buildings(code: str, response: Response, store: StoreDep, coverage: CoverageDep,
                           actor: ActorDep) -> dict[str, Any]:
    view = await run_in_threadpool(lambda: assignments.view(store=store, coverage=coverage, actor=actor, code=code))
    return etag(response, view)


@router.put("/workers/{code}/buildings", summary="分配网格员负责的楼栋（需 If-Match；从未分配时为 0）")
async def assign_buildings(code: str, body: AssignmentSet, response: Response, store: StoreDep,
                           coverage: CoverageDep, actor: ActorDep, if_match: IfMatch = None) -> dict[str, Any]:
    version = if_match_version(if_match)
    view = await run_in_threadpool(lambda: assignments.assign(store=store, coverage=coverage, actor=actor,
                                                              code=code, body=body, if_match=version))
    return etag(response, view)


@router.post("/patrols", status_code=201, summary="登记巡查：轨迹、走访楼栋、发现的问题（自动上报为事件，来源“网格员巡查”）")
async def create_patrol(
    body: PatrolCreate, response: Response, store: StoreDep, coverage: CoverageDep, actor: ActorDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=200, description="重发时用同一个键：不会重复登记")] = None,
) -> dict[str, Any]:
    view, created = await run_in_threadpool(lambda: patrols.create(
        store=store, coverage=coverage, actor=actor, body=body, service_area_margin_m=settings.service_area_margin_m,
        idempotency_key=idempotency_key))
    if not created:
        response.status_code = 200
    return etag(response, view)


@router.get("/patrols/{patrol_id}", summary="巡查记录详情（含轨迹）")
async def get_patrol(patrol_id: RowId, response: Response, store: StoreDep, coverage: CoverageDep,
                     actor: ActorDep) -> dict[str, Any]:
    view = await run_in_threadpool(lambda: patrols.get(store=store, coverage=coverage, actor=actor,
                                                       patrol_id=patrol_id))
    return etag(response, view)


@router.get("/workers/{code}/patrols",
            summary="网格员的巡查：时段内次数、步行距离、走访楼栋、包联楼栋覆盖率，30天未走访的楼栋")
async def worker_patrols(code: str, store: StoreDep, coverage: CoverageDep, actor: ActorDep,
                         since: Since = None, until: Until = None, limit: Limit = 50,
                         offset: Offset = 0) -> dict[str, Any]:
    return await run_in_threadpool(lambda: patrols.worker_patrols(
        store=store, coverage=coverage, actor=actor, code=code, since=since, until=until, limit=limit,
        offset=offset))
