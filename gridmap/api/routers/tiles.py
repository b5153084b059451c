"""Vector tiles of the map layers (``GET /tiles/{layer}/{z}/{x}/{y}.pbf``): the router only serves bytes.

What a tile holds and how it is simplified is ``gridmap.layers.tiles``; what incidents a caller may
see is ``gridmap.access.incidents_for_map`` (the public: public categories, rounded; a worker: their
grids; a planner: anonymised). Sign-in as for the map pages that draw them: the public map's layers
(grids, stations, incidents, region outlines) are open to everyone; buildings, precincts, co-building units and
the planner's coverage need a sign-in (Bearer or session cookie). The co-governance layers (needs, resources,
projects, patrol coverage) need a sign-in too, and hold what the caller may read through the JSON API
(``gridmap.maps.cogov``: a worker their own community's records and their own buildings).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Annotated, Any, Final, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from gridmap.access import STAFF_ROLES, check_actor, incidents_for_map
from gridmap.api.deps import MAX_ROW_ID, ActorDep, coverage_of
from gridmap.auth import ANONYMOUS, PUBLIC, Actor
from gridmap.errors import Unauthorized
from gridmap.incidents.service import incidents_frame, utcnow
from gridmap.layers.tiles import (
    LAYERS,
    RECORD_LAYERS,
    IncidentFilters,
    IncidentSource,
    TileService,
    View,
    check_tile,
    etag_of,
    incidents_tile,
)
from gridmap.maps import cogov
from gridmap.maps.incidents import fingerprint, incidents_version, load_incidents
from gridmap.maps.permissions import view_key
from gridmap.planning import scenarios
from gridmap.store.base import IncidentQuery

router = APIRouter(prefix="/tiles", tags=["maps"])

MVT_TYPE: Final = "application/vnd.mapbox-vector-tile"
SIGNED_IN_LAYERS: Final = frozenset({"buildings", "precincts", "units", "coverage", *RECORD_LAYERS})
"""Layers the public map does not draw: they need a sign-in."""


def service_of(request: Request) -> TileService:
    state = request.app.state
    if getattr(state, "tiles", None) is None:
        state.tiles = TileService()
    return state.tiles


def _incidents_state(state: Any, coverage: Any) -> tuple[gpd.GeoDataFrame | None, Hashable]:
    """(frame or None, version): what incident tiles depend on, as the map pages read it: the store's
    ``incidents_version`` (its incident revision and the next due time) without loading any incident; a
    hook's frame (``app.state.map_incidents``) is loaded and fingerprinted."""
    hook = getattr(state, "map_incidents", None)
    if hook is not None:
        frame = hook(state.store, coverage)
        return frame, fingerprint(frame)
    return None, incidents_version(state.store, utcnow())


def incident_source(state: Any, coverage: Any, viewer: Actor, frame: gpd.GeoDataFrame | None) -> IncidentSource:
    """The caller's incidents for the tile service, every path cut by ``incidents_for_map``: all of them
    (``load``), or only those written since a time (``changes``: an ``updated_since`` query, the ids read
    before the cut and the store's count), so that a write costs work for the rows it changed. A hook's
    frame (``app.state.map_incidents``) can only be loaded whole."""
    store = state.store
    now = pd.Timestamp(utcnow())

    def load() -> tuple[gpd.GeoDataFrame, np.ndarray]:
        incidents = frame if frame is not None else load_incidents(store, coverage, now=now)
        ids = (incidents["id"].astype(np.int64).to_numpy() if frame is None and len(incidents)
               else np.empty(0, dtype=np.int64))
        return incidents_for_map(incidents, actor=viewer, coverage=coverage), ids

    def changes(since: str) -> tuple[gpd.GeoDataFrame, np.ndarray, int]:
        changed = incidents_frame(store, coverage, query=IncidentQuery(updated_since=since), now=now)
        _, stored = store.query_incidents(IncidentQuery(), limit=0)
        ids = changed["id"].astype(np.int64).to_numpy() if len(changed) else np.empty(0, dtype=np.int64)
        return incidents_for_map(changed, actor=viewer, coverage=coverage), ids, stored

    return IncidentSource(load, changes if frame is None else None, now)


@router.get(
    "/{layer}/{z}/{x}/{y}.pbf",
    response_class=Response,
    responses={200: {"content": {MVT_TYPE: {}}, "description": "Mapbox 矢量瓦片"},
               401: {"description": "楼栋、派出所辖区、共建单位、距离图层及共建共治图层需要登录"}},
    summary="矢量瓦片（网格、楼栋、服务站、事件、行政区划、派出所辖区、共建单位、楼栋到服务站距离、"
            "居民需求、共建资源、为民办实事项目、包楼院走访）：按视野加载；事件低缩放级别在服务端聚合，筛选在服务端执行",
)
async def tile(
    request: Request,
    actor: ActorDep,
    layer: Literal["grids", "buildings", "stations", "incidents", "regions", "precincts", "units", "coverage",
                   "needs", "resources", "projects", "patrol_coverage"],
    z: int,
    x: int,
    y: int,
    status: Annotated[list[str] | None, Query(description="事件状态（可多选）")] = None,
    category: Annotated[list[str] | None, Query(description="叶子或一级类别编码（可多选）")] = None,
    since: Annotated[str | None, Query(description="上报时间起（含），ISO 8601")] = None,
    until: Annotated[str | None, Query(description="上报时间止（不含），ISO 8601")] = None,
    community: Annotated[str | None, Query(description="事件所在社区编码", max_length=64)] = None,
    grid: Annotated[str | None, Query(description="事件所在网格编码", max_length=64)] = None,
    overdue: Annotated[bool, Query(description="只要未办结且超期的事件")] = False,
    supervised: Annotated[bool, Query(description="只要未办结且超期或已督办的事件（同 /v1/incidents）")] = False,
    gcj02: Annotated[bool, Query(description="几何先转换为 GCJ-02（叠加高德底图时）")] = False,
    crs: Annotated[Literal["wgs84", "gcj02"] | None, Query(description="同 gcj02=1：crs=gcj02")] = None,
    scenario: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID,
                                          description="coverage 图层：把该规划方案的站点计入最近服务站")] = None,
) -> Response:
    check_tile(z, x, y)
    if layer in SIGNED_IN_LAYERS and actor.role == PUBLIC:
        raise Unauthorized("该图层需要登录")
    state = request.app.state
    coverage = coverage_of(request)
    if actor.role != PUBLIC:
        check_actor(actor, coverage)
    view: View = "gcj02" if gcj02 or crs == "gcj02" else "wgs84"
    filters = IncidentFilters.parse(status=status, category=category, since=since, until=until, community=community,
                                    grid=grid, overdue=overdue, supervised=supervised)
    tiles = service_of(request)
    viewer: Actor = ANONYMOUS if actor.role == PUBLIC else actor
    who = view_key(viewer, coverage)
    key: tuple = (coverage.revision, who, view, layer, z, x, y)
    if layer in ("grids", "incidents"):
        frame, version = await run_in_threadpool(_incidents_state, state, coverage)
        key = (*key, version, filters if layer == "incidents" else None)
    proposals = None
    day = cogov.today()
    if layer in RECORD_LAYERS:  # the records' change numbers: a write shows on the next tile
        key = (*key, await run_in_threadpool(cogov.version, state.store, layer, day))
    if layer == "coverage":
        key = (*key, scenario)
        if scenario is not None:  # scenarios never change once saved; a missing one is a 404
            proposals = scenarios.proposals_frame(await run_in_threadpool(
                lambda: scenarios.get(store=state.store, scenario_id=scenario)))
    etag = etag_of(key)
    headers = ({"ETag": etag, "Cache-Control": "no-cache"} if actor.role == PUBLIC else
               {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Cookie, Authorization"})
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)

    def build() -> bytes:
        layers = tiles.layers(coverage)
        if layer == "coverage":
            return tiles.coverage_tile(layers, view, scenario, proposals, z, x, y)
        if layer in RECORD_LAYERS:
            return tiles.records_tile(key[:3] + key[7:], layer,
                                      lambda: cogov.layer_frame(layer, state.store, coverage, viewer, day=day),
                                      view, z, x, y)
        if layer not in ("grids", "incidents"):
            return tiles.static_tile(layers, layer, view, z, x, y)

        # dispatchers and admins see every incident alike: one prepared view for all of them
        shared = ("staff",) if viewer.role in STAFF_ROLES else who
        prepared, counts = tiles.incident_view((coverage.revision, shared, view), version,
                                               incident_source(state, coverage, viewer, frame),
                                               coverage=coverage, view=view)
        if layer == "grids":
            return tiles.grids_tile(layers, counts, view, z, x, y)
        return incidents_tile(prepared, filters, z, x, y)

    body = await run_in_threadpool(tiles.cache.get, key, build)
    return Response(body, media_type=MVT_TYPE, headers=headers)


__all__ = ["LAYERS", "router"]
