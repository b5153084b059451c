from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from gridmap.api.bodies import load_json
from gridmap.api.deps import coverage_at, version_header
from gridmap.api.responses import FastJSONResponse
from gridmap.coverage import library_edits
from gridmap.coverage.addresses import (
    CSV_COLUMNS,
    MAX_BATCH_ROWS,
    SUMMARY_ROWS,
    levels_header,
    lookup_address,
    lookup_batch,
    lookup_table,
    summary_rows,
)
from gridmap.coverage.service import parse_point
from gridmap.coverage.tables import (
    ADDRESS_COLUMNS,
    ENCODINGS,
    XLSX_MEDIA_TYPE,
    read_table,
    write_csv,
    write_xlsx,
)
from gridmap.errors import InvalidInput
from gridmap.models import LookupAnswer

router = APIRouter(prefix="/v1", tags=["lookup"])

# The hot path reads its query string and state itself: FastAPI's per-parameter validation and
# dependency solving cost about 100 µs a request here, ten times the lookup. The parameters are
# still documented below.
_AT = {"name": "at", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
       "description": "按该日期生效的网格版本作答（YYYY-MM-DD，默认今天；见 /v1/versions）", "example": "2026-03-01"}
_PARAMETERS = [
    {"name": "lon", "in": "query", "required": False, "description": "经度 (WGS84)",
     "schema": {"type": "number"}, "example": 110.7693},
    {"name": "lat", "in": "query", "required": False, "description": "纬度 (WGS84)",
     "schema": {"type": "number"}, "example": 35.1425},
    {"name": "address", "in": "query", "required": False,
     "description": "地址（代替经纬度），如 临猗县双塔社区丰林小区3号楼2单元501", "schema": {"type": "string"}},
    _AT,
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
    coverage, version = await coverage_at(request)
    address = params.get("address")
    if address is not None:
        answer = await run_in_threadpool(_by_address, request, coverage, address)
    else:
        answer = coverage.lookup(*parse_point(params.get("lon"), params.get("lat")))
    if version is not None:
        answer = {**answer, "boundary_version": version}
    return FastJSONResponse(answer, headers=version_header(version))

_BATCH_ITEM = {"oneOf": [
    {"type": "string", "description": "地址文本"},
    {"type": "object", "properties": {"address": {"type": "string"}}, "required": ["address"]},
    {"type": "object", "properties": {"lon": {"type": "number"}, "lat": {"type": "number"}}, "required": ["lon", "lat"]},
]}
_TABLE_FILE = {"type": "string", "format": "binary", "description": "CSV（UTF-8、带 BOM 的 UTF-8、GBK/GB18030）或 .xlsx"}
_BATCH_BODY = {"required": True, "content": {
    "application/json": {"schema": {"type": "array", "items": _BATCH_ITEM, "maxItems": MAX_BATCH_ROWS}},
    "text/csv": {"schema": {"type": "string", "description": "含地址列的 CSV（UTF-8、带 BOM 的 UTF-8 或 GBK/GB18030）"}},
    XLSX_MEDIA_TYPE: {"schema": _TABLE_FILE},
    "multipart/form-data": {"schema": {"type": "object", "properties": {"file": _TABLE_FILE}, "required": ["file"]}},
}}
_BATCH_PARAMETERS = [
    {"name": "encoding", "in": "query", "required": False, "schema": {"type": "string", "enum": sorted(ENCODINGS)},
     "description": "CSV 的编码；不给则自动识别（BOM → UTF-8，否则先试 UTF-8，再按 GB18030 读，GB18030 包含 GBK）"},
    {"name": "column", "in": "query", "required": False, "schema": {"type": "string"},
     "description": f"地址列的列名或 Excel 列字母（如 C）；不给则按列名查找：{'、'.join(ADDRESS_COLUMNS)}"},
    {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": ["csv", "xlsx"]},
     "description": "表格答案的格式；不给则与上传的格式相同（CSV 进 CSV 出，.xlsx 进 .xlsx 出）"},
]
_BATCH_DESCRIPTION = f"""最多 {MAX_BATCH_ROWS} 条；答案与输入顺序一致。

**JSON**：数组，每项为地址文本、`{{"address": …}}` 或 `{{"lon": …, "lat": …}}`；答案为 JSON 数组，无效的一项答 `{{"row", "error"}}`。

**表格（Excel 进，Excel 出）**：请求体为 `text/csv` 或 `{XLSX_MEDIA_TYPE}`，或以 `file` 字段上传（multipart）。
按文件开头识别：zip 开头的是 .xlsx（读第一个可见工作表，公式不计算，只读 Excel 保存的值，所有单元格按文本读），其余按 CSV 读：
UTF-8、带 BOM 的 UTF-8、GBK/GB18030 自动识别，也可用 `encoding` 指定。第一行非空行是表头；
地址列按列名查找（{'、'.join(ADDRESS_COLUMNS)}），或用 `column` 指定。全空的行跳过。

**答案格式**：与上传的格式相同，或用 `format=csv` / `format=xlsx` 指定（不看 `Accept` 头）。
原有的列全部保留，其后追加 {'、'.join(CSV_COLUMNS)}。CSV 答案为带 BOM 的 UTF-8（Excel 直接打开不乱码）；
以 `=`、`+`、`-`、`@`、制表符或回车开头的单元格前加一个单引号，防止 Excel 把它当公式执行（CSV 注入）。
.xlsx 答案的单元格一律写成文本，不写公式。

**汇总**：表格答案带 `X-Match-Levels` 头，按匹配级别计行数（如 `building=812;compound=95;…;none=40`），
`X-Match-Ambiguous` 为有歧义的行数；超过 {SUMMARY_ROWS} 行的 .xlsx 答案另有“汇总”工作表。

**错误**（4xx，整批不作答，不会返回写了一半的文件）：信息指明行号与列，行号与 Excel 中看到的一致（表头为第 1 行），
如“第 12 行 B 列（地址）：地址列为空”“第 7 行：无法按 GBK/GB18030 解码”；找不到地址列、编码或 .xlsx 无法读取为 422；
超过 {MAX_BATCH_ROWS} 行、.xlsx 解压后过大或压缩比异常（压缩炸弹）为 413。
"""


@router.post(
    "/lookup/batch",
    summary="批量查询：JSON 数组（地址文本或 {address} / {lon, lat}），或含地址列的 CSV / Excel（.xlsx）表格",
    description=_BATCH_DESCRIPTION,
    responses={200: {"content": {"application/json": {}, "text/csv": {}, XLSX_MEDIA_TYPE: {}},
                     "description": "JSON 答案，或追加了网格、网格员与匹配列的表格"},
               413: {"description": f"超过 {MAX_BATCH_ROWS} 条，请求体超过 body_limit_batch，或 .xlsx 解压后过大"},
               422: {"description": "请求体无法解析；表格的某行某列有误（信息中指明）"}},
    openapi_extra={"requestBody": _BATCH_BODY, "parameters": _BATCH_PARAMETERS},
)
async def lookup_many(request: Request) -> Any:
    coverage, version = await coverage_at(request)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("请以 file 字段上传 CSV 或 .xlsx 文件")
        return await _table_answer(request, coverage, await upload.read(), version)
    body = await request.body()
    if content_type.startswith(("text/csv", XLSX_MEDIA_TYPE)):
        return await _table_answer(request, coverage, body, version)
    items = load_json(body)
    if not isinstance(items, list):
        raise InvalidInput("请求体应为 JSON 数组")
    answers = await run_in_threadpool(_batch, request, coverage, items)
    return FastJSONResponse(answers, headers=version_header(version))


def _by_address(request: Request, coverage, address: str) -> dict[str, Any]:
    """Staff edits of the library first (another process may have taken one), then the answer; a text
    nothing was found for is counted for the staff's list."""
    store = request.app.state.store
    library_edits.sync(coverage, store)
    answer = lookup_address(coverage, address)
    request.app.state.unmatched.note(answer, address, store)
    return answer


def _batch(request: Request, coverage, items: list[Any]) -> list[dict[str, Any]]:
    store = request.app.state.store
    library_edits.sync(coverage, store)
    answers = lookup_batch(coverage, items)
    for item, answer in zip(items, answers, strict=True):
        text = item if isinstance(item, str) else item.get("address") if isinstance(item, dict) else None
        if isinstance(text, str) and "match" in answer:
            request.app.state.unmatched.note(answer, text, store)
    return answers


async def _table_answer(request: Request, coverage, raw: bytes, version: dict[str, Any] | None) -> Response:
    params = request.query_params
    wanted = params.get("format")
    if wanted not in (None, "", "csv", "xlsx"):
        raise InvalidInput("format 只能是 csv 或 xlsx")
    await run_in_threadpool(library_edits.sync, coverage, request.app.state.store)
    kind, data, summary = await run_in_threadpool(
        _answer_table, coverage, raw, encoding=params.get("encoding"), column=params.get("column"), wanted=wanted)
    headers = {"X-Match-Levels": levels_header(summary), "X-Match-Ambiguous": str(summary.get("ambiguous", 0)),
               "Content-Disposition": f'attachment; filename="lookup.{kind}"', **version_header(version)}
    media_type = XLSX_MEDIA_TYPE if kind == "xlsx" else "text/csv; charset=utf-8"
    return Response(data, media_type=media_type, headers=headers)


def _answer_table(coverage, raw: bytes, *, encoding: str | None, column: str | None,
                  wanted: str | None) -> tuple[str, bytes, Counter]:
    table = read_table(raw, encoding=encoding, max_rows=MAX_BATCH_ROWS)
    header, rows, summary = lookup_table(coverage, table, column=column)
    kind = wanted or table.kind
    if kind == "xlsx":
        sheet = summary_rows(summary, len(rows)) if len(rows) > SUMMARY_ROWS else None
        return kind, write_xlsx(header, rows, summary=sheet), summary
    return kind, write_csv(header, rows), summary
