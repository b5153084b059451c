"""Incident photos over HTTP: upload (multipart), the list of an incident's photos, the JPEGs themselves.

Parsing only: every decision (who, which stage, which status, which file) is ``gridmap.incidents.photos``
and ``gridmap.access``. A photo is served with ``Cache-Control: private``: a browser may keep it, a shared
cache (a proxy) never, since who may see it depends on who asks.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, File, Form, Path, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import ActorDep, CoverageDep, RowId, StoreDep
from gridmap.api.ratelimit import RATE_LIMITED, IntakeLimit
from gridmap.api.routers.incidents import ReceiptHeader, ReceiptQuery
from gridmap.incidents import photos
from gridmap.incidents.images import OUTPUT_TYPE

router = APIRouter(prefix="/v1", tags=["photos"])

PHOTO_CACHE: Final = "private, max-age=3600"
"""A photo never changes, but who may see it can (a worker moves to another grid): an hour in the reader's
own browser, never in a shared cache."""
PhotoId = Annotated[str, Path(description="照片编号（24 位十六进制）", min_length=1, max_length=64)]
JPEG_RESPONSE: Final = {200: {"content": {OUTPUT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
                              "description": "去除全部元数据（EXIF、GPS、设备信息）的 JPEG"}}


async def read_uploads(uploads: list[UploadFile]) -> list[photos.Upload]:
    """(file name, bytes, content type) of each uploaded file; the request body limit bounds the total."""
    return [(upload.filename, await upload.read(), upload.content_type) for upload in uploads]


def photo_response(data: bytes, photo_id: str, *, cache: str = PHOTO_CACHE) -> Response:
    return Response(data, media_type=OUTPUT_TYPE, headers={
        "Cache-Control": cache, "Vary": "Authorization, Cookie, X-Receipt", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'inline; filename="{photo_id}.jpg"'})


@router.post("/incidents/{incident_id}/photos", status_code=201, dependencies=[IntakeLimit], responses=RATE_LIMITED,
             summary="添加照片（multipart：files 可重复，stage=intake 上报 / before 处置前 / after 处置后；每环节最多 4 张）")
async def add_photos(
    incident_id: RowId,
    files: Annotated[list[UploadFile], File(description="JPEG、PNG 或 HEIC 照片，每张最多 8 MB")],
    stage: Annotated[str, Form(description="intake（上报）、before（处置前）或 after（处置后）")],
    store: StoreDep,
    coverage: CoverageDep,
    actor: ActorDep,
    x_receipt: ReceiptHeader = None,
) -> list[dict[str, Any]]:
    uploads = await read_uploads(files)
    return await run_in_threadpool(lambda: photos.attach_photos(
        store=store, coverage=coverage, incident_id=incident_id, files=uploads, stage=stage, actor=actor,
        receipt=x_receipt))


@router.get("/incidents/{incident_id}/photos", summary="事件照片列表（元数据与地址；按角色可见）")
async def list_photos(incident_id: RowId, store: StoreDep, coverage: CoverageDep, actor: ActorDep,
                      x_receipt: ReceiptHeader = None, receipt: ReceiptQuery = None) -> list[dict[str, Any]]:
    return await run_in_threadpool(lambda: photos.list_photos(
        store=store, coverage=coverage, incident_id=incident_id, actor=actor, receipt=x_receipt or receipt))


@router.get("/photos/{photo_id}", response_class=Response, responses=JPEG_RESPONSE,
            summary="照片（JPEG，最长边 2048 像素，已去除位置与设备信息）")
async def photo(photo_id: PhotoId, store: StoreDep, coverage: CoverageDep, actor: ActorDep,
                x_receipt: ReceiptHeader = None, receipt: ReceiptQuery = None) -> Response:
    data = await run_in_threadpool(lambda: photos.read_photo(
        store=store, coverage=coverage, photo_id=photo_id, actor=actor, receipt=x_receipt or receipt))
    return photo_response(data, photo_id)


@router.get("/photos/{photo_id}/thumbnail", response_class=Response, responses=JPEG_RESPONSE,
            summary="照片缩略图（JPEG，最长边 320 像素）")
async def thumbnail(photo_id: PhotoId, store: StoreDep, coverage: CoverageDep, actor: ActorDep,
                    x_receipt: ReceiptHeader = None, receipt: ReceiptQuery = None) -> Response:
    data = await run_in_threadpool(lambda: photos.read_photo(
        store=store, coverage=coverage, photo_id=photo_id, actor=actor, receipt=x_receipt or receipt,
        thumbnail=True))
    return photo_response(data, photo_id)
