"""Answers about areas rather than points: grids, a worker's patch, communities, stations.

All read from the in-memory ``Coverage`` (built once from the store), never from the store per
request. Geometry leaves as GeoJSON in WGS84.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.coverage.service import Coverage
from gridmap.errors import NotFound


def _totals(buildings: pd.DataFrame) -> dict[str, int]:
    return {
        "building_count": int(len(buildings)),
        "households": int(buildings["households"].sum()),
        "population": int(buildings["population"].sum()),
    }


def _grid_totals(coverage: Coverage) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "grid_code": coverage.building_grid,
            "households": coverage.buildings["households"].to_numpy(),
            "population": coverage.buildings["population"].to_numpy(),
        }
    )
    grouped = frame.groupby("grid_code").agg(
        building_count=("households", "size"), households=("households", "sum"), population=("population", "sum")
    )
    return grouped.reindex(coverage.grids["code"]).fillna(0).astype(int)


def _features(frame: gpd.GeoDataFrame) -> dict[str, Any]:
    return frame.to_geo_dict(drop_id=True)


def _community_code(coverage: Coverage, code_or_name: str) -> str:
    """Staff filter by name (双塔社区, 双塔) as often as by code."""
    communities = coverage.regions[coverage.regions["level"] == "community"]
    for code, name in communities[["code", "name"]].itertuples(index=False):
        if code_or_name in (code, name, name.removesuffix("社区")):
            return code
    raise NotFound(f"社区 {code_or_name} 不存在")


def grids_collection(coverage: Coverage, *, community: str | None = None) -> dict[str, Any]:
    grids = coverage.grids.join(_grid_totals(coverage), on="code")
    if community is not None:
        grids = grids[grids["community_code"] == _community_code(coverage, community)]
    grids = grids.assign(community_name=grids["community_code"].map(lambda c: coverage.region_name(c)))
    return _features(grids)


def grid_feature(coverage: Coverage, code: str) -> dict[str, Any]:
    i = coverage.grid_position(code)
    row = coverage.grids.iloc[i]
    buildings = coverage.buildings[coverage.building_grid == code]
    answer = coverage._grid_answers[i]
    return {
        "type": "Feature",
        "geometry": shapely.geometry.mapping(row.geometry),
        "properties": {
            "code": row["code"],
            "name": row["name"],
            "community": answer["community"],
            "town": answer["town"],
            "workers": answer["workers"],
            **_totals(buildings),
        },
    }


def worker_coverage(coverage: Coverage, code: str) -> dict[str, Any]:
    """A grid worker's grid, or for community staff (no grid) every grid of their community."""
    match = coverage.workers[coverage.workers["code"] == code]
    if not len(match):
        raise NotFound(f"网格员 {code} 不存在")
    worker = match.iloc[0]
    grid_codes = coverage.building_grid
    if worker["grid_code"]:
        grids = coverage.grids[coverage.grids["code"] == worker["grid_code"]]
    else:
        grids = coverage.grids[coverage.grids["community_code"] == worker["community_code"]]
    buildings = coverage.buildings[np.isin(grid_codes, grids["code"].to_numpy())]
    buildings = buildings.assign(grid_code=grid_codes[np.isin(grid_codes, grids["code"].to_numpy())])
    return {
        "worker": {k: worker[k] for k in ("code", "name", "role", "phone")},
        "community": {"code": worker["community_code"], "name": coverage.region_name(worker["community_code"])},
        "grids": _features(grids),
        "buildings": _features(buildings),
        "totals": _totals(buildings),
    }


def communities(coverage: Coverage) -> list[dict[str, Any]]:
    regions = coverage.regions[coverage.regions["level"] == "community"].sort_values("code")
    totals = _grid_totals(coverage)
    per_community = totals.join(coverage.grids.set_index("code")["community_code"]).groupby("community_code").sum()
    grid_counts = coverage.grids.groupby("community_code").size()
    out = []
    for code, name, parent in regions[["code", "name", "parent_code"]].itertuples(index=False):
        sums = per_community.loc[code] if code in per_community.index else None
        out.append(
            {
                "code": code,
                "name": name,
                "town": {"code": parent, "name": coverage.region_name(parent)},
                "grid_count": int(grid_counts.get(code, 0)),
                "building_count": int(sums["building_count"]) if sums is not None else 0,
                "households": int(sums["households"]) if sums is not None else 0,
                "population": int(sums["population"]) if sums is not None else 0,
            }
        )
    return out


def stations_collection(coverage: Coverage, *, community: str | None = None) -> dict[str, Any]:
    stations = coverage.stations
    if community is not None:
        stations = stations[stations["community_code"] == _community_code(coverage, community)]
    return _features(stations)
