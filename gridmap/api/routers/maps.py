"""Map pages (dispatcher, worker, planner) and the static files they need: the router only parses and calls."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import coverage_of
from gridmap.layers.assets import OWN_STATIC, STATIC_PREFIX, check_assets
from gridmap.maps import MapCache, MapContext
from gridmap.maps.basemaps import basemaps
from gridmap.maps.build import map_page
from gridmap.maps.incidents import fingerprint, load_incidents
from gridmap.settings import Settings

router = APIRouter(prefix="/maps", tags=["maps"])


async def _page(request: Request, kind: str, *, code: str | None = None, radius_m: float = 500) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    check_assets(settings.map_assets)
    coverage = coverage_of(request)
    # Hooks for other modules: state.map_incidents(store, coverage) -> GeoDataFrame (default: the incidents service)
    # and state.map_proposals(store) -> GeoDataFrame | None (proposed stations for the planner map).
    incidents_of = getattr(state, "map_incidents", None) or load_incidents
    incidents = await run_in_threadpool(incidents_of, state.store, coverage)
    proposals_of = getattr(state, "map_proposals", None)
    proposals = await run_in_threadpool(proposals_of, state.store) if proposals_of and kind == "planner" else None
    revision = (coverage.revision, fingerprint(incidents), fingerprint(proposals) if proposals is not None else None)
    key = (kind, code, radius_m)
    etag = '"' + hashlib.blake2b(repr((revision, key)).encode(), digest_size=12).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)

    def build() -> str:
        ctx = MapContext(coverage, basemaps(settings), incidents, api="/v1/lookup")
        return map_page(kind, ctx, code=code, radius_m=radius_m, proposals=proposals)

    html = await run_in_threadpool(state.map_cache.get, key, revision, build)
    return HTMLResponse(html, headers=headers)


@router.get("/dispatcher", response_class=HTMLResponse, summary="调度地图：网格、楼栋、事件、服务站、派出所辖区、共建单位")
async def dispatcher(request: Request) -> Response:
    return await _page(request, "dispatcher")


@router.get("/worker/{code}", response_class=HTMLResponse, summary="网格员地图：本人网格、楼栋住户、未办结事件、附近服务站")
async def worker(request: Request, code: str) -> Response:
    return await _page(request, "worker", code=code)


@router.get("/planner", response_class=HTMLResponse, summary="规划地图：服务站与服务半径、楼栋到最近服务站的距离、未覆盖住户")
async def planner(
    request: Request,
    radius: Annotated[float, Query(description="服务半径（米），超出即为未覆盖", ge=50, le=5000)] = 500,
) -> Response:
    return await _page(request, "planner", radius_m=radius)


def register(app: FastAPI, settings: Settings) -> None:
    """Mount the map pages and their static files (/static/vendor from npm packages, /static/gridmap ours)."""
    app.state.map_cache = MapCache()
    if settings.map_assets.is_dir():
        app.mount(f"{STATIC_PREFIX}/vendor", StaticFiles(directory=settings.map_assets), name="map-vendor")
    app.mount(f"{STATIC_PREFIX}/gridmap", StaticFiles(directory=OWN_STATIC), name="map-runtime")
    app.include_router(router)
