from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from gridmap.api.bodies import json_body
from gridmap.api.deps import ActorDep, CoverageDep, SettingsDep, StoreDep
from gridmap.api.ratelimit import RATE_LIMITED, IntakeLimit
from gridmap.errors import InvalidInput
from gridmap.incidents import open311
from gridmap.incidents.images import MAX_PHOTO_BYTES
from gridmap.incidents.photos import MAX_PHOTOS_PER_STAGE

router = APIRouter(prefix="/open311/v2", tags=["open311"])


@router.get("/services.json", summary="Open311: 服务（类别）列表")
async def services() -> list[dict[str, Any]]:
    return open311.services()


def base_url(request: Request) -> str:
    """Where this API is reached, for the absolute ``media_url`` Open311 clients expect."""
    return str(request.base_url).rstrip("/")


@router.get("/requests.json", summary="Open311: 请求列表（不含个人信息；公开类别的照片缩略图见 media_url）")
async def requests(request: Request, store: StoreDep, service_code: str | None = None, status: str | None = None,
                   start_date: str | None = None, end_date: str | None = None) -> list[dict[str, Any]]:
    return await run_in_threadpool(lambda: open311.list_requests(
        store=store, service_code=service_code, status=status, start_date=start_date, end_date=end_date,
        base_url=base_url(request)))


_REQUEST_FIELDS = {"type": "object", "required": ["service_code"], "properties": {
    "service_code": {"type": "string", "description": "类别编码，见 services.json"},
    "lat": {"type": "number"}, "long": {"type": "number"}, "address_string": {"type": "string"},
    "description": {"type": "string"}, "first_name": {"type": "string"}, "last_name": {"type": "string"},
    "phone": {"type": "string"},
}}
_MULTIPART_FIELDS = {**_REQUEST_FIELDS, "properties": {
    **_REQUEST_FIELDS["properties"],
    "media": {"type": "array", "items": {"type": "string", "format": "binary"},
              "description": f"照片（Open311 media 扩展）：JPEG、PNG 或 HEIC，最多 {MAX_PHOTOS_PER_STAGE} 张，每张最多 "
                             f"{MAX_PHOTO_BYTES >> 20} MB；去除位置与设备信息后保存"},
}}
MEDIA_CACHE: Final = "public, max-age=300"
"""Public thumbnails may be cached anywhere, briefly: cancelling a report (作废) takes its photo off within minutes."""
MEDIA_FIELD: Final = "media"
MAX_FORM_FILES: Final = 2 * MAX_PHOTOS_PER_STAGE
"""Files a form may hold before it is refused unread (400); up to this, more than four is a 422 that says so."""


@router.post("/requests.json", status_code=201, summary="Open311: 提交请求（表单或 JSON）",
             dependencies=[IntakeLimit], responses=RATE_LIMITED,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/x-www-form-urlencoded": {"schema": _REQUEST_FIELDS},
                 "multipart/form-data": {"schema": _MULTIPART_FIELDS},
                 "application/json": {"schema": _REQUEST_FIELDS}}}})
async def create_request(request: Request, store: StoreDep, coverage: CoverageDep, actor: ActorDep,
                         settings: SettingsDep) -> list[dict[str, Any]]:
    media: list[tuple[str | None, bytes, str | None]] = []
    if request.headers.get("content-type", "").startswith("application/json"):
        fields = await json_body(request)
    else:
        async with request.form(max_files=MAX_FORM_FILES) as form:
            uploads = form.getlist(MEDIA_FIELD)
            if not all(isinstance(upload, UploadFile) for upload in uploads):
                raise InvalidInput("media 应为上传的照片文件")
            media = [(upload.filename, await upload.read(), upload.content_type)
                     for upload in uploads if isinstance(upload, UploadFile)]
            fields = {key: value for key, value in form.multi_items() if key != MEDIA_FIELD}
        if not all(isinstance(value, str) for value in fields.values()):
            raise InvalidInput("除 media（照片）外，表单字段应为文本，不接受上传文件")
    if not isinstance(fields, dict):
        raise InvalidInput("请求体应为对象")
    return await run_in_threadpool(lambda: open311.create(store=store, coverage=coverage, fields=fields, actor=actor,
                                                          media=media,
                                                          service_area_margin_m=settings.service_area_margin_m))


@router.get("/requests/{request_id}.json", summary="Open311: 单个请求")
async def get_request(request_id: str, request: Request, store: StoreDep) -> list[dict[str, Any]]:
    return open311.get_request(store=store, request_id=request_id, base_url=base_url(request))


@router.get("/media/{photo_id}.jpg", response_class=Response,
            responses={200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "公开类别上报照片的缩略图（最长边 320 像素，已去除位置与设备信息）"}},
            summary="Open311: 请求的照片缩略图（media_url；敏感类别与作废的上报没有）")
async def media(photo_id: Annotated[str, Path(max_length=64)], store: StoreDep) -> Response:
    data = await run_in_threadpool(lambda: open311.media(store=store, photo_id=photo_id))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": MEDIA_CACHE,
                                                            "X-Content-Type-Options": "nosniff"})
