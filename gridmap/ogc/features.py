"""The documents of OGC API – Features, Part 1 (OGC 17-069r4): landing page, conformance, collections,
items and single features, as plain dictionaries with their ``links``.

Query parameters arrive as strings and are checked here, so that a bad ``bbox`` or ``limit`` is the 400 the
standard asks for (``/req/core/query-param-invalid``), and a parameter the API does not define is a 400 too
(``/req/core/query-param-unknown``): a misspelt property filter must not silently return everything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.geometry

from gridmap.errors import GridmapError, NotFound
from gridmap.ogc import crs as crs_
from gridmap.ogc.crs import CRS84
from gridmap.ogc.layers import COLLECTIONS, Collection

CRS84H: Final = "http://www.opengis.net/def/crs/OGC/0/CRS84h"
GEOJSON: Final = "application/geo+json"
JSON: Final = "application/json"
HTML: Final = "text/html"
OPENAPI: Final = "application/vnd.oai.openapi+json;version=3.0"

CONFORMANCE: Final = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
)
SCHEMA_JSON: Final = "application/schema+json"
QUERYABLES_REL: Final = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
JSON_SCHEMA: Final = "https://json-schema.org/draft/2020-12/schema"

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 10_000
"""pygeoapi and tipg page by 10 by default; 100 keeps a QGIS view of a community to a request or two, and
10,000 caps what one answer holds (a client asking more gets 10,000 and a ``next`` link)."""

MAX_OFFSET: Final = 2**62
COMMON_PARAMS: Final = frozenset({"f", "limit", "offset", "bbox", "bbox-crs", "datetime", "crs"})


class InvalidParameter(GridmapError):
    """A query parameter the standard says is answered with 400 Bad Request."""

    status_code = 400
    code = "invalid_parameter"


# query parameters ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ItemsQuery:
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    interval: tuple[pd.Timestamp | None, pd.Timestamp | None] | None = None
    equals: dict[str, str] = field(default_factory=dict)
    crs: str = CRS84
    """The CRS of the answer's coordinates (Part 2), in its own axis order."""
    bbox_crs: str = CRS84


def _integer(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidParameter(f"参数 {name} 应为整数：{text!r}") from None
    if value < low:
        raise InvalidParameter(f"参数 {name} 不能小于 {low}：{text!r}")
    return min(value, high)


def parse_bbox(text: str, bbox_crs: str = CRS84) -> tuple[float, float, float, float]:
    """``minLon,minLat,maxLon,maxLat`` in CRS84 (or six numbers with heights, which are ignored); a box
    crossing the antimeridian (minLon > maxLon) is allowed, as the standard allows it. In another
    ``bbox-crs`` the four numbers are lower and upper corners in that CRS's axis order."""
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        raise InvalidParameter(f"bbox 应为 4 个（或 6 个）以逗号分隔的数：{text!r}") from None
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise InvalidParameter(f"bbox 应为 4 个（或 6 个）以逗号分隔的数：{text!r}")
    if bbox_crs != CRS84:
        if numbers[0] > numbers[2] or numbers[1] > numbers[3]:
            raise InvalidParameter(f"bbox 的下角大于上角：{text!r}")
        return numbers[0], numbers[1], numbers[2], numbers[3]
    min_lon, min_lat, max_lon, max_lat = numbers
    if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise InvalidParameter(f"bbox 超出经纬度范围或最小纬度大于最大纬度：{text!r}")
    return min_lon, min_lat, max_lon, max_lat


def _instant(text: str) -> pd.Timestamp | None:
    if text in ("..", ""):
        return None
    try:
        moment = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        raise InvalidParameter(f"datetime 应为 RFC 3339 时间或时间段（a/b、../b、a/..）：{text!r}") from None
    if moment is pd.NaT:
        raise InvalidParameter(f"datetime 无效：{text!r}")
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def parse_datetime(text: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """An instant (a date means the whole day) or a closed or half-bounded interval, both ends included."""
    if "/" in text:
        start_text, _, end_text = text.partition("/")
        start, end = _instant(start_text), _instant(end_text)
        if start_text not in ("..", "") and len(end_text) == 10 and end is not None:
            end = end + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        if start is not None and end is not None and start > end:
            raise InvalidParameter(f"datetime 时间段的起点晚于终点：{text!r}")
        return start, end
    moment = _instant(text)
    if moment is None:
        raise InvalidParameter(f"datetime 无效：{text!r}")
    if len(text.strip()) == 10:  # a date: the whole day
        return moment, moment + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return moment, moment


def queryables(collection: Collection, table: gpd.GeoDataFrame) -> list[str]:
    """The properties a client may filter on by equality (``?grid_code=…``): every property of the table."""
    return [c for c in table.columns if c != table.geometry.name]


def _json_type(column: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(column):
        return "boolean"
    if pd.api.types.is_integer_dtype(column):
        return "integer"
    if pd.api.types.is_float_dtype(column):
        return "number"
    return "string"


def queryables_document(root: str, collection: Collection, table: gpd.GeoDataFrame) -> dict[str, Any]:
    """The queryables as a JSON Schema (Features Part 3): what ``?name=value`` may filter on, with types, so
    QGIS and GDAL can offer the filters and send them to the server."""
    return {
        "$schema": JSON_SCHEMA,
        "$id": f"{root}/collections/{collection.id}/queryables",
        "type": "object",
        "title": collection.title,
        "properties": {name: {"title": name, "type": _json_type(table[name])}
                       for name in queryables(collection, table)},
        "additionalProperties": False,
    }


def parse_crs(params: Mapping[str, str], name: str, offered: Sequence[str]) -> str:
    try:
        return crs_.check(params.get(name, CRS84), offered, name)
    except crs_.UnsupportedCrs as exc:
        raise InvalidParameter(str(exc)) from None


def parse_items_query(collection: Collection, table: gpd.GeoDataFrame, params: Mapping[str, str],
                      offered: Sequence[str]) -> ItemsQuery:
    """Check and read the items query; a property filter names a queryable and compares as text."""
    names = set(queryables(collection, table))
    unknown = sorted(set(params) - COMMON_PARAMS - names)
    if unknown:
        raise InvalidParameter(f"不支持的查询参数：{'、'.join(unknown)}（可用：limit、offset、bbox、datetime 及属性 "
                               f"{'、'.join(sorted(names))}）")
    output, bbox_crs = parse_crs(params, "crs", offered), parse_crs(params, "bbox-crs", offered)
    limit = _integer("limit", params["limit"], 1, MAX_LIMIT) if "limit" in params else DEFAULT_LIMIT
    offset = _integer("offset", params["offset"], 0, MAX_OFFSET) if "offset" in params else 0
    bbox = parse_bbox(params["bbox"], bbox_crs) if "bbox" in params else None
    interval = parse_datetime(params["datetime"]) if "datetime" in params else None
    equals = {k: v for k, v in params.items() if k in names}
    return ItemsQuery(limit, offset, bbox, interval, equals, output, bbox_crs)


# selecting features -------------------------------------------------------------------------------

def _bbox_mask(table: gpd.GeoDataFrame, bbox: tuple[float, float, float, float], bbox_crs: str) -> np.ndarray:
    min_lon, min_lat, max_lon, max_lat = bbox
    if bbox_crs != CRS84:
        try:
            boxes = [crs_.bbox_area(bbox, bbox_crs)]
        except crs_.OutsideCrs as exc:
            raise InvalidParameter(str(exc)) from None
    elif min_lon <= max_lon:
        boxes = [shapely.box(min_lon, min_lat, max_lon, max_lat)]
    else:
        boxes = [shapely.box(min_lon, min_lat, 180, max_lat), shapely.box(-180, min_lat, max_lon, max_lat)]
    mask = np.zeros(len(table), dtype=bool)
    for area in boxes:
        hits = table.sindex.query(area, predicate="intersects")
        mask[hits] = True
    return mask


def select(collection: Collection, table: gpd.GeoDataFrame, query: ItemsQuery) -> gpd.GeoDataFrame:
    """The features matching bbox (intersects), datetime (the collection's time property within the
    interval; ignored for collections without time, as Part 1 allows) and property equality."""
    mask = np.ones(len(table), dtype=bool)
    if query.bbox is not None and len(table):
        mask &= _bbox_mask(table, query.bbox, query.bbox_crs)
    if query.interval is not None and collection.temporal is not None and len(table):
        times = pd.to_datetime(table[collection.temporal], utc=True, errors="coerce", format="ISO8601")
        start, end = query.interval
        if start is not None:
            mask &= (times >= start).to_numpy()
        if end is not None:
            mask &= (times <= end).to_numpy()
    for name, value in query.equals.items():
        mask &= _as_text(table[name]).to_numpy() == value
    return table[mask]


def _as_text(values: pd.Series) -> pd.Series:
    """Values as a client writes them in a URL: integers without ``.0``, booleans ``true``/``false``."""
    def text(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, (bool, np.bool_)):
            return "true" if v else "false"
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)
    return values.map(text)


def _features(frame: gpd.GeoDataFrame, collection: Collection, crs: str = CRS84) -> list[dict[str, Any]]:
    if not len(frame):
        return []
    features = frame.to_geo_dict(drop_id=True, na="null")["features"]
    for feature, key in zip(features, frame[collection.key].tolist()):
        feature["id"] = int(key) if isinstance(key, (int, np.integer)) else str(key)
    if crs != CRS84:
        moved = crs_.to_crs(np.asarray(frame.geometry.values), crs)
        for feature, geometry in zip(features, moved):
            feature["geometry"] = shapely.geometry.mapping(geometry) if geometry is not None else None
    return features


# documents ----------------------------------------------------------------------------------------

def _link(href: str, rel: str, type_: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": type_, "title": title}


def _formats(url: str, *, json_type: str, title: str, html: bool) -> list[dict[str, str]]:
    """``self`` in the format answered, ``alternate`` for the other one."""
    json_link = _link(_with(url, f="json"), "self" if not html else "alternate", json_type, f"{title}（JSON）")
    html_link = _link(_with(url, f="html"), "self" if html else "alternate", HTML, f"{title}（网页）")
    return [html_link, json_link] if html else [json_link, html_link]


def _with(url: str, **params: Any) -> str:
    """``url`` with ``params`` set (None: removed), its other query parameters kept."""
    base, _, query = url.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in params]
    encoded = urlencode(kept + [(k, str(v)) for k, v in params.items() if v is not None])
    return f"{base}?{encoded}" if encoded else base


def landing(root: str, *, docs_url: str, html: bool = False) -> dict[str, Any]:
    return {
        "title": "gridmap 网格化服务管理 – OGC API Features",
        "description": "网格、行政区划、楼栋、党群服务站、派出所辖区、共建单位、道路与事件图层（按调用者的角色提供）",
        "links": [
            *_formats(root, json_type=JSON, title="本页", html=html),
            _link(f"{root}/api", "service-desc", OPENAPI, "OpenAPI 3.0 接口定义"),
            _link(docs_url, "service-doc", HTML, "接口文档（网页）"),
            _link(f"{root}/conformance", "conformance", JSON, "符合的标准类别"),
            _link(f"{root}/collections", "data", JSON, "图层列表"),
        ],
    }


def conformance() -> dict[str, Any]:
    return {"conformsTo": list(CONFORMANCE)}


def _extent(table: gpd.GeoDataFrame, collection: Collection) -> dict[str, Any]:
    extent: dict[str, Any] = {}
    if len(table) and not table.geometry.is_empty.all():
        extent["spatial"] = {"bbox": [[float(v) for v in table.total_bounds]], "crs": CRS84}
    if collection.temporal is not None:
        times = pd.to_datetime(table[collection.temporal], utc=True, errors="coerce", format="ISO8601").dropna() \
            if len(table) else pd.Series([], dtype="datetime64[ns, UTC]")
        interval = [_iso(times.min()), _iso(times.max())] if len(times) else [None, None]
        extent["temporal"] = {"interval": [interval], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return extent


def _iso(moment: pd.Timestamp) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def collection_document(root: str, collection: Collection, table: gpd.GeoDataFrame, offered: Sequence[str], *,
                        html: bool = False, in_list: bool = False) -> dict[str, Any]:
    url = f"{root}/collections/{collection.id}"
    links = [_link(url, "self", JSON, collection.title)] if in_list else _formats(url, json_type=JSON,
                                                                                 title=collection.title, html=html)
    links += [
        _link(f"{url}/items?f=json", "items", GEOJSON, f"{collection.title}要素（GeoJSON）"),
        _link(f"{url}/items?f=html", "items", HTML, f"{collection.title}要素（网页）"),
        _link(f"{url}/queryables", QUERYABLES_REL, SCHEMA_JSON, f"{collection.title}可筛选的属性"),
    ]
    document: dict[str, Any] = {
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "itemType": "feature",
        "crs": list(offered),
        "storageCrs": CRS84,
        "links": links,
        "extent": _extent(table, collection),
    }
    return document


def collections_document(root: str, entries: list[tuple[Collection, gpd.GeoDataFrame]], offered: Sequence[str], *,
                         html: bool = False) -> dict[str, Any]:
    return {
        "links": _formats(f"{root}/collections", json_type=JSON, title="图层列表", html=html),
        "collections": [collection_document(root, c, t, offered, in_list=True) for c, t in entries],
        "crs": list(offered),
    }


def items_document(root: str, collection: Collection, table: gpd.GeoDataFrame, query: ItemsQuery,
                   params: Mapping[str, str], *, html: bool = False) -> dict[str, Any]:
    """One page of features: ``numberMatched`` (every match, cheap here: the table is in memory),
    ``numberReturned``, and ``next``/``prev`` links that keep every other parameter of the request."""
    matched = select(collection, table, query)
    page = matched.iloc[query.offset: query.offset + query.limit] if query.offset < len(matched) else matched.iloc[0:0]
    url = f"{root}/collections/{collection.id}/items"
    asked = {k: v for k, v in params.items() if k not in ("f", "offset", "limit")}
    here = _with(url, **asked, limit=query.limit, offset=query.offset or None)
    links = _formats(here, json_type=GEOJSON, title="本页", html=html)
    fmt = "html" if html else "json"
    if query.offset + len(page) < len(matched):
        links.append(_link(_with(url, **asked, f=fmt, limit=query.limit, offset=query.offset + query.limit), "next",
                           HTML if html else GEOJSON, "下一页"))
    if query.offset > 0:
        links.append(_link(_with(url, **asked, f=fmt, limit=query.limit, offset=max(0, query.offset - query.limit)),
                           "prev", HTML if html else GEOJSON, "上一页"))
    links.append(_link(f"{root}/collections/{collection.id}", "collection", JSON, collection.title))
    return {
        "type": "FeatureCollection",
        "features": _features(page, collection, query.crs),
        "links": links,
        "numberMatched": len(matched),
        "numberReturned": len(page),
        "timeStamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def feature_document(root: str, collection: Collection, table: gpd.GeoDataFrame, feature_id: str, *,
                     crs: str = CRS84, html: bool = False) -> dict[str, Any]:
    found = table[_as_text(table[collection.key]).to_numpy() == feature_id] if len(table) else table
    if not len(found):
        raise NotFound(f"图层 {collection.id} 中没有要素 {feature_id}")
    feature = _features(found.iloc[:1], collection, crs)[0]
    url = f"{root}/collections/{collection.id}/items/{feature_id}"
    feature["links"] = [
        *_formats(url, json_type=GEOJSON, title=str(feature_id), html=html),
        _link(f"{root}/collections/{collection.id}", "collection", JSON, collection.title),
    ]
    return feature


def collection_of(name: str, allowed: tuple[str, ...]) -> Collection:
    """The collection, if it exists and is listed for the caller (the caller's rules come first: see
    ``gridmap.access.check_ogc_collection``)."""
    if name not in COLLECTIONS or name not in allowed:
        raise NotFound(f"没有图层 {name}（可选：{'、'.join(allowed)}）")
    return COLLECTIONS[name]
