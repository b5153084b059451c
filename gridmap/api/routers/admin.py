from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gridmap import auth
from gridmap.api.deps import ActorDep, AdminDep, CoverageDep, StoreDep
from gridmap.importer import UploadLimits, import_upload
from gridmap.models import ImportAnswer
from gridmap.versions.model import parse_day

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminDep])


@router.post(
    "/import",
    response_model=ImportAnswer,
    summary="导入数据包（请求体为 GeoPackage 文件或 zip 压缩的数据包目录；dry_run=true 只检查）",
    responses={413: {"description": "请求体超过 body_limit_import，或 zip 解压后过大、条目过多、压缩比异常"},
               422: {"description": "数据包有错误：列出全部问题，未写入任何数据"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary",
                                                "description": "GeoPackage 文件，或 zip 压缩的数据包目录（图层可为 "
                                                               "GeoJSON、GeoPackage、Shapefile、FlatGeobuf、KML/KMZ、"
                                                               "CSV、xlsx，可附 mapping.toml）"}}}}},
)
async def import_package(
    request: Request,
    store: StoreDep,
    actor: ActorDep,
    source_crs: Annotated[str | None, Query(description="覆盖文件自带坐标系，如 EPSG:4490 或 gcj02")] = None,
    encoding: Annotated[str | None, Query(
        description="Shapefile 的 DBF 与 CSV 的文字编码：utf-8、gbk、gb18030（默认按 .cpg，否则自动识别）")] = None,
    dry_run: Annotated[bool, Query(description="只检查并报告，不写入任何数据")] = False,
    effective_from: Annotated[str | None, Query(
        description="网格生效日期 YYYY-MM-DD（默认今天；晚于今天则计划到期生效，见 /v1/versions）")] = None,
    label: Annotated[str, Query(max_length=100, description="网格版本的名称，如 2027年网格调整")] = "",
) -> dict[str, Any]:
    day = parse_day(effective_from, name="effective_from")
    body = await request.body()  # at most body_limit_import bytes (gridmap.api.limits)
    limits = UploadLimits.from_settings(request.app.state.settings)
    report = await run_in_threadpool(import_upload, store, body, source_crs=source_crs, encoding=encoding,
                                     dry_run=dry_run, limits=limits,
                                     max_overlap_m2=request.app.state.settings.import_max_overlap_m2,
                                     effective_from=day, label=label, actor=actor.label)
    if not dry_run:
        await run_in_threadpool(request.app.state.coverage.reload)
    return report.to_dict()


class TokenCreate(BaseModel):
    role: str = Field(examples=["dispatcher"])
    worker: str | None = Field(None, description="worker 角色绑定的网格员编码")
    label: str | None = None


@router.post("/tokens", status_code=201, summary="创建令牌（只显示一次；库中只存哈希）")
async def create_token(body: TokenCreate, store: StoreDep, coverage: CoverageDep) -> dict[str, Any]:
    token_id, token = auth.create_token(store, role=body.role, worker_code=body.worker, label=body.label,
                                        known_workers=set(coverage.workers["code"]))
    return {"id": token_id, "token": token, "role": body.role, "worker": body.worker}


@router.delete("/tokens/{token_id}", status_code=204, summary="撤销令牌（立即生效）")
async def revoke_token(token_id: str, store: StoreDep) -> None:
    auth.revoke_token(store, token_id)
