"""双报到: units' and Party members' registrations at communities, service teams, and bulk import.

The rules (who may read and write which community's records, masking of phones) live in
``gridmap.access`` and ``gridmap.records``; this router only maps HTTP to ``gridmap.cogov``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from gridmap import records
from gridmap.api.deps import ActorDep, CoverageDep, Offset, RowId, StoreDep
from gridmap.api.versions import IfMatch, etag, if_match_version
from gridmap.cogov import bulk, changes, kinds, registrations
from gridmap.cogov.models import (
    MemberChange,
    MemberRegistrationCreate,
    TeamChange,
    TeamCreate,
    UnitRegistrationChange,
    UnitRegistrationCreate,
)
from gridmap.coverage.tables import XLSX_MEDIA_TYPE
from gridmap.errors import InvalidInput, NotFound
from gridmap.store.base import EntityQuery, Store

router = APIRouter(prefix="/v1", tags=["co-governance: registrations"])

Limit = Annotated[int, Query(ge=1, le=500)]
_TABLE_BODY = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}},
}}}






async def _upload(request: Request) -> bytes:
    """The table: the request body (CSV or .xlsx), or the ``file`` field of a form."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("请以 file 字段上传 CSV 或 .xlsx 文件")
        return await upload.read()
    return await request.body()


# units ------------------------------------------------------------------------------------------------

@router.post("/registrations/units", status_code=201, summary="共建单位到社区报到（一个单位可在多个社区报到）")
async def register_unit(body: UnitRegistrationCreate, response: Response, store: StoreDep, coverage: CoverageDep,
                        actor: ActorDep) -> dict[str, Any]:
    views = await run_in_threadpool(registrations.register_units, store, coverage, actor, [body])
    return etag(response, views[0])


@router.post("/registrations/units/import", status_code=201, openapi_extra=_TABLE_BODY,
             summary="批量导入单位报到（CSV/.xlsx；任一行有误则整批不导入，并指明行和列）")
async def import_units(request: Request, store: StoreDep, coverage: CoverageDep, actor: ActorDep,
                       encoding: Annotated[str | None, Query(max_length=20)] = None) -> dict[str, Any]:
    data = await _upload(request)
    views = await run_in_threadpool(lambda: bulk.import_units(store, coverage, actor, data, encoding=encoding))
    return {"items": views, "total": len(views)}


@router.get("/registrations/units", summary="单位报到列表（按社区、单位筛选；分页）")
async def list_unit_registrations(store: StoreDep, coverage: CoverageDep, actor: ActorDep,
                                  community: str | None = None, unit: str | None = None,
                                  limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    query = EntityQuery(kind=kinds.UNIT_REGISTRATION, communities=(community,) if community else None,
                        fields=(("unit_code", unit),) if unit else ())
    return await run_in_threadpool(lambda: records.listing(store, coverage, actor, query, limit=limit, offset=offset))


@router.get("/registrations/units/{registration_id}", summary="单位报到详情")
async def get_unit_registration(registration_id: RowId, response: Response, store: StoreDep, coverage: CoverageDep,
                                actor: ActorDep) -> dict[str, Any]:
    view = await run_in_threadpool(records.get, store, coverage, actor, kinds.UNIT_REGISTRATION, registration_id,
                                   label="单位报到")
    return etag(response, view)


@router.patch("/registrations/units/{registration_id}",
              summary="修改单位报到：联系人、状态（withdrawn 表示不再在此社区报到）；须带 If-Match")
async def change_unit_registration(registration_id: RowId, body: UnitRegistrationChange, response: Response,
                                   store: StoreDep, coverage: CoverageDep, actor: ActorDep,
                                   if_match: IfMatch = None) -> dict[str, Any]:
    version = if_match_version(if_match)
    view = await run_in_threadpool(lambda: changes.change_unit_registration(store, coverage, actor, registration_id,
                                                                            body, if_match=version))
    return etag(response, view)


@router.get("/registrations/units/{registration_id}/history", summary="单位报到的修改记录")
async def unit_registration_history(registration_id: RowId, store: StoreDep, coverage: CoverageDep,
                                    actor: ActorDep) -> list[dict[str, Any]]:
    return await run_in_threadpool(lambda: records.history(store, coverage, actor, kinds.UNIT_REGISTRATION,
                                                           registration_id, label="单位报到"))


# members ----------------------------------------------------------------------------------------------

def _member(view: dict[str, Any]) -> dict[str, Any]:
    return registrations.with_code(view, kinds.member_code)


@router.post("/registrations/members", status_code=201,
             summary="在职党员到居住地社区报到：编入网格、登记技能；返回党员编号")
async def register_member(body: MemberRegistrationCreate, response: Response, store: StoreDep,
                          coverage: CoverageDep, actor: ActorDep) -> dict[str, Any]:
    views = await run_in_threadpool(registrations.register_members, store, coverage, actor, [body])
    return etag(response, views[0])


@router.post("/registrations/members/import", status_code=201, openapi_extra=_TABLE_BODY,
             summary="批量导入党员报到（CSV/.xlsx；任一行有误则整批不导入，并指明行和列）")
async def import_members(request: Request, store: StoreDep, coverage: CoverageDep, actor: ActorDep,
                         encoding: Annotated[str | None, Query(max_length=20)] = None) -> dict[str, Any]:
    data = await _upload(request)
    views = await run_in_threadpool(lambda: bulk.import_members(store, coverage, actor, data, encoding=encoding))
    return {"items": views, "total": len(views)}


@router.get("/members", summary="报到党员列表（按社区、网格、技能、单位筛选；分页；社区外手机号脱敏）")
async def list_members(store: StoreDep, coverage: CoverageDep, actor: ActorDep, community: str | None = None,
                       grid: str | None = None, skill: str | None = None, unit: str | None = None,
                       limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    query = registrations.member_query(community=community, grid=grid, skill=skill, unit=unit)
    answer = await run_in_threadpool(lambda: records.listing(store, coverage, actor, query, limit=limit, offset=offset))
    return {**answer, "items": [_member(v) for v in answer["items"]]}


MemberCode = Annotated[str, Path(max_length=20, description="党员编号，如 M00001", examples=["M00001"])]
TeamCode = Annotated[str, Path(max_length=20, description="服务团队编号，如 T0001", examples=["T0001"])]


def _n(store: Store, kind: str, code: str, label: str) -> int:
    """The per-kind number of the member or team with this code (its ``key``); 404 when there is none."""
    record = store.find_entity(kind, code)
    if record is None:
        raise NotFound(f"{label} {code} 不存在")
    return int(record["n"])


@router.get("/members/{code}", summary="党员详情（按党员编号）")
async def get_member(code: MemberCode, response: Response, store: StoreDep, coverage: CoverageDep,
                     actor: ActorDep) -> dict[str, Any]:
    n = await run_in_threadpool(_n, store, kinds.MEMBER, code, "党员")
    view = await run_in_threadpool(records.get, store, coverage, actor, kinds.MEMBER, n, label="党员")
    return etag(response, _member(view))


@router.patch("/members/{code}", summary="修改党员报到信息：手机、单位、网格、技能、状态；须带 If-Match")
async def change_member(code: MemberCode, body: MemberChange, response: Response, store: StoreDep,
                        coverage: CoverageDep, actor: ActorDep, if_match: IfMatch = None) -> dict[str, Any]:
    version = if_match_version(if_match)
    n = await run_in_threadpool(_n, store, kinds.MEMBER, code, "党员")
    view = await run_in_threadpool(lambda: changes.change_member(store, coverage, actor, n, body, if_match=version))
    return etag(response, _member(view))


@router.get("/members/{code}/history", summary="党员报到信息的修改记录")
async def member_history(code: MemberCode, store: StoreDep, coverage: CoverageDep, actor: ActorDep
                         ) -> list[dict[str, Any]]:
    n = await run_in_threadpool(_n, store, kinds.MEMBER, code, "党员")
    return await run_in_threadpool(lambda: records.history(store, coverage, actor, kinds.MEMBER, n, label="党员"))


# teams ------------------------------------------------------------------------------------------------

def _team(view: dict[str, Any]) -> dict[str, Any]:
    return registrations.with_code(view, kinds.team_code)


@router.post("/teams", status_code=201, summary="组建党员服务团队（成员须为本社区报到党员）")
async def create_team(body: TeamCreate, response: Response, store: StoreDep, coverage: CoverageDep,
                      actor: ActorDep) -> dict[str, Any]:
    view = await run_in_threadpool(registrations.create_team, store, coverage, actor, body)
    return etag(response, view)


@router.get("/teams", summary="党员服务团队列表（按社区、服务站筛选；分页）")
async def list_teams(store: StoreDep, coverage: CoverageDep, actor: ActorDep, community: str | None = None,
                     station: str | None = None, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    query = EntityQuery(kind=kinds.TEAM, communities=(community,) if community else None,
                        fields=(("station_code", station),) if station else ())
    answer = await run_in_threadpool(lambda: records.listing(store, coverage, actor, query, limit=limit, offset=offset))
    return {**answer, "items": [_team(v) for v in answer["items"]]}


@router.get("/teams/{code}", summary="党员服务团队详情（按团队编号）")
async def get_team(code: TeamCode, response: Response, store: StoreDep, coverage: CoverageDep,
                   actor: ActorDep) -> dict[str, Any]:
    n = await run_in_threadpool(_n, store, kinds.TEAM, code, "服务团队")
    view = await run_in_threadpool(records.get, store, coverage, actor, kinds.TEAM, n, label="服务团队")
    return etag(response, _team(view))


@router.patch("/teams/{code}", summary="修改服务团队：名称、服务站、成员、状态；须带 If-Match")
async def change_team(code: TeamCode, body: TeamChange, response: Response, store: StoreDep,
                      coverage: CoverageDep, actor: ActorDep, if_match: IfMatch = None) -> dict[str, Any]:
    version = if_match_version(if_match)
    n = await run_in_threadpool(_n, store, kinds.TEAM, code, "服务团队")
    view = await run_in_threadpool(lambda: changes.change_team(store, coverage, actor, n, body, if_match=version))
    return etag(response, _team(view))


@router.get("/teams/{code}/history", summary="服务团队的修改记录")
async def team_history(code: TeamCode, store: StoreDep, coverage: CoverageDep, actor: ActorDep
                       ) -> list[dict[str, Any]]:
    n = await run_in_threadpool(_n, store, kinds.TEAM, code, "服务团队")
    return await run_in_threadpool(lambda: records.history(store, coverage, actor, kinds.TEAM, n, label="服务团队"))
