"""三清单: needs (需求清单), resources (资源清单) and projects (项目清单), the matching of resources to a
need, and an incident's promotion to a need. Rules live in ``gridmap.access``/``gridmap.records``; the
workflows in ``gridmap.cogov``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from gridmap import records
from gridmap.api.deps import ActorDep, CoverageDep, Offset, RowId, StoreDep
from gridmap.api.versions import IfMatch, etag, if_match_version
from gridmap.cogov import changes, kinds, matching, needs, projects, resources
from gridmap.cogov.models import (
    NeedChange,
    NeedCreate,
    NeedTransition,
    ProjectCreate,
    ProjectTransition,
    Promote,
    ResourceChange,
    ResourceCreate,
)

router = APIRouter(prefix="/v1", tags=["co-governance: three lists"])

Limit = Annotated[int, Query(ge=1, le=500)]


# needs ------------------------------------------------------------------------------------------------

@router.post("/needs", status_code=201, summary="登记居民需求（需求清单）；有经纬度或地址时定位到网格")
async def create_need(body: NeedCreate, response: Response, store: StoreDep, coverage: CoverageDep,
                      actor: ActorDep) -> dict[str, Any]:
    return etag(response, await run_in_threadpool(needs.create, store, coverage, actor, body))


@router.get("/needs", summary="需求列表（按社区、网格、状态、类别、来源事件筛选；分页）")
async def list_needs(store: StoreDep, coverage: CoverageDep, actor: ActorDep, community: str | None = None,
                     grid: str | None = None, status: Annotated[list[str] | None, Query()] = None,
                     category: str | None = None,
                     incident_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="由该事件转化的需求")] = None,
                     limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    query = needs.query(community=community, grid=grid, status=status, category=category, incident_id=incident_id)
    return await run_in_threadpool(lambda: records.listing(store, coverage, actor, query, limit=limit, offset=offset))


@router.get("/needs/{need_id}", summary="需求详情")
async def get_need(need_id: RowId, response: Response, store: StoreDep, coverage: CoverageDep,
                   actor: ActorDep) -> dict[str, Any]:
    view = await run_in_threadpool(records.get, store, coverage, actor, kinds.NEED, need_id, label=needs.LABEL)
    return etag(response, view)


@router.patch("/needs/{need_id}", summary="修改需求：标题、类别、描述、户数（办结或不予受理后不能修改）；须带 If-Match")
async def change_need(need_id: RowId, body: NeedChange, response: Response, store: StoreDep, coverage: CoverageDep,
                      actor: ActorDep, if_match: IfMatch = None) -> dict[str, Any]:
    version = if_match_version(if_match)
    view = await run_in_threadpool(lambda: changes.change_need(store, coverage, actor, need_id, body, if_match=version))
    return etag(response, view)


@router.post("/needs/{need_id}/transitions", summary="需求流转：受理、不予受理（须说明理由）、办结、重新收集")
async def need_transition(need_id: RowId, body: NeedTransition, response: Response, store: StoreDep,
                          coverage: CoverageDep, actor: ActorDep, if_match: IfMatch = None) -> dict[str, Any]:
    version = if_match_version(if_match)
    view = await run_in_threadpool(lambda: needs.transition(store, coverage, actor, need_id, body, if_match=version))
    return etag(response, view)


@router.get("/needs/{need_id}/history", summary="需求的修改记录：谁、何时、改前改后")
async def need_history(need_id: RowId, store: StoreDep, coverage: CoverageDep, actor: ActorDep
                       ) -> list[dict[str, Any]]:
    return await run_in_threadpool(lambda: records.history(store, coverage, actor, kinds.NEED, need_id,
                                                           label=needs.LABEL))


@router.get("/needs/{need_id}/matches", summary="为需求匹配资源（一呼百应）：按类别、服务社区、技能、距离、可用期排序，附理由")
async def need_matches(need_id: RowId, store: StoreDep, coverage: CoverageDep, actor: ActorDep,
                       limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict[str, Any]:
    return await run_in_threadpool(lambda: matching.matches(store, coverage, actor, need_id, limit=limit))


@router.post("/incidents/{incident_id}/promote", status_code=201,
             summary="事件转为需求（反复出现的事件往往是需求）；需求记下事件编号，可按 incident_id 查到")
async def promote_incident(incident_id: RowId, body: Promote, response: Response, store: StoreDep,
                           coverage: CoverageDep, actor: ActorDep) -> dict[str, Any]:
    view = await run_in_threadpool(needs.promote, store, coverage, actor, incident_id, body)
    return etag(response, view)


# resources --------------------------------------------------------------------------------------------

@router.post("/resources", status_code=201, summary="登记资源（资源清单）：单位、党员或服务团队可提供的资金、场地、设备等")
async def create_resource(body: ResourceCreate, response: Response, store: StoreDep, coverage: CoverageDep,
                          actor: ActorDep) -> dict[str, Any]:
    return etag(response, await run_in_threadpool(resources.create, store, coverage, actor, body))


@router.get("/resources", summary="资源列表（按服务社区、类别、提供方筛选；分页）")
async def list_resources(store: StoreDep, coverage: CoverageDep, actor: ActorDep, community: str | None = None,
                         category: str | None = None, provider_kind: str | None = None,
                         provider_code: str | None = None, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    query = resources.query(community=community, category=category, provider_kind=provider_kind,
                            provider_code=provider_code)
    return await run_in_threadpool(lambda: records.listing(store, coverage, actor, query, limit=limit, offset=offset))


@router.get("/resources/{resource_id}", summary="资源详情")
async def get_resource(resource_id: RowId, response: Response, store: StoreDep, coverage: CoverageDep,
                       actor: ActorDep) -> dict[str, Any]:
    view = await run_in_threadpool(records.get, store, coverage, actor, kinds.RESOURCE, resource_id,
                                   label=resources.LABEL)
    return etag(response, view)


@router.patch("/resources/{resource_id}",
              summary="修改资源：描述、数量、服务社区、可用期、状态（withdrawn 表示不再提供）；须带 If-Match")
async def change_resource(resource_id: RowId, body: ResourceChange, response: Response, store: StoreDep,
                          coverage: CoverageDep, actor: ActorDep, if_match: IfMatch = None) -> dict[str, Any]:
    version = if_match_version(if_match)
    view = await run_in_threadpool(lambda: changes.change_resource(store, coverage, actor, resource_id, body,
                                                                   if_match=version))
    return etag(response, view)


@router.get("/resources/{resource_id}/history", summary="资源的修改记录")
async def resource_history(resource_id: RowId, store: StoreDep, coverage: CoverageDep, actor: ActorDep
                           ) -> list[dict[str, Any]]:
    return await run_in_threadpool(lambda: records.history(store, coverage, actor, kinds.RESOURCE, resource_id,
                                                           label=resources.LABEL))


# projects ---------------------------------------------------------------------------------------------

@router.post("/projects", status_code=201, summary="立项（项目清单）：已受理的需求 + 资源 + 牵头单位")
async def create_project(body: ProjectCreate, response: Response, store: StoreDep, coverage: CoverageDep,
                         actor: ActorDep) -> dict[str, Any]:
    return etag(response, await run_in_threadpool(projects.create, store, coverage, actor, body))


@router.get("/projects", summary="项目列表（按社区、状态、牵头单位筛选；分页）")
async def list_projects(store: StoreDep, coverage: CoverageDep, actor: ActorDep, community: str | None = None,
                        status: Annotated[list[str] | None, Query()] = None, lead_unit: str | None = None,
                        limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    query = projects.query(community=community, status=status, lead_unit=lead_unit)
    return await run_in_threadpool(lambda: records.listing(store, coverage, actor, query, limit=limit, offset=offset))


@router.get("/projects/{project_id}", summary="项目详情")
async def get_project(project_id: RowId, response: Response, store: StoreDep, coverage: CoverageDep,
                      actor: ActorDep) -> dict[str, Any]:
    view = await run_in_threadpool(records.get, store, coverage, actor, kinds.PROJECT, project_id,
                                   label=projects.LABEL)
    return etag(response, view)


@router.post("/projects/{project_id}/transitions",
             summary="项目流转：开工、完工（所含需求办结并记录受益户数）、评价（居民评分）、取消")
async def project_transition(project_id: RowId, body: ProjectTransition, response: Response, store: StoreDep,
                             coverage: CoverageDep, actor: ActorDep, if_match: IfMatch = None) -> dict[str, Any]:
    version = if_match_version(if_match)
    view = await run_in_threadpool(lambda: projects.transition(store, coverage, actor, project_id, body,
                                                               if_match=version))
    return etag(response, view)


@router.get("/projects/{project_id}/history", summary="项目的修改记录")
async def project_history(project_id: RowId, store: StoreDep, coverage: CoverageDep, actor: ActorDep
                          ) -> list[dict[str, Any]]:
    return await run_in_threadpool(lambda: records.history(store, coverage, actor, kinds.PROJECT, project_id,
                                                           label=projects.LABEL))
