"""The residents' pages (issue #15 §3): ``/report`` (a report form on a phone) and ``/status`` (a report
followed with its 回执码). Public, no sign-in; the router only parses and calls.

A report goes through the public intake as ``POST /v1/incidents`` does: ``service.intake`` as the public
(whoever is signed in on this browser: the page is the residents'), counted by the same per-client limit
(``gridmap.api.ratelimit``), with an idempotency key the page puts in its form (a second tap or a retry on
a weak network is the same report). ``/status`` reads the report with its receipt through ``service.get``
and ``service.history`` (the reporter's view of ``gridmap.access``) and takes feedback through
``service.feedback``. The forms post without script (the page's script only adds the map, the address
suggestions and progress, and asks for a JSON answer, ``Accept: application/json``); a form posted from
another site is refused (its ``Origin``). The pages load nothing from outside but basemap tiles.

Receipts travel in paths and query strings here; the request log names the route template only
(``/status/{code}``), never the path or query (``gridmap/api/observability.py``), and the pages ask
browsers to send no ``Referer`` to other sites (tile servers).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from gridmap.api.deps import coverage_of
from gridmap.api.ratelimit import client_key
from gridmap.api.routers.session import _same_origin
from gridmap.auth import ANONYMOUS
from gridmap.coverage import library_edits
from gridmap.errors import (
    Conflict,
    Forbidden,
    GridmapError,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
)
from gridmap.incidents import photos, service
from gridmap.layers.assets import STATIC_PREFIX
from gridmap.maps.basemaps import basemaps
from gridmap.settings import Settings
from gridmap.web import render
from gridmap.web import residents as pages

router = APIRouter(tags=["residents"])

WEB_PREFIX = f"{STATIC_PREFIX}/web"
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data: blob: https: http:; connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
"""Scripts, styles and requests from this site only; images (basemap tiles) from anywhere. No page here
may be cached or framed, and no ``Referer`` (which may hold a 回执码) leaves the site."""
KEY_BYTES = 16

CodeParam = Annotated[str, Path(max_length=pages.MAX_CODE, description="回执码：事件编号-回执（如 123-3f2a…）")]


def _page(html: str, status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(html, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})})


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _public(request: Request) -> None:
    """Everything here is done as the public; the request log says so."""
    request.state.actor = ANONYMOUS


# /report ---------------------------------------------------------------------------------------------

def _report_page(request: Request, *, values: dict[str, str] | None = None, error: str | None = None,
                 status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    coverage = coverage_of(request)
    frame = coverage.grids if len(coverage.grids) else coverage.regions
    minx, miny, maxx, maxy = (float(v) for v in frame.total_bounds) if len(frame) else (110.7, 35.1, 110.8, 35.2)
    config = {
        "bounds": [[miny, minx], [maxy, maxx]],
        "basemaps": [{"name": b.name, "url": b.url, "attribution": b.attribution, "subdomains": b.subdomains,
                      "max_zoom": b.max_zoom, "gcj02": b.gcj02, "labels_url": b.labels_url}
                     for b in basemaps(settings)],
        "max_photos": pages.MAX_PHOTOS,
        "photo_side": pages.PHOTO_SIDE,
    }
    html = render("report.html", categories=pages.categories_for_form(), values=values or {}, error=error,
                  key=secrets.token_urlsafe(KEY_BYTES), config=config, static=STATIC_PREFIX, web=WEB_PREFIX,
                  limits={"description": pages.MAX_DESCRIPTION, "address": pages.MAX_ADDRESS,
                          "name": pages.MAX_NAME, "phone": pages.MAX_PHONE})
    return _page(html, status_code, headers)


@router.get("/report", response_class=HTMLResponse,
            summary="居民上报页（无需登录）：问题类别、描述、地图点选或我的位置或地址、联系方式；提交后给出回执码")
async def report_page(request: Request) -> Response:
    _public(request)
    return _report_page(request)


def _rate_limited_words(settings: Settings, wait: int) -> str:
    minutes = "" if wait < 90 else f"（约 {round(wait / 60)} 分钟）"
    return (f"您提交得有点频繁了。为防止有人恶意刷单，同一网络短时间内最多提交 {settings.intake_burst} 条反映，"
            f"请 {wait} 秒后{minutes}再点“提交”。您填写的内容都还在，不用重填。")


_REPORT_FIELDS = {
    "category": {"type": "string", "description": "叶子类别编码"}, "description": {"type": "string"},
    "lon": {"type": "string"}, "lat": {"type": "string"}, "address": {"type": "string"},
    "name": {"type": "string"}, "phone": {"type": "string"},
    "key": {"type": "string", "description": "页面生成的幂等键：同一表单重复提交只登记一次"},
}


@router.post("/report", response_class=HTMLResponse, status_code=303,
             summary="提交居民上报（表单）：与 POST /v1/incidents 同一受理流程与限流；成功后跳转到进度页",
             responses={201: {"description": "页面脚本提交（Accept: application/json）：编号、回执码与进度页地址",
                              "content": {"application/json": {}}},
                        303: {"description": "已登记：跳转到 /status/{回执码}?new=1"},
                        403: {"description": "来自其他网站的表单"},
                        422: {"description": "填写有误（页面再次显示表单与中文说明，已填内容保留）"},
                        429: {"description": "提交过于频繁（Retry-After 秒后再试）"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {"type": "object", "properties": {
                     **_REPORT_FIELDS, "photos": {"type": "array", "maxItems": pages.MAX_PHOTOS,
                                                  "items": {"type": "string", "format": "binary"}}}}},
                 "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": _REPORT_FIELDS}}}}})
async def submit_report(request: Request) -> Response:
    _public(request)
    state = request.app.state
    host = request.client.host if request.client else None
    settings: Settings = state.settings
    wants_json = _wants_json(request)
    form = await request.form()
    values = pages.form_values(form)

    def refused(error: GridmapError) -> Response:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
        message = _rate_limited_words(settings, error.retry_after) if isinstance(error, RateLimited) else error.message
        if wants_json:
            return JSONResponse({"error": error.code, "detail": message}, status_code=error.status_code,
                                headers={"Cache-Control": "no-store", **(headers or {})})
        return _report_page(request, values=values, error=message, status_code=error.status_code, headers=headers)

    if not _same_origin(request):
        return refused(Forbidden("这份表单来自其他网站，已拒绝。请直接打开本站的上报页面填写。"))
    try:
        body = pages.incident_from_form(values)
        uploads = await _uploads(form)
        wait = state.intake_limiter.wait(client_key(host))
        if wait is not None:
            raise RateLimited(wait)
        # photos are checked and cleaned before the report exists: a bad file refuses the whole form
        prepared = await run_in_threadpool(photos.prepare_photos, uploads, "intake") if uploads else None
        key = form.get("key")
        key = key if isinstance(key, str) and 0 < len(key) <= 200 else None
        store, coverage = state.store, coverage_of(request)
        if body.address is not None:
            await run_in_threadpool(library_edits.sync, coverage, store)  # staff edits of the library first
        view, created = await run_in_threadpool(
            lambda: service.intake(store=store, coverage=coverage, body=body, actor=ANONYMOUS, idempotency_key=key,
                                   idempotency_scope=f"public:{host or '-'}",
                                   service_area_margin_m=settings.service_area_margin_m))
    except Conflict:  # the form's key was used for another report: the form was sent, then changed
        return refused(Conflict("这份表单已经提交过了。如要再反映一件事，请刷新页面后重新填写。"))
    except GridmapError as error:
        return refused(error)
    code = pages.status_code(view["id"], view["receipt"])
    target = f"/status/{quote(code)}?new=1"
    if prepared is not None and created:  # a resent form (same key) has its photos from the first time
        try:
            await run_in_threadpool(lambda: photos.store_photos(store=store, coverage=coverage, incident_id=view["id"],
                                                                prepared=prepared, actor=ANONYMOUS, as_reporter=True))
        except GridmapError:  # the report is in; say that its photos are not
            target += "&photos=0"
    if wants_json:
        return JSONResponse({"id": view["id"], "receipt": view["receipt"], "code": code, "status_url": target,
                             "grid": view["grid"], "handler": pages.handler_contact(coverage, view)},
                            status_code=201, headers={"Cache-Control": "no-store"})
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


async def _uploads(form: Any) -> list[photos.Upload]:
    """The photos of the form (the empty part a browser sends for no file is none); at most ``MAX_PHOTOS``."""
    files = [f for f in form.getlist("photos") if isinstance(f, UploadFile) and (f.filename or f.size)]
    if len(files) > pages.MAX_PHOTOS:
        raise InvalidInput(f"最多 {pages.MAX_PHOTOS} 张照片，您选了 {len(files)} 张，请去掉几张再提交")
    return [(f.filename, await f.read(), f.content_type) for f in files]


# /status ---------------------------------------------------------------------------------------------

def _lookup_page(*, code: str = "", error: str | None = None, status_code: int = 200) -> HTMLResponse:
    return _page(render("status_lookup.html", code=code, error=error, web=WEB_PREFIX), status_code)


def _not_found(code: str) -> HTMLResponse:
    return _lookup_page(code=code, status_code=404,
                        error="没有找到这个回执码对应的反映。请核对回执码是否完整（形如 123-3f2a9c…，"
                              "短横线前是事件编号），或联系您所在网格的网格员。")


async def _status_page(request: Request, key: pages.StatusKey, *, new: bool = False, notice: str | None = None,
                       error: str | None = None, status_code: int = 200) -> HTMLResponse:
    store, coverage = request.app.state.store, coverage_of(request)

    def read() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        asked = {"store": store, "coverage": coverage, "incident_id": key.incident_id, "actor": ANONYMOUS,
                 "receipt": key.receipt}
        return service.get(**asked), service.history(**asked), photos.list_photos(**asked)

    try:
        view, events, own_photos = await run_in_threadpool(read)
    except (NotFound, Forbidden, Unauthorized):  # no such report, or not this receipt's: the same kind page
        return _not_found(pages.status_code(key.incident_id, key.receipt))
    code = pages.status_code(key.incident_id, key.receipt)
    html = render("status.html", view=view, code=code, code_path=quote(code), new=new, notice=notice, error=error,
                  photos=own_photos, receipt_query=urlencode({"receipt": key.receipt}),
                  handler=pages.handler_contact(coverage, view), steps=pages.time_line(events),
                  status_words=pages.status_words(view),
                  may_rate=view["status"] in pages.FEEDBACK_STATUSES and view["rating"] is None,
                  stars=pages.STARS, local=pages.local_time, web=WEB_PREFIX)
    return _page(html, status_code)


@router.get("/status", response_class=HTMLResponse, responses={404: {"description": "回执码不对（中文说明页）"}},
            summary="查询上报进度（无需登录）：凭回执码查看状态、办理经过，办结后评价；不带回执码时为查询表单")
async def status_query(
    request: Request,
    receipt: Annotated[str | None, Query(max_length=pages.MAX_CODE,
                                         description="回执码（事件编号-回执，如 123-3f2a…；查询串不记入日志）")] = None,
    id: Annotated[str | None, Query(max_length=20, description="事件编号（回执码只含回执时另给）")] = None,
    new: bool = False,
) -> Response:
    _public(request)
    if not receipt and not id:
        return _lookup_page()
    key = pages.parse_status_code(receipt, id)
    if key is None:
        return _not_found(receipt or "")
    return await _status_page(request, key, new=new)


@router.get("/status/{code}", response_class=HTMLResponse, responses={404: {"description": "回执码不对（中文说明页）"}},
            summary="上报进度页（回执码在路径中）：状态、办理经过（居民可见部分）、负责的网格与网格员、评价")
async def status_by_code(request: Request, code: CodeParam, new: bool = False, rated: bool = False,
                         photos_saved: Annotated[bool, Query(alias="photos")] = True) -> Response:
    _public(request)
    key = pages.parse_status_code(code)
    if key is None:
        return _not_found(code)
    return await _status_page(request, key, new=new, notice="谢谢您的评价！" if rated else None,
                              error=None if photos_saved else "您的反映已经登记，但照片没有保存成功（系统繁忙）。"
                                                             "需要的话，请把照片发给负责的网格员。")


@router.post("/status/{code}/feedback", response_class=HTMLResponse, status_code=303,
             summary="居民评价（表单，凭回执码）：满意程度 1–5 与意见；每件事只能评价一次",
             responses={303: {"description": "已评价：回到进度页"},
                        404: {"description": "回执码不对"},
                        409: {"description": "已评价过（页面说明每件事只能评价一次）"},
                        422: {"description": "尚未办结，或未选择满意程度"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {
                     "rating": {"type": "string", "enum": ["1", "2", "3", "4", "5"]},
                     "comment": {"type": "string"}}}}}}})
async def give_feedback(request: Request, code: CodeParam) -> Response:
    _public(request)
    key = pages.parse_status_code(code)
    if key is None:
        return _not_found(code)
    if not _same_origin(request):
        return await _status_page(request, key, status_code=403, error="这份评价来自其他网站，已拒绝。")
    store, coverage = request.app.state.store, coverage_of(request)
    form = await request.form()
    try:
        rating, comment = pages.feedback_values(form)
        await run_in_threadpool(lambda: service.feedback(store=store, coverage=coverage, incident_id=key.incident_id,
                                                         receipt=key.receipt, rating=rating, comment=comment))
    except (NotFound, Forbidden, Unauthorized):
        return _not_found(pages.status_code(key.incident_id, key.receipt))
    except Conflict:  # rated already (or, rarely, changed by staff at that moment: then try again)
        rated = await run_in_threadpool(lambda: service.get(store=store, coverage=coverage, incident_id=key.incident_id,
                                                            actor=ANONYMOUS, receipt=key.receipt)["rating"])
        return await _status_page(request, key, status_code=409, error=(
            "您已经评价过这件事了，每件事只能评价一次。您的意见我们已经收到，谢谢！" if rated is not None
            else "刚才工作人员正好更新了这件事，您的评价没有保存，请再提交一次。"))
    except GridmapError as error:
        return await _status_page(request, key, status_code=error.status_code, error=error.message)
    return RedirectResponse(f"/status/{quote(pages.status_code(key.incident_id, key.receipt))}?rated=1",
                            status_code=303, headers={"Cache-Control": "no-store"})


def register(app: FastAPI) -> None:
    """The pages and their own static files (``/static/web``: style and script, part of the package)."""
    app.mount(WEB_PREFIX, StaticFiles(directory=pages.STATIC), name="web-static")
    app.include_router(router)
