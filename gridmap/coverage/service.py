"""Who covers a point: grid, community, town, county, workers, nearest station, police precinct.

``Coverage`` is built once from the store (at start-up and after each import) and then answers
from memory. Each grid's answer fragments are prepared at build time so a lookup is an index
probe plus a dictionary copy.

Edge rule: a point on an edge or vertex shared by several grids is covered by each of them
(boundary-inclusive, like ``covers``); the answer is the one with the smallest grid code.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from gridmap.address import AddressMatcher
from gridmap.coverage.index import PolygonIndex
from gridmap.errors import InvalidInput, NotFound
from gridmap.geo import WGS84, metric_crs

ROLE_ORDER = {"网格长": 0, "专职网格员": 1, "兼职网格员": 2, "社区民警": 3}
"""Order in which workers are listed: the person to call first comes first."""

Frame = gpd.GeoDataFrame | pd.DataFrame

TREE_MIN_POINTS = 256
"""Below this many stations (or units) a nearest-point query scans them all (a few microseconds, less than
a KD-tree query costs from Python); above it a KD-tree answers, with the same result."""


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off while millions of long-lived objects are made (the address library
    of a city, the cache loaded from disk): it would walk the growing heap again and again for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def check_point(lon: float, lat: float) -> None:
    """Reject coordinates a person could have mistyped, with a message that says how."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise InvalidInput("经纬度必须是有限数值（不能为 NaN 或无穷大）")
    if not -180 <= lon <= 180 or not -90 <= lat <= 90:
        hint = "；经度和纬度可能写反了" if -90 <= lon <= 90 and -180 <= lat <= 180 else ""
        raise InvalidInput(f"坐标超出范围：经度应在 -180 到 180 之间，纬度应在 -90 到 90 之间{hint}")


def parse_point(lon: str | None, lat: str | None) -> tuple[float, float]:
    """Coordinates as typed into a query string, checked with messages staff understand."""
    names = {"lon": "经度 lon", "lat": "纬度 lat"}
    raw = {"lon": lon, "lat": lat}
    missing = [names[k] for k, v in raw.items() if v is None or not v.strip()]
    if missing:
        raise InvalidInput(f"缺少{'和'.join(missing)}参数")
    values = {}
    for key, text in raw.items():
        try:
            values[key] = float(text)
        except ValueError:
            raise InvalidInput(f"{names[key]} 的值 {text!r} 不是数字") from None
    check_point(values["lon"], values["lat"])
    return values["lon"], values["lat"]


def _ref(code: str, name: str) -> dict[str, str]:
    return {"code": code, "name": name}


@dataclass
class Coverage:
    grids: gpd.GeoDataFrame
    regions: gpd.GeoDataFrame
    workers: pd.DataFrame
    stations: gpd.GeoDataFrame
    precincts: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    revision: str | None = None
    units: gpd.GeoDataFrame | None = None
    matcher: AddressMatcher | None = None
    """The standard address library over the same layers (None: addresses are not answered)."""

    def __post_init__(self) -> None:
        self.build_seconds: dict[str, float] = {}
        """Wall-clock seconds of each build step (logged at start-up, reported by bench/bench_startup.py)."""
        with self._step("polygon_indexes"):
            self._build_indexes()
        with self._step("grid_answers"):
            self._regions = {code: row for code, row in zip(self.regions["code"], self.regions.to_dict("records"))}
            self._build_points()
            self._workers_by_grid, self._staff_by_community = self._group_workers()
            grid_rows = zip(self.grids["code"], self.grids["name"], self.grids["community_code"])
            self._grid_answers = [self._grid_answer(code, name, community) for code, name, community in grid_rows]
            self._grid_position = {code: i for i, code in enumerate(self.grids["code"])}
        with self._step("building_grids"):
            anchor = shapely.point_on_surface(self.buildings.geometry.values)
            self.building_xy = np.column_stack([shapely.get_x(anchor), shapely.get_y(anchor)])
            """A point inside each building's footprint: where an address that names it is located."""
            self.building_grid = self.locate_grids(self.building_xy[:, 0], self.building_xy[:, 1])
            """Grid code of each building, by that point (the rule import checks)."""
            self.building_position = self._building_positions()
        self._units_cache: dict[tuple[str, ...], tuple[list[tuple], NDArray, NDArray, cKDTree | None]] = {}
        self._service_areas: dict[float, Any] = {}

    def _building_positions(self) -> dict[str, int]:
        """Code → row of each building: the address library's own table when it was built from these very
        buildings (in ``from_layers`` it is; checked, as a Coverage can be given any library), else a new one."""
        codes = self.buildings["code"].tolist()
        library = self.matcher.lib if self.matcher is not None else None
        if library is not None and [r.code for r in library.records] == codes:
            return library.by_code
        return {code: i for i, code in enumerate(codes)}

    @contextmanager
    def _step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.build_seconds[name] = self.build_seconds.get(name, 0.0) + time.perf_counter() - started

    def _build_indexes(self) -> None:
        """Point-in-polygon indexes of the grids, each region level and the precincts, in one metric CRS."""
        self.grids = self.grids.sort_values("code", kind="stable").reset_index(drop=True)
        centre = self._centre()
        self.crs = metric_crs(*centre)
        self._to_metric = pyproj.Transformer.from_crs(WGS84, self.crs, always_xy=True)
        self.grid_index = PolygonIndex(self.grids.geometry.values, metric_crs=self.crs)
        self._level_index: dict[str, tuple[PolygonIndex, NDArray]] = {}
        for level in ("community", "town", "county"):
            part = self.regions[self.regions["level"] == level].sort_values("code")
            self._level_index[level] = (
                PolygonIndex(part.geometry.values, metric_crs=self.crs),
                part["code"].to_numpy(),
            )
        precincts = self.precincts.sort_values("code").reset_index(drop=True)
        self._precinct_index = PolygonIndex(precincts.geometry.values, metric_crs=self.crs)
        self._precincts = [
            {"code": c, "name": n, "phone": p} for c, n, p in precincts[["code", "name", "phone"]].itertuples(index=False)
        ]

    def _build_points(self) -> None:
        """Stations in metres, with a KD-tree when there are many (nearest station for every lookup)."""
        stations = self.stations.sort_values("code").reset_index(drop=True)
        sx, sy = self._to_metric.transform(stations.geometry.x.to_numpy(), stations.geometry.y.to_numpy())
        self._station_xy = np.column_stack([sx, sy]) if len(stations) else np.empty((0, 2))
        self._station_tree = cKDTree(self._station_xy) if len(self._station_xy) >= TREE_MIN_POINTS else None
        self._stations = [_ref(c, n) for c, n in stations[["code", "name"]].itertuples(index=False)]

    @classmethod
    def from_layers(cls, layers: Mapping[str, Frame], revision: str | None = None) -> Coverage:
        with paused_gc():
            started = time.perf_counter()
            matcher = AddressMatcher.from_layers(layers)
            library_seconds = time.perf_counter() - started
            coverage = cls(
                grids=layers["grids"],
                regions=layers["regions"],
                workers=layers["workers"],
                stations=layers["stations"],
                precincts=layers["precincts"],
                buildings=layers["buildings"],
                revision=revision,
                units=layers.get("units"),
                matcher=matcher,
            )
        coverage.build_seconds["address_library"] = library_seconds
        return coverage

    def __getstate__(self) -> dict[str, Any]:
        """What the on-disk cache keeps (``gridmap.coverage.cache``): everything built, not the per-query caches."""
        state = dict(self.__dict__)
        state["_units_cache"] = {}
        state["_service_areas"] = {}
        return state

    def _centre(self) -> tuple[float, float]:
        frames = [f for f in (self.grids, self.regions) if len(f)]
        if not frames:
            return (110.77, 35.14)
        minx, miny, maxx, maxy = frames[0].total_bounds
        return ((minx + maxx) / 2, (miny + maxy) / 2)

    def _group_workers(self) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
        by_grid: dict[str, list[dict]] = {}
        by_community: dict[str, list[dict]] = {}
        rows = self.workers.to_dict("records")
        rows.sort(key=lambda w: (ROLE_ORDER.get(w["role"], 9), w["code"]))
        for w in rows:
            entry = {"code": w["code"], "name": w["name"], "role": w["role"], "phone": w["phone"]}
            if w["grid_code"]:
                by_grid.setdefault(w["grid_code"], []).append(entry)
            else:
                by_community.setdefault(w["community_code"], []).append(entry)
        return by_grid, by_community

    def _admin_chain(self, community_code: str | None, lon: float, lat: float) -> dict[str, Any]:
        """County, town and community refs: from the community's parents, else by polygon."""
        chain: dict[str, Any] = {"county": None, "town": None, "community": None}
        code = community_code
        if code is None:
            for level in ("community", "town", "county"):
                index, codes = self._level_index[level]
                hit = index.locate_one(lon, lat)
                if hit >= 0:
                    code = codes[hit]
                    break
        while code:
            row = self._regions.get(code)
            if row is None:
                break
            chain[row["level"]] = _ref(row["code"], row["name"])
            code = row["parent_code"]
        return chain

    def _grid_answer(self, code: str, name: str, community: str) -> dict[str, Any]:
        return {
            "grid": _ref(code, name),
            "workers": self._workers_by_grid.get(code, []) + self._staff_by_community.get(community, []),
            **self._admin_chain(community, math.nan, math.nan),
        }

    def nearest_station(self, lon: float, lat: float) -> dict[str, Any] | None:
        if not len(self._station_xy):
            return None
        x, y = self._to_metric.transform(lon, lat)
        xy = self._station_xy
        if self._station_tree is None:
            d2 = (xy[:, 0] - x) ** 2 + (xy[:, 1] - y) ** 2
            best = int(np.argmin(d2))
            return {**self._stations[best], "distance_m": round(math.sqrt(float(d2[best])), 1)}
        near = _nearest_ties(self._station_tree, x, y)
        d2 = (xy[near, 0] - x) ** 2 + (xy[near, 1] - y) ** 2
        best = int(np.argmin(d2))
        return {**self._stations[near[best]], "distance_m": round(math.sqrt(float(d2[best])), 1)}

    def precinct(self, lon: float, lat: float) -> dict[str, str] | None:
        hit = self._precinct_index.locate_one(lon, lat)
        return self._precincts[hit] if hit >= 0 else None

    def lookup(self, lon: float, lat: float) -> dict[str, Any]:
        check_point(lon, lat)
        hit = self.grid_index.locate_one(lon, lat)
        answer: dict[str, Any] = {"covered": hit >= 0, "lon": lon, "lat": lat}
        if hit >= 0:
            answer.update(self._grid_answers[hit])
            answer["nearest_grid"] = None
        else:
            answer.update(self._admin_chain(None, lon, lat))
            answer.update(grid=None, workers=[])
            near, distance = self.grid_index.nearest(lon, lat)
            answer["nearest_grid"] = (
                {**self._grid_answers[near]["grid"], "distance_m": round(distance, 1)}
                if near >= 0
                else None
            )
        answer["station"] = self.nearest_station(lon, lat)
        answer["precinct"] = self.precinct(lon, lat)
        return answer

    def locate_grids(self, lon: ArrayLike, lat: ArrayLike) -> NDArray[np.object_]:
        """Grid code for each point (None outside every grid): the batch form of ``lookup``."""
        hits = self.grid_index.locate(lon, lat)
        codes = np.append(self.grids["code"].to_numpy(dtype=object), None)
        return codes[hits]

    def places(self, lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.object_], NDArray[np.object_], list]:
        """Grid code, community code and precinct of each point, as ``lookup`` answers them: the batch form
        (for loading a history) without the nearest station and nearest grid that ``lookup`` adds."""
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        hits = self.grid_index.locate(lon, lat)
        grid_codes = np.append(self.grids["code"].to_numpy(dtype=object), None)[hits]
        of_grid = [(answer["community"] or {}).get("code") for answer in self._grid_answers]
        community = np.array(of_grid + [None], dtype=object)[hits]
        outside = np.flatnonzero(hits < 0)
        if len(outside):  # outside every grid: the community polygon, as ``_admin_chain`` finds it
            index, codes = self._level_index["community"]
            found = index.locate(lon[outside], lat[outside])
            community[outside] = np.append(codes.astype(object), None)[found]
        precincts = [self._precincts[i] if i >= 0 else None for i in self._precinct_index.locate(lon, lat)]
        return grid_codes, community, precincts

    def to_metric(self, lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
        x, y = self._to_metric.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.asarray(x), np.asarray(y)

    def distance_to_grid_edge(self, code: str, lon: float, lat: float) -> float:
        """Metres from a point to the boundary of a grid (to flag reports a grid's neighbour may own)."""
        boundary = self.grids.geometry.iat[self.grid_position(code)].boundary
        metric = shapely.transform(boundary, lambda c: np.column_stack(self.to_metric(c[:, 0], c[:, 1])))
        x, y = self.to_metric(lon, lat)
        return float(shapely.distance(metric, shapely.Point(float(x), float(y))))

    def nearest_units(self, lon: float, lat: float, resources: tuple[str, ...], *, limit: int = 3,
                      within_m: float = 3000) -> list[dict[str, Any]]:
        """Co-building units able to offer any of ``resources``, nearest first (一呼百应)."""
        units, ux, uy, tree = self._units_offering(tuple(sorted(resources)))
        if not len(units):
            return []
        x, y = self.to_metric(lon, lat)
        if tree is None:
            distance = np.hypot(ux - x, uy - y)
            order = np.argsort(distance, kind="stable")[:limit]
        else:  # only the units within reach, measured and ordered as the scan above would
            near = np.sort(np.asarray(tree.query_ball_point((float(x), float(y)), r=within_m * (1 + 1e-9)), int))
            distance = np.full(len(ux), np.inf)
            distance[near] = np.hypot(ux[near] - x, uy[near] - y)
            order = near[np.argsort(distance[near], kind="stable")][:limit]
        wanted = set(resources)
        return [
            {"code": units[i][0], "name": units[i][1], "category": units[i][2],
             "resources": sorted(wanted & units[i][3]), "distance_m": round(float(distance[i]), 1)}
            for i in order if distance[i] <= within_m
        ]

    def nearest_units_many(self, lon: ArrayLike, lat: ArrayLike, resources: tuple[str, ...], *, limit: int = 3,
                           within_m: float = 3000) -> list[list[dict[str, Any]]]:
        """``nearest_units`` for many points at once (loading a history): the same lists, computed as
        (point, unit) pairs within reach, measured and ordered together instead of one point at a time."""
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        units, ux, uy, tree = self._units_offering(tuple(sorted(resources)))
        if not len(units):
            return [[] for _ in range(len(lon))]
        x, y = self.to_metric(lon, lat)
        if tree is None:  # few units: every pair
            row, unit = np.divmod(np.arange(len(x) * len(ux)), len(ux))
        else:
            balls = tree.query_ball_point(np.column_stack([x, y]), r=within_m * (1 + 1e-9))
            sizes = np.fromiter((len(b) for b in balls), dtype=np.int64, count=len(balls))
            row = np.repeat(np.arange(len(x)), sizes)
            unit = np.fromiter((u for b in balls for u in b), dtype=np.int64, count=int(sizes.sum()))
        distance = np.hypot(ux[unit] - x[row], uy[unit] - y[row])
        keep = distance <= within_m
        row, unit, distance = row[keep], unit[keep], distance[keep]
        order = np.lexsort((unit, distance, row))
        row, unit, distance = row[order], unit[order], distance[order]
        rank = np.arange(len(row)) - np.searchsorted(row, row)  # position within the point's list
        first = rank < limit
        out: list[list[dict[str, Any]]] = [[] for _ in range(len(x))]
        wanted = set(resources)
        for r, u, d in zip(row[first].tolist(), unit[first].tolist(), distance[first].tolist()):
            code, name, category, offered = units[u]
            out[r].append({"code": code, "name": name, "category": category, "resources": sorted(wanted & offered),
                           "distance_m": round(d, 1)})
        return out

    def _units_offering(self, resources: tuple[str, ...]) -> tuple[list[tuple], NDArray, NDArray, cKDTree | None]:
        """(code, name, category, resource set) of the units offering any of ``resources``, their metric
        coordinates and, when there are many, a KD-tree over them; once per set of resources."""
        cache = self._units_cache
        if resources not in cache:
            units = self.units if self.units is not None else gpd.GeoDataFrame({"resources": []}, geometry=[])
            offers = units["resources"].fillna("").str.split(";")
            able = offers.map(lambda r: bool(set(resources) & {x.strip() for x in r})).to_numpy(dtype=bool)
            chosen = units[able] if len(units) else units
            ux, uy = self.to_metric(chosen.geometry.x.to_numpy(), chosen.geometry.y.to_numpy())
            rows = [(code, name, category, {r.strip() for r in offered.split(";")}) for code, name, category, offered
                    in zip(chosen["code"], chosen["name"], chosen["category"], chosen["resources"])] if len(chosen) else []
            tree = cKDTree(np.column_stack([ux, uy])) if len(chosen) >= TREE_MIN_POINTS else None
            cache[resources] = (rows, ux, uy, tree)
        return cache[resources]

    def in_service_area(self, lon: float, lat: float, margin_m: float) -> bool:
        """Within ``margin_m`` of the county (the top regions of the package; the grids when there are none).

        The outline is simplified and buffered once per margin in the metric CRS, then prepared.
        """
        area = self._service_areas.get(margin_m)
        if area is None:
            top = self.regions[self.regions["level"] == "county"] if len(self.regions) else self.regions
            shapes = (top if len(top) else self.regions if len(self.regions) else self.grids).geometry
            if not len(shapes):
                return True
            metric = shapes.to_crs(self.crs).union_all().simplify(20)
            area = gpd.GeoSeries([metric.buffer(margin_m)], crs=self.crs).to_crs(WGS84).iloc[0]
            shapely.prepare(area)
            self._service_areas[margin_m] = area
        return bool(area.covers(shapely.Point(lon, lat)))

    def region(self, code: str) -> dict[str, Any] | None:
        return self._regions.get(code)

    def communities_under(self, code: str) -> list[str]:
        """Community codes at or below a region, in code order."""
        row = self._regions.get(code)
        if row is None:
            return []
        if row["level"] == "community":
            return [code]
        children = sorted(c for c, r in self._regions.items() if r["parent_code"] == code)
        return [community for child in children for community in self.communities_under(child)]

    def region_answer(self, code: str) -> dict[str, Any]:
        """What a community-, town- or county-level answer holds: the chain, every grid, the staff."""
        communities = self.communities_under(code)
        grids = [a["grid"] for a, c in zip(self._grid_answers, self.grids["community_code"]) if c in communities]
        staff = [w for c in communities for w in self._staff_by_community.get(c, [])]
        if len(communities) == 1:
            staff = staff + [w for g in grids for w in self._workers_by_grid.get(g["code"], [])]
        return {**self._admin_chain(code, math.nan, math.nan), "grids": grids, "workers": staff}

    def region_name(self, code: str) -> str | None:
        row = self._regions.get(code)
        return row["name"] if row else None

    def grid_position(self, code: str) -> int:
        try:
            return self._grid_position[code]
        except KeyError:
            raise NotFound(f"网格 {code} 不存在") from None

    def grid_ref(self, code: str) -> dict[str, str]:
        return self._grid_answers[self.grid_position(code)]["grid"]

    def grid_workers(self, code: str) -> list[dict]:
        return self._grid_answers[self.grid_position(code)]["workers"]


def _nearest_ties(tree: cKDTree, x: float, y: float) -> NDArray[np.int64]:
    """Indices of the points nearest to (x, y) and of any within rounding of that distance, ascending:
    the caller measures them exactly and keeps the first, as a scan over all points would."""
    distance, _ = tree.query((x, y))
    near = tree.query_ball_point((x, y), r=float(distance) * (1 + 1e-9) + 1e-9)
    return np.sort(np.asarray(near, dtype=np.int64))
