"""Map pages (dispatcher, worker, planner, public) and the static files they need: the router only parses and calls.

Every page but ``/maps/public`` needs a sign-in (a session cookie from ``/login`` or a Bearer token):
without one a browser is sent to ``/login`` and other clients get a 401, before any data is read.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from gridmap.access import incidents_for_map
from gridmap.api.deps import MAX_ROW_ID, ActorDep, coverage_of
from gridmap.auth import ANONYMOUS, PUBLIC, Actor
from gridmap.errors import Forbidden, Unauthorized
from gridmap.incidents.service import utcnow
from gridmap.layers.assets import OWN_STATIC, STATIC_PREFIX, check_assets
from gridmap.maps import MapCache, MapContext, cogov
from gridmap.maps.basemaps import basemaps
from gridmap.maps.build import map_page, worker_grids
from gridmap.maps.incidents import fingerprint, incidents_version, load_incidents
from gridmap.maps.permissions import check_map_access, view_key
from gridmap.planning import scenarios
from gridmap.sessions import home_of
from gridmap.settings import Settings
from gridmap.web import render, who, with_session_bar

router = APIRouter(prefix="/maps", tags=["maps"])


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _refusal(request: Request, actor: Actor, kind: str, code: str | None) -> Response | None:
    """None when ``actor`` may open the page. Else, for a browser, the sign-in page (no sign-in) or a
    Chinese refusal page; for other clients the domain error (401/403 JSON). Nothing of the map."""
    try:
        check_map_access(actor, kind, code)
    except Unauthorized:
        if not _wants_html(request):
            raise
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303,
                                headers={"Cache-Control": "no-store"})
    except Forbidden as exc:
        if not _wants_html(request):
            raise
        html = render("refused.html", message=exc.message, who=who(actor), home=home_of(actor))
        return HTMLResponse(html, status_code=403, headers={"Cache-Control": "no-store"})
    return None


async def _page(request: Request, kind: str, actor: Actor, *, code: str | None = None, radius_m: float = 500,
                scenario: int | None = None, tiled: bool = False) -> Response:
    """``tiled``: the light page of ``kind`` (dispatcher, planner), whose layers come from /tiles by viewport."""
    refused = _refusal(request, actor, kind, code)
    if refused is not None:
        return refused
    state = request.app.state
    settings: Settings = state.settings
    check_assets(settings.map_assets)
    coverage = coverage_of(request)
    # Hook for other modules: state.map_incidents(store, coverage) -> GeoDataFrame (default: the incidents service).
    # The store's incidents are keyed by their version and loaded only to build a page; a hook's frame is
    # fingerprinted.
    incidents_of = getattr(state, "map_incidents", None)
    now = utcnow()
    if incidents_of is None:
        frame, version = None, await run_in_threadpool(incidents_version, state.store, now)
    else:
        frame = await run_in_threadpool(incidents_of, state.store, coverage)
        version = fingerprint(frame)
    # The planner map shows the sites of the scenario its link names (scenarios never change), else none.
    proposals = (scenarios.proposals_frame(await run_in_threadpool(
        lambda: scenarios.get(store=state.store, scenario_id=scenario))) if scenario is not None else None)
    viewer = ANONYMOUS if kind == "public" else actor  # the public map is the same for everyone
    # Embedded pages carry the co-governance layers the viewer may read (a light page's come from /tiles):
    # their records' change numbers are part of what the page depends on.
    records = () if tiled or kind == "public" else COGOV_LAYERS.get(kind, ())
    day = cogov.today()
    records_version = await run_in_threadpool(cogov.versions, state.store, records, day) if records else ()
    revision = (coverage.revision, version, records_version)
    key = (kind, code, radius_m, scenario, tiled, view_key(viewer, coverage))  # one view never gets another's page
    session = getattr(request.state, "session", None)  # signed in by cookie: the page carries its CSRF token
    personal = hashlib.sha256(session.csrf.encode()).hexdigest() if session is not None else None
    etag = '"' + hashlib.blake2b(repr((revision, key, personal)).encode(), digest_size=12).hexdigest() + '"'
    headers = ({"ETag": etag, "Cache-Control": "no-cache"} if actor.role == PUBLIC else
               {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Cookie, Authorization"})
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)

    def build() -> str:
        if tiled:  # a light page: it carries no features, its layers come from /tiles by viewport
            return map_page(f"{kind}-tiles", MapContext(coverage, basemaps(settings), api="/v1/lookup"),
                            proposals=proposals, radius_m=radius_m, scenario=scenario)
        if frame is not None:
            incidents = frame
        elif kind == "worker":  # only the worker's grids' open incidents, by the store's index
            _, grids = worker_grids(coverage, code or "")
            incidents = load_incidents(state.store, coverage, now=now, grids=list(grids["code"]), only_open=True)
        else:
            incidents = load_incidents(state.store, coverage, now=now)
        shown = incidents_for_map(incidents, actor=viewer, coverage=coverage)
        ctx = MapContext(coverage, basemaps(settings), shown, api="/v1/lookup",
                         cogov=_cogov_frames(state.store, coverage, viewer, kind, code, records, day))
        return map_page(kind, ctx, code=code, radius_m=radius_m, proposals=proposals)

    html = await run_in_threadpool(state.map_cache.get, key, revision, build)
    if session is not None:
        html = with_session_bar(html, csrf=session.csrf, actor=actor)
    return HTMLResponse(html, headers=headers)


COGOV_LAYERS: dict[str, tuple[str, ...]] = {
    "dispatcher": cogov.LAYERS,
    "planner": ("needs", "resources", "projects"),
    "worker": ("needs", "patrol_coverage"),
}
"""The co-governance layers each embedded page draws (the light pages' are in ``gridmap.layers.vectorgrid``)."""


def _cogov_frames(store, coverage, viewer: Actor, kind: str, code: str | None, layers: tuple[str, ...],
                  day) -> dict:
    """The layers cut for the viewer; a worker's page holds the worker's community's needs and the
    worker's own buildings, whoever (the worker, or staff allowed to open it) looks at it."""
    if kind != "worker":
        return {layer: cogov.layer_frame(layer, store, coverage, viewer, day=day) for layer in layers}
    worker, _ = worker_grids(coverage, code or "")
    return {"needs": cogov.needs_frame(store, coverage, viewer, community=worker["community_code"]),
            "patrol_coverage": cogov.patrol_coverage_frame(store, coverage, viewer, worker_code=code, day=day)}


SIGN_IN = {401: {"description": "未登录（浏览器：303 跳转到 /login）"}, 403: {"description": "角色无权查看此地图"}}


@router.get("/dispatcher", response_class=HTMLResponse, responses=SIGN_IN,
            summary="调度地图（指挥调度、管理员）：网格、楼栋、事件、服务站、派出所辖区、共建单位、"
                    "居民需求、共建资源、为民办实事项目、包楼院走访")
async def dispatcher(
    request: Request,
    actor: ActorDep,
    mode: Annotated[Literal["tiles", "embedded"] | None, Query(
        description="不填或 tiles：轻量页面，图层按视野以矢量瓦片加载（/tiles）；embedded：内嵌全部数据的页面"
                    "（与命令行导出的离线文件相同，城市规模时很大）")] = None,
) -> Response:
    return await _page(request, "dispatcher", actor, tiled=mode != "embedded")


@router.get("/worker/{code}", response_class=HTMLResponse, responses=SIGN_IN,
            summary="网格员地图（本人；指挥调度、管理员可看任何人）：本人网格、楼栋住户、未办结事件、附近服务站、"
                    "本社区居民需求、包楼院走访（超过 30 天未走访的楼栋）")
async def worker(request: Request, code: str, actor: ActorDep) -> Response:
    return await _page(request, "worker", actor, code=code)


@router.get("/public", response_class=HTMLResponse,
            summary="公共地图（无需登录）：网格与网格员联系方式、党群服务站、公开类别事件（约 100 米精度）")
async def public(request: Request, actor: ActorDep) -> Response:
    return await _page(request, "public", actor)


@router.get("/planner", response_class=HTMLResponse, responses=SIGN_IN,
            summary="规划地图（规划人员、指挥调度、管理员）：服务站与服务半径、楼栋到最近服务站的距离、未覆盖住户、"
                    "居民需求、共建资源、为民办实事项目")
async def planner(
    request: Request,
    actor: ActorDep,
    radius: Annotated[float, Query(description="服务半径（米），超出即为未覆盖", ge=50, le=5000)] = 500,
    scenario: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID,
                                          description="规划方案编号：显示该方案的规划站点（不填则不显示）")] = None,
    mode: Annotated[Literal["tiles", "embedded"] | None, Query(
        description="不填或 tiles：轻量页面，楼栋与服务站按视野加载（/tiles）；embedded：内嵌全部楼栋的页面")] = None,
) -> Response:
    return await _page(request, "planner", actor, radius_m=radius, scenario=scenario, tiled=mode != "embedded")


def register(app: FastAPI, settings: Settings) -> None:
    """Mount the map pages and their static files (/static/vendor from npm packages, /static/gridmap ours)."""
    app.state.map_cache = MapCache()
    if settings.map_assets.is_dir():
        app.mount(f"{STATIC_PREFIX}/vendor", StaticFiles(directory=settings.map_assets), name="map-vendor")
    app.mount(f"{STATIC_PREFIX}/gridmap", StaticFiles(directory=OWN_STATIC), name="map-runtime")
    app.include_router(router)
