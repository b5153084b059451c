"""What changed between two boundary versions: grids added, removed and reshaped, the buildings (and
their households) that moved to another grid, and the workers whose grid changed.

A building belongs to the grid its anchor point lies in (``shapely.point_on_surface``, as the lookup
index places it). Areas are measured as the import check measures them (``validation.area_m2``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import geopandas as gpd
import numpy as np
import shapely

from gridmap.package import Frame
from gridmap.validation import area_m2

RESHAPE_TOLERANCE_M2: Final = 1.0
"""A grid whose outline moved by less than this area (both ways together) counts as unchanged:
re-digitising the same line gives centimetre differences."""


def _by_code(frame: gpd.GeoDataFrame) -> dict[str, int]:
    return {code: i for i, code in enumerate(frame["code"].tolist())}


def _grid_of(grids: gpd.GeoDataFrame, points: np.ndarray) -> np.ndarray:
    """The code of the grid each point lies in ('' outside every grid)."""
    tree = shapely.STRtree(np.asarray(grids.geometry.values))
    found = np.full(len(points), "", dtype=object)
    hits = tree.query(points, predicate="within")
    codes = grids["code"].to_numpy()
    found[hits[0][::-1]] = codes[hits[1][::-1]]  # reversed: the first grid listed wins a tie
    return found


def _grid_entry(grids: gpd.GeoDataFrame, i: int, area: float) -> dict[str, Any]:
    row = grids.iloc[i]
    return {"code": row["code"], "name": row["name"], "community_code": row["community_code"],
            "area_m2": round(float(area), 1)}


def _grid_changes(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> tuple[list, list, list]:
    ia, ib = _by_code(a), _by_code(b)
    area_a, area_b = area_m2(np.asarray(a.geometry.values)), area_m2(np.asarray(b.geometry.values))
    added = [_grid_entry(b, ib[c], area_b[ib[c]]) for c in ib if c not in ia]
    removed = [_grid_entry(a, ia[c], area_a[ia[c]]) for c in ia if c not in ib]
    common = [c for c in ia if c in ib]
    ga = np.asarray(a.geometry.values)[[ia[c] for c in common]]
    gb = np.asarray(b.geometry.values)[[ib[c] for c in common]]
    moved = area_m2(shapely.symmetric_difference(ga, gb)) if common else np.zeros(0)
    reshaped = []
    for k, code in enumerate(common):
        if moved[k] >= RESHAPE_TOLERANCE_M2:
            before, after = float(area_a[ia[code]]), float(area_b[ib[code]])
            reshaped.append({**_grid_entry(b, ib[code], after), "area_before_m2": round(before, 1),
                             "area_change_m2": round(after - before, 1), "outline_moved_m2": round(float(moved[k]), 1)})
    return added, removed, reshaped


def _buildings_moved(buildings: gpd.GeoDataFrame, a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    if not len(buildings):
        return []
    anchors = shapely.point_on_surface(np.asarray(buildings.geometry.values))
    before, after = _grid_of(a, anchors), _grid_of(b, anchors)
    out = []
    for i in np.flatnonzero(before != after):
        row = buildings.iloc[i]
        out.append({"code": row["code"], "name": row["name"], "from_grid": before[i] or None,
                    "to_grid": after[i] or None, "households": int(row["households"]),
                    "population": int(row["population"])})
    return out


def _workers_affected(a: Frame, b: Frame, changed_grids: set[str]) -> list[dict[str, Any]]:
    """Workers added, removed or moved to another grid, and those of a grid that was added, removed or
    reshaped; each with why. Names and roles only: phones are not part of a diff."""
    before = {r["code"]: r for r in a.to_dict("records")}
    after = {r["code"]: r for r in b.to_dict("records")}
    out = []
    for code in sorted(before.keys() | after.keys()):
        old, new = before.get(code), after.get(code)
        row = new or old
        old_grid, new_grid = (old or {}).get("grid_code") or None, (new or {}).get("grid_code") or None
        if old is None:
            why = "added"
        elif new is None:
            why = "removed"
        elif old_grid != new_grid:
            why = "moved"
        elif new_grid in changed_grids:
            why = "grid_changed"
        else:
            continue
        out.append({"code": code, "name": row["name"], "role": row["role"], "from_grid": old_grid,
                    "to_grid": new_grid, "why": why})
    return out


def diff_layers(a: Mapping[str, Frame], b: Mapping[str, Frame], buildings: gpd.GeoDataFrame) -> dict[str, Any]:
    """The changes from version ``a`` to version ``b`` (each: its grids and workers)."""
    added, removed, reshaped = _grid_changes(a["grids"], b["grids"])
    moved = _buildings_moved(buildings, a["grids"], b["grids"])
    changed = {g["code"] for g in added + removed + reshaped}
    return {
        "grids": {"added": added, "removed": removed, "reshaped": reshaped},
        "buildings_moved": moved,
        "households_moved": sum(m["households"] for m in moved),
        "population_moved": sum(m["population"] for m in moved),
        "workers_affected": _workers_affected(a["workers"], b["workers"], changed),
        "counts": {"grids_added": len(added), "grids_removed": len(removed), "grids_reshaped": len(reshaped),
                   "buildings_moved": len(moved)},
    }


def diff_geojson(a: Mapping[str, Frame], b: Mapping[str, Frame], answer: dict[str, Any],
                 buildings: gpd.GeoDataFrame) -> dict[str, Any]:
    """The diff's geometries: added grids, removed grids, reshaped grids before and after, and the moved
    buildings' anchors, each feature with its ``change``."""
    features: list[dict[str, Any]] = []
    ia, ib = _by_code(a["grids"]), _by_code(b["grids"])

    def add(geom: Any, change: str, props: dict[str, Any]) -> None:
        features.append({"type": "Feature", "geometry": shapely.geometry.mapping(geom),
                         "properties": {"change": change, **props}})

    for g in answer["grids"]["added"]:
        add(b["grids"].geometry.iloc[ib[g["code"]]], "added", g)
    for g in answer["grids"]["removed"]:
        add(a["grids"].geometry.iloc[ia[g["code"]]], "removed", g)
    for g in answer["grids"]["reshaped"]:
        add(a["grids"].geometry.iloc[ia[g["code"]]], "reshaped_before", g)
        add(b["grids"].geometry.iloc[ib[g["code"]]], "reshaped_after", g)
    if answer["buildings_moved"]:
        where = _by_code(buildings)
        for m in answer["buildings_moved"]:
            add(shapely.point_on_surface(buildings.geometry.iloc[where[m["code"]]]), "building_moved", m)
    return {"type": "FeatureCollection", "features": features}
