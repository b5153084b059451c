"""Boundary versions (issue #14 §3): ``GET /v1/versions``, ``GET /v1/versions/{a}/diff/{b}`` (JSON or
GeoJSON) and the map page ``/maps/versions?a=&b=``. Every signed-in role (``access.check_versions_read``);
the router only parses and calls."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from gridmap import access
from gridmap.api.deps import ActorDep, StoreDep
from gridmap.api.page_access import refused_page
from gridmap.api.responses import FastJSONResponse
from gridmap.layers.assets import check_assets
from gridmap.maps.basemaps import basemaps
from gridmap.maps.versions import versions_page
from gridmap.versions import service
from gridmap.versions.records import layers_of_version, today_local

router = APIRouter(tags=["versions"])
REFUSED = {401: {"description": "未登录"}, 403: {"description": "角色无权查看"}}


@router.get("/v1/versions", summary="网格版本：每次导入网格形成一个版本（生效日期、标签、是否现行、是否计划中）",
            responses=REFUSED)
async def versions(actor: ActorDep, store: StoreDep) -> Response:
    access.check_versions_read(actor)
    return FastJSONResponse(await run_in_threadpool(service.list_versions, store, today_local()))


@router.get("/v1/versions/{a}/diff/{b}", summary="两个网格版本的差异：新增、撤销、调整的网格，改变所属网格的楼栋与户数，涉及的网格员",
            responses={**REFUSED, 404: {"description": "没有该编号的版本"}})
async def version_diff(
    a: int, b: int, actor: ActorDep, store: StoreDep,
    fmt: Annotated[Literal["json", "geojson"], Query(alias="format", description="json 或 geojson（变化的几何）")
                   ] = "json",
) -> Response:
    access.check_versions_read(actor)
    answer, geojson = await run_in_threadpool(service.diff, store, a, b)
    if fmt == "geojson":
        return FastJSONResponse(geojson, media_type="application/geo+json")
    return FastJSONResponse(answer)


@router.get("/maps/versions", response_class=HTMLResponse, tags=["maps"],
            responses={**REFUSED, 404: {"description": "没有该编号的版本"}},
            summary="网格版本对比地图：新增、撤销、调整前后的网格与改变所属网格的楼栋（登录后可看）")
async def versions_map(
    request: Request, actor: ActorDep, store: StoreDep,
    a: Annotated[int, Query(description="旧版本编号")], b: Annotated[int, Query(description="新版本编号")],
) -> Response:
    refused = refused_page(request, actor, access.check_versions_read)
    if refused is not None:
        return refused
    settings = request.app.state.settings
    check_assets(settings.map_assets)
    answer, geojson = await run_in_threadpool(service.diff, store, a, b)
    after = await run_in_threadpool(layers_of_version, store, b, {})
    regions = await run_in_threadpool(store.read_layer, "regions")
    html = await run_in_threadpool(versions_page, answer, geojson, after["grids"], regions, basemaps(settings))
    return HTMLResponse(html, headers={"Cache-Control": "private, no-cache", "Vary": "Cookie, Authorization"})
