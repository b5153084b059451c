"""Geometry for display: simplified as one topology (no gaps between neighbours), 6 decimals, compact GeoJSON.

Simplifying each polygon on its own moves the two copies of a shared edge differently and opens
slivers between neighbouring grids. ``simplify_coverage`` simplifies the coverage as a whole
(``shapely.coverage_simplify``: every shared edge is simplified once), in metres, and rounds every
vertex to 1e-6° (≈ 0.1 m), which keeps shared vertices shared.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gridmap.geo import WGS84, metric_crs

DECIMALS = 6


def round_coords(geoms: Any, decimals: int = DECIMALS) -> NDArray:
    return shapely.transform(np.asarray(geoms), lambda c: np.round(c, decimals))


def simplify_coverage(frame: gpd.GeoDataFrame, tolerance_m: float = 3.0) -> gpd.GeoDataFrame:
    """Polygons that tile an area, simplified together (falls back to rounding only if they overlap)."""
    if not len(frame):
        return frame
    geoms = frame.geometry.values
    minx, miny, maxx, maxy = frame.total_bounds
    crs = metric_crs((minx + maxx) / 2, (miny + maxy) / 2)
    metric = gpd.GeoSeries(geoms, crs=frame.crs or WGS84).to_crs(crs).values
    if tolerance_m > 0 and bool(shapely.coverage_is_valid(np.asarray(metric))):
        simple = shapely.coverage_simplify(np.asarray(metric), tolerance_m, simplify_boundary=True)
        back = gpd.GeoSeries(simple, crs=crs).to_crs(frame.crs or WGS84).values
    else:
        back = geoms
    out = frame.copy()
    out.geometry = gpd.GeoSeries(round_coords(back), index=frame.index, crs=frame.crs or WGS84)
    return out


def simplify_each(frame: gpd.GeoDataFrame, tolerance_m: float = 3.0) -> gpd.GeoDataFrame:
    """Outlines with no neighbours to keep in step (a county boundary): simplified alone, rounded."""
    if not len(frame):
        return frame
    minx, miny, maxx, maxy = frame.total_bounds
    crs = metric_crs((minx + maxx) / 2, (miny + maxy) / 2)
    metric = frame.geometry.to_crs(crs).simplify(tolerance_m, preserve_topology=True)
    out = frame.copy()
    out.geometry = gpd.GeoSeries(round_coords(metric.to_crs(frame.crs or WGS84).values), index=frame.index,
                                 crs=frame.crs or WGS84)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is pd.NaT or (not isinstance(value, (str, list, dict)) and pd.isna(value)):
        return None
    return value


def feature_collection(frame: gpd.GeoDataFrame, columns: list[str]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection with only ``columns`` as properties (coordinates already rounded)."""
    geoms = shapely.to_geojson(np.asarray(frame.geometry.values))
    records = frame[columns].to_dict("records") if columns else [{} for _ in range(len(frame))]
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {k: _plain(v) for k, v in rec.items()}, "geometry": _geometry(g)}
            for rec, g in zip(records, geoms)
        ],
    }


def _geometry(text: str) -> dict[str, Any]:
    import json

    return json.loads(text)


def bounds_of(geom: shapely.Geometry) -> list[float]:
    return [round(float(v), DECIMALS) for v in geom.bounds]
