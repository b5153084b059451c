from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from gridmap.api.bodies import json_body
from gridmap.api.deps import ActorDep, CoverageDep, SettingsDep, StoreDep
from gridmap.api.ratelimit import RATE_LIMITED, IntakeLimit
from gridmap.errors import InvalidInput
from gridmap.incidents import open311

router = APIRouter(prefix="/open311/v2", tags=["open311"])


@router.get("/services.json", summary="Open311: 服务（类别）列表")
async def services() -> list[dict[str, Any]]:
    return open311.services()


@router.get("/requests.json", summary="Open311: 请求列表（不含个人信息）")
async def requests(store: StoreDep, service_code: str | None = None, status: str | None = None,
                   start_date: str | None = None, end_date: str | None = None) -> list[dict[str, Any]]:
    return await run_in_threadpool(lambda: open311.list_requests(
        store=store, service_code=service_code, status=status, start_date=start_date, end_date=end_date))


_REQUEST_FIELDS = {"type": "object", "required": ["service_code"], "properties": {
    "service_code": {"type": "string", "description": "类别编码，见 services.json"},
    "lat": {"type": "number"}, "long": {"type": "number"}, "address_string": {"type": "string"},
    "description": {"type": "string"}, "first_name": {"type": "string"}, "last_name": {"type": "string"},
    "phone": {"type": "string"},
}}


@router.post("/requests.json", status_code=201, summary="Open311: 提交请求（表单或 JSON）",
             dependencies=[IntakeLimit], responses=RATE_LIMITED,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/x-www-form-urlencoded": {"schema": _REQUEST_FIELDS},
                 "application/json": {"schema": _REQUEST_FIELDS}}}})
async def create_request(request: Request, store: StoreDep, coverage: CoverageDep, actor: ActorDep,
                         settings: SettingsDep) -> list[dict[str, Any]]:
    if request.headers.get("content-type", "").startswith("application/json"):
        fields = await json_body(request)
    else:
        fields = dict(await request.form())
        if not all(isinstance(value, str) for value in fields.values()):
            raise InvalidInput("表单字段应为文本，不接受上传文件")
    if not isinstance(fields, dict):
        raise InvalidInput("请求体应为对象")
    return await run_in_threadpool(lambda: open311.create(store=store, coverage=coverage, fields=fields, actor=actor,
                                                          service_area_margin_m=settings.service_area_margin_m))


@router.get("/requests/{request_id}.json", summary="Open311: 单个请求")
async def get_request(request_id: str, store: StoreDep) -> list[dict[str, Any]]:
    return open311.get_request(store=store, request_id=request_id)
