"""The measurements of a topology report, on arrays of WGS84 geometries.

Overlays are made in lon/lat and only their results are projected, with the same helper the import's
validation uses (``gridmap.validation.area_m2``): one way of measuring, so the report and the import never
disagree about whether two grids overlap. Only widths (slivers) need buffering, which is done in the
metric CRS of the data (``gridmap.geo.metric_crs``).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

from gridmap.geo import WGS84, metric_crs
from gridmap.validation import AREA_TOLERANCE_M2, area_m2

__all__ = ["AREA_TOLERANCE_M2", "Piece", "area_m2", "crossing", "gaps", "metric_of", "overlaps", "slivers", "splits"]


@dataclass(frozen=True)
class Piece:
    """One problem geometry: what it is between (``codes``), where (WGS84) and how large (m²)."""

    codes: tuple[str, ...]
    geometry: shapely.Geometry
    area_m2: float
    extra: dict | None = None


def metric_of(geoms: NDArray) -> pyproj.CRS:
    """The UTM zone around the geometries (the same choice as ``area_m2``)."""
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    return metric_crs((minx + maxx) / 2, (miny + maxy) / 2)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """The areal part of an overlay's result: touching neighbours leave lines and points, not problems."""
    if geom is None or geom.is_empty:
        return shapely.Polygon()
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _pieces(geom: shapely.Geometry, codes: tuple[str, ...], tolerance_m2: float) -> list[Piece]:
    """Each separate part above the tolerance: two gaps in one community are two places to fix."""
    parts = shapely.get_parts(_polygonal(geom))
    if not len(parts):
        return []
    areas = area_m2(parts)
    return [Piece(codes, p, float(a)) for p, a in zip(parts, areas) if a > tolerance_m2]


def overlaps(geoms: NDArray, codes: NDArray, tolerance_m2: float = AREA_TOLERANCE_M2) -> list[Piece]:
    """Pairwise overlaps above ``tolerance_m2``: one piece per pair (all its parts together)."""
    if not len(geoms):
        return []
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    shared = np.array([_polygonal(g) for g in shapely.intersection(geoms[left], geoms[right])], dtype=object)
    areas = area_m2(shared)
    return [Piece((str(codes[i]), str(codes[j])), g, float(a))
            for i, j, g, a in zip(left, right, shared, areas) if a > tolerance_m2]


def gaps(parent: shapely.Geometry, children: NDArray, code: str,
         tolerance_m2: float = AREA_TOLERANCE_M2) -> list[Piece]:
    """Parts of ``parent`` that no child covers (a community's area in no grid)."""
    covered = shapely.union_all(children) if len(children) else shapely.Polygon()
    return _pieces(shapely.difference(parent, covered), (code,), tolerance_m2)


def crossing(child: shapely.Geometry, parent: shapely.Geometry, child_code: str, parent_code: str,
             tolerance_m2: float = AREA_TOLERANCE_M2) -> Piece | None:
    """The part of ``child`` outside ``parent`` (a grid spilling out of its community), if above tolerance."""
    outside = _polygonal(shapely.difference(child, parent))
    if outside.is_empty:
        return None
    area = float(area_m2(np.array([outside]))[0])
    return Piece((child_code, parent_code), outside, area) if area > tolerance_m2 else None


def slivers(geoms: NDArray, codes: NDArray, width_m: float,
            tolerance_m2: float = AREA_TOLERANCE_M2) -> list[Piece]:
    """Parts of each polygon narrower than ``width_m``: what an opening (shrink by half the width, grow
    back) removes. Mitred joins give square corners back exactly, so a rectangle has no sliver."""
    if not len(geoms) or width_m <= 0:
        return []
    crs = metric_of(geoms)
    metric = gpd.GeoSeries(geoms, crs=WGS84).to_crs(crs).values
    half = width_m / 2
    opened = shapely.buffer(shapely.buffer(metric, -half, join_style="mitre", mitre_limit=10.0),
                            half, join_style="mitre", mitre_limit=10.0)
    thin = shapely.difference(metric, opened)
    out: list[Piece] = []
    back = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)
    for code, geom in zip(codes, thin):
        for part in shapely.get_parts(_polygonal(geom)):
            # the opening leaves hairlines along edges where the buffer rounds; keep real thin parts
            if part.area <= tolerance_m2:
                continue
            lonlat = shapely.transform(part, lambda xy: np.column_stack(back.transform(xy[:, 0], xy[:, 1])))
            out.append(Piece((str(code),), lonlat, float(part.area), {"width_m": width_m}))
    return out


def splits(buildings: NDArray, building_codes: NDArray, grids: NDArray, grid_codes: NDArray,
           tolerance_m2: float = AREA_TOLERANCE_M2) -> list[Piece]:
    """Buildings that more than one grid covers by more than ``tolerance_m2``, with each grid's share of the
    building's area (``extra["shares"]``: grid code → fraction, largest first)."""
    polygonal = np.isin(shapely.get_type_id(buildings), (3, 6))
    if not polygonal.any() or not len(grids):
        return []
    b_index = np.flatnonzero(polygonal)
    pb, pg = shapely.STRtree(grids).query(buildings[b_index], predicate="intersects")
    if not len(pb):
        return []
    pieces = np.array([_polygonal(g) for g in shapely.intersection(buildings[b_index][pb], grids[pg])],
                      dtype=object)
    inside = area_m2(pieces)
    total = area_m2(buildings[b_index])
    by_building: dict[int, list[tuple[str, float, shapely.Geometry]]] = {}
    for i, j, a, piece in zip(pb, pg, inside, pieces):
        if a > tolerance_m2:
            by_building.setdefault(int(i), []).append((str(grid_codes[j]), float(a), piece))
    out = []
    for i, parts in sorted(by_building.items()):
        if len(parts) < 2:
            continue
        parts.sort(key=lambda p: -p[1])
        shares = {code: round(a / total[i], 4) for code, a, _ in parts}
        areas = {code: round(a, 1) for code, a, _ in parts}
        out.append(Piece((str(building_codes[b_index[i]]), *(p[0] for p in parts)), buildings[b_index[i]],
                         float(total[i]), {"shares": shares, "areas_m2": areas}))
    return out
