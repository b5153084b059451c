"""Station planning: who is within reach of a service station today, and where the next ones go.

A ``Planner`` is built once per store revision (``planner_for``) from the coverage index and the
``roads`` / ``candidates`` layers; it keeps everything in metres (the coverage index's UTM zone)
and caches what is costly: the walking graph, each building's distance to its nearest station,
the candidate sites and their reach. Coverage at any radius is then a threshold over cached
distances; siting builds a reduced model and solves it with HiGHS (``gridmap.planning.solver``).

Distances: ``euclidean`` is the straight line between a building's inside point and a station;
``network`` walks from the building to its nearest road, along the roads, and off to the station.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
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
from gridmap.planning.network import RoadNetwork, WalkGraph

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


@dataclass
class SitingResult:
    request: SitingRequest
    answer: dict[str, Any]
    proposals: gpd.GeoDataFrame
    grids_after: list[dict[str, Any]] = field(default_factory=list)


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
        self.building_xy = self._metric_xy(coverage.building_xy)
        self.building_address = b["address"].to_numpy(dtype=object)
        self.building_grid = np.asarray(coverage.building_grid, dtype=object)
        grid_comm = dict(zip(coverage.grids["code"], coverage.grids["community_code"]))
        self.building_community = np.asarray([grid_comm.get(g, None) for g in self.building_grid], dtype=object)

        stations = coverage.stations.sort_values("code").reset_index(drop=True)
        self.station_code = stations["code"].to_numpy(dtype=object)
        self.station_name = stations["name"].to_numpy(dtype=object)
        self.station_xy = (
            self._metric_xy(np.column_stack([stations.geometry.x, stations.geometry.y]))
            if len(stations) else np.empty((0, 2))
        )

        self.network: RoadNetwork | None = None
        self.road_names = np.empty(0, dtype=object)
        if roads is not None and len(roads):
            lines = shapely.transform(roads.geometry.values, self._metric_coords)
            self.network = RoadNetwork(lines)
            # name each noded piece after the road it lies on
            tree = shapely.STRtree(lines)
            mids = shapely.line_interpolate_point(self.network.lines, 0.5, normalized=True)
            nearest = tree.query_nearest(mids, all_matches=False)[1]
            self.road_names = roads["name"].to_numpy(dtype=object)[nearest]
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

    # ------------------------------------------------------------ candidates and graphs

    def candidates(self, source: str = "auto", spacing: float = DEFAULT_SPACING) -> cand_mod.Candidates:
        if source == "auto":
            source = "layer" if self.candidate_layer is not None else "generated"
        if source == "layer":
            if self.candidate_layer is None:
                raise InvalidInput("数据包没有候选站点图层（candidates）；请用 candidates=generated")
            layer = self.candidate_layer
            key = ("candidates", "layer")
            return self._cached(key, lambda: dataclasses.replace(cand_mod.from_layer(
                self._metric_xy(np.column_stack([layer.geometry.x, layer.geometry.y])),
                layer["code"], layer["name"]), key=key))
        if self.network is None:
            raise InvalidInput("没有道路图层（roads），无法沿街生成候选站点；请在数据包中提供 candidates 图层")
        spacing = float(spacing)
        key = ("candidates", "generated", spacing)
        return self._cached(key, lambda: dataclasses.replace(self._generate(spacing), key=key))

    def _generate(self, spacing: float) -> cand_mod.Candidates:
        footprints = shapely.transform(self.coverage.buildings.geometry.values, self._metric_coords)

        def inside_grid(xy: NDArray) -> NDArray:
            lonlat = self.to_lonlat(xy)
            return np.asarray([g is not None for g in self.coverage.locate_grids(lonlat[:, 0], lonlat[:, 1])])

        return cand_mod.generate(self.network, self.road_names, spacing=spacing, buildings=footprints,
                                 inside_grid=inside_grid)

    def _graph(self, cands: cand_mod.Candidates | None) -> WalkGraph:
        """Walking graph over buildings, then stations, then the candidates (if any)."""
        def build() -> WalkGraph:
            parts = [self.building_xy, self.station_xy] + ([cands.xy] if cands is not None else [])
            return WalkGraph(self.network, np.vstack(parts))

        if cands is not None and not cands.key:
            return build()  # candidates from elsewhere: nothing to key a cached graph by
        return self._cached(("graph", cands.key if cands is not None else None), build)

    def _cand_points(self, cands: cand_mod.Candidates) -> NDArray:
        return len(self.building_xy) + len(self.station_xy) + np.arange(len(cands))

    def _station_points(self) -> NDArray:
        return len(self.building_xy) + np.arange(len(self.station_xy))

    # ------------------------------------------------------------ distances

    def station_distance(self, metric: str) -> tuple[NDArray, NDArray]:
        """Each building's distance to its nearest station (metres) and that station's index (-1: none)."""
        self._require(metric)

        def build() -> tuple[NDArray, NDArray]:
            nb = len(self.building_xy)
            if not len(self.station_xy):
                return np.full(nb, np.inf), np.full(nb, -1)
            if metric == "euclidean":
                d, i = cKDTree(self.station_xy).query(self.building_xy)
                return d, i
            return self._graph(None).nearest(self._station_points(), np.arange(nb))

        return self._cached(("stations", metric), build)

    def reach(self, cands: cand_mod.Candidates, metric: str, limit: float) -> sp.csr_matrix:
        """Distances building × candidate, kept where ≤ ``limit`` (sparse; a stored 0 is 1e-6)."""
        self._require(metric)

        def build() -> sp.csr_matrix:
            if metric == "euclidean":
                return _euclid_within(self.building_xy, cands.xy, limit)
            graph = self._graph(cands)
            return graph.from_points(self._cand_points(cands), np.arange(len(self.building_xy)), limit=limit)

        if not (math.isfinite(limit) and cands.key):
            return build()
        return self._cached(("reach", cands.key, metric, float(limit)), build)

    def site_distance(self, xy: NDArray, metric: str, cands: cand_mod.Candidates | None = None,
                      index: NDArray | None = None) -> tuple[NDArray, NDArray]:
        """Each building's distance to the nearest of some sites, and which one."""
        nb = len(self.building_xy)
        if not len(xy):
            return np.full(nb, np.inf), np.full(nb, -1)
        if metric == "euclidean":
            d, i = cKDTree(xy).query(self.building_xy)
            return d, i
        return self._graph(cands).nearest(self._cand_points(cands)[index], np.arange(nb))

    # ------------------------------------------------------------ coverage analysis

    def coverage_report(self, *, radius_m: float, metric: str = "network", progress: Progress = _noop) -> dict[str, Any]:
        """Households and residents within ``radius_m`` of a station: overall, per community, per grid."""
        radius_m = check_radius(radius_m)
        progress("计算各楼栋到最近服务站的距离")
        dist, _ = self.station_distance(metric)
        progress("汇总")
        summary = self._summary(dist, radius_m)
        return {
            "radius_m": radius_m,
            "metric": metric,
            "revision": self.revision,
            "stations": len(self.station_xy),
            "buildings": len(self.building_xy),
            "presets": [{"radius_m": r, **_share_only(self._counts(dist <= r, dist))} for r in PRESETS],
            **summary,
        }

    def _counts(self, covered: NDArray, dist: NDArray, mask: NDArray | None = None,
                extra: NDArray | None = None) -> dict[str, Any]:
        sel = slice(None) if mask is None else mask
        hh, pop, cov, d = self.households[sel], self.population[sel], covered[sel], dist[sel]
        households, population = float(hh.sum()), float(pop.sum())
        hc, pc = float(hh[cov].sum()), float(pop[cov].sum())
        finite = np.isfinite(d) & (hh > 0)
        mean = float(np.sum(d[finite] * hh[finite]) / hh[finite].sum()) if finite.any() and hh[finite].sum() else None
        out = {
            "buildings": int(len(hh)),
            "buildings_covered": int(cov.sum()),
            "households": int(households),
            "households_covered": int(hc),
            "households_uncovered": int(households - hc),
            "population": int(population),
            "population_covered": int(pc),
            "population_uncovered": int(population - pc),
            "share": round(hc / households, 4) if households else None,
            "population_share": round(pc / population, 4) if population else None,
            "mean_distance_m": round(mean, 1) if mean is not None else None,
        }
        if extra is not None:
            w = extra[sel]
            out["demand"] = round(float(w.sum()), 6)
            out["demand_covered"] = round(float(w[cov].sum()), 6)
        return out

    def _summary(self, dist: NDArray, radius_m: float, weights: NDArray | None = None) -> dict[str, Any]:
        covered = dist <= radius_m
        communities = []
        for code, name in self._community_rows():
            mask = self.building_community == code
            communities.append({"code": code, "name": name, **self._counts(covered, dist, mask, weights)})
        grids = []
        for code, name, community in self.coverage.grids[["code", "name", "community_code"]].itertuples(index=False):
            mask = self.building_grid == code
            grids.append({"code": code, "name": name, "community_code": community,
                          **self._counts(covered, dist, mask, weights)})
        outside = np.asarray([c is None for c in self.building_community])
        answer = {"total": self._counts(covered, dist, None, weights), "communities": communities, "grids": grids}
        if outside.any():
            answer["outside_grids"] = self._counts(covered, dist, outside, weights)
        return answer

    def grid_geometries(self) -> dict[str, Any]:
        """Each grid's outline as a GeoJSON geometry (for coverage exports)."""
        return self._cached("grid_geometries", lambda: {
            code: shapely.geometry.mapping(geom) for code, geom in zip(self.coverage.grids["code"],
                                                                       self.coverage.grids.geometry.values)})

    def _community_rows(self) -> list[tuple[str, str]]:
        regions = self.coverage.regions
        part = regions[regions["level"] == "community"].sort_values("code")
        return list(part[["code", "name"]].itertuples(index=False, name=None))

    # ------------------------------------------------------------ siting

    def demand(self, spec: str | Mapping[str, float], *, incidents: gpd.GeoDataFrame | None = None,
               now: datetime | None = None) -> NDArray:
        coefficients = demand_mod.parse(spec)
        measures: dict[str, NDArray] = {"households": self.households, "population": self.population}
        if "incidents" in coefficients:
            if incidents is None:
                raise InvalidInput("没有事件数据，不能以事件数作为需求")
            measures["incidents"] = demand_mod.incident_counts(incidents, self.building_xy, self.to_metric, now=now)
        return demand_mod.weights(coefficients, measures)

    def site(self, request: SitingRequest, *, incidents: gpd.GeoDataFrame | None = None,
             now: datetime | None = None, progress: Progress = _noop) -> SitingResult:
        request.check()
        self._require(request.metric)
        started = time.perf_counter()
        R = float(request.radius_m)
        w = self.demand(request.demand, incidents=incidents, now=now)
        progress("准备候选站点")
        cands = self.candidates(request.candidates, request.candidate_spacing_m)
        if not len(cands):
            raise InvalidInput("没有可用的候选站点")
        progress("计算现有服务站的距离")
        d0, _ = self.station_distance(request.metric)
        covered = d0 <= R
        total_w = float(w.sum())
        if total_w <= 0:
            raise InvalidInput("所选需求指标全部为 0（例如近 12 个月没有事件），无法选址")
        progress("计算候选站点的服务范围")
        objective = request.objective
        if objective == "p_median":
            finite = np.isfinite(d0)
            limit = float(d0[finite].max()) if finite.all() and len(d0) else math.inf
            dist = self.reach(cands, request.metric, limit)
            progress(f"求解 p-中位模型（HiGHS，{len(cands)} 个候选点）")
            sol = solver.p_median(dist, w, int(request.k), d0=d0 if finite.all() and len(self.station_xy) else None,
                                  capacity=request.capacity, time_limit=request.time_limit_s)
        else:
            A = self.reach(cands, request.metric, R)
            if objective == "max_coverage":
                progress(f"求解最大覆盖模型（HiGHS，{len(cands)} 个候选点）")
                sol = solver.max_coverage(A, w, int(request.k), covered=covered, capacity=request.capacity,
                                          time_limit=request.time_limit_s)
            else:
                need = request.target_share * total_w - float(w[covered].sum())
                reachable = float(w[covered | (np.diff(A.tocsr().indptr) > 0)].sum())
                if need > reachable - float(w[covered].sum()) + 1e-9:
                    raise InvalidInput(
                        f"目标覆盖率 {request.target_share:.0%} 达不到：在 {R:.0f} 米内，全部候选站点加上现有站点"
                        f"最多覆盖 {reachable / total_w:.1%} 的需求",
                        details=[{"max_share": round(reachable / total_w, 4)}],
                    )
                progress(f"求解集合覆盖模型（HiGHS，{len(cands)} 个候选点）")
                sol = solver.set_cover(A, w, need, covered=covered, capacity=request.capacity,
                                       time_limit=request.time_limit_s)
                if len(sol.chosen) > request.max_sites:
                    raise InvalidInput(f"需要 {len(sol.chosen)} 个新站点，超过上限 max_sites={request.max_sites}")
        if not math.isfinite(sol.objective):
            raise InvalidInput(f"在时限 {request.time_limit_s:.0f} 秒内没有找到可行方案（{sol.status}），请放宽条件或延长时限")
        progress("汇总结果")
        return self._result(request, cands, sol, w, d0, time.perf_counter() - started)

    def _result(self, request: SitingRequest, cands: cand_mod.Candidates, sol: solver.Solution, w: NDArray,
                d0: NDArray, seconds: float) -> SitingResult:
        R = float(request.radius_m)
        chosen = sol.chosen
        xy = cands.xy[chosen]
        d_new, which = self.site_distance(xy, request.metric, cands, chosen)
        d_after = np.minimum(d0, d_new)
        before = self._counts(d0 <= R, d0, None, w)
        after = self._counts(d_after <= R, d_after, None, w)
        newly = (d0 > R) & (d_new <= R)
        closer = d_new < d0
        lonlat = self.to_lonlat(xy)
        grid_codes = self.coverage.locate_grids(lonlat[:, 0], lonlat[:, 1]) if len(xy) else []
        # nearest existing station from each proposal, by the same metric
        if len(self.station_xy) and len(xy):
            if request.metric == "euclidean":
                sd, si = cKDTree(self.station_xy).query(xy)
            else:
                sd, si = self._graph(cands).nearest(self._station_points(), self._cand_points(cands)[chosen])
        else:
            sd, si = np.full(len(xy), np.inf), np.full(len(xy), -1)
        _, nearest_building = cKDTree(self.building_xy).query(xy) if len(xy) and len(self.building_xy) else (
            None, np.full(len(xy), -1))
        rows = []
        for n, j in enumerate(chosen):
            mine_new = newly & (which == n)
            mine = closer & (which == n)
            g = grid_codes[n]
            community = self.coverage.grids.loc[self.coverage.grid_position(g), "community_code"] if g else None
            b = int(nearest_building[n]) if nearest_building[n] >= 0 else None
            rows.append({
                "rank": n + 1,
                "lon": round(float(lonlat[n, 0]), 6),
                "lat": round(float(lonlat[n, 1]), 6),
                "candidate": cands.code[j],
                "name": cands.name[j],
                "address": self.building_address[b] if b is not None else None,
                "address_distance_m": round(float(np.hypot(*(self.building_xy[b] - xy[n]))), 1) if b is not None else None,
                "road": self._road_name(xy[n]),
                "community": {"code": community, "name": self.coverage.region_name(community)} if community else None,
                "grid": self.coverage.grid_ref(g) if g else None,
                "households_new": int(self.households[mine_new].sum()),
                "population_new": int(self.population[mine_new].sum()),
                "buildings_new": int(mine_new.sum()),
                "demand_new": round(float(w[mine_new].sum()), 6),
                "households_nearest": int(self.households[mine].sum()),
                "nearest_station": (
                    {"code": self.station_code[si[n]], "name": self.station_name[si[n]],
                     "distance_m": round(float(sd[n]), 1)} if si[n] >= 0 and np.isfinite(sd[n]) else None
                ),
            })
        if sol.served is not None:
            for row, served in zip(rows, sol.served):
                row["demand_served"] = round(float(served), 6)
        communities = []
        for code, name in self._community_rows():
            mask = self.building_community == code
            communities.append({
                "code": code,
                "name": name,
                "before": self._counts(d0 <= R, d0, mask, w),
                "after": self._counts(d_after <= R, d_after, mask, w),
            })
        grids_after = [
            {"code": code, "name": name, "community_code": community,
             "before": self._counts(d0 <= R, d0, self.building_grid == code, w),
             "after": self._counts(d_after <= R, d_after, self.building_grid == code, w)}
            for code, name, community in self.coverage.grids[["code", "name", "community_code"]].itertuples(index=False)
        ]
        if request.objective == "p_median":
            objective_value = round(sol.objective / float(w.sum()), 3)
        elif request.objective == "set_cover":
            objective_value = int(round(sol.objective))
        else:
            objective_value = round(sol.objective, 6)
        answer = {
            "objective": request.objective,
            "metric": request.metric,
            "radius_m": R,
            "k": len(chosen) if request.objective == "set_cover" else int(request.k),
            "demand": request.demand,
            "target_share": request.target_share if request.objective == "set_cover" else None,
            "capacity": request.capacity,
            "candidates": {"source": cands.source, "count": len(cands)},
            "proposals": rows,
            "before": before,
            "after": after,
            "communities": communities,
            "objective_value": objective_value,
            "optimal": bool(sol.optimal),
            "gap": round(float(sol.gap), 9) if math.isfinite(sol.gap) else None,
            "status": sol.status,
            "model": {k: int(v) for k, v in sol.stats.items()},
            "solve_seconds": round(sol.seconds, 3),
            "seconds": round(seconds, 3),
            "revision": self.revision,
        }
        if request.objective == "max_coverage" and len(chosen) < int(request.k):
            answer["note"] = f"只需 {len(chosen)} 个新站点即可覆盖候选站点能覆盖的全部需求"
        proposals = gpd.GeoDataFrame(
            [{**_flat(r), "radius_m": R, "metric": request.metric} for r in rows] if rows else None,
            geometry=gpd.points_from_xy(lonlat[:, 0], lonlat[:, 1]) if len(xy) else [],
            crs=WGS84,
        )
        return SitingResult(request, answer, proposals, grids_after)

    def _road_name(self, xy: NDArray) -> str | None:
        if self.network is None:
            return None
        i = self._road_tree.query_nearest(shapely.Point(xy), all_matches=False)
        return self._road_line_names[int(np.atleast_1d(i)[0])]


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


def plan_coverage(*, coverage: Coverage, store, radius_m: float, metric: str = "network", actor=None,
                  progress: Progress = _noop) -> dict[str, Any]:
    """Coverage of the current stations at ``radius_m`` (see ``Planner.coverage_report``); through the
    API (``actor`` given) for the planning roles only."""
    if actor is not None:
        check_planning_actor(actor)
    check_radius(radius_m)
    check_metric(metric)
    progress("准备步行网络")
    return planner_for(coverage, store).coverage_report(radius_m=radius_m, metric=metric, progress=progress)


def plan_stations(*, coverage: Coverage, store, request: SitingRequest, actor=None, now: datetime | None = None,
                  progress: Progress = _noop) -> SitingResult:
    """New station sites for ``request``; incidents as demand are read from the store's incidents.

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
    progress("准备步行网络")
    return planner_for(coverage, store).site(request, incidents=incidents, now=now, progress=progress)


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
