"""Vector tiles (Mapbox Vector Tile, web-mercator XYZ): which features a tile holds and how they are simplified.

A tile ``z/x/y`` holds exactly the features whose geometry intersects the tile's WGS84 bounds
(found with an STRtree built once per store revision and view), clipped to the tile plus a
``BUFFER_PX`` margin so that strokes meet across tile edges, simplified to half a screen pixel of
that zoom and encoded with ``mapbox-vector-tile``. Layers:

- ``grids``: polygons with name, community, workers, households and open/overdue incident counts
  (those counts come from the caller's view of the incidents, so a grid tile is per view);
- ``buildings``: footprints from ``BUILDINGS_MIN_ZOOM`` on; an empty tile below (half a million
  footprints at city scale are unreadable, and unaffordable, at a county's zoom);
- ``stations``: points;
- ``regions``: county, town and community outlines (``level``), communities from ``COMMUNITIES_MIN_ZOOM``;
- every layer is empty below its ``MIN_ZOOM`` (grids, stations, units, precincts, buildings, coverage);
- ``precincts``: police precincts (派出所辖区) with name and phone;
- ``units``: co-building units (驻区单位/共建单位) as points with their category and resources;
- ``coverage``: the planner's buildings with the straight-line distance to the nearest station (and the
  nearest station's name), from ``COVERAGE_MIN_ZOOM`` on; with a scenario's proposed sites counted as stations
  when the caller names one (``distance_targets``);
- ``needs``, ``resources``, ``projects`` (points) and ``patrol_coverage`` (building footprints, from
  ``COVERAGE_MIN_ZOOM`` on): the co-governance records the caller may read, as frames handed in by the
  router (``gridmap.maps.cogov`` cuts them by the JSON API's rules); every column but the geometry is a
  property (``records_tile``);
- ``incidents``: below ``POINTS_MIN_ZOOM`` one point per ``CLUSTER_CELLS``² cell of the tile with
  the number of incidents in it (each incident counted in exactly one tile: half-open tile cells,
  so the counts of all tiles of a zoom add up to the total); from ``POINTS_MIN_ZOOM`` on, one point
  per incident. The filters (status, category, reported period, community, grid, overdue, supervised: the
  listing's) are applied here, on the server.

The ``gcj02`` view shifts every geometry to GCJ-02 before tiling, so overlays line up on 高德
tiles; the store and the ``wgs84`` view stay WGS84. The incidents handed in are already cut to
the caller's view by ``gridmap.access.incidents_for_map``: this module never widens them.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gridmap.errors import InvalidInput, NotFound
from gridmap.geo import wgs84_to_gcj02
from gridmap.incidents.categories import expand_categories
from gridmap.incidents.workflow import DONE, check_statuses

LAYERS: Final = ("grids", "buildings", "stations", "incidents", "regions", "precincts", "units", "coverage",
                  "needs", "resources", "projects", "patrol_coverage")
RECORD_LAYERS: Final = ("needs", "resources", "projects", "patrol_coverage")
"""Co-governance layers: made from staff-maintained records (``gridmap.maps.cogov``) per caller's view."""
View = Literal["wgs84", "gcj02"]

EXTENT: Final = 4096
"""Tile coordinate units per tile side (the MVT default): 16 units per pixel of a 256 px tile."""
TILE_PX: Final = 256
BUFFER_PX: Final = 8
"""Margin (screen pixels) kept around a tile when clipping, so neighbouring tiles' strokes join."""
SIMPLIFY_PX: Final = 0.5
"""Simplification tolerance in screen pixels of the tile's zoom: invisible, and grids at city zoom stay light."""
MAX_ZOOM: Final = 22
BUILDINGS_MIN_ZOOM: Final = 16
"""Footprints from street zoom on, as the dispatcher page drew them before."""
COVERAGE_MIN_ZOOM: Final = 14
MIN_ZOOM: Final = {"grids": 11, "stations": 11, "units": 11, "precincts": 9, "buildings": BUILDINGS_MIN_ZOOM,
                   "coverage": COVERAGE_MIN_ZOOM}
"""Below these zooms a layer's tiles are empty: at a city's zoom one tile would hold thousands of grids (megabytes,
seconds to encode and to draw) that no one can read; region outlines and incident clusters draw the city."""
RECORD_MIN_ZOOM: Final = {"needs": 11, "resources": 11, "projects": 11, "patrol_coverage": COVERAGE_MIN_ZOOM}
"""The co-governance layers' own minimum zooms (a county's needs are a few dozen points; footprints as coverage)."""
COMMUNITIES_MIN_ZOOM: Final = 11
"""Community outlines from this zoom; county and town outlines at every zoom."""
"""The planner's buildings (distance to the nearest station) from this zoom: a town's worth per tile."""
POINTS_MIN_ZOOM: Final = 15
"""Incidents one by one from this zoom; below, clustered on the server."""
CLUSTER_CELLS: Final = 4
"""Cells per tile side for server clusters: 64 px cells on a 256 px tile."""
MAX_TILES: Final = 4096
"""Encoded tiles kept (least recently used dropped first): a tile is at most a few hundred KB, most are small."""
MAX_VIEWS: Final = 16
"""Prepared incident views kept (per incidents version, actor's view, datum)."""

EARTH_RADIUS_M: Final = 6378137.0
HALF_WORLD_M: Final = math.pi * EARTH_RADIUS_M
MAX_LATITUDE: Final = 85.0511287798


# tile math -------------------------------------------------------------------------------------------

def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(f"缩放级别应在 0 到 {MAX_ZOOM} 之间")
    if not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise NotFound(f"瓦片 {z}/{x}/{y} 不存在")


def mercator_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of the tile in EPSG:3857 metres."""
    size = 2 * HALF_WORLD_M / 2 ** z
    return (-HALF_WORLD_M + x * size, HALF_WORLD_M - (y + 1) * size,
            -HALF_WORLD_M + (x + 1) * size, HALF_WORLD_M - y * size)


def _lat(my: float) -> float:
    return math.degrees(2 * math.atan(math.exp(my / EARTH_RADIUS_M)) - math.pi / 2)


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) of the tile in degrees."""
    minx, miny, maxx, maxy = mercator_bounds(z, x, y)
    return (math.degrees(minx / EARTH_RADIUS_M), _lat(miny), math.degrees(maxx / EARTH_RADIUS_M), _lat(maxy))


def to_mercator(lon: NDArray, lat: NDArray) -> tuple[NDArray, NDArray]:
    lat = np.clip(lat, -MAX_LATITUDE, MAX_LATITUDE)
    return (np.radians(lon) * EARTH_RADIUS_M,
            np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * EARTH_RADIUS_M)


def _mercator_geoms(geoms: NDArray) -> NDArray:
    def move(coords: NDArray) -> NDArray:
        x, y = to_mercator(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])
    return shapely.transform(geoms, move)


def _gcj_geoms(geoms: NDArray) -> NDArray:
    def move(coords: NDArray) -> NDArray:
        lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])
    return shapely.transform(geoms, move)


# filters ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IncidentFilters:
    """What the incident filter panel asks for: the same meaning as ``GET /v1/incidents``'s parameters."""

    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    """Leaf category codes (a group code given by the caller is expanded to its leaves)."""
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    community: str | None = None
    grid: str | None = None
    overdue: bool = False
    """Open and past due (``overdue=true`` of the listing)."""
    supervised: bool = False
    """Open and past due or under 督办 (``supervised=true`` of the listing: the console's 超期/督办 queue)."""

    @classmethod
    def parse(cls, *, status: Sequence[str] | None = None, category: Sequence[str] | None = None,
              since: str | None = None, until: str | None = None, community: str | None = None,
              grid: str | None = None, overdue: bool = False, supervised: bool = False) -> IncidentFilters:
        check_statuses(status)
        leaves = expand_categories(category)
        return cls(tuple(sorted(set(status or ()))), tuple(sorted(set(leaves))), _time(since, "since"),
                   _time(until, "until"), community or None, grid or None, overdue, supervised)


def _time(value: str | None, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        moment = pd.Timestamp(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} 应为 ISO 8601 日期或时间，如 2026-01-31 或 2026-01-31T08:00:00Z") from None
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


# prepared layers -------------------------------------------------------------------------------------

@dataclass
class FeatureIndex:
    """One layer in one datum: geometries (degrees), an STRtree over them, properties per feature."""

    geoms: NDArray
    tree: shapely.STRtree
    properties: list[dict[str, Any]]

    @classmethod
    def of(cls, geoms: Iterable[Any], properties: list[dict[str, Any]], view: View) -> FeatureIndex:
        array = np.asarray(list(geoms) if not isinstance(geoms, np.ndarray) else geoms, dtype=object)
        if view == "gcj02" and len(array):
            array = _gcj_geoms(array)
        return cls(array, shapely.STRtree(array), properties)

    def hits(self, bounds: tuple[float, float, float, float]) -> NDArray:
        """Indices (ascending) of the features intersecting ``bounds`` (west, south, east, north)."""
        found = self.tree.query(shapely.box(*bounds), predicate="intersects")
        return np.sort(found)


def _clean(props: dict[str, Any]) -> dict[str, Any]:
    """MVT values: strings, integers, floats, booleans; nothing for missing values."""
    out: dict[str, Any] = {}
    for key, value in props.items():
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or (isinstance(value, float) and not math.isfinite(value)) or value is pd.NaT:
            continue
        if isinstance(value, str) and value == "":
            continue
        out[key] = value
    return out


@dataclass
class IncidentView:
    """The incidents one actor may see, in one datum, as columns: filtered per request without pandas."""

    mx: NDArray
    my: NDArray
    status: NDArray
    category: NDArray
    reported_ns: NDArray
    open_: NDArray
    overdue: NDArray
    columns: dict[str, NDArray]
    community: NDArray | None = None
    """Community codes ("" where none), for the community filter; None when the caller's view has none."""

    def rows(self, idx: NDArray) -> list[dict[str, Any]]:
        """Popup properties of the incidents at ``idx``."""
        keys = list(self.columns)
        return [dict(zip(keys, values)) for values in zip(*(self.columns[k][idx].tolist() for k in keys))]

    @classmethod
    def of(cls, frame: gpd.GeoDataFrame, *, grid_names: dict[str, str], view: View) -> IncidentView:
        lon = shapely.get_x(frame.geometry.values) if len(frame) else np.empty(0)
        lat = shapely.get_y(frame.geometry.values) if len(frame) else np.empty(0)
        if view == "gcj02" and len(frame):
            lon, lat = wgs84_to_gcj02(lon, lat)
        mx, my = to_mercator(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        status = frame["status"].astype(str).to_numpy() if len(frame) else np.empty(0, dtype=object)
        overdue = (frame["overdue"].fillna(False).astype(bool).to_numpy() if "overdue" in frame and len(frame)
                   else np.zeros(len(frame), dtype=bool))
        reported = pd.to_datetime(frame["reported_at"], utc=True) if len(frame) else pd.Series([], dtype="datetime64[ns, UTC]")
        community = (frame["community_code"].fillna("").astype(str).to_numpy(dtype=object)
                     if "community_code" in frame else None)
        return cls(mx, my, status, frame["category"].astype(str).to_numpy() if len(frame) else np.empty(0, dtype=object),
                   reported.to_numpy(dtype="datetime64[ns]").astype("int64"), ~np.isin(status, list(DONE)), overdue,
                   _incident_columns(frame, grid_names), community)

    def matching(self, filters: IncidentFilters) -> NDArray:
        keep = np.ones(len(self.mx), dtype=bool)
        if filters.statuses:
            keep &= np.isin(self.status, list(filters.statuses))
        if filters.categories:
            keep &= np.isin(self.category, list(filters.categories))
        if filters.since is not None:
            keep &= self.reported_ns >= filters.since.value
        if filters.until is not None:
            keep &= self.reported_ns < filters.until.value
        if filters.grid is not None:
            keep &= (self.columns["grid"] == filters.grid) if "grid" in self.columns else False
        if filters.community is not None:
            keep &= (self.community == filters.community) if self.community is not None else False
        if filters.overdue:
            keep &= self.open_ & self.overdue
        if filters.supervised:
            marked = self.columns["supervised"].astype(bool) if "supervised" in self.columns else self.overdue
            keep &= self.open_ & (marked | self.overdue)
        return keep


def _times(values: pd.Series) -> NDArray:
    """ISO 8601 UTC strings (seconds, ``Z``), ``""`` where missing: vectorised, for popups."""
    times = pd.to_datetime(values, utc=True, errors="coerce").dt.tz_localize(None).to_numpy(dtype="datetime64[s]")
    text = np.char.add(np.datetime_as_string(times, unit="s"), "Z")
    return np.where(np.isnat(times), "", text).astype(object)


def _incident_columns(frame: gpd.GeoDataFrame, grid_names: dict[str, str]) -> dict[str, NDArray]:
    """Popup properties of the incidents as columns: only those the caller's view has (the public has no
    assignee or time limit). Rows are made only for the incidents a tile holds."""
    n = len(frame)
    if not n:
        return {}

    def text(column: str) -> NDArray:
        return frame[column].fillna("").astype(str).to_numpy(dtype=object) if column in frame else np.full(n, "", object)

    grids = text("grid_code")
    columns: dict[str, NDArray] = {
        "id": text("id"), "status": text("status"), "category": text("category_name"), "group": text("category_group"),
        "grid": grids, "grid_name": np.array([grid_names.get(g, "") for g in grids], dtype=object),
        "reported_at": _times(frame["reported_at"]),
    }
    if "due_at" in frame:
        columns["due_at"] = _times(frame["due_at"])
    if "assignee_name" in frame:
        columns["assignee"] = text("assignee_name")
    for flag in ("overdue", "supervised"):
        if flag in frame:
            columns[flag] = frame[flag].fillna(False).astype(bool).astype(int).to_numpy()
    return columns


# encoding --------------------------------------------------------------------------------------------

def _encode(name: str, geoms: Sequence[Any], properties: Sequence[dict[str, Any]],
            mbounds: tuple[float, float, float, float]) -> bytes:
    """Mercator geometries quantised to tile units (y up, as the encoder expects) in one vectorised pass."""
    minx, miny, maxx, maxy = mbounds
    scale = np.array([EXTENT / (maxx - minx), EXTENT / (maxy - miny)])
    origin = np.array([minx, miny])
    units = shapely.transform(np.asarray(list(geoms), dtype=object), lambda c: np.round((c - origin) * scale)) \
        if len(geoms) else []
    features = [{"geometry": g, "properties": _clean(p)} for g, p in zip(units, properties)]
    return mapbox_vector_tile.encode([{"name": name, "features": features}], default_options={"extents": EXTENT})


def shapes_tile(index: FeatureIndex, name: str, z: int, x: int, y: int, *,
                extra: Callable[[int], dict[str, Any]] | None = None) -> bytes:
    """The features of ``index`` intersecting the tile, clipped (with a margin) and simplified for zoom ``z``."""
    hits = index.hits(tile_bounds(z, x, y))
    mbounds = mercator_bounds(z, x, y)
    if not len(hits):
        return _encode(name, [], [], mbounds)
    pixel = (mbounds[2] - mbounds[0]) / TILE_PX
    margin = BUFFER_PX * pixel
    geoms = _mercator_geoms(index.geoms[hits])
    clipped = shapely.clip_by_rect(geoms, mbounds[0] - margin, mbounds[1] - margin, mbounds[2] + margin,
                                   mbounds[3] + margin)
    simple = shapely.simplify(clipped, SIMPLIFY_PX * pixel, preserve_topology=True)
    # a sliver that simplifies (or clips) to nothing still belongs to the tile: keep it as a point
    empty = shapely.is_empty(simple)
    simple[empty] = clipped[empty]
    still = shapely.is_empty(simple)
    if still.any():
        box = shapely.box(*mbounds)
        simple[still] = shapely.point_on_surface(shapely.intersection(geoms[still], box))
    props = [{**index.properties[i], **(extra(i) if extra else {})} for i in hits]
    return _encode(name, list(simple), props, mbounds)


def incidents_tile(view: IncidentView, filters: IncidentFilters, z: int, x: int, y: int) -> bytes:
    """Clusters (counts per cell) below ``POINTS_MIN_ZOOM``, the incidents one by one from it."""
    mbounds = mercator_bounds(z, x, y)
    keep = view.matching(filters)
    size = mbounds[2] - mbounds[0]
    if z < POINTS_MIN_ZOOM:
        # each incident in exactly one tile and one cell: half-open cells of the tile grid
        fx = (view.mx + HALF_WORLD_M) / size
        fy = (HALF_WORLD_M - view.my) / size
        inside = keep & (np.floor(fx) == x) & (np.floor(fy) == y)
        idx = np.flatnonzero(inside)
        if not len(idx):
            return _encode("incidents", [], [], mbounds)
        cx = np.minimum(((fx[idx] - x) * CLUSTER_CELLS).astype(int), CLUSTER_CELLS - 1)
        cy = np.minimum(((fy[idx] - y) * CLUSTER_CELLS).astype(int), CLUSTER_CELLS - 1)
        cell = cy * CLUSTER_CELLS + cx
        geoms, props = [], []
        for c in np.unique(cell):
            members = idx[cell == c]
            geoms.append(shapely.Point(float(view.mx[members].mean()), float(view.my[members].mean())))
            props.append({"count": len(members), "open": int(view.open_[members].sum()),
                          "overdue": int((view.overdue[members] & view.open_[members]).sum())})
        return _encode("incidents", geoms, props, mbounds)
    inside = (keep & (view.mx >= mbounds[0]) & (view.mx <= mbounds[2]) & (view.my >= mbounds[1])
              & (view.my <= mbounds[3]))
    idx = np.flatnonzero(inside)
    geoms = list(shapely.points(view.mx[idx], view.my[idx])) if len(idx) else []
    return _encode("incidents", geoms, view.rows(idx) if len(idx) else [], mbounds)


# the service: prepared layers and encoded tiles, kept per revision -----------------------------------

class TileCache:
    """Encoded tiles, least recently used dropped first; keys carry every revision a tile depends on."""

    def __init__(self, size: int = MAX_TILES) -> None:
        self.size = size
        self._tiles: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
                self.hits += 1
                return tile
        tile = build()
        with self._lock:
            self.misses += 1
            self._tiles[key] = tile
            while len(self._tiles) > self.size:
                self._tiles.popitem(last=False)
        return tile

    def __len__(self) -> int:
        return len(self._tiles)


def etag_of(key: Hashable) -> str:
    return '"' + hashlib.blake2b(repr(key).encode(), digest_size=12).hexdigest() + '"'


class TileLayers:
    """The static layers (grids' shapes, buildings, stations) of one coverage revision, per datum."""

    def __init__(self, coverage: Any) -> None:
        self.coverage = coverage
        self._indexes: dict[tuple, FeatureIndex] = {}
        self._distances: dict[Hashable, tuple[NDArray, NDArray]] = {}
        self._lock = threading.Lock()

    def index(self, layer: str, view: View) -> FeatureIndex:
        with self._lock:
            found = self._indexes.get((layer, view))
            if found is None:
                found = self._indexes[(layer, view)] = self._build(layer, view)
            return found

    def _build(self, layer: str, view: View) -> FeatureIndex:
        cov = self.coverage
        if layer == "grids":
            grids = cov.grids
            households = pd.Series(cov.buildings["households"].to_numpy()).groupby(cov.building_grid).agg(["sum", "size"])
            workers = {code: "、".join(f"{w['name']}（{w['role']} {w['phone']}）" for w in cov.grid_workers(code))
                       for code in grids["code"]}
            props = [{"code": c, "name": n, "community": cov.region_name(k) if k else "", "workers": workers[c],
                      "households": int(households["sum"].get(c, 0)), "buildings": int(households["size"].get(c, 0))}
                     for c, n, k in zip(grids["code"], grids["name"], grids["community_code"])]
            return FeatureIndex.of(grids.geometry.values, props, view)
        if layer == "buildings":
            b = cov.buildings
            names = dict(zip(cov.grids["code"], cov.grids["name"]))
            props = [{"code": c, "name": n, "households": int(h), "population": int(p), "grid_name": names.get(g, "")}
                     for c, n, h, p, g in zip(b["code"], b["name"], b["households"], b["population"], cov.building_grid)]
            return FeatureIndex.of(b.geometry.values, props, view)
        if layer == "stations":
            s = cov.stations
            props = [{"code": r.get("code"), "name": r.get("name"), "kind": r.get("kind"), "address": r.get("address"),
                      "community": cov.region_name(r["community_code"]) if r.get("community_code") else ""}
                     for r in s.drop(columns="geometry").to_dict("records")]
            return FeatureIndex.of(s.geometry.values, props, view)
        if layer in ("regions", "regions-outer"):
            r = cov.regions if layer == "regions" else cov.regions[cov.regions["level"] != "community"]
            level_names = {"county": "县（区）", "town": "乡镇（街道）", "community": "社区（村）"}
            props = [{"code": c, "name": n, "level": lv, "level_name": level_names.get(lv, lv)}
                     for c, n, lv in zip(r["code"], r["name"], r["level"])]
            return FeatureIndex.of(r.geometry.values, props, view)
        if layer == "precincts":
            p = getattr(cov, "precincts", None)
            if p is None or not len(p):
                return FeatureIndex.of(np.empty(0, dtype=object), [], view)
            props = [{"code": r.get("code"), "name": r.get("name"), "phone": r.get("phone")}
                     for r in p.drop(columns="geometry").to_dict("records")]
            return FeatureIndex.of(p.geometry.values, props, view)
        if layer == "units":
            u = getattr(cov, "units", None)
            if u is None or not len(u):
                return FeatureIndex.of(np.empty(0, dtype=object), [], view)
            props = [{"code": r.get("code"), "name": r.get("name"), "category": r.get("category"),
                      "resources": "、".join(x.strip() for x in str(r.get("resources") or "").split(";") if x.strip())}
                     for r in u.drop(columns="geometry").to_dict("records")]
            return FeatureIndex.of(u.geometry.values, props, view)
        raise NotFound(f"未知图层 {layer!r}（可选：{'、'.join(LAYERS)}）")

    def distances(self, key: Hashable, extra: gpd.GeoDataFrame | None) -> tuple[NDArray, NDArray]:
        """Distance (metres) from every building to the nearest station, or to the nearest of the stations and
        ``extra`` (a scenario's proposed sites, keyed by ``key``), and that station's name: two arrays per key
        (the same in either datum), a few megabytes for a city, never a dictionary per building."""
        with self._lock:
            found = self._distances.get(key)
            if found is not None:
                return found
        distance, names = distance_targets(self.coverage, extra)
        found = (distance, np.asarray(names, dtype=object))
        with self._lock:
            while len(self._distances) >= MAX_VIEWS:  # a few scenarios at a time
                self._distances.pop(next(iter(self._distances)))
            self._distances[key] = found
        return found


def distance_targets(coverage: Any, extra: gpd.GeoDataFrame | None = None) -> tuple[NDArray, list[str]]:
    """Straight-line distance (metres, the coverage's metric CRS) from every building to the nearest station
    (and proposed site in ``extra``), and that station's name: a k-d tree, so a city's buildings take a second."""
    from scipy.spatial import cKDTree

    stations = coverage.stations
    lon = list(shapely.get_x(stations.geometry.values)) if len(stations) else []
    lat = list(shapely.get_y(stations.geometry.values)) if len(stations) else []
    names = list(stations["name"].astype(str)) if len(stations) else []
    if extra is not None and len(extra):
        points = extra.geometry.values
        lon += list(shapely.get_x(points))
        lat += list(shapely.get_y(points))
        names += (list(extra["name"].astype(str)) if "name" in extra
                  else [f"规划站点 {i + 1}" for i in range(len(extra))])
    n = len(coverage.building_xy)
    if not names:
        return np.full(n, np.inf), [""] * n
    tx, ty = coverage.to_metric(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    bx, by = coverage.to_metric(coverage.building_xy[:, 0], coverage.building_xy[:, 1])
    distance, nearest = cKDTree(np.column_stack([tx, ty])).query(np.column_stack([bx, by]))
    table = np.asarray(names, dtype=object)
    return np.asarray(distance, dtype=float), table[nearest].tolist()


@dataclass(frozen=True)
class IncidentSource:
    """Where one caller's incidents come from; the router binds these to the store and to
    ``gridmap.access.incidents_for_map`` (this module never reads the store, never cuts by itself).

    ``load()``: every stored incident, cut for the caller, and the store ids of all of them before the cut.
    ``changes(since)``: the incidents written at or after ``since`` (ISO 8601 UTC) cut for the caller, the
    store ids of all of them before the cut (so that rows which left the caller's view leave it here too),
    and how many incidents the store holds; None when the source cannot tell (a hook's frame).
    ``now``: the time both read overdue at."""

    load: Callable[[], tuple[gpd.GeoDataFrame, NDArray]]
    changes: Callable[[str], tuple[gpd.GeoDataFrame, NDArray, int]] | None
    now: pd.Timestamp


@dataclass
class PreparedIncidents:
    """A prepared view and what applying changes to it needs: rows in store order (id descending)."""

    version: Hashable
    view: IncidentView
    counts: dict[str, tuple[int, int]]
    ids: NDArray | None
    """Store ids of the rows (int64, descending); None when the rows do not come from the store."""
    due_ns: NDArray | None
    """Due times (ns since the epoch, NaT as int64's minimum) where the caller's view has them."""
    grid_idx: NDArray
    grid_codes: list[str]
    stored: NDArray
    """Ids of every stored incident (before the cut), ascending: a write that removed one is noticed."""
    mark: str
    """The next update reads incidents written at or after this time."""
    now: pd.Timestamp
    incremental: bool = False
    """Made by applying changes to an earlier view (False: a full preparation)."""


UPDATE_SLACK: Final = pd.Timedelta(minutes=2)
"""Changes are read from this long before the last read started: a write whose clock ran a little behind,
or which committed after the read, is still read (reading a row again is harmless: rows are replaced by id)."""
MAX_DELTA_SHARE: Final = 0.2
"""More changed rows than this share of the view (and more than ``MIN_DELTA_LIMIT``): prepare it afresh."""
MIN_DELTA_LIMIT: Final = 1000
_NAT: Final = np.iinfo(np.int64).min


def _iso(moment: pd.Timestamp) -> str:
    return moment.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _store_ids(frame: gpd.GeoDataFrame) -> NDArray | None:
    if not len(frame):
        return np.empty(0, dtype=np.int64)
    ids = pd.to_numeric(frame["id"], errors="coerce")
    return None if ids.isna().any() else ids.to_numpy(dtype=np.int64)


def _due_ns(frame: gpd.GeoDataFrame) -> NDArray | None:
    if "due_at" not in frame:
        return None
    if not len(frame):
        return np.empty(0, dtype=np.int64)
    return pd.to_datetime(frame["due_at"], utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64)


def _grid_counts(grid_idx: NDArray, codes: list[str], open_: NDArray, overdue: NDArray) -> dict[str, tuple[int, int]]:
    """Open and overdue incidents per grid code ("" outside every grid), for every grid with an incident."""
    size = len(codes)
    present = np.bincount(grid_idx, minlength=size)
    opened = np.bincount(grid_idx, weights=open_, minlength=size)
    late = np.bincount(grid_idx, weights=open_ & overdue, minlength=size)
    return {codes[i]: (int(opened[i]), int(late[i])) for i in np.flatnonzero(present)}


def _grid_index(frame: gpd.GeoDataFrame, codes: list[str]) -> NDArray:
    """Each row's grid as an index into ``codes`` (extended with codes not there yet)."""
    if not len(frame):
        return np.empty(0, dtype=np.int64)
    position = {c: i for i, c in enumerate(codes)}
    out = np.empty(len(frame), dtype=np.int64)
    for i, code in enumerate(frame["grid_code"].fillna("").astype(str)):
        found = position.get(code)
        if found is None:
            found = position[code] = len(codes)
            codes.append(code)
        out[i] = found
    return out


def _prepare(version: Hashable, source: IncidentSource, grid_names: dict[str, str], view: View) -> PreparedIncidents:
    """The full preparation: every incident the caller may see."""
    mark = _iso(source.now - UPDATE_SLACK)
    frame, stored = source.load()
    prepared = IncidentView.of(frame, grid_names=grid_names, view=view)
    ids = _store_ids(frame) if source.changes is not None else None
    if len(frame):
        codes_index, uniques = pd.factorize(frame["grid_code"].fillna("").astype(str).to_numpy())
        grid_idx, codes = np.asarray(codes_index, dtype=np.int64), [str(c) for c in uniques]
    else:
        grid_idx, codes = np.empty(0, dtype=np.int64), []
    counts = _grid_counts(grid_idx, codes, prepared.open_, prepared.overdue)
    due = _due_ns(frame) if "overdue" in frame else None
    return PreparedIncidents(version, prepared, counts, ids, due, grid_idx, codes,
                             np.sort(np.asarray(stored, dtype=np.int64)), mark, source.now)


def _positions(ascending: NDArray, values: NDArray) -> tuple[NDArray, NDArray]:
    """(found, index) of each of ``values`` in the sorted unique array ``ascending``."""
    at = np.searchsorted(ascending, values)
    found = (at < len(ascending)) & (ascending[np.minimum(at, max(len(ascending) - 1, 0))] == values) \
        if len(ascending) else np.zeros(len(values), dtype=bool)
    return found, at


def _update(old: PreparedIncidents, version: Hashable, source: IncidentSource, grid_names: dict[str, str],
            view: View) -> PreparedIncidents | None:
    """``old`` with the incidents written since its last read put in place; None when a full preparation
    is needed instead (too many changes, or the store holds other incidents than ``old`` accounts for)."""
    assert source.changes is not None and old.ids is not None
    mark = _iso(source.now - UPDATE_SLACK)
    frame, changed_all, stored_count = source.changes(old.mark)
    changed_all = np.unique(np.asarray(changed_all, dtype=np.int64))
    if len(changed_all) > max(MIN_DELTA_LIMIT, MAX_DELTA_SHARE * len(old.stored)):
        return None
    known, at = _positions(old.stored, changed_all)
    stored = np.insert(old.stored, at[~known], changed_all[~known])
    if len(stored) != stored_count:
        return None
    ids = _store_ids(frame)
    if ids is None or ("overdue" in frame) != (old.due_ns is not None):
        return None
    # the changed rows leave; their new versions (those still in the caller's view) come in, in store order
    ascending = old.ids[::-1]
    present, where = _positions(ascending, changed_all)
    keep = np.ones(len(old.ids), dtype=bool)
    keep[len(old.ids) - 1 - where[present]] = False
    order = np.argsort(-ids, kind="stable")
    frame, ids = frame.iloc[order], ids[order]
    kept_ids = old.ids[keep]
    slots = len(kept_ids) - np.searchsorted(kept_ids[::-1], ids)
    add = IncidentView.of(frame, grid_names=grid_names, view=view)
    base = old.view

    def merge(a: NDArray, b: NDArray) -> NDArray:
        return np.insert(a[keep], slots, b)

    if not len(kept_ids):
        columns = add.columns
    elif not len(frame):
        columns = {k: v[keep] for k, v in base.columns.items()}
    elif set(add.columns) != set(base.columns):
        return None
    else:
        columns = {k: merge(v, add.columns[k]) for k, v in base.columns.items()}
    open_ = merge(base.open_, add.open_)
    due = merge(old.due_ns, _due_ns(frame)) if old.due_ns is not None else None
    if due is not None:  # time alone makes incidents overdue: recomputed for every row at ``now``
        overdue = open_ & (due != _NAT) & (due < source.now.value)
        if "overdue" in columns:
            columns["overdue"] = overdue.astype(np.int64)
        if "supervised" in columns:  # supervised: by a supervisor or overdue; the first never changes unwritten
            columns["supervised"] = (columns["supervised"].astype(bool) | overdue).astype(np.int64)
    else:
        overdue = merge(base.overdue, add.overdue)
    codes = list(old.grid_codes)
    grid_idx = merge(old.grid_idx, _grid_index(frame, codes))
    if not len(kept_ids):
        community = add.community
    elif base.community is None or not len(frame):
        community = None if base.community is None else base.community[keep]
        if base.community is None and add.community is not None and len(frame):
            return None
    elif add.community is None:
        return None
    else:
        community = merge(base.community, add.community)
    prepared = IncidentView(merge(base.mx, add.mx), merge(base.my, add.my), merge(base.status, add.status),
                            merge(base.category, add.category), merge(base.reported_ns, add.reported_ns), open_,
                            overdue, columns, community)
    counts = _grid_counts(grid_idx, codes, open_, overdue)
    return PreparedIncidents(version, prepared, counts, merge(old.ids, ids), due, grid_idx, codes, stored, mark,
                             source.now, incremental=True)


class TileService:
    """Tiles for every caller: prepared layers per store revision, incident views per actor's view and datum
    (updated in place of a new preparation when the incidents version changes), encoded tiles in a bounded
    LRU keyed by everything a tile depends on."""

    def __init__(self, size: int = MAX_TILES) -> None:
        self.cache = TileCache(size)
        self._layers: tuple[Hashable, TileLayers] | None = None
        self._views: OrderedDict[Hashable, PreparedIncidents] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self._records: OrderedDict[Hashable, FeatureIndex] = OrderedDict()
        self._lock = threading.Lock()
        self.full_preparations = 0
        self.updates = 0

    def layers(self, coverage: Any) -> TileLayers:
        with self._lock:
            if self._layers is None or self._layers[0] != coverage.revision or self._layers[1].coverage is not coverage:
                self._layers = (coverage.revision, TileLayers(coverage))
            return self._layers[1]

    def prepared(self, key: Hashable) -> PreparedIncidents | None:
        """The last view prepared for ``key`` (actor's view, datum), whatever its version."""
        with self._lock:
            return self._views.get(key)

    def incident_view(self, key: Hashable, version: Hashable, source: IncidentSource, *, coverage: Any,
                      view: View) -> tuple[IncidentView, dict[str, tuple[int, int]]]:
        """The caller's incidents, with open/overdue counts per grid, as of ``version`` (or later).

        One view is kept per ``key`` (coverage revision, actor's view, datum). When the incidents version
        changes, only the incidents written since the last read are read (``source.changes``), cut as the
        caller's view is, and put in place of their rows (by store id: rows that left the caller's view
        leave it, new ones are inserted in store order); overdue is recomputed from the due times for every
        row, and the counts per grid from the rows. The answer is what a full preparation gives at that
        moment. A full preparation (``source.load``) is made instead when there is no view yet, when the
        source cannot tell what changed (a hook's frame), when more than ``MAX_DELTA_SHARE`` of the rows
        changed, or when the store holds other incidents than the view accounts for (one was removed, as
        by restoring a backup). One thread prepares a key at a time; the others wait for its answer."""
        with self._lock:
            found = self._views.get(key)
            if found is not None and found.version == version:
                self._views.move_to_end(key)
                return found.view, found.counts
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                found = self._views.get(key)
            if found is not None and found.version == version:
                return found.view, found.counts
            names = dict(zip(coverage.grids["code"], coverage.grids["name"]))
            made = None
            if found is not None and source.changes is not None and found.ids is not None:
                made = _update(found, version, source, names, view)
            if made is None:
                made = _prepare(version, source, names, view)
            with self._lock:
                if made.incremental:
                    self.updates += 1
                else:
                    self.full_preparations += 1
                self._views[key] = made
                self._views.move_to_end(key)
                while len(self._views) > MAX_VIEWS:
                    old, _ = self._views.popitem(last=False)
                    self._building.pop(old, None)
        return made.view, made.counts

    def grids_tile(self, layers: TileLayers, counts: dict[str, tuple[int, int]], view: View,
                   z: int, x: int, y: int) -> bytes:
        if z < MIN_ZOOM["grids"]:
            return _encode("grids", [], [], mercator_bounds(z, x, y))
        index = layers.index("grids", view)

        def extra(i: int) -> dict[str, Any]:
            open_, overdue = counts.get(index.properties[i]["code"], (0, 0))
            return {"open": open_, "overdue": overdue}

        return shapes_tile(index, "grids", z, x, y, extra=extra)

    def static_tile(self, layers: TileLayers, layer: str, view: View, z: int, x: int, y: int) -> bytes:
        if z < MIN_ZOOM.get(layer, 0):
            return _encode(layer, [], [], mercator_bounds(z, x, y))
        if layer == "regions" and z < COMMUNITIES_MIN_ZOOM:
            return shapes_tile(layers.index("regions-outer", view), layer, z, x, y)
        return shapes_tile(layers.index(layer, view), layer, z, x, y)

    def coverage_tile(self, layers: TileLayers, view: View, key: Hashable, extra: gpd.GeoDataFrame | None,
                      z: int, x: int, y: int) -> bytes:
        """The planner's buildings with their distance to the nearest station (or proposed site)."""
        if z < MIN_ZOOM["coverage"]:
            return _encode("coverage", [], [], mercator_bounds(z, x, y))
        distance, names = layers.distances(key, extra)

        def more(i: int) -> dict[str, Any]:
            d = float(distance[i])
            return {"distance_m": int(round(d)) if math.isfinite(d) else None, "station": names[i]}

        return shapes_tile(layers.index("buildings", view), "coverage", z, x, y, extra=more)

    def records_tile(self, key: Hashable, layer: str, frame: Callable[[], gpd.GeoDataFrame], view: View,
                     z: int, x: int, y: int) -> bytes:
        """A co-governance layer's tile: ``frame()`` (the caller's records, already cut for their view) is
        indexed once per ``key`` (layer, records' version, actor's view, datum) and kept for the next tiles."""
        if z < RECORD_MIN_ZOOM.get(layer, 0):
            return _encode(layer, [], [], mercator_bounds(z, x, y))
        with self._lock:
            index = self._records.get(key)
            if index is not None:
                self._records.move_to_end(key)
        if index is None:
            records = frame()
            columns = [c for c in records.columns if c != records.geometry.name]
            props = records[columns].to_dict("records") if len(records) else []
            index = FeatureIndex.of(records.geometry.values if len(records) else np.empty(0, dtype=object), props,
                                    view)
            with self._lock:
                self._records[key] = index
                while len(self._records) > 4 * MAX_VIEWS:
                    self._records.popitem(last=False)
        return shapes_tile(index, layer, z, x, y)
