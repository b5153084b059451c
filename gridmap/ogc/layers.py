"""The OGC collections: which layers, their Chinese titles, and the feature table each is served from.

Every layer but incidents comes from the in-memory ``Coverage`` (the same package revision as every other
answer of the request), roads from the store (the coverage index has no use for them). Tables are built once
per package revision and kept sorted by feature id, so ``offset`` paging walks the same order on every page.
Incidents are read per request and cut by ``gridmap.access.incidents_for_map`` for the caller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd

from gridmap.access import incidents_for_map, scope_of
from gridmap.auth import PUBLIC, Actor
from gridmap.maps.incidents import load_incidents
from gridmap.schema import LAYERS

WGS84: Final = "EPSG:4326"


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    geometry: str
    """The GeoJSON geometry type(s) of its features, for the collection document and the HTML page."""
    temporal: str | None = None
    """The property ``datetime`` filters on (ISO 8601 instants); None: the collection has no time."""
    key: str = "code"
    """The property whose value is the feature id."""


COLLECTIONS: Final[dict[str, Collection]] = {c.id: c for c in (
    Collection("regions", "行政区划", "县（区）、乡镇（街道）、社区（村）的边界", "Polygon, MultiPolygon"),
    Collection("grids", "网格", "网格边界、所属社区、楼栋数、户数、人口，以及网格员的公开服务联系方式（姓名、岗位、工作电话）",
               "Polygon, MultiPolygon"),
    Collection("stations", "党群服务站", "党群服务中心与党群服务站", "Point"),
    Collection("roads", "道路", "有名称的道路", "LineString, MultiLineString"),
    Collection("buildings", "楼栋", "楼栋与院落：标准地址、户数、人口、所在网格（需登录）", "Polygon, MultiPolygon, Point"),
    Collection("precincts", "派出所辖区", "派出所辖区与值班电话（需登录）", "Polygon, MultiPolygon"),
    Collection("units", "共建单位", "驻区单位及其可提供的资源（需登录）", "Point"),
    Collection("incidents", "事件", "上报的事件点位：网格员看到本人负责范围内的事件，规划人员看到匿名点位（需登录）", "Point",
               temporal="reported_at", key="id"),
)}


def _fields(layer: str) -> list[str]:
    return LAYERS[layer].field_names


def _sorted(frame: gpd.GeoDataFrame, key: str) -> gpd.GeoDataFrame:
    """Sorted by feature id (the order paging walks), in WGS84 lon/lat (CRS84 in GeoJSON)."""
    frame = frame.sort_values(key, kind="stable").reset_index(drop=True)
    return frame.to_crs(WGS84) if frame.crs is not None and frame.crs != WGS84 else frame


def _grids(coverage: Any) -> gpd.GeoDataFrame:
    """As ``/v1/grids`` answers (totals of the grid's buildings, the community's name) and, as the public
    map's grid popups show, the workers' public service contacts."""
    grids = coverage.grids
    totals = pd.DataFrame({"grid": coverage.building_grid, "households": coverage.buildings["households"].to_numpy(),
                           "population": coverage.buildings["population"].to_numpy()})
    summed = totals.groupby("grid").agg(building_count=("households", "size"), households=("households", "sum"),
                                        population=("population", "sum")).reindex(grids["code"]).fillna(0).astype(int)
    workers = ["、".join(f"{w['name']}（{w['role']} {w['phone']}）" for w in coverage.grid_workers(code))
               for code in grids["code"]]
    frame = grids[[*_fields("grids"), grids.geometry.name]].copy()
    frame["community_name"] = [coverage.region_name(c) or "" if c else "" for c in frame["community_code"]]
    for column in ("building_count", "households", "population"):
        frame[column] = summed[column].to_numpy()
    frame["workers"] = workers
    return frame


def _buildings(coverage: Any) -> gpd.GeoDataFrame:
    b = coverage.buildings
    frame = b[[*_fields("buildings"), b.geometry.name]].copy()
    frame["grid_code"] = [g or "" for g in coverage.building_grid]
    return frame


def _plain(layer: str) -> Callable[[Any], gpd.GeoDataFrame]:
    def build(coverage: Any) -> gpd.GeoDataFrame:
        frame = getattr(coverage, layer, None)
        if frame is None:
            return _empty(layer)
        return frame[[*_fields(layer), frame.geometry.name]].copy()
    return build


def _regions(coverage: Any) -> gpd.GeoDataFrame:
    level_names = {"county": "县（区）", "town": "乡镇（街道）", "community": "社区（村）"}
    frame = _plain("regions")(coverage)
    frame["level_name"] = frame["level"].map(lambda v: level_names.get(v, v))
    return frame


def _empty(layer: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({name: pd.Series(dtype=object) for name in _fields(layer)},
                            geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)


BUILDERS: Final[dict[str, Callable[[Any], gpd.GeoDataFrame]]] = {
    "regions": _regions, "grids": _grids, "stations": _plain("stations"), "buildings": _buildings,
    "precincts": _plain("precincts"), "units": _plain("units"),
}


class Tables:
    """The collections' tables of one package revision at a time (a new revision drops the old ones)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revision: object = None
        self._tables: dict[str, gpd.GeoDataFrame] = {}

    def table(self, name: str, *, coverage: Any, store: Any) -> gpd.GeoDataFrame:
        revision = (id(coverage), getattr(coverage, "revision", None))
        with self._lock:
            if revision != self._revision:
                self._revision, self._tables = revision, {}
            found = self._tables.get(name)
        if found is not None:
            return found
        built = _sorted(self._build(name, coverage, store), COLLECTIONS[name].key)
        with self._lock:
            if revision == self._revision:
                self._tables[name] = built
        return built

    @staticmethod
    def _build(name: str, coverage: Any, store: Any) -> gpd.GeoDataFrame:
        if name == "roads":
            roads = store.read_layer("roads")
            if not isinstance(roads, gpd.GeoDataFrame) or not len(roads):
                return _empty("roads")
            return roads[[*_fields("roads"), roads.geometry.name]].copy()
        return BUILDERS[name](coverage)


def incidents_table(store: Any, coverage: Any, actor: Actor, *, now: datetime) -> gpd.GeoDataFrame:
    """The caller's incidents as the maps draw them: a worker's are read through the store's grid index
    (their grids only), then every view is cut by ``incidents_for_map``; ids as integers in order."""
    grids = None
    if actor.role != PUBLIC:
        scope = scope_of(actor, coverage)
        if scope.view == "full" and scope.grids is not None:
            grids = sorted(scope.grids)
    frame = load_incidents(store, coverage, now=now, grids=grids)
    shown = incidents_for_map(frame, actor=actor, coverage=coverage)
    shown = shown.assign(id=shown["id"].astype(np.int64)) if len(shown) else shown
    for column in shown.columns:
        if pd.api.types.is_datetime64_any_dtype(shown[column]):  # GeoJSON carries times as RFC 3339 text
            shown = shown.assign(**{column: shown[column].map(_rfc3339)})
    return _sorted(shown, "id")


def _rfc3339(moment: Any) -> str | None:
    if moment is None or pd.isna(moment):
        return None
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
