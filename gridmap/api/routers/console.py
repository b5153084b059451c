"""The console pages (issue #15 §1–2): ``/console`` is the dispatch console for dispatchers and admins and
"我的任务" for grid workers; ``/console/incidents/{id}`` an incident with the actions the workflow allows.

The router only parses, asks ``gridmap.access`` whether the page opens (``check_console``), calls the page
model (``gridmap.web.console``) and the services behind the JSON API, and renders templates. Signed in by the
session cookie of ``/login`` (or a Bearer token). Forms post without script: their CSRF token is the form field
``csrf`` (or the ``X-CSRF-Token`` header), checked as ``get_actor`` checks it, and a form from another site (its
``Origin``) is refused. A transition goes through ``service.transition`` with the version the page was drawn
from as its If-Match: when someone else changed the incident first, the page says so (409, ``CONFLICT``) and
nothing is written. 开始处置 and 处置完成 forms are multipart and carry 处置前/后 photos (``photos``), checked
before the transition is written (``console.act``); their body limit is the photo routes' (``limits.py``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gridmap.access import check_console
from gridmap.api.deps import ActorDep, RowId, actor_of, coverage_of
from gridmap.api.routers.photos import read_uploads
from gridmap.api.routers.session import _same_origin
from gridmap.auth import Actor
from gridmap.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    PayloadTooLarge,
    PreconditionFailed,
    Unauthorized,
)
from gridmap.incidents import photos as photo_service
from gridmap.incidents import service
from gridmap.incidents.models import IncidentCreate, TransitionRequest
from gridmap.incidents.workflow import TRANSITIONS
from gridmap.layers.assets import RESOURCES, STATIC_PREFIX, check_assets
from gridmap.layers.vectorgrid import console_tiles
from gridmap.maps.basemaps import basemaps
from gridmap.sessions import CSRF_HEADER, home_of
from gridmap.settings import Settings
from gridmap.web import console, render, who

router = APIRouter(prefix="/console", tags=["console"])

PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data: blob: http: https:; font-src 'self' data:; connect-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
"""Pages hold personal data: never cached; scripts and styles only from gridmap itself (basemap images from
their tile servers)."""
POLL_MS: Final = 5000
"""How often a console page asks ``/console/revision`` whether any incident changed."""
SCRIPTS: Final = ("leaflet", "vectorgrid_js", "gridmap_js", "gridmap_tiles_js")
STYLES: Final = ("leaflet_css", "gridmap_css")
SIGN_IN = {303: {"description": "未登录的浏览器：跳转到 /login"}, 401: {"description": "未登录"},
           403: {"description": "角色无权使用处置台（规划人员），或网格员访问本网格以外的事件"}}

Queue = Annotated[Literal[console.QUEUE_KEYS], Query(description="队列：intake 待受理、dispatch 待派遣、handling 处置中、"  # type: ignore[valid-type]
                                                                 "verify 待核查、overdue 超期/督办、all 全部")]
Period = Annotated[Literal[tuple(console.PERIODS)], Query(description="上报时段：空为全部，1/7/30/90 为近若干天")]  # type: ignore[valid-type]
Order = Annotated[Literal["newest", "urgent"], Query(description="newest 最新上报在前，urgent 最紧急在前")]
Code = Annotated[str | None, Query(max_length=64)]


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _page(html: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def _assets() -> dict[str, Any]:
    return {"scripts": [f"{STATIC_PREFIX}/{RESOURCES[n]}" for n in SCRIPTS] + [f"{STATIC_PREFIX}/gridmap/console.js"],
            "styles": [f"{STATIC_PREFIX}/{RESOURCES[n]}" for n in STYLES] + [f"{STATIC_PREFIX}/gridmap/console.css"]}


def _refusal(request: Request, actor: Actor, *, staff_only: bool = False) -> Response | None:
    """None when ``actor`` may open the console. Else, for a browser, the sign-in page (no sign-in) or a
    Chinese refusal page; for other clients the domain error (401/403 JSON). Nothing of the console."""
    try:
        check_console(actor, staff_only=staff_only)
    except Unauthorized:
        if not _wants_html(request):
            raise
        return _to_login(request)
    except Forbidden as exc:
        if not _wants_html(request):
            raise
        return _refused(actor, exc.message)
    return None


def _to_login(request: Request, target: str | None = None) -> Response:
    target = target or request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303,
                            headers={"Cache-Control": "no-store"})


def _refused(actor: Actor, message: str) -> Response:
    html = render("refused.html", message=message, who=who(actor), home=home_of(actor))
    return HTMLResponse(html, status_code=403, headers={"Cache-Control": "no-store"})


def _common(request: Request, actor: Actor) -> dict[str, Any]:
    """What every console page carries: who is signed in, the CSRF token of the session, the map's setup."""
    settings: Settings = request.app.state.settings
    session = getattr(request.state, "session", None)
    coverage = coverage_of(request)
    return {
        "who": who(actor), "actor": actor, "csrf": session.csrf if session is not None else "",
        "signed_in_by_session": session is not None, "assets": _assets(), "local": local_time,
        "config": {"mode": "worker" if actor.role == "worker" else "dispatch", "basemaps": [
            {"name": b.name, "url": b.url, "attribution": b.attribution, "subdomains": b.subdomains or "abc",
             "max_zoom": b.max_zoom, "gcj02": b.gcj02, "labels_url": b.labels_url} for b in basemaps(settings)],
            "bounds": console._bounds(coverage.grids.geometry), "tiles": console_tiles(), "poll_ms": POLL_MS,
            "revision": None, "worker_code": actor.worker_code},
        "has_amap": bool(settings.amap_tile_url),
    }


def local_time(value: str | None) -> str:
    """An ISO 8601 UTC time as China's wall clock (``2026-05-01 09:30``)."""
    if not value:
        return ""
    from datetime import datetime, timedelta, timezone

    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone(timedelta(hours=8)))
    return moment.strftime("%Y-%m-%d %H:%M")


def _filters(queue: str, category: str | None, community: str | None, grid: str | None, period: str,
             overdue: bool, order: str, offset: int) -> console.Filters:
    return console.Filters(queue=queue, category=category or None, community=community or None, grid=grid or None,
                           period=period, overdue=overdue, order=order, offset=offset)


# the pages -------------------------------------------------------------------------------------------

@router.get("", response_class=HTMLResponse, responses=SIGN_IN,
            summary="处置台：指挥调度、管理员为事件队列（按状态计数、筛选、分页）与地图；网格员为“我的任务”（手机页面）")
async def console_page(
    request: Request, actor: ActorDep, queue: Queue = "intake", category: Code = None, community: Code = None,
    grid: Code = None, period: Period = "", overdue: bool = False, order: Order = "newest",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    refused = _refusal(request, actor)
    if refused is not None:
        return refused
    check_assets(request.app.state.settings.map_assets)
    state, coverage = request.app.state, coverage_of(request)
    common = _common(request, actor)
    common["config"]["revision"] = await run_in_threadpool(state.store.incident_revision)
    if actor.role == "worker":
        page = await run_in_threadpool(lambda: console.worker_page(store=state.store, coverage=coverage, actor=actor))
        common["config"]["focus"] = page["focus"]
        done = request.query_params.get("done")
        return _page(render("console_worker.html", **common, **page, done=TRANSITIONS.get(done or ""),
                            added=console.added_text(done, request.query_params.get("photos")),
                            reported=request.query_params.get("reported")))
    filters = _filters(queue, category, community, grid, period, overdue, order, offset)
    model = await run_in_threadpool(lambda: console.queue(store=state.store, coverage=coverage, actor=actor,
                                                          filters=filters))
    return _page(render("console.html", **common, **model))


@router.get("/queue", response_class=HTMLResponse, responses=SIGN_IN,
            summary="处置台的列表部分（页面无刷新更新用）：指挥调度、管理员为事件队列，网格员为“我的任务”")
async def console_queue(
    request: Request, actor: ActorDep, queue: Queue = "intake", category: Code = None, community: Code = None,
    grid: Code = None, period: Period = "", overdue: bool = False, order: Order = "newest",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    check_console(actor)
    state, coverage = request.app.state, coverage_of(request)
    common = _common(request, actor)
    if actor.role == "worker":
        page = await run_in_threadpool(lambda: console.worker_page(store=state.store, coverage=coverage, actor=actor))
        return _page(render("console_tasks.html", **common, **page))
    filters = _filters(queue, category, community, grid, period, overdue, order, offset)
    model = await run_in_threadpool(lambda: console.queue(store=state.store, coverage=coverage, actor=actor,
                                                          filters=filters))
    return _page(render("console_queue.html", **common, **model))


@router.get("/revision", summary="事件数据的修订号（处置台轮询：变化时刷新列表与地图）",
            responses={401: {"description": "未登录"}, 403: {"description": "规划人员没有处置台"}})
async def console_revision(request: Request, actor: ActorDep) -> JSONResponse:
    check_console(actor)
    revision = await run_in_threadpool(request.app.state.store.incident_revision)
    return JSONResponse({"revision": revision}, headers={"Cache-Control": "no-store"})


@router.get("/incidents/{incident_id}", response_class=HTMLResponse,
            responses={**SIGN_IN, 404: {"description": "事件不存在"}},
            summary="事件处置页：内容、位置（地图、地址、网格、网格员电话）、上报人（按角色）、重复件、办理记录、剩余时限；"
                    "按流转表可执行的操作")
async def incident_page(
    request: Request, incident_id: RowId, actor: ActorDep,
    back: Annotated[str | None, Query(max_length=2000, description="返回队列时的筛选条件（查询串）")] = None,
    done: Annotated[str | None, Query(max_length=20, description="刚完成的操作（页面提示）")] = None,
    photos: Annotated[int | None, Query(ge=0, le=100, description="刚随操作保存的照片张数（页面提示）")] = None,
) -> Response:
    refused = _refusal(request, actor)
    if refused is not None:
        return refused
    check_assets(request.app.state.settings.map_assets)
    try:
        return await _incident_response(request, actor, incident_id, back=back, done=done,
                                        added=console.added_text(done, str(photos) if photos else None))
    except Forbidden as exc:
        if not _wants_html(request):
            raise
        return _refused(actor, exc.message)


async def _incident_response(request: Request, actor: Actor, incident_id: int, *, back: str | None = None,
                             done: str | None = None, error: str | None = None, conflict: bool = False,
                             status_code: int = 200, form: dict[str, Any] | None = None,
                             added: str | None = None) -> Response:
    state, coverage = request.app.state, coverage_of(request)
    model = await run_in_threadpool(lambda: console.incident(store=state.store, coverage=coverage, actor=actor,
                                                             incident_id=incident_id))
    common = _common(request, actor)
    common["config"]["revision"] = await run_in_threadpool(state.store.incident_revision)
    view = model["incident"]
    common["config"]["mode"] = "incident"
    common["config"]["incident"] = {"id": view["id"], "lon": view["location"]["lon"], "lat": view["location"]["lat"]}
    html = render("console_incident.html", **common, **model, it=view, back=_back(back), done=TRANSITIONS.get(done or ""),
                  error=error, conflict=conflict, form=form or {}, added=added)
    return _page(html, status_code)


def _back(query: str | None) -> str:
    """Where "返回" leads: the console with the queue's filters the page was opened from (only its own keys)."""
    keys = {"queue", "category", "community", "grid", "period", "overdue", "order", "offset"}
    kept = [(k, v) for k, v in parse_qsl(query or "") if k in keys]
    return "/console" + (f"?{urlencode(kept)}" if kept else "")


# the forms -------------------------------------------------------------------------------------------

async def form_actor(request: Request, authorization: str | None, csrf: str) -> Actor:
    """The actor of a console form: Bearer, or the session whose CSRF token the form (or header) repeats;
    a form posted from another site is refused."""
    actor = await actor_of(request, authorization, csrf or request.headers.get(CSRF_HEADER))
    if getattr(request.state, "session", None) is not None and not _same_origin(request):
        raise Forbidden("请求来自其他网站，已拒绝")
    return actor


@router.post("/incidents/{incident_id}/actions", status_code=303, response_class=HTMLResponse,
             responses={**SIGN_IN, 404: {"description": "事件不存在"},
                        409: {"description": "已被他人处理（版本不一致）：页面提示刷新，未写入"},
                        413: {"description": "照片过大（每张最多 8 MB）：页面提示，未写入"},
                        422: {"description": "该操作需要填写原因，当前状态不能执行，或照片不是 JPEG、PNG、HEIC："
                                              "页面提示，未写入"}},
             summary="执行流转（表单）：受理、派遣、开始处置、处置完成、核查通过、结案、退回、作废、重新派遣、督办；"
                     "version 为页面显示时的版本（If-Match），不一致时不写入；开始处置、处置完成可附处置前/后照片"
                     "（multipart，先查验照片，再写入流转）")
async def incident_action(
    request: Request,
    incident_id: RowId,
    action: Annotated[str, Form(max_length=20, description="流转表中的操作，如 accept、dispatch")],
    version: Annotated[int, Form(ge=1, le=2**31, description="页面显示时事件的版本号（等同 If-Match）")],
    note: Annotated[str, Form(max_length=2000, description="备注/原因（退回、作废、重新派遣必填）")] = "",
    assignee: Annotated[str, Form(max_length=64, description="派遣给该网格员（编号）")] = "",
    merge_into: Annotated[int | None, Form(ge=1, le=2**62, description="作废时合并到的事件编号（重复件）")] = None,
    after: Annotated[Literal["incident", "tasks"], Form(description="完成后回到：incident 事件页，tasks 我的任务")] = "incident",
    back: Annotated[str, Form(max_length=2000, description="事件页“返回”的筛选条件")] = "",
    csrf: Annotated[str, Form(max_length=200, description="页面给出的 CSRF 令牌（会话登录时必填）")] = "",
    photos: Annotated[list[UploadFile], File(description="开始处置时的处置前照片、处置完成时的处置后照片（multipart，"
                                                         "可重复，最多 4 张，JPEG、PNG 或 HEIC，每张最多 8 MB）")] = [],  # noqa: B006
    authorization: Annotated[str | None, Header(description="Bearer <token>；浏览器用登录会话")] = None,
) -> Response:
    actor = await form_actor(request, authorization, csrf)
    if actor.role == "public" and _wants_html(request):
        return _to_login(request, f"/console/incidents/{incident_id}")
    check_console(actor)
    state, coverage = request.app.state, coverage_of(request)
    body = TransitionRequest(action=action, note=note.strip() or None, assignee=assignee or None,
                             merge_into=merge_into if action == "cancel" else None)
    form = {"action": action, "note": note, "assignee": assignee}
    files = [f for f in await read_uploads(photos) if f[0] or f[1]]  # an empty file field is no photo
    try:
        acted = await run_in_threadpool(lambda: console.act(store=state.store, coverage=coverage,
                                                            incident_id=incident_id, actor=actor, request=body,
                                                            if_match=version, files=files))
    except Forbidden as exc:
        if not _wants_html(request):
            raise
        return _refused(actor, exc.message)
    except (PreconditionFailed, Conflict):
        return await _incident_response(request, actor, incident_id, back=back, error=console.CONFLICT,
                                        conflict=True, status_code=409, form=form)
    except (InvalidInput, PayloadTooLarge) as exc:
        error = f"{exc.message}。照片未保存，事件未作更改。" if files else exc.message
        return await _incident_response(request, actor, incident_id, back=back, error=error,
                                        status_code=exc.status_code, form=form)
    if acted.photo_error:
        return await _incident_response(request, actor, incident_id, back=back, status_code=409,
                                        error=f"已{TRANSITIONS[action].label}，但照片未保存：{acted.photo_error}")
    added = {"photos": len(acted.photos)} if acted.photos else {}
    if after == "tasks":
        target = f"/console?{urlencode({'done': action, **added})}#task-{incident_id}"
    else:
        target = f"/console/incidents/{incident_id}?" + urlencode({"done": action, **added,
                                                                   **({"back": back} if back else {})})
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


@router.post("/findings", status_code=303, response_class=HTMLResponse,
             responses={**SIGN_IN, 422: {"description": "类别、描述或位置有误"}},
             summary="网格员上报巡查发现（未呼先应，表单）：类别、描述、当前位置；按上报流程定位、派给本网格")
async def finding(
    request: Request,
    category: Annotated[str, Form(max_length=64, description="叶子类别编码")],
    description: Annotated[str, Form(min_length=1, max_length=4000)],
    lon: Annotated[float, Form(ge=-180, le=180)],
    lat: Annotated[float, Form(ge=-90, le=90)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    authorization: Annotated[str | None, Header(description="Bearer <token>；浏览器用登录会话")] = None,
    idempotency_key: Annotated[str | None, Form(max_length=200, description="重发时用同一个键：不会重复上报")] = None,
    photos: Annotated[list[UploadFile], File(description="现场照片（multipart，最多 4 张；可选）")] = [],  # noqa: B006
) -> Response:
    actor = await form_actor(request, authorization, csrf)
    if actor.role == "public" and _wants_html(request):
        return _to_login(request, "/console")
    check_console(actor)
    if actor.role != "worker":
        raise Forbidden("巡查发现由网格员在“我的任务”页面上报；指挥中心请用上报接口登记来电")
    state, coverage, settings = request.app.state, coverage_of(request), request.app.state.settings
    body = IncidentCreate(category=category, description=description, lon=lon, lat=lat)
    files = [f for f in await read_uploads(photos) if f[0] or f[1]]  # an empty file field is no photo
    try:  # the photos are checked and cleaned first: a bad file refuses the whole finding
        prepared = await run_in_threadpool(photo_service.prepare_photos, files, "intake") if files else None
        view, created = await run_in_threadpool(lambda: service.intake(
            store=state.store, coverage=coverage, body=body, actor=actor, idempotency_key=idempotency_key,
            idempotency_scope=actor.label, service_area_margin_m=settings.service_area_margin_m))
        if prepared is not None and created:  # a resent form (same key) has its photos from the first time
            await run_in_threadpool(lambda: photo_service.store_photos(
                store=state.store, coverage=coverage, incident_id=view["id"], prepared=prepared, actor=actor))
    except (InvalidInput, PayloadTooLarge) as exc:
        common = _common(request, actor)
        page = await run_in_threadpool(lambda: console.worker_page(store=state.store, coverage=coverage, actor=actor))
        form = {"category": category, "description": description, "lon": lon, "lat": lat}
        return _page(render("console_worker.html", **common, **page, finding_error=exc.message, finding=form),
                     exc.status_code)
    added = f"&photos={len(prepared.photos)}" if prepared is not None and created else ""
    return RedirectResponse(f"/console?reported={view['id']}{added}", status_code=303,
                            headers={"Cache-Control": "no-store"})


def register(app: FastAPI, settings: Settings) -> None:
    app.include_router(router)

