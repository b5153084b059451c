from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from gridmap.api.bodies import load_json
from gridmap.api.deps import coverage_of
from gridmap.api.responses import FastJSONResponse
from gridmap.coverage.addresses import MAX_BATCH_ROWS, lookup_address, lookup_batch, lookup_csv
from gridmap.coverage.service import parse_point
from gridmap.errors import InvalidInput
from gridmap.models import LookupAnswer

router = APIRouter(prefix="/v1", tags=["lookup"])

# The hot path reads its query string and state itself: FastAPI's per-parameter validation and
# dependency solving cost about 100 µs a request here, ten times the lookup. The parameters are
# still documented below.
_PARAMETERS = [
    {"name": "lon", "in": "query", "required": False, "description": "经度 (WGS84)",
     "schema": {"type": "number"}, "example": 110.7693},
    {"name": "lat", "in": "query", "required": False, "description": "纬度 (WGS84)",
     "schema": {"type": "number"}, "example": 35.1425},
    {"name": "address", "in": "query", "required": False,
     "description": "地址（代替经纬度），如 临猗县双塔社区丰林小区3号楼2单元501", "schema": {"type": "string"}},
]


@router.get(
    "/lookup",
    response_model=LookupAnswer,
    summary="谁负责这个地点：按经纬度（WGS84）或地址查询网格与网格员",
    openapi_extra={"parameters": _PARAMETERS},
    responses={422: {"description": "坐标或地址缺失、格式错误或超出范围"}},
)
async def lookup(request: Request) -> FastJSONResponse:
    params = request.query_params
    coverage = coverage_of(request)
    address = params.get("address")
    if address is not None:
        return FastJSONResponse(await run_in_threadpool(lookup_address, coverage, address))
    point = parse_point(params.get("lon"), params.get("lat"))
    return FastJSONResponse(coverage.lookup(*point))

_BATCH_ITEM = {"oneOf": [
    {"type": "string", "description": "地址文本"},
    {"type": "object", "properties": {"address": {"type": "string"}}, "required": ["address"]},
    {"type": "object", "properties": {"lon": {"type": "number"}, "lat": {"type": "number"}}, "required": ["lon", "lat"]},
]}
_BATCH_BODY = {"required": True, "content": {
    "application/json": {"schema": {"type": "array", "items": _BATCH_ITEM, "maxItems": MAX_BATCH_ROWS}},
    "text/csv": {"schema": {"type": "string", "description": "含 address 列的 UTF-8 CSV"}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                                       "required": ["file"]}},
}}


@router.post(
    "/lookup/batch",
    summary="批量查询：JSON 数组（地址文本或 {address} / {lon, lat}），或含 address 列的 CSV（上传文件或请求体）",
    description=f"最多 {MAX_BATCH_ROWS} 条；答案与输入顺序一致。CSV 输入返回 CSV，在原有列后追加网格、网格员与匹配信息。",
    responses={413: {"description": f"超过 {MAX_BATCH_ROWS} 条，或请求体超过 body_limit_batch"},
               422: {"description": "请求体无法解析"}},
    openapi_extra={"requestBody": _BATCH_BODY},
)
async def lookup_many(request: Request) -> Any:
    coverage = coverage_of(request)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("请以 file 字段上传 CSV 文件")
        return await _csv_answer(coverage, await upload.read())
    body = await request.body()
    if content_type.startswith("text/csv"):
        return await _csv_answer(coverage, body)
    items = load_json(body)
    if not isinstance(items, list):
        raise InvalidInput("请求体应为 JSON 数组")
    return FastJSONResponse(await run_in_threadpool(lookup_batch, coverage, items))


async def _csv_answer(coverage, raw: bytes) -> Response:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("CSV 须为 UTF-8 编码") from None
    out, _ = await run_in_threadpool(lookup_csv, coverage, text)
    return Response(out.encode("utf-8-sig"), media_type="text/csv; charset=utf-8")
