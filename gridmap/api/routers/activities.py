"""双服务 activities, members' service hours, and 议事协商 meetings with mediation (issue #13 §3).

Conventions as for incidents: ``{items, total}`` listings with ``limit``/``offset``, an ``ETag`` with
the record's version, ``If-Match`` on every change (428 without, 412 when stale), a change log per
record. Who may do what is decided in ``gridmap.access`` through ``gridmap.records``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import ActorDep, CoverageDep, Offset, RowId, StoreDep
from gridmap.api.versions import IfMatch, etag, if_match_version
from gridmap.cogov import activities, meetings
from gridmap.cogov.service_models import ActivityChange, ActivityCreate, MeetingChange, MeetingCreate

router = APIRouter(prefix="/v1", tags=["co-governance"])

Limit = Annotated[int, Query(ge=1, le=500)]
Since = Annotated[str | None, Query(description="日期起（含），如 2026-01-01")]
Until = Annotated[str | None, Query(description="日期止（不含），如 2027-01-01")]




# activities --------------------------------------------------------------------------------------

@router.post("/activities", status_code=201, summary="登记双服务活动（环境整治、政策宣讲、隐患排查、爱心公益、志愿服务、文体活动）")
async def create_activity(body: ActivityCreate, response: Response, store: StoreDep, coverage: CoverageDep,
                          actor: ActorDep) -> dict[str, Any]:
    view = await run_in_threadpool(lambda: activities.create(store=store, coverage=coverage, actor=actor, body=body))
    return etag(response, view)


@router.get("/activities", summary="活动列表（按社区、类型、党员、单位、日期筛选；分页）")
async def list_activities(
    store: StoreDep, coverage: CoverageDep, actor: ActorDep,
    community: str | None = None,
    type: Annotated[str | None, Query(description="活动类型")] = None,
    member: Annotated[str | None, Query(description="党员编码")] = None,
    unit: Annotated[str | None, Query(description="共建单位编码")] = None,
    since: Since = None, until: Until = None, limit: Limit = 50, offset: Offset = 0,
) -> dict[str, Any]:
    return await run_in_threadpool(lambda: activities.listing(
        store=store, coverage=coverage, actor=actor, community=community, type=type, member=member, unit=unit,
        since=since, until=until, limit=limit, offset=offset))


@router.get("/activities/{activity_id}", summary="活动详情")
async def get_activity(activity_id: RowId, response: Response, store: StoreDep, coverage: CoverageDep,
                       actor: ActorDep) -> dict[str, Any]:
    view = await run_in_threadpool(lambda: activities.get(store=store, coverage=coverage, actor=actor,
                                                          activity_id=activity_id))
    return etag(response, view)


@router.patch("/activities/{activity_id}", summary="更正活动（参加人员、时长、受益人数；需 If-Match）")
async def change_activity(activity_id: RowId, body: ActivityChange, response: Response, store: StoreDep,
                          coverage: CoverageDep, actor: ActorDep, if_match: IfMatch = None) -> dict[str, Any]:
    version = if_match_version(if_match)
    view = await run_in_threadpool(lambda: activities.change(store=store, coverage=coverage, actor=actor,
                                                             activity_id=activity_id, body=body, if_match=version))
    return etag(response, view)


@router.get("/activities/{activity_id}/history", summary="活动的修改记录：谁、何时、修改前后")
async def activity_history(activity_id: RowId, store: StoreDep, coverage: CoverageDep,
                           actor: ActorDep) -> list[dict[str, Any]]:
    return await run_in_threadpool(lambda: activities.history(store=store, coverage=coverage, actor=actor,
                                                              activity_id=activity_id))


@router.get("/members/{code}/hours", summary="党员服务时长：时段内参加的活动及时长合计")
async def member_hours(code: str, store: StoreDep, coverage: CoverageDep, actor: ActorDep,
                       since: Since = None, until: Until = None) -> dict[str, Any]:
    return await run_in_threadpool(lambda: activities.member_hours(store=store, coverage=coverage, actor=actor,
                                                                   code=code, since=since, until=until))


# meetings ----------------------------------------------------------------------------------------

@router.post("/meetings", status_code=201, summary="登记议事协商会议或调解（居民议事会、季度共商会、调解）")
async def create_meeting(body: MeetingCreate, response: Response, store: StoreDep, coverage: CoverageDep,
                         actor: ActorDep) -> dict[str, Any]:
    view = await run_in_threadpool(lambda: meetings.create(store=store, coverage=coverage, actor=actor, body=body))
    return etag(response, view)


@router.get("/meetings", summary="会议列表（按社区、类型、日期筛选；分页）")
async def list_meetings(
    store: StoreDep, coverage: CoverageDep, actor: ActorDep,
    community: str | None = None,
    kind: Annotated[str | None, Query(description="居民议事会、季度共商会或调解")] = None,
    since: Since = None, until: Until = None, limit: Limit = 50, offset: Offset = 0,
) -> dict[str, Any]:
    return await run_in_threadpool(lambda: meetings.listing(
        store=store, coverage=coverage, actor=actor, community=community, kind=kind, since=since, until=until,
        limit=limit, offset=offset))


@router.get("/meetings/{meeting_id}", summary="会议详情")
async def get_meeting(meeting_id: RowId, response: Response, store: StoreDep, coverage: CoverageDep,
                      actor: ActorDep) -> dict[str, Any]:
    view = await run_in_threadpool(lambda: meetings.get(store=store, coverage=coverage, actor=actor,
                                                        meeting_id=meeting_id))
    return etag(response, view)


@router.patch("/meetings/{meeting_id}", summary="更新会议记录（如再次调解后的结果；需 If-Match）")
async def change_meeting(meeting_id: RowId, body: MeetingChange, response: Response, store: StoreDep,
                         coverage: CoverageDep, actor: ActorDep, if_match: IfMatch = None) -> dict[str, Any]:
    version = if_match_version(if_match)
    view = await run_in_threadpool(lambda: meetings.change(store=store, coverage=coverage, actor=actor,
                                                           meeting_id=meeting_id, body=body, if_match=version))
    return etag(response, view)


@router.get("/meetings/{meeting_id}/history", summary="会议记录的修改记录")
async def meeting_history(meeting_id: RowId, store: StoreDep, coverage: CoverageDep,
                          actor: ActorDep) -> list[dict[str, Any]]:
    return await run_in_threadpool(lambda: meetings.history(store=store, coverage=coverage, actor=actor,
                                                            meeting_id=meeting_id))
