"""``--fix``: snap grid vertices within a tolerance to their community's boundary and to neighbouring grids.

Two grids digitised separately rarely share an edge exactly: one overshoots by decimetres and the report
shows a thin overlap, or falls short and leaves a thin gap. Snapping moves a vertex onto the nearest
vertex of its neighbour (and puts a neighbour's vertex onto an edge passing by) when it is within
``tolerance_m`` and never farther, so a real disagreement (a grid drawn over its neighbour by ten metres) is
left for a person to decide.

Snapping is done in lon/lat, where the data's shared edges are straight (in a projected CRS a long edge
sags by centimetres and vertices would be pulled onto chords that are not there); the tolerance in degrees is
``tolerance_m`` over the longest metre-length of a degree, so no vertex moves farther than ``tolerance_m``.
Grids are snapped one after another in code order, each to its community's outline and to the grids already
snapped: of two neighbours the first keeps its edge and the second takes it. Untouched vertices keep their
exact coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from gridmap.validation import usable

DEFAULT_TOLERANCE_M: Final = 0.5
"""Half a metre: more than survey and digitising noise, less than the width of a lane."""

METRES_PER_DEGREE_MAX: Final = 111_695.0
"""A degree of latitude at the poles, the longest a degree of either axis gets on WGS84."""

_GEOD: Final = pyproj.Geod(ellps="WGS84")


@dataclass(frozen=True)
class Change:
    """What snapping did to one grid."""

    code: str
    vertices_moved: int
    max_move_m: float
    vertices_before: int
    vertices_after: int

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "vertices_moved": self.vertices_moved, "max_move_m": round(self.max_move_m, 3),
                "vertices_before": self.vertices_before, "vertices_after": self.vertices_after}


@dataclass
class FixResult:
    tolerance_m: float
    grids: gpd.GeoDataFrame
    """The grids layer with the snapped geometries (every other column unchanged)."""
    changes: list[Change] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    """Grids whose snapped shape would be invalid: left as they were, with the reason."""

    def layers(self, layers: Mapping[str, Any]) -> dict[str, Any]:
        return {**layers, "grids": self.grids}

    def to_dict(self) -> dict[str, Any]:
        return {"tolerance_m": self.tolerance_m, "changed": len(self.changes),
                "changes": [c.to_dict() for c in self.changes], "skipped": self.skipped}


def _moves(before: np.ndarray, after: np.ndarray) -> list[float]:
    """Metres from each vertex that is gone to the nearest vertex of the snapped outline (where it went)."""
    kept = {tuple(p) for p in after}
    out = []
    for x, y in before:
        if (x, y) in kept:
            continue
        _, _, d = _GEOD.inv(np.full(len(after), x), np.full(len(after), y), after[:, 0], after[:, 1])
        out.append(float(np.min(d)))
    return out


def snap_grids(layers: Mapping[str, Any], tolerance_m: float = DEFAULT_TOLERANCE_M) -> FixResult:
    """Snap the grids of ``layers`` and say what moved; ``layers`` is not changed."""
    grids = layers["grids"].copy()
    result = FixResult(tolerance_m, grids)
    regions = usable(layers["regions"], "regions")
    outline = dict(zip(regions.loc[regions["level"] == "community", "code"],
                       regions.loc[regions["level"] == "community"].geometry.values))
    good = usable(grids, "grids")
    if not len(good) or tolerance_m <= 0:
        return result
    degrees = tolerance_m / METRES_PER_DEGREE_MAX
    current = dict(zip(good["code"], good.geometry.values))
    rows = dict(zip(good["code"], good.index))
    done: list[str] = []
    for code in sorted(current):
        source = current[code]
        reach = shapely.buffer(shapely.envelope(source), degrees * 2)
        references = [shapely.boundary(current[c]) for c in done if shapely.intersects(reach, current[c])]
        parent = outline.get(good.at[rows[code], "community_code"])
        if parent is not None:
            references.append(shapely.boundary(parent))
        done.append(code)
        if not references:
            continue
        snapped = shapely.snap(source, shapely.union_all(references), degrees)
        before, after = shapely.get_coordinates(source), shapely.get_coordinates(snapped)
        if len(before) == len(after) and np.array_equal(before, after):
            continue
        if not snapped.is_valid:
            result.skipped.append({"code": code, "reason": shapely.is_valid_reason(snapped)})
            continue
        moves = _moves(before, after)
        if not moves and shapely.equals(snapped, source):
            continue  # a neighbour's vertex put on an edge it already lay on: nothing moved, the shape is the same
        current[code] = snapped
        grids.at[rows[code], grids.geometry.name] = snapped
        result.changes.append(Change(code, len(moves), max(moves, default=0.0), len(before), len(after)))
    return result
