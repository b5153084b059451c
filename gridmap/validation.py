"""Checks a data package before anything is written; every problem is found in one pass.

Areas are measured in metres in the UTM zone of the data. The tolerance absorbs coordinate
rounding between neighbours that should share an edge.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo import WGS84, metric_crs
from gridmap.problems import Problem
from gridmap.schema import LAYERS, REGION_LEVELS

AREA_TOLERANCE_M2 = 1.0
"""Overlaps, spill-overs and gaps below this are rounding noise, not data errors."""

Frame = gpd.GeoDataFrame | pd.DataFrame


def validate(layers: Mapping[str, Frame], *, max_overlap_m2: float = AREA_TOLERANCE_M2) -> list[Problem]:
    """``max_overlap_m2``: grids overlapping by more are an error (the import is refused); by less, but above
    the rounding tolerance, a warning. An operator raises it to take in boundaries known to overlap a little
    (``GRIDMAP_IMPORT_MAX_OVERLAP_M2``), and fixes them later with ``gridmap check-topology --fix``."""
    problems: list[Problem] = []
    for name, frame in layers.items():
        problems += _check_fields(name, frame)
        problems += _check_unique_codes(name, frame)
        if LAYERS[name].spatial:
            problems += _check_geometries(name, frame)
    problems += _check_references(layers)
    if {"regions", "grids"} <= layers.keys():
        problems += _check_grid_topology(layers["grids"], layers["regions"], max(max_overlap_m2, AREA_TOLERANCE_M2))
    if {"grids", "buildings"} <= layers.keys():
        problems += _check_buildings_in_grids(layers["buildings"], layers["grids"])
    return problems


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def _check_fields(name: str, frame: Frame) -> list[Problem]:
    out = []
    for f in LAYERS[name].fields:
        if not f.required or f.type != "str" or f.name not in frame.columns:
            continue
        for position in np.flatnonzero(frame[f.name].to_numpy() == ""):
            code = frame[LAYERS[name].key].iat[position] or None
            where = "" if code else f"（第 {position + 1} 条）"
            out.append(Problem.error(name, code, f"必填字段 {f.name} 为空{where}", field=f.name))
    return out


def _check_unique_codes(name: str, frame: Frame) -> list[Problem]:
    key = LAYERS[name].key
    counts = Counter(c for c in frame[key] if c)
    return [
        Problem.error(name, code, f"编码 {code} 重复 {n} 次" if key == "code" else f"{code} 重复 {n} 次", field=key)
        for code, n in sorted(counts.items())
        if n > 1
    ]


def _check_geometries(name: str, frame: gpd.GeoDataFrame) -> list[Problem]:
    allowed = LAYERS[name].geometry_types
    geoms = frame.geometry.values
    out = []
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    types = shapely.get_type_id(geoms)
    names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
                      "MultiPolygon", "GeometryCollection"])
    valid = shapely.is_valid(geoms)
    for i in range(len(frame)):
        code = frame["code"].iat[i] or None
        if missing[i]:
            out.append(Problem.error(name, code, "几何为空"))
            continue
        kind = names[types[i]]
        if kind not in allowed:
            out.append(Problem.error(name, code, f"几何类型 {kind} 不符合要求（应为 {' 或 '.join(allowed)}）"))
        elif not valid[i]:
            reason = shapely.is_valid_reason(geoms[i])
            out.append(Problem.error(name, code, f"几何无效：{reason}", extra={"reason": reason}))
    return out


def usable(frame: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    """Features whose geometry is present, of an allowed type and valid: the ones worth relating."""
    geoms = frame.geometry.values
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    ok &= np.isin(shapely.get_type_id(geoms), [_TYPE_IDS[t] for t in LAYERS[name].geometry_types])
    ok &= shapely.is_valid(geoms)
    return frame[ok]


_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiLineString": 5, "MultiPolygon": 6}


def _codes(frame: Frame, mask: np.ndarray | None = None) -> set[str]:
    column = frame["code"] if mask is None else frame.loc[mask, "code"]
    return {c for c in column if c}


def _check_references(layers: Mapping[str, Frame]) -> list[Problem]:
    out: list[Problem] = []
    regions = layers.get("regions")
    if regions is None:
        return out
    region_codes = _codes(regions)
    communities = _codes(regions, (regions["level"] == "community").to_numpy())
    for code, level, parent in regions[["code", "level", "parent_code"]].itertuples(index=False):
        if level not in REGION_LEVELS:
            out.append(Problem.error("regions", code or None, f"级别 {level!r} 无效（应为 county、town 或 community）",
                                     field="level"))
        if parent and parent not in region_codes:
            out.append(Problem.error("regions", code or None, f"上级编码 {parent} 不存在", field="parent_code"))
        if not parent and level != "county":
            out.append(Problem.error("regions", code or None, f"{level} 级区域缺少上级编码", field="parent_code"))
    grids = layers.get("grids")
    grid_community = dict(zip(grids["code"], grids["community_code"])) if grids is not None else {}
    for name in ("grids", "workers", "stations", "units"):
        frame = layers.get(name)
        if frame is None:
            continue
        for code, community in frame[["code", "community_code"]].itertuples(index=False):
            if community and community not in communities:
                out.append(Problem.error(name, code or None, f"所属社区 {community} 不存在", field="community_code"))
    buildings, addresses = layers.get("buildings"), layers.get("addresses")
    if addresses is not None and buildings is not None:
        known = _codes(buildings)
        for code, building in addresses[["code", "building_code"]].itertuples(index=False):
            if building not in known:
                out.append(Problem.error("addresses", code or None, f"所属楼栋 {building} 不存在", field="building_code"))
    workers = layers.get("workers")
    if workers is not None and grids is not None:
        for code, grid, community in workers[["code", "grid_code", "community_code"]].itertuples(index=False):
            if grid and grid not in grid_community:
                out.append(Problem.error("workers", code or None, f"所属网格 {grid} 不存在", field="grid_code"))
            elif grid and community and grid_community[grid] != community:
                out.append(Problem.error("workers", code or None,
                                         f"网格 {grid} 属于社区 {grid_community[grid]}，而非 {community}",
                                         field="community_code"))
    return out


def _area_m2(geoms: np.ndarray) -> np.ndarray:
    """Area in square metres of geometries computed in lon/lat.

    Overlays are done in lon/lat, where the data's straight edges are straight; projecting first
    would bend shared edges apart (a 1 km parallel sags by centimetres in UTM) and report
    phantom overlaps.
    """
    if not len(geoms):
        return np.zeros(0)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    if not np.isfinite(minx):
        return np.zeros(len(geoms))
    crs = metric_crs((minx + maxx) / 2, (miny + maxy) / 2)
    return gpd.GeoSeries(geoms, crs=WGS84).to_crs(crs).area.to_numpy()


area_m2 = _area_m2
"""The public name of the measure: the topology report (``gridmap.topology``) measures with it too."""


def _check_grid_topology(grids: gpd.GeoDataFrame, regions: gpd.GeoDataFrame,
                         max_overlap_m2: float = AREA_TOLERANCE_M2) -> list[Problem]:
    out: list[Problem] = []
    grids = usable(grids, "grids")
    regions = usable(regions, "regions")
    communities = regions[regions["level"] == "community"]
    if not len(grids):
        return out
    g = grids.geometry.values
    codes = grids["code"].to_numpy()
    left, right = shapely.STRtree(g).query(g, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    areas = _area_m2(shapely.intersection(g[left], g[right]))
    for i, j, area in zip(left, right, areas):
        if area > AREA_TOLERANCE_M2:
            kind = Problem.error if area > max_overlap_m2 else Problem.warning
            below = "" if area > max_overlap_m2 else f"（未超过导入阈值 {max_overlap_m2:g} 平方米）"
            out.append(kind("grids", codes[i], f"与网格 {codes[j]} 重叠 {area:.1f} 平方米{below}",
                            extra={"other": codes[j], "area_m2": round(float(area), 1)}))
    community_geom = dict(zip(communities["code"], communities.geometry.values))
    for code, community, geom in zip(codes, grids["community_code"], g):
        parent = community_geom.get(community)
        if parent is None:
            continue
        spill = _area_m2(np.array([shapely.difference(geom, parent)]))[0]
        if spill > AREA_TOLERANCE_M2:
            out.append(Problem.error("grids", code, f"超出所属社区 {community} 边界 {spill:.1f} 平方米",
                                     extra={"area_m2": round(float(spill), 1)}))
    by_community = grids.groupby("community_code").geometry.apply(lambda s: shapely.union_all(s.values))
    for community, union in by_community.items():
        parent = community_geom.get(community)
        if parent is None:
            continue
        gap = _area_m2(np.array([shapely.difference(parent, union)]))[0]
        if gap > AREA_TOLERANCE_M2:
            out.append(Problem.warning("regions", community, f"社区内有 {gap:.1f} 平方米未划入任何网格",
                                       extra={"area_m2": round(float(gap), 1)}))
    return out


def _check_buildings_in_grids(buildings: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> list[Problem]:
    out: list[Problem] = []
    buildings = usable(buildings, "buildings")
    grids = usable(grids, "grids")
    if not len(buildings):
        return out
    b = buildings.geometry.values
    g = grids.geometry.values
    grid_codes = grids["code"].to_numpy()
    tree = shapely.STRtree(g)
    anchor = shapely.point_on_surface(b)
    hit_b, _ = tree.query(anchor, predicate="covered_by")
    anchored = np.zeros(len(b), dtype=bool)
    anchored[hit_b] = True
    polygonal = shapely.get_type_id(b) != 0
    pb, pg = tree.query(b, predicate="intersects")
    overlap = np.zeros(len(pb))
    poly_pairs = polygonal[pb]
    overlap[poly_pairs] = _area_m2(shapely.intersection(b[pb[poly_pairs]], g[pg[poly_pairs]]))
    spans: dict[int, list[str]] = {}
    for i, j, area in zip(pb, pg, overlap):
        if area > AREA_TOLERANCE_M2:
            spans.setdefault(int(i), []).append(grid_codes[j])
    codes = buildings["code"].to_numpy()
    for i in np.flatnonzero(~anchored):
        out.append(Problem.error("buildings", codes[i] or None, "不在任何网格内"))
    for i, hit in sorted(spans.items()):
        if len(hit) > 1:
            out.append(Problem.error("buildings", codes[i] or None, f"跨越多个网格：{'、'.join(sorted(hit))}",
                                     extra={"grids": sorted(hit)}))
    return out
