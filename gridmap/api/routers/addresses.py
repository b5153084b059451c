"""The standard address library as staff maintain it (#12): suggestions as one types, aliases and
standard addresses added and corrected (each change audited and in effect at once), and the texts
nothing was found for. Rules: ``gridmap.access.check_library_edit``; docs/security.md."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import ActorDep, CoverageDep, Offset, RowId, StoreDep
from gridmap.api.versions import etag, if_match_version
from gridmap.coverage import library_edits

router = APIRouter(prefix="/v1/addresses", tags=["addresses"])


class AddressEntry(BaseModel):
    """An alias (``type: alias``: ``alias`` → ``target_code``) or a standard address (``type: address``:
    ``road`` + ``doorplate`` → ``building_code``, optionally the ``compound`` and ``building_no`` it names)."""

    type: Literal["alias", "address"]
    alias: str | None = Field(default=None, max_length=50, examples=["电业局"])
    target_code: str | None = Field(default=None, max_length=100,
                                    description="楼栋、单位、服务站、道路或社区编码，或小区名称")
    road: str | None = Field(default=None, max_length=50, examples=["府前街"])
    doorplate: str | None = Field(default=None, max_length=20, examples=["224号"])
    compound: str | None = Field(default=None, max_length=50)
    building_no: str | None = Field(default=None, max_length=20)
    building_code: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=200, description="来源，如 俗称、旧称")


class AddressCorrection(BaseModel):
    """Fields to change; ``retired: true`` withdraws the entry (it stays in the history)."""

    alias: str | None = Field(default=None, max_length=50)
    target_code: str | None = Field(default=None, max_length=100)
    road: str | None = Field(default=None, max_length=50)
    doorplate: str | None = Field(default=None, max_length=20)
    compound: str | None = Field(default=None, max_length=50)
    building_no: str | None = Field(default=None, max_length=20)
    building_code: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=200)
    retired: bool | None = None



@router.get("", summary="地址联想：输入时给出至多 10 个标准地址、小区、道路、社区或别名，附所在网格")
async def suggest(store: StoreDep, coverage: CoverageDep,
                  q: Annotated[str, Query(max_length=50, description="已输入的文字，如 丰林 或 flxq")],
                  limit: Annotated[int, Query(ge=1, le=10)] = 10) -> dict[str, Any]:
    return library_edits.suggest(store, coverage, q, limit=limit)


@router.get("/entries", summary="工作人员维护的别名与标准地址（分页）")
async def list_entries(store: StoreDep, coverage: CoverageDep, actor: ActorDep,
                       type: Annotated[Literal["alias", "address"] | None, Query()] = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Offset = 0) -> dict[str, Any]:
    return await run_in_threadpool(library_edits.list_entries, store, coverage, actor, type_=type, limit=limit,
                                   offset=offset)


@router.post("", status_code=201, summary="新增别名或标准地址：立即生效，记入修改日志")
async def add_entry(body: AddressEntry, response: Response, store: StoreDep, coverage: CoverageDep,
                    actor: ActorDep) -> dict[str, Any]:
    view = await run_in_threadpool(library_edits.add_entry, store, coverage, actor, body.model_dump())
    return etag(response, view)


@router.get("/unmatched", summary="未找到的地址：按文字计数，最常见的在前（据此补充地址库）")
async def unmatched(request: Request, store: StoreDep, actor: ActorDep,
                    since: Annotated[str | None, Query(description="日期 YYYY-MM-DD（含）；不给则为近 30 天")] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Offset = 0) -> dict[str, Any]:
    return await run_in_threadpool(library_edits.unmatched, store, request.app.state.unmatched, actor,
                                   since=since, limit=limit, offset=offset)


@router.get("/{entry_id}", summary="一条别名或标准地址")
async def get_entry(entry_id: RowId, response: Response, store: StoreDep, coverage: CoverageDep,
                    actor: ActorDep) -> dict[str, Any]:
    return etag(response, library_edits.get_entry(store, coverage, actor, entry_id))


@router.patch("/{entry_id}", summary="更正别名或标准地址（需 If-Match）：立即生效，记入修改日志")
async def correct_entry(entry_id: RowId, body: AddressCorrection, response: Response, store: StoreDep,
                        coverage: CoverageDep, actor: ActorDep,
                        if_match: Annotated[str | None, Header(description="记录的 ETag（版本号）；必填")] = None,
                        ) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    view = await run_in_threadpool(
        lambda: library_edits.correct_entry(store, coverage, actor, entry_id, changes, if_match=if_match_version(if_match)))
    return etag(response, view)


@router.get("/{entry_id}/history", summary="修改日志：谁、何时、修改前后")
async def entry_history(entry_id: RowId, store: StoreDep, coverage: CoverageDep, actor: ActorDep
                        ) -> list[dict[str, Any]]:
    return library_edits.entry_history(store, coverage, actor, entry_id)
