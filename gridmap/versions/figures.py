"""How a reshaped grid's incident figures compare across the versions it was drawn in.

Statistics by grid count each incident in the grid it was routed to, as the grid was then (incidents keep
their grid code and version). When a grid was redrawn within the period, its count mixes two outlines:
this gives, per version, the incidents routed under it, the grid's area then, and incidents per km², so a
grid that doubled in size is not read as one whose problems doubled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import shapely

from gridmap.store.base import Store
from gridmap.validation import area_m2
from gridmap.versions import snapshot
from gridmap.versions.diff import RESHAPE_TOLERANCE_M2
from gridmap.versions.records import kept_versions

M2_PER_KM2: Final = 1_000_000


def _outlines(store: Store, version_ids: set[int]) -> dict[int, dict[str, Any]]:
    out = {}
    for number in version_ids:
        blob = store.boundary_version_blob(number)
        if blob is not None:
            grids = snapshot.decode(blob)["grids"]
            out[number] = dict(zip(grids["code"], grids.geometry.values, strict=True))
    return out


def _reshaped(geoms: list[Any]) -> bool:
    first = geoms[0]
    moved = area_m2(shapely.symmetric_difference(np.array([first] * (len(geoms) - 1)), np.array(geoms[1:])))
    return bool((moved >= RESHAPE_TOLERANCE_M2).any())


def reshaped_grid_figures(store: Store, counts: Mapping[tuple[str, int], int]) -> list[dict[str, Any]]:
    """Grids whose incidents were routed under two or more versions that drew them differently."""
    by_grid: dict[str, dict[int, int]] = defaultdict(dict)
    for (grid, version), n in counts.items():
        by_grid[grid][version] = n
    mixed = {grid: found for grid, found in by_grid.items() if len(found) > 1}
    if not mixed:
        return []
    dates = {v.id: v.effective_from.isoformat() for v in kept_versions(store)}
    outlines = _outlines(store, {v for found in mixed.values() for v in found})
    figures = []
    for grid, found in sorted(mixed.items()):
        numbers = sorted(v for v in found if grid in outlines.get(v, {}))
        geoms = [outlines[v][grid] for v in numbers]
        if len(geoms) < 2 or not _reshaped(geoms):
            continue
        areas = area_m2(np.array(geoms)) / M2_PER_KM2
        figures.append({"grid_code": grid, "versions": [
            {"version": v, "effective_from": dates.get(v), "incidents": found[v], "area_km2": round(float(a), 4),
             "per_km2": round(found[v] / float(a), 4) if a > 0 else None}
            for v, a in zip(numbers, areas, strict=True)]})
    return figures
