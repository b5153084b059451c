"""Station planning: who is within reach of a service station today, and where the next ones go.

A ``Planner`` is built once per store revision (``planner_for``) from the coverage index and the
``roads`` / ``candidates`` layers; it keeps everything in metres (the coverage index's UTM zone)
and caches what is costly: walking graphs, each building's distance to its nearest station, the
candidate sites and their reach. Coverage at any radius is then a threshold over cached
distances; siting builds a reduced model and solves it with HiGHS (``gridmap.planning.solver``).

Distances: ``euclidean`` is the straight line between a building's inside point and a station;
``network`` walks from the building to its nearest road, along the roads, and off to the station.

Scope (issue #10): a run may look at one community, town or county and/or a box
(``gridmap.planning.scope`` has the rule at the edge). A scoped run walks on a graph of the roads
within ``SCOPE_MARGIN_M`` (at least the radius) of the scope, with the scope's buildings and
candidates and the stations near it: every distance up to that margin is the one the whole network
gives, so answers are exact, and the work grows with the scope, not with the store.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import scipy.sparse as sp
import shapely
import shapely.geometry
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from gridmap.coverage.service import Coverage
from gridmap.errors import Forbidden, InvalidInput, Unauthorized
from gridmap.geo import WGS84
from gridmap.planning import candidates as cand_mod
from gridmap.planning import demand as demand_mod
from gridmap.planning import solver
from gridmap.planning.network import Neighbourhood, RoadNetwork, Snap, WalkGraph
from gridmap.planning.scope import WHOLE, Area, Scope, resolve
from gridmap.planning.tally import Figures

PRESETS = (300, 500, 1000)
"""Life-circle radii of GB 50180-2018: 5-, 10- and 15-minute walks."""
METRICS = ("network", "euclidean")
OBJECTIVES = ("max_coverage", "set_cover", "p_median")
MAX_RADIUS = 5000.0
DEFAULT_SPACING = 100.0

# Bounds of one siting run (issue #9): a run holds a CPU and memory for as long as it is allowed to,
# so what one request may ask for is limited, for the command line as for the API.
MAX_K = 100
"""New sites one run may propose (and the most a set-covering answer may need)."""
MAX_TIME_LIMIT_S = 60.0
"""Longest solver time limit one run may ask for."""
MIN_SPACING_M, MAX_SPACING_M = 50.0, 2000.0
"""Spacing of generated street candidates: closer than 50 m multiplies the sites (and the walking
graph) without finding better places; farther than 2 km leaves streets without any."""
PLANNER_CACHE_ENTRIES = 24
"""Costly intermediate results one planner keeps (candidate sets, walking graphs, reach matrices),
least recently used dropped first: requests choose spacing and radius, so the keys are theirs."""

SCOPE_MARGIN_M = 2000.0
"""Roads and stations this far around a scope (or the radius, if larger) are in its walking graph.
Distances up to the margin are exact; a building farther than this from every station nearby gets
its distance from the whole store's graph instead (none in the sample city: the farthest is 835 m)."""
P_MEDIAN_CAP_M = 2000.0
"""p-median counts a walk longer than this as this long (a 25-minute walk: twice the largest life
circle; nobody is served by a community station beyond it). Its distances are then needed only up to
the cap, or up to the farthest building's existing station when that is nearer: with every building
within the cap of a station, as in the sample, the answer is the exact, uncapped p-median."""

FOOTPRINT_SEARCH_DEG = 0.001
"""Footprints this far (≈ 100 m) around a scope's box are enough to keep generated sites clear of them."""
BOX_DENSIFY_DEG = 0.001
"""A WGS84 box's edges are bent in UTM: sampled this finely before its metric extent is taken."""

PLANNING_ROLES = ("admin", "dispatcher", "planner")
"""Who may run sitings and read coverage figures through the API (see docs/security.md)."""

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


def check_radius(radius_m: float) -> float:
    if not (isinstance(radius_m, int | float) and math.isfinite(radius_m) and 0 < radius_m <= MAX_RADIUS):
        raise InvalidInput(f"服务半径 radius_m 应在 0 到 {MAX_RADIUS:.0f} 米之间（常用 300、500、1000）")
    return float(radius_m)


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise InvalidInput(f"距离方式 metric 应为 network（步行路网）或 euclidean（直线），而不是 {metric!r}")
    return metric


@dataclass
class SitingRequest:
    k: int = 5
    radius_m: float = 500.0
    objective: str = "max_coverage"
    target_share: float = 0.95
    demand: str | Mapping[str, float] = "households"
    metric: str = "network"
    capacity: float | None = None
    candidates: str = "auto"
    """``auto`` (the layer when the package has one, else generated), ``layer`` or ``generated``."""
    candidate_spacing_m: float = DEFAULT_SPACING
    time_limit_s: float = 30.0
    max_sites: int = MAX_K
    """Set covering: stop looking beyond this many new sites."""
    community: str | None = None
    town: str | None = None
    county: str | None = None
    """At most one region the run is limited to (``gridmap.planning.scope``)."""
    bbox: Sequence[float] | None = None
    """``[minlon, minlat, maxlon, maxlat]`` (WGS84) the run is limited to, with or without a region."""

    def area(self) -> Area:
        return Area.of(community=self.community, town=self.town, county=self.county, bbox=self.bbox)

    def check(self) -> None:
        if self.objective not in OBJECTIVES:
            raise InvalidInput(f"目标 objective 应为 {' / '.join(OBJECTIVES)}，而不是 {self.objective!r}")
        check_radius(self.radius_m)
        check_metric(self.metric)
        if self.objective != "set_cover" and not (1 <= int(self.k) <= MAX_K):
            raise InvalidInput(f"新站点数 k 应在 1 到 {MAX_K} 之间")
        if self.objective == "set_cover" and not (0 < self.target_share <= 1):
            raise InvalidInput("目标覆盖率 target_share 应在 0 到 1 之间（如 0.95）")
        if self.capacity is not None and not (math.isfinite(self.capacity) and self.capacity > 0):
            raise InvalidInput("站点容量 capacity 应为正数（每站可服务的户数）")
        if self.candidates not in ("auto", "layer", "generated"):
            raise InvalidInput("候选站点 candidates 应为 auto、layer 或 generated")
        if not (MIN_SPACING_M <= self.candidate_spacing_m <= MAX_SPACING_M):
            raise InvalidInput(f"候选点间距 candidate_spacing_m 应在 {MIN_SPACING_M:.0f} 到 {MAX_SPACING_M:.0f} 米之间")
        if not (0 < self.time_limit_s <= MAX_TIME_LIMIT_S):
            raise InvalidInput(f"求解时限 time_limit_s 应在 0 到 {MAX_TIME_LIMIT_S:.0f} 秒之间")
        if not (1 <= int(self.max_sites) <= MAX_K):
            raise InvalidInput(f"站点上限 max_sites 应在 1 到 {MAX_K} 之间")
        demand_mod.parse(self.demand)
        self.area()


@dataclass
class SitingResult:
    request: SitingRequest
    answer: dict[str, Any]
    proposals: gpd.GeoDataFrame
    grids_after: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ScopeGraph:
    """A walking graph of a scope: its buildings, then the stations near it, then its candidates."""

    walk: WalkGraph
    n_buildings: int
    stations: NDArray[np.int64]
    """Planner positions of the stations attached (all of them for the whole store)."""
    n_candidates: int
    margin: float
    """Distances up to this are those of the whole network (infinite for the whole store)."""

    def building_points(self) -> NDArray[np.int64]:
        return np.arange(self.n_buildings)

    def station_points(self) -> NDArray[np.int64]:
        return self.n_buildings + np.arange(len(self.stations))

    def candidate_points(self) -> NDArray[np.int64]:
        return self.n_buildings + len(self.stations) + np.arange(self.n_candidates)


class Planner:
    def __init__(
        self,
        coverage: Coverage,
        *,
        roads: gpd.GeoDataFrame | None = None,
        candidates: gpd.GeoDataFrame | None = None,
    ) -> None:
        self.coverage = coverage
        self.revision = coverage.revision
        self.crs = coverage.crs
        self._fwd = pyproj.Transformer.from_crs(WGS84, self.crs, always_xy=True)
        self._inv = pyproj.Transformer.from_crs(self.crs, WGS84, always_xy=True)
        self._lock = threading.RLock()
        self._cache: OrderedDict[Any, Any] = OrderedDict()
        self.cache_entries = PLANNER_CACHE_ENTRIES

        b = coverage.buildings
        self.households = b["households"].to_numpy(dtype=float)
        self.population = b["population"].to_numpy(dtype=float)
        self.building_lonlat = np.asarray(coverage.building_xy, dtype=float).reshape(-1, 2)
        self.building_xy = self._metric_xy(self.building_lonlat)
        self.building_address = b["address"].to_numpy(dtype=object)
        self.building_grid = np.asarray(coverage.building_grid, dtype=object)
        self._grid_index = pd.Index(coverage.grids["code"].to_numpy(dtype=object))
        self._grid_community_code = coverage.grids["community_code"].to_numpy(dtype=object)
        self._grid_community = dict(zip(self._grid_index, self._grid_community_code))
        self._community_rows = self._communities()
        # group labels for the figures: grid and community positions of each building (-1: none)
        self.building_grid_pos = self._grid_index.get_indexer(self.building_grid).astype(np.int64)
        community_index = pd.Index([code for code, _ in self._community_rows], dtype=object)
        grid_community_pos = community_index.get_indexer(self._grid_community_code).astype(np.int64)
        self.building_community = self._communities_of(self.building_grid)
        self.building_community_pos = np.where(self.building_grid_pos >= 0,
                                               grid_community_pos[self.building_grid_pos], -1)

        stations = coverage.stations.sort_values("code").reset_index(drop=True)
        self.station_code = stations["code"].to_numpy(dtype=object)
        self.station_name = stations["name"].to_numpy(dtype=object)
        station_lonlat = (np.column_stack([stations.geometry.x, stations.geometry.y]) if len(stations)
                          else np.empty((0, 2)))
        self.station_xy = self._metric_xy(station_lonlat)
        self.station_lonlat = station_lonlat
        self.station_community = self._communities_of(self._locate(station_lonlat))

        self.network: RoadNetwork | None = None
        self.road_names = np.empty(0, dtype=object)
        if roads is not None and len(roads):
            lines = shapely.transform(roads.geometry.values, self._metric_coords)
            self.network = RoadNetwork(lines)
            # name each noded piece after the road it lies on
            tree = shapely.STRtree(lines)
            self.road_names = roads["name"].to_numpy(dtype=object)[_road_of(self.network.lines, tree)]
            self._road_tree = tree
            self._road_line_names = roads["name"].to_numpy(dtype=object)
        self.candidate_layer = candidates if candidates is not None and len(candidates) else None

    # ------------------------------------------------------------ geometry helpers

    def _metric_coords(self, coords: NDArray) -> NDArray:
        x, y = self._fwd.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    def _metric_xy(self, lonlat: NDArray) -> NDArray:
        lonlat = np.asarray(lonlat, dtype=float).reshape(-1, 2)
        return self._metric_coords(lonlat) if len(lonlat) else np.empty((0, 2))

    def to_metric(self, lon: NDArray, lat: NDArray) -> tuple[NDArray, NDArray]:
        x, y = self._fwd.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.asarray(x), np.asarray(y)

    def to_lonlat(self, xy: NDArray) -> NDArray:
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        lon, lat = self._inv.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    def _locate(self, lonlat: NDArray) -> NDArray[np.object_]:
        lonlat = np.asarray(lonlat, dtype=float).reshape(-1, 2)
        return self.coverage.locate_grids(lonlat[:, 0], lonlat[:, 1]) if len(lonlat) else np.empty(0, dtype=object)

    def _communities_of(self, grids: NDArray) -> NDArray[np.object_]:
        """The community of each grid code (None for None: a point outside every grid)."""
        position = self._grid_index.get_indexer(np.asarray(grids, dtype=object))
        return np.where(position >= 0, self._grid_community_code[position], None)

    def _communities(self) -> list[tuple[str, str]]:
        regions = self.coverage.regions
        part = regions[regions["level"] == "community"].sort_values("code")
        return list(part[["code", "name"]].itertuples(index=False, name=None))

    def _cached(self, key: Any, build: Callable[[], Any]) -> Any:
        """``build()`` once per key, the ``cache_entries`` most recently used kept (LRU)."""
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            value = build()
            self._cache[key] = value
            while len(self._cache) > self.cache_entries:
                self._cache.popitem(last=False)
            return value

    def cache_size(self) -> int:
        return len(self._cache)

    def _require(self, metric: str) -> None:
        check_metric(metric)
        if metric == "network" and self.network is None:
            raise InvalidInput("数据包没有道路图层（roads），无法按步行路网计算距离；请改用 metric=euclidean")

    # ------------------------------------------------------------ scope

    def scope(self, area: Area | None = None) -> Scope:
        """The buildings, grids and communities of ``area`` (404 unknown region, 422 no buildings)."""
        area = area or WHOLE
        return self._cached(("scope", area), lambda: resolve(
            area, coverage=self.coverage, building_lonlat=self.building_lonlat,
            building_community=self.building_community_pos, communities=self._community_rows))

    def _scope_stations(self, scope: Scope) -> NDArray[np.bool_]:
        """Which stations stand in the scope (the others may still cover its buildings)."""
        return scope.covers(self.station_lonlat, self.station_community)

    # ------------------------------------------------------------ candidates and graphs

    def candidates(self, source: str = "auto", spacing: float = DEFAULT_SPACING,
                   scope: Scope | None = None) -> cand_mod.Candidates:
        """Candidate sites of the store, or those of a scope (inside it, by the rule of ``Scope.covers``).

        Generated sites of a scope are generated only around it (the same sites, in the same order,
        as the whole store's that lie in it): a county of a city costs a county's streets.
        """
        source = self._source(source)
        if scope is None or scope.whole:
            return self._store_candidates(source, spacing)
        spacing = float(spacing)
        key = ("candidates", source, spacing if source == "generated" else None, "scope", scope.key)

        def build() -> cand_mod.Candidates:
            if source == "generated":
                cands = self._generate(spacing, scope)
            else:
                cands = self._store_candidates(source, spacing)
            lonlat = self.to_lonlat(cands.xy)
            inside = scope.covers(lonlat, self._communities_of(self._locate(lonlat)))
            return cand_mod.Candidates(cands.xy[inside], cands.code[inside], cands.name[inside], cands.source, key)

        return self._cached(key, build)

    def _source(self, source: str) -> str:
        if source == "auto":
            source = "layer" if self.candidate_layer is not None else "generated"
        if source == "layer" and self.candidate_layer is None:
            raise InvalidInput("数据包没有候选站点图层（candidates）；请用 candidates=generated")
        if source == "generated" and self.network is None:
            raise InvalidInput("没有道路图层（roads），无法沿街生成候选站点；请在数据包中提供 candidates 图层")
        return source

    def _store_candidates(self, source: str, spacing: float) -> cand_mod.Candidates:
        if source == "layer":
            layer = self.candidate_layer
            key = ("candidates", "layer")
            return self._cached(key, lambda: dataclasses.replace(cand_mod.from_layer(
                self._metric_xy(np.column_stack([layer.geometry.x, layer.geometry.y])),
                layer["code"], layer["name"]), key=key))
        spacing = float(spacing)
        key = ("candidates", "generated", spacing)
        return self._cached(key, lambda: dataclasses.replace(self._generate(spacing), key=key))

    def _generate(self, spacing: float, scope: Scope | None = None) -> cand_mod.Candidates:
        """Street sites of the store, or of the box around a scope's grids (and its bbox)."""
        within, footprints = None, self.coverage.buildings.geometry.values
        if scope is not None and not scope.whole:
            box = self._scope_box(scope)
            within = self._metric_box(box)
            minx, miny, maxx, maxy = self._footprint_bounds().T
            pad = FOOTPRINT_SEARCH_DEG
            near = (maxx >= box[0] - pad) & (minx <= box[2] + pad) & (maxy >= box[1] - pad) & (miny <= box[3] + pad)
            footprints = footprints[near]
        footprints = shapely.transform(footprints, self._metric_coords)

        def inside_grid(xy: NDArray) -> NDArray:
            return np.asarray([g is not None for g in self._locate(self.to_lonlat(xy))])

        return cand_mod.generate(self.network, self.road_names, spacing=spacing, buildings=footprints,
                                 inside_grid=inside_grid, within=within)

    def _footprint_bounds(self) -> NDArray:
        return self._cached("footprint_bounds", lambda: shapely.bounds(self.coverage.buildings.geometry.values))

    def _scope_box(self, scope: Scope) -> tuple[float, float, float, float]:
        """WGS84 box holding every site a scope may take: its grids' extent, cut by its bbox."""
        minx, miny, maxx, maxy = self.coverage.grids.geometry.values[scope.grids].total_bounds \
            if len(scope.grids) else scope.area.bbox
        if scope.area.bbox is not None:
            bx = scope.area.bbox
            minx, miny, maxx, maxy = max(minx, bx[0]), max(miny, bx[1]), min(maxx, bx[2]), min(maxy, bx[3])
        return minx, miny, maxx, maxy

    def _metric_box(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """A metric box holding a WGS84 box (its outline densified, then widened by a metre)."""
        outline = shapely.segmentize(shapely.box(*box), BOX_DENSIFY_DEG)
        minx, miny, maxx, maxy = shapely.transform(outline, self._metric_coords).bounds
        return minx - 1.0, miny - 1.0, maxx + 1.0, maxy + 1.0

    def _graph(self, cands: cand_mod.Candidates | None, scope: Scope | None = None,
               margin: float = SCOPE_MARGIN_M) -> ScopeGraph:
        """Walking graph of a scope: its buildings, the stations near it, the candidates (if any).

        For the whole store: every road and station. For a scope: the roads and stations within
        ``margin`` of its buildings and candidates (``Neighbourhood``), so that every distance up to
        the margin is the whole network's.
        """
        scope = scope or self.scope()
        margin = max(float(margin), SCOPE_MARGIN_M)

        def build() -> ScopeGraph:
            buildings = self.building_xy[scope.buildings]
            sites = cands.xy if cands is not None else np.empty((0, 2))
            if scope.whole:
                stations, segments, reach = np.arange(len(self.station_xy)), None, math.inf
            else:
                near = Neighbourhood(np.vstack([buildings, sites]), margin)
                stations = np.flatnonzero(near.contains(self.station_xy))
                segments, reach = self.network.segments_near(near), margin
            others = np.vstack([self.station_xy[stations], sites])
            snap = self._building_snap(scope).then(self.network.snap(others))
            walk = WalkGraph(self.network, np.vstack([buildings, others]), segments=segments, snap=snap)
            return ScopeGraph(walk, len(buildings), stations, len(sites), reach)

        if cands is not None and not cands.key:
            return build()  # candidates from elsewhere: nothing to key a cached graph by
        return self._cached(("graph", scope.key, cands.key if cands is not None else None,
                             None if scope.whole else margin), build)

    def _building_snap(self, scope: Scope) -> Snap:
        """Where the scope's buildings meet the roads: the same for every graph of the scope."""
        return self._cached(("snap", scope.key), lambda: self.network.snap(self.building_xy[scope.buildings]))

    # ------------------------------------------------------------ distances

    def station_distance(self, metric: str, scope: Scope | None = None) -> tuple[NDArray, NDArray]:
        """Each scope building's distance to its nearest station, wherever it stands (metres), and that
        station's position (-1: none)."""
        self._require(metric)
        scope = scope or self.scope()

        def build() -> tuple[NDArray, NDArray]:
            nb = len(scope.buildings)
            if not len(self.station_xy):
                return np.full(nb, np.inf), np.full(nb, -1)
            if metric == "euclidean":
                d, i = cKDTree(self.station_xy).query(self.building_xy[scope.buildings])
                return d, i
            graph = self._graph(None, scope)
            d, which = graph.walk.nearest(graph.station_points(), graph.building_points())
            i = np.where(which >= 0, graph.stations[np.maximum(which, 0)], -1)
            far = ~(d <= graph.margin)
            if far.any():  # nearest station beyond the scope's margin: the whole store's graph knows
                d_all, i_all = self.station_distance(metric)
                d[far], i[far] = d_all[scope.buildings[far]], i_all[scope.buildings[far]]
            return d, i

        return self._cached(("stations", metric, scope.key), build)

    def reach(self, cands: cand_mod.Candidates, metric: str, limit: float,
              scope: Scope | None = None) -> sp.csr_matrix:
        """Distances scope building × candidate, kept where ≤ ``limit`` (sparse; a stored 0 is 1e-6)."""
        self._require(metric)
        scope = scope or self.scope()

        def build() -> sp.csr_matrix:
            if metric == "euclidean":
                return _euclid_within(self.building_xy[scope.buildings], cands.xy, limit)
            graph = self._graph(cands, scope, limit)
            return graph.walk.from_points(graph.candidate_points(), graph.building_points(), limit=limit)

        if not (math.isfinite(limit) and cands.key):
            return build()
        return self._cached(("reach", cands.key, metric, float(limit), scope.key), build)

    def site_distance(self, xy: NDArray, metric: str, cands: cand_mod.Candidates | None = None,
                      index: NDArray | None = None, scope: Scope | None = None,
                      margin: float = SCOPE_MARGIN_M) -> tuple[NDArray, NDArray]:
        """Each scope building's distance to the nearest of some sites, and which one."""
        scope = scope or self.scope()
        nb = len(scope.buildings)
        if not len(xy):
            return np.full(nb, np.inf), np.full(nb, -1)
        if metric == "euclidean":
            d, i = cKDTree(xy).query(self.building_xy[scope.buildings])
            return d, i
        graph = self._graph(cands, scope, margin)
        return graph.walk.nearest(graph.candidate_points()[index], graph.building_points())

    # ------------------------------------------------------------ coverage analysis

    def coverage_report(self, *, radius_m: float, metric: str = "network", area: Area | None = None,
                        progress: Progress = _noop) -> dict[str, Any]:
        """Households and residents within ``radius_m`` of a station: overall, per community, per grid."""
        radius_m = check_radius(radius_m)
        scope = self.scope(area)
        progress("计算各楼栋到最近服务站的距离")
        dist, which = self.station_distance(metric, scope)
        progress("汇总")
        summary = self._summary(scope, dist, radius_m)
        return {
            "radius_m": radius_m,
            "metric": metric,
            "revision": self.revision,
            "stations": len(self.station_xy) if scope.whole else int(self._scope_stations(scope).sum()),
            "buildings": len(scope.buildings),
            "scope": self._describe(scope, dist <= radius_m, which),
            "presets": [{"radius_m": r, **_share_only(self._figures(scope, dist, r).total())} for r in PRESETS],
            **summary,
        }

    def _describe(self, scope: Scope, covered: NDArray, which: NDArray) -> dict[str, Any] | None:
        """The scope in an answer, with the stations outside it that are nearest to its covered buildings."""
        described = scope.describe()
        if described is None:
            return None
        serving = np.unique(which[covered & (which >= 0)])
        outside = serving[~self._scope_stations(scope)[serving]]
        return {**described, "stations_outside": len(outside)}

    def _figures(self, scope: Scope, dist: NDArray, radius_m: float, weights: NDArray | None = None) -> Figures:
        """The scope's buildings with ``dist`` to their nearest station: covered when within ``radius_m``."""
        b = scope.buildings
        return Figures(self.households[b], self.population[b], dist <= radius_m, dist, weights)

    def _summary(self, scope: Scope, dist: NDArray, radius_m: float,
                 weights: NDArray | None = None) -> dict[str, Any]:
        """Figures of the scope, each of its communities and grids (and of its buildings outside every grid)."""
        figures = self._figures(scope, dist, radius_m, weights)
        answer = {"total": figures.total(), "communities": self._by_community(scope, figures),
                  "grids": self._by_grid(scope, figures)}
        outside = self.building_grid_pos[scope.buildings] < 0
        if outside.any():
            answer["outside_grids"] = figures.by(np.where(outside, 0, -1), 1)[0]
        return answer

    def _by_community(self, scope: Scope, figures: Figures) -> list[dict[str, Any]]:
        rows = figures.by(self.building_community_pos[scope.buildings], len(self._community_rows))
        position = {code: i for i, (code, _) in enumerate(self._community_rows)}
        return [{"code": code, "name": name, **rows[position[code]]} for code, name in scope.communities]

    def _by_grid(self, scope: Scope, figures: Figures) -> list[dict[str, Any]]:
        grids = self.coverage.grids
        rows = figures.by(self.building_grid_pos[scope.buildings], len(grids))
        codes, names, communities = (grids[c].to_numpy(dtype=object) for c in ("code", "name", "community_code"))
        return [{"code": codes[g], "name": names[g], "community_code": communities[g], **rows[g]}
                for g in scope.grids]

    def grid_geometries(self) -> dict[str, Any]:
        """Each grid's outline as a GeoJSON geometry (for coverage exports)."""
        return self._cached("grid_geometries", lambda: {
            code: shapely.geometry.mapping(geom) for code, geom in zip(self.coverage.grids["code"],
                                                                       self.coverage.grids.geometry.values)})

    # ------------------------------------------------------------ siting

    def demand(self, spec: str | Mapping[str, float], *, incidents: gpd.GeoDataFrame | None = None,
               needs: list[dict] | None = None, now: datetime | None = None, scope: Scope | None = None) -> NDArray:
        """Demand of each scope building. Incidents (and open needs) are counted at the nearest building of
        the whole store, then the scope's are taken: an incident across the edge stays with its own building;
        a blend weighs each measure by its share within the scope, a sum (``households+needs``) adds them."""
        coefficients = demand_mod.parse(spec)
        b = (scope or self.scope()).buildings
        measures: dict[str, NDArray] = {"households": self.households[b], "population": self.population[b]}
        if "incidents" in coefficients:
            if incidents is None:
                raise InvalidInput("没有事件数据，不能以事件数作为需求")
            counts = demand_mod.incident_counts(incidents, self.building_xy, self.to_metric, now=now)
            measures["incidents"] = counts[b]
        if "needs" in coefficients:
            if needs is None:
                raise InvalidInput("没有需求清单数据，不能以未办结需求作为需求")
            measures["needs"] = demand_mod.need_households(needs, self.building_xy, self.to_metric,
                                                           self.building_community, self.households)[b]
        return demand_mod.weights(coefficients, measures, summed=demand_mod.is_sum(spec))

    def site(self, request: SitingRequest, *, incidents: gpd.GeoDataFrame | None = None,
             needs: list[dict] | None = None, now: datetime | None = None,
             progress: Progress = _noop) -> SitingResult:
        request.check()
        self._require(request.metric)
        started = time.perf_counter()
        R = float(request.radius_m)
        scope = self.scope(request.area())
        w = self.demand(request.demand, incidents=incidents, needs=needs, now=now, scope=scope)
        progress("准备候选站点")
        cands = self.candidates(request.candidates, request.candidate_spacing_m, scope)
        if not len(cands):
            raise InvalidInput("所选范围内没有可用的候选站点" if not scope.whole else "没有可用的候选站点")
        progress("计算现有服务站的距离")
        d0, _ = self.station_distance(request.metric, scope)
        covered = d0 <= R
        total_w = float(w.sum())
        if total_w <= 0:
            raise InvalidInput("所选需求指标全部为 0（例如近 12 个月没有事件），无法选址")
        progress("计算候选站点的服务范围")
        objective = request.objective
        margin = R
        if objective == "p_median":
            margin = limit = _p_median_limit(d0, w)
            dist = self.reach(cands, request.metric, limit, scope)
            progress(f"求解 p-中位模型（HiGHS，{len(cands)} 个候选点）")
            sol = solver.p_median(dist, w, int(request.k), d0=np.minimum(d0, P_MEDIAN_CAP_M),
                                  capacity=request.capacity, time_limit=request.time_limit_s)
        else:
            A = self.reach(cands, request.metric, R, scope)
            if objective == "max_coverage":
                progress(f"求解最大覆盖模型（HiGHS，{len(cands)} 个候选点）")
                sol = solver.max_coverage(A, w, int(request.k), covered=covered, capacity=request.capacity,
                                          time_limit=request.time_limit_s)
            else:
                sol = self._set_cover(request, A, w, covered, total_w, progress, len(cands))
        if not math.isfinite(sol.objective):
            raise InvalidInput(f"在时限 {request.time_limit_s:.0f} 秒内没有找到可行方案（{sol.status}），请放宽条件或延长时限")
        progress("汇总结果")
        return self._result(request, scope, cands, sol, w, d0, margin, time.perf_counter() - started)

    def _set_cover(self, request: SitingRequest, A: sp.csr_matrix, w: NDArray, covered: NDArray, total_w: float,
                   progress: Progress, n_cands: int) -> solver.Solution:
        R = float(request.radius_m)
        need = request.target_share * total_w - float(w[covered].sum())
        reachable = float(w[covered | (np.diff(A.tocsr().indptr) > 0)].sum())
        if need > reachable - float(w[covered].sum()) + 1e-9:
            raise InvalidInput(
                f"目标覆盖率 {request.target_share:.0%} 达不到：在 {R:.0f} 米内，全部候选站点加上现有站点"
                f"最多覆盖 {reachable / total_w:.1%} 的需求",
                details=[{"max_share": round(reachable / total_w, 4)}],
            )
        progress(f"求解集合覆盖模型（HiGHS，{n_cands} 个候选点）")
        sol = solver.set_cover(A, w, need, covered=covered, capacity=request.capacity,
                               time_limit=request.time_limit_s)
        if len(sol.chosen) > request.max_sites:
            raise InvalidInput(f"需要 {len(sol.chosen)} 个新站点，超过上限 max_sites={request.max_sites}")
        return sol

    def _result(self, request: SitingRequest, scope: Scope, cands: cand_mod.Candidates, sol: solver.Solution,
                w: NDArray, d0: NDArray, margin: float, seconds: float) -> SitingResult:
        R = float(request.radius_m)
        chosen = sol.chosen
        xy = cands.xy[chosen]
        d_new, which = self.site_distance(xy, request.metric, cands, chosen, scope, margin)
        d_after = np.minimum(d0, d_new)
        before = self._figures(scope, d0, R, w)
        after = self._figures(scope, d_after, R, w)
        rows = self._proposal_rows(request, scope, cands, chosen, d0, d_new, which, w, margin)
        if sol.served is not None:
            for row, served in zip(rows, sol.served):
                row["demand_served"] = round(float(served), 6)
        communities = [{**_label(b), "before": _figures_only(b), "after": _figures_only(a)}
                       for b, a in zip(self._by_community(scope, before), self._by_community(scope, after))]
        grids_after = [{**_label(b), "before": _figures_only(b), "after": _figures_only(a)}
                       for b, a in zip(self._by_grid(scope, before), self._by_grid(scope, after))]
        answer = {
            "objective": request.objective,
            "metric": request.metric,
            "radius_m": R,
            "k": len(chosen) if request.objective == "set_cover" else int(request.k),
            "demand": request.demand,
            "target_share": request.target_share if request.objective == "set_cover" else None,
            "capacity": request.capacity,
            "scope": self._describe(scope, d0 <= R, self.station_distance(request.metric, scope)[1]),
            "candidates": {"source": cands.source, "count": len(cands)},
            "proposals": rows,
            "before": before.total(),
            "after": after.total(),
            "communities": communities,
            **self._objective_answer(request, sol, w, d0),
            "seconds": round(seconds, 3),
            "revision": self.revision,
        }
        lonlat = self.to_lonlat(xy)
        proposals = gpd.GeoDataFrame(
            [{**_flat(r), "radius_m": R, "metric": request.metric} for r in rows] if rows else None,
            geometry=gpd.points_from_xy(lonlat[:, 0], lonlat[:, 1]) if len(xy) else [],
            crs=WGS84,
        )
        return SitingResult(request, answer, proposals, grids_after)

    def _objective_answer(self, request: SitingRequest, sol: solver.Solution, w: NDArray,
                          d0: NDArray) -> dict[str, Any]:
        if request.objective == "p_median":
            objective_value: float = round(sol.objective / float(w.sum()), 3)
        elif request.objective == "set_cover":
            objective_value = int(round(sol.objective))
        else:
            objective_value = round(sol.objective, 6)
        out: dict[str, Any] = {
            "objective_value": objective_value,
            "optimal": bool(sol.optimal),
            "gap": round(float(sol.gap), 9) if math.isfinite(sol.gap) else None,
            "status": sol.status,
            "model": {k: int(v) for k, v in sol.stats.items()},
            "solve_seconds": round(sol.seconds, 3),
        }
        if request.objective == "max_coverage" and len(sol.chosen) < int(request.k):
            out["note"] = f"只需 {len(sol.chosen)} 个新站点即可覆盖候选站点能覆盖的全部需求"
        if request.objective == "p_median":
            out["distance_cap_m"] = P_MEDIAN_CAP_M
            capped = int(np.sum((w > 0) & ~(d0 <= P_MEDIAN_CAP_M)))
            if capped:
                out["note"] = (f"{capped} 栋楼离现有服务站超过 {P_MEDIAN_CAP_M:.0f} 米，"
                               f"模型中按 {P_MEDIAN_CAP_M:.0f} 米计（objective_value 为封顶后的平均距离）")
        return out

    def _proposal_rows(self, request: SitingRequest, scope: Scope, cands: cand_mod.Candidates, chosen: NDArray,
                       d0: NDArray, d_new: NDArray, which: NDArray, w: NDArray, margin: float) -> list[dict[str, Any]]:
        R = float(request.radius_m)
        xy = cands.xy[chosen]
        b = scope.buildings
        newly = (d0 > R) & (d_new <= R)
        closer = d_new < d0
        lonlat = self.to_lonlat(xy)
        grid_codes = self._locate(lonlat)
        sd, si = self._nearest_stations(request.metric, scope, cands, chosen, margin)
        _, nearest_building = cKDTree(self.building_xy[b]).query(xy) if len(xy) else (None, np.empty(0, int))
        rows = []
        for n, j in enumerate(chosen):
            mine_new = newly & (which == n)
            mine = closer & (which == n)
            g = grid_codes[n]
            community = self._grid_community.get(g) if g else None
            near = int(b[nearest_building[n]])
            rows.append({
                "rank": n + 1,
                "lon": round(float(lonlat[n, 0]), 6),
                "lat": round(float(lonlat[n, 1]), 6),
                "candidate": cands.code[j],
                "name": cands.name[j],
                "address": self.building_address[near],
                "address_distance_m": round(float(np.hypot(*(self.building_xy[near] - xy[n]))), 1),
                "road": self._road_name(xy[n]),
                "community": {"code": community, "name": self.coverage.region_name(community)} if community else None,
                "grid": self.coverage.grid_ref(g) if g else None,
                "households_new": int(self.households[b][mine_new].sum()),
                "population_new": int(self.population[b][mine_new].sum()),
                "buildings_new": int(mine_new.sum()),
                "demand_new": round(float(w[mine_new].sum()), 6),
                "households_nearest": int(self.households[b][mine].sum()),
                "nearest_station": (
                    {"code": self.station_code[si[n]], "name": self.station_name[si[n]],
                     "distance_m": round(float(sd[n]), 1)} if si[n] >= 0 and np.isfinite(sd[n]) else None
                ),
            })
        return rows

    def _nearest_stations(self, metric: str, scope: Scope, cands: cand_mod.Candidates, chosen: NDArray,
                          margin: float) -> tuple[NDArray, NDArray]:
        """Nearest existing station of each proposal, by the run's metric (a scoped graph knows the
        stations within its margin: one farther is reported as none)."""
        xy = cands.xy[chosen]
        if not (len(self.station_xy) and len(xy)):
            return np.full(len(xy), np.inf), np.full(len(xy), -1)
        if metric == "euclidean":
            return cKDTree(self.station_xy).query(xy)
        graph = self._graph(cands, scope, margin)
        d, which = graph.walk.nearest(graph.station_points(), graph.candidate_points()[chosen])
        known = (which >= 0) & (d <= graph.margin)
        return np.where(known, d, np.inf), np.where(known, graph.stations[np.maximum(which, 0)], -1)

    def _road_name(self, xy: NDArray) -> str | None:
        if self.network is None:
            return None
        i = self._road_tree.query_nearest(shapely.Point(xy), all_matches=False)
        return self._road_line_names[int(np.atleast_1d(i)[0])]


ON_ROAD_M = 0.01
"""A noded piece's midpoint lies on the road it was cut from, up to rounding."""


def _road_of(pieces: NDArray, roads: shapely.STRtree) -> NDArray[np.int64]:
    """The road each noded piece was cut from: the lowest-numbered road through its midpoint (a query
    within a centimetre: a city's pieces in a tenth of a second, where nearest-road queries took 1.4 s);
    the nearest road for a piece that none passes through."""
    mids = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
    piece, road = roads.query(mids, predicate="dwithin", distance=ON_ROAD_M)
    order = np.lexsort((road, piece))
    piece, road = piece[order], road[order]
    first = np.r_[True, piece[1:] != piece[:-1]] if len(piece) else np.empty(0, dtype=bool)
    found = np.full(len(mids), -1, dtype=np.int64)
    found[piece[first]] = road[first]
    missing = np.flatnonzero(found < 0)
    if len(missing):
        found[missing] = roads.query_nearest(mids[missing], all_matches=False)[1]
    return found


def _p_median_limit(d0: NDArray, w: NDArray) -> float:
    """How far p-median needs distances: to the farthest demand's existing station, at most the cap."""
    relevant = np.minimum(d0[w > 0], P_MEDIAN_CAP_M)
    return float(max(relevant.max(), 1.0)) if len(relevant) else P_MEDIAN_CAP_M


_LABELS = ("code", "name", "community_code")


def _label(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in _LABELS if k in row}


def _figures_only(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _LABELS}


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """A proposal as flat columns (CSV, GeoJSON properties, map popups)."""
    station = row.get("nearest_station") or {}
    out = {k: v for k, v in row.items() if k not in ("community", "grid", "nearest_station")}
    out["community_code"] = row["community"]["code"] if row["community"] else None
    out["community_name"] = row["community"]["name"] if row["community"] else None
    out["grid_code"] = row["grid"]["code"] if row["grid"] else None
    out["grid_name"] = row["grid"]["name"] if row["grid"] else None
    out["nearest_station_code"] = station.get("code")
    out["nearest_station_name"] = station.get("name")
    out["nearest_station_m"] = station.get("distance_m")
    return out


def _share_only(counts: dict[str, Any]) -> dict[str, Any]:
    keys = ("households_covered", "population_covered", "share", "population_share")
    return {k: counts[k] for k in keys}


def _euclid_within(demand_xy: NDArray, site_xy: NDArray, limit: float) -> sp.csr_matrix:
    """Straight-line distances demand × site, kept where ≤ limit."""
    if not len(site_xy) or not len(demand_xy):
        return sp.csr_matrix((len(demand_xy), len(site_xy)))
    if not math.isfinite(limit):
        d = np.hypot(demand_xy[:, None, 0] - site_xy[None, :, 0], demand_xy[:, None, 1] - site_xy[None, :, 1])
        return sp.csr_matrix(np.maximum(d, 1e-6))
    m = cKDTree(demand_xy).sparse_distance_matrix(cKDTree(site_xy), limit, output_type="coo_matrix")
    m.data = np.maximum(m.data, 1e-6)
    return m.tocsr()


# ---------------------------------------------------------------- one planner per store revision

_PLANNERS: OrderedDict[str, Planner] = OrderedDict()
_PLANNERS_LOCK = threading.Lock()


def planner_for(coverage: Coverage, store) -> Planner:
    """The planner of the store's current content (built once per revision, the last two kept)."""
    key = coverage.revision
    if key is not None:
        with _PLANNERS_LOCK:
            if key in _PLANNERS:
                _PLANNERS.move_to_end(key)
                return _PLANNERS[key]
    planner = Planner(coverage, roads=_layer(store, "roads"), candidates=_layer(store, "candidates"))
    if key is not None:
        with _PLANNERS_LOCK:
            planner = _PLANNERS.setdefault(key, planner)
            while len(_PLANNERS) > 2:
                _PLANNERS.popitem(last=False)
    return planner


def _layer(store, name: str) -> gpd.GeoDataFrame | None:
    frame = store.read_layer(name)
    return frame if isinstance(frame, gpd.GeoDataFrame) and len(frame) else None


# ---------------------------------------------------------------- service functions (API and CLI)


def plan_coverage(*, coverage: Coverage, store, radius_m: float, metric: str = "network", area: Area | None = None,
                  actor=None, progress: Progress = _noop) -> dict[str, Any]:
    """Coverage of the current stations at ``radius_m`` over ``area`` (see ``Planner.coverage_report``);
    through the API (``actor`` given) for the planning roles only."""
    if actor is not None:
        check_planning_actor(actor)
    check_radius(radius_m)
    check_metric(metric)
    progress("准备步行网络")
    return planner_for(coverage, store).coverage_report(radius_m=radius_m, metric=metric, area=area,
                                                        progress=progress)


def plan_stations(*, coverage: Coverage, store, request: SitingRequest, actor=None, now: datetime | None = None,
                  progress: Progress = _noop) -> SitingResult:
    """New station sites for ``request``; incidents as demand are read from the store's incidents, open
    needs (``needs``, ``households+needs``) from the 需求清单.

    Through the API (``actor`` given) incident-based demand needs the roles that may read incident
    statistics (admin, dispatcher, planner); the command line runs with local access.
    """
    request.check()
    if actor is not None:
        check_planning_actor(actor)
    incidents = None
    if "incidents" in demand_mod.parse(request.demand):
        progress("读取近 12 个月的事件")
        incidents = demand_mod.load_incidents(store, now=now)
    needs = None
    if "needs" in demand_mod.parse(request.demand):
        progress("读取未办结的居民需求")
        needs = demand_mod.load_needs(store)
    progress("准备步行网络")
    return planner_for(coverage, store).site(request, incidents=incidents, needs=needs, now=now, progress=progress)


def check_planning_actor(actor) -> None:
    """Sitings and coverage figures through the API: planners, dispatchers and admins.

    A siting run holds a CPU for up to ``MAX_TIME_LIMIT_S`` and its result is kept as a scenario;
    coverage figures build the walking network. Neither is for anonymous callers; workers have
    their own grid's figures on their map. The command line runs with local access (no actor).
    """
    if actor.role == "public":
        raise Unauthorized("服务站规划需要规划、调度或管理令牌：Authorization: Bearer <token>")
    if actor.role not in PLANNING_ROLES:
        raise Forbidden("只有规划人员、调度员和管理员可以使用服务站规划")
