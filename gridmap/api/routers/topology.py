"""The topology report (issue #14 §2): ``GET /v1/topology`` as JSON or GeoJSON, and the map page
``/maps/topology``. Admins, dispatchers and planners (``gridmap.topology.roles``); the router only parses
and calls."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import ActorDep, StoreDep
from gridmap.api.page_access import refused_page
from gridmap.api.responses import FastJSONResponse
from gridmap.layers.assets import check_assets
from gridmap.maps.basemaps import basemaps
from gridmap.maps.topology import topology_page
from gridmap.store.base import Store
from gridmap.topology.fix import DEFAULT_TOLERANCE_M
from gridmap.topology.report import SLIVER_WIDTH_M, TopologyReport, check_topology
from gridmap.topology.roles import check_topology_actor
from gridmap.validation import AREA_TOLERANCE_M2

router = APIRouter(tags=["topology"])

SliverWidth = Annotated[float, Query(gt=0, le=100, description="窄于此宽度（米）的部分视为狭长碎片")]
Tolerance = Annotated[float, Query(ge=0, le=10000, description="小于此面积（平方米）的重叠、缝隙视为坐标误差")]

_CACHE: dict[tuple[int, str | None, float, float], tuple[TopologyReport, dict[str, Any]]] = {}


def _report(store: Store, sliver_width_m: float, tolerance_m2: float) -> tuple[TopologyReport, dict[str, Any]]:
    """The report of the store's current content, kept per revision and settings: the boundaries change
    only by an import, and the overlays cost a second on a city."""
    key = (id(store), store.revision(), sliver_width_m, tolerance_m2)
    found = _CACHE.get(key)
    if found is None:
        layers = {name: store.read_layer(name) for name in ("regions", "grids", "buildings")}
        found = (check_topology(layers, sliver_width_m=sliver_width_m, tolerance_m2=tolerance_m2), layers)
        _CACHE.clear()  # one revision at a time
        _CACHE[key] = found
    return found


@router.get("/v1/topology", summary="边界拓扑检查：网格、社区的重叠、缝隙、狭长碎片、越界、无效几何与被分割的楼栋"
                                    "（管理员、指挥调度、规划人员）",
            responses={401: {"description": "未登录"}, 403: {"description": "网格员无权查看"}})
async def topology(
    actor: ActorDep,
    store: StoreDep,
    fmt: Annotated[Literal["json", "geojson"], Query(alias="format", description="json 或 geojson（问题几何）")
                   ] = "json",
    sliver_width_m: SliverWidth = SLIVER_WIDTH_M,
    tolerance_m2: Tolerance = AREA_TOLERANCE_M2,
) -> Response:
    check_topology_actor(actor)
    report, _ = await run_in_threadpool(_report, store, sliver_width_m, tolerance_m2)
    if fmt == "geojson":
        return FastJSONResponse(report.to_geojson(), media_type="application/geo+json")
    return FastJSONResponse({**report.to_dict(), "fix_tolerance_m": DEFAULT_TOLERANCE_M})


@router.get("/maps/topology", response_class=HTMLResponse, tags=["maps"],
            responses={401: {"description": "未登录（浏览器：303 跳转到 /login）"}, 403: {"description": "角色无权查看"}},
            summary="边界拓扑检查地图（管理员、指挥调度、规划人员）：重叠、缝隙、狭长碎片、越界、无效几何、被分割的楼栋")
async def topology_map(
    request: Request,
    actor: ActorDep,
    store: StoreDep,
    sliver_width_m: SliverWidth = SLIVER_WIDTH_M,
    tolerance_m2: Tolerance = AREA_TOLERANCE_M2,
) -> Response:
    refused = refused_page(request, actor, check_topology_actor)
    if refused is not None:
        return refused
    settings = request.app.state.settings
    check_assets(settings.map_assets)
    report, layers = await run_in_threadpool(_report, store, sliver_width_m, tolerance_m2)
    html = await run_in_threadpool(topology_page, report, layers, basemaps(settings))
    return HTMLResponse(html, headers={"Cache-Control": "private, no-cache", "Vary": "Cookie, Authorization"})
