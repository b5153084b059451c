from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import ActorDep, CoverageDep, Offset, RowId, SettingsDep, StoreDep
from gridmap.api.ratelimit import RATE_LIMITED, IntakeLimit
from gridmap.api.versions import etag, if_match_version
from gridmap.coverage import library_edits
from gridmap.incidents import service
from gridmap.incidents.categories import category_tree
from gridmap.incidents.models import Feedback, IncidentCreate, TransitionRequest

router = APIRouter(prefix="/v1", tags=["incidents"])



ReceiptHeader = Annotated[str | None, Header(alias="X-Receipt", description="回执码（上报时返回）",
                                            max_length=100)]
ReceiptQuery = Annotated[str | None, Query(description="回执码（供链接使用；优先使用 X-Receipt 请求头，查询串不记入日志）",
                                           max_length=100)]



@router.get("/categories", summary="事件类别（两级），每个叶子类别带时限（小时）和默认处置方")
async def categories() -> list[dict[str, Any]]:
    return category_tree()


@router.post("/incidents", status_code=201, summary="上报事件（公众无需令牌）；返回编号和回执码",
             dependencies=[IntakeLimit], responses=RATE_LIMITED)
async def create_incident(
    body: IncidentCreate,
    request: Request,
    response: Response,
    store: StoreDep,
    coverage: CoverageDep,
    actor: ActorDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    # a key is the sender's own: a staff actor's, or for the public the client address's
    scope = f"public:{request.client.host if request.client else '-'}" if actor.role == "public" else actor.label
    if body.address is not None:
        await run_in_threadpool(library_edits.sync, coverage, store)  # staff edits of the library first
    view, created = await run_in_threadpool(
        lambda: service.intake(store=store, coverage=coverage, body=body, actor=actor,
                               idempotency_key=idempotency_key, idempotency_scope=scope,
                               service_area_margin_m=settings.service_area_margin_m))
    if not created:
        response.status_code = 200
    return etag(response, view)


@router.get("/incidents", summary="事件列表（按状态、类别、社区、网格、处置人、超期、督办、时段、范围筛选；最新或最紧急在前；分页）")
async def list_incidents(
    store: StoreDep,
    coverage: CoverageDep,
    actor: ActorDep,
    status: Annotated[list[str] | None, Query()] = None,
    category: Annotated[list[str] | None, Query(description="叶子或一级类别编码")] = None,
    community: str | None = None,
    grid: str | None = None,
    assignee: str | None = None,
    overdue: bool = False,
    supervised: Annotated[bool, Query(description="未办结且超期或已督办（处置台的“超期/督办”队列）")] = False,
    since: Annotated[str | None, Query(description="上报时间起（含），ISO 8601")] = None,
    until: Annotated[str | None, Query(description="上报时间止（不含），ISO 8601")] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    order: Annotated[Literal["newest", "urgent"], Query(
        description="newest：最新上报在前；urgent：最紧急在前（紧急优先级、未办结、办结时限最早）")] = "newest",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    query = service.build_query(coverage=coverage, actor=actor, status=status, category=category,
                                community=community, grid=grid, assignee=assignee, overdue=overdue,
                                since=since, until=until, bbox=bbox, supervised=supervised, order=order)
    return await run_in_threadpool(
        lambda: service.list_incidents(store=store, coverage=coverage, actor=actor, query=query, limit=limit,
                                       offset=offset))


@router.get("/incidents/stats", summary="统计：按状态、类别、社区、网格计数；响应与处置时长中位数；按时办结率、结案率、满意度")
async def incident_stats(
    store: StoreDep,
    actor: ActorDep,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    return await run_in_threadpool(lambda: service.statistics(store=store, actor=actor, since=since, until=until))


@router.get("/incidents/{incident_id}", summary="事件详情（公众凭回执码查询自己的上报）")
async def get_incident(
    incident_id: RowId, response: Response, store: StoreDep, coverage: CoverageDep, actor: ActorDep,
    x_receipt: ReceiptHeader = None, receipt: ReceiptQuery = None,
) -> dict[str, Any]:
    view = service.get(store=store, coverage=coverage, incident_id=incident_id, actor=actor,
                       receipt=x_receipt or receipt)
    return etag(response, view)


@router.post("/incidents/{incident_id}/transitions", summary="流转：受理、派遣、处置、核查、结案、退回、作废、重办、督办")
async def transition(
    incident_id: RowId,
    body: TransitionRequest,
    response: Response,
    store: StoreDep,
    coverage: CoverageDep,
    actor: ActorDep,
    if_match: Annotated[str | None, Header(description="事件的 ETag（版本号）；必填，缺少时为 428")] = None,
) -> dict[str, Any]:
    version = if_match_version(if_match)
    view = await run_in_threadpool(
        lambda: service.transition(store=store, coverage=coverage, incident_id=incident_id, actor=actor,
                                   request=body, if_match=version))
    return etag(response, view)


@router.get("/incidents/{incident_id}/history", summary="审计日志：谁、何时、从何状态到何状态、备注（只读）")
async def incident_history(
    incident_id: RowId, store: StoreDep, coverage: CoverageDep, actor: ActorDep,
    x_receipt: ReceiptHeader = None, receipt: ReceiptQuery = None,
) -> list[dict[str, Any]]:
    return service.history(store=store, coverage=coverage, incident_id=incident_id, actor=actor,
                           receipt=x_receipt or receipt)


@router.post("/incidents/{incident_id}/feedback", summary="居民评价（凭回执码）")
async def incident_feedback(incident_id: RowId, body: Feedback, store: StoreDep, coverage: CoverageDep,
                            x_receipt: ReceiptHeader = None) -> dict[str, Any]:
    return service.feedback(store=store, coverage=coverage, incident_id=incident_id,
                            receipt=x_receipt or body.receipt, rating=body.rating, comment=body.comment)
