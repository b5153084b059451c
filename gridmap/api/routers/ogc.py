"""OGC API – Features under ``/ogc`` (landing page, conformance, collections, items, features).

The router only turns HTTP into ``gridmap.ogc.service`` calls and back: query parameters are read as
strings and checked there (a bad ``limit`` or ``bbox`` is the standard's 400, not FastAPI's 422), and who
may read which collection is ``gridmap.access`` (``ogc_collections``, ``check_ogc_collection``,
``incidents_for_map``). The standard's parameters are described in the OpenAPI by hand (``openapi_extra``)
with their OGC schemas, so that GDAL and OWSLib read the limit's bounds from ``/ogc/api``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from gridmap.api.deps import ActorDep, coverage_of
from gridmap.ogc import features, service
from gridmap.ogc.html import CSP
from gridmap.ogc.layers import Tables
from gridmap.ogc.openapi import openapi30

router = APIRouter(prefix="/ogc", tags=["ogc"])


_F = {"name": "f", "in": "query", "required": False, "description": "返回格式：json（默认）或 html（浏览器默认）",
      "schema": {"type": "string", "enum": ["json", "html"]}}
_COLLECTION = {"name": "collectionId", "in": "path", "required": True, "description": "图层编号（即图层名）",
               "schema": {"type": "string"}}
_FEATURE = {"name": "featureId", "in": "path", "required": True, "description": "要素编号（code；事件为 id）",
            "schema": {"type": "string"}}
_ITEMS = [
    {"name": "limit", "in": "query", "required": False, "style": "form", "explode": False,
     "description": f"每页要素数（默认 {features.DEFAULT_LIMIT}，最多 {features.MAX_LIMIT}）",
     "schema": {"type": "integer", "minimum": 1, "maximum": features.MAX_LIMIT, "default": features.DEFAULT_LIMIT}},
    {"name": "offset", "in": "query", "required": False, "description": "跳过的要素数（翻页用；按 next 链接即可）",
     "schema": {"type": "integer", "minimum": 0, "default": 0}},
    {"name": "bbox", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "经纬度范围 minLon,minLat,maxLon,maxLat（CRS84）：与之相交的要素",
     "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}},
    {"name": "datetime", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "时间或时间段（RFC 3339，a/b、../b、a/..）：事件按上报时间筛选；其他图层没有时间，忽略",
     "schema": {"type": "string"}},
    {"name": "crs", "in": "query", "required": False,
     "description": "输出坐标系（OGC API Features 第 2 部分）：CRS84（默认，经度在前）、EPSG:4326、EPSG:4490（CGCS2000，"
                    "纬度在前）、EPSG:3857、本县的 CGCS2000 3 度带高斯-克吕格投影（临猗：EPSG:4546，北坐标在前）；"
                    "可用的 URI 见图层的 crs 列表",
     "schema": {"type": "string", "format": "uri"}},
    {"name": "bbox-crs", "in": "query", "required": False, "description": "bbox 的坐标系（同 crs 的可选值，按其坐标轴顺序）",
     "schema": {"type": "string", "format": "uri"}},
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "参数无效（limit、offset、bbox、datetime、未定义的参数）"},
    401: {"description": "该图层需要登录（楼栋、派出所辖区、共建单位、事件）"},
    404: {"description": "没有这个图层或要素"},
}


def tables_of(request: Request) -> Tables:
    state = request.app.state
    if getattr(state, "ogc_tables", None) is None:
        state.ogc_tables = Tables()
    return state.ogc_tables


def _request(request: Request, actor: Any) -> service.Request:
    root = str(request.base_url).rstrip("/") + "/ogc"
    params = dict(request.query_params)
    wants_html = "text/html" in request.headers.get("accept", "")
    return service.Request(request.app.state.store, coverage_of(request), actor, root, params, wants_html)


def _respond(answer: service.Answer) -> Response:
    """JSON or HTML; ``Content-Crs`` names the CRS of the coordinates of features (Part 2)."""
    body, media_type, crs = answer
    if isinstance(body, str):
        return HTMLResponse(body, headers={"Content-Security-Policy": CSP})
    headers = {"Content-Crs": f"<{crs}>"} if crs else None
    return JSONResponse(body, media_type=media_type, headers=headers)


@router.get("", summary="OGC API Features 起始页", response_class=JSONResponse, openapi_extra={"parameters": [_F]},
            responses={400: _ERRORS[400]})
def landing_page(request: Request, actor: ActorDep) -> Response:
    docs_url = str(request.base_url).rstrip("/") + "/docs"
    return _respond(service.landing(_request(request, actor), docs_url=docs_url))


@router.get("/conformance", summary="OGC API Features 符合的标准类别", response_class=JSONResponse,
            openapi_extra={"parameters": [_F]}, responses={400: _ERRORS[400]})
def conformance(request: Request, actor: ActorDep) -> Response:
    return _respond(service.conformance(_request(request, actor)))


@router.get("/api", summary="OGC API Features 接口定义（OpenAPI 3.0）", response_class=JSONResponse)
def api(request: Request) -> Response:
    """The whole service's OpenAPI, as 3.0 (``service-desc`` of the landing page)."""
    return JSONResponse(openapi30(request.app.openapi()), media_type=features.OPENAPI)


@router.get("/collections", summary="图层列表（按调用者的角色）", response_class=JSONResponse,
            openapi_extra={"parameters": [_F]}, responses={400: _ERRORS[400]})
def collections(request: Request, actor: ActorDep) -> Response:
    return _respond(service.collections(_request(request, actor), tables_of(request)))


@router.get("/collections/{collectionId}", summary="单个图层：说明与范围", response_class=JSONResponse,
            openapi_extra={"parameters": [_COLLECTION, _F]}, responses=_ERRORS)
def collection(request: Request, actor: ActorDep) -> Response:
    name = request.path_params["collectionId"]
    return _respond(service.collection(_request(request, actor), tables_of(request), name))


@router.get("/collections/{collectionId}/queryables", summary="图层可筛选的属性（JSON Schema，Features 第 3 部分）",
            response_class=JSONResponse, openapi_extra={"parameters": [_COLLECTION, _F]}, responses=_ERRORS)
def queryables(request: Request, actor: ActorDep) -> Response:
    name = request.path_params["collectionId"]
    return _respond(service.queryables(_request(request, actor), tables_of(request), name))


@router.get("/collections/{collectionId}/items", summary="图层要素（GeoJSON，分页，bbox、datetime、属性筛选）",
            response_class=JSONResponse, openapi_extra={"parameters": [_COLLECTION, *_ITEMS, _F]}, responses=_ERRORS)
def items(request: Request, actor: ActorDep) -> Response:
    name = request.path_params["collectionId"]
    return _respond(service.items(_request(request, actor), tables_of(request), name))


@router.get("/collections/{collectionId}/items/{featureId}", summary="单个要素（GeoJSON）", response_class=JSONResponse,
            openapi_extra={"parameters": [_COLLECTION, _FEATURE, _ITEMS[4], _F]}, responses=_ERRORS)
def feature(request: Request, actor: ActorDep) -> Response:
    name, feature_id = request.path_params["collectionId"], request.path_params["featureId"]
    return _respond(service.feature(_request(request, actor), tables_of(request), name, feature_id))
