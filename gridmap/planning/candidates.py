"""Candidate sites for new stations: a ``candidates`` layer of the package, or points on the streets.

Generated candidates are street corners (road nodes where three or more segments meet) and points
spaced about ``spacing`` metres along every road between them. A point within ``clearance`` metres
of a building footprint, or outside every grid, is left out: a station goes on a street frontage
of the governed area, not inside somebody's house.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from gridmap.planning.network import RoadNetwork


@dataclass(frozen=True)
class Candidates:
    xy: NDArray[np.float64]
    """Metric coordinates (n × 2)."""
    code: NDArray[np.object_]
    """Layer code, or None for a generated site."""
    name: NDArray[np.object_]
    source: str
    """``layer`` or ``generated``."""
    key: tuple = ()
    """What the planner cached this set under (walking graphs and reach matrices are keyed by it);
    empty for a set built elsewhere, which is then never cached."""

    def __len__(self) -> int:
        return len(self.xy)


def from_layer(xy: NDArray, codes, names) -> Candidates:
    return Candidates(np.asarray(xy, dtype=float).reshape(-1, 2), np.asarray(codes, dtype=object),
                      np.asarray(names, dtype=object), "layer")


def generate(
    network: RoadNetwork,
    road_names: NDArray[np.object_],
    *,
    spacing: float,
    buildings: NDArray,
    inside_grid,
    clearance: float = 5.0,
    within: tuple[float, float, float, float] | None = None,
) -> Candidates:
    """Street corners and points along the roads; ``road_names[i]`` names ``network.lines[i]``.

    ``buildings``: metric footprints (those near ``within`` are enough); ``inside_grid(xy) -> bool
    array``. ``within``: a metric box; only the sites inside it are made — the same sites, in the same
    order, as those of the whole network that lie in it, for a fraction of the work.
    """
    # street corners
    degree = network.degree()
    corners = np.flatnonzero(degree >= 3)
    pieces = np.arange(len(network.lines))
    if within is not None:
        x, y = network.node_xy[corners, 0], network.node_xy[corners, 1]
        corners = corners[(x >= within[0]) & (x <= within[2]) & (y >= within[1]) & (y <= within[3])]
        pieces = np.flatnonzero(shapely.intersects(network.lines, shapely.box(*within)))
    corner_roads: dict[int, list[str]] = {}
    for a, b, line in zip(network.seg_a, network.seg_b, network.line_of_segment):
        for node in (a, b):
            if degree[node] >= 3:
                names = corner_roads.setdefault(node, [])
                if road_names[line] not in names:
                    names.append(road_names[line])
    xy = [network.node_xy[corners]]
    names = [[_corner_name(corner_roads.get(n, [])) for n in corners]]
    # points along each noded piece, between its ends
    lengths = shapely.length(network.lines[pieces])
    count = np.maximum(np.round(lengths / spacing).astype(int) - 1, 0)
    piece = np.repeat(pieces, count)
    if len(piece):
        rank = np.arange(len(piece)) - np.repeat(np.cumsum(count) - count, count) + 1
        fraction = rank / np.repeat(count + 1, count)
        points = shapely.line_interpolate_point(network.lines[piece], fraction, normalized=True)
        xy.append(shapely.get_coordinates(points))
        names.append([f"{road_names[p]}沿线" for p in piece])
    xy_all = np.vstack(xy) if xy else np.empty((0, 2))
    name_all = np.asarray([n for part in names for n in part], dtype=object)
    # not in (or right against) a building, inside the governed grids
    keep = np.ones(len(xy_all), dtype=bool)
    if within is not None:
        x, y = xy_all[:, 0], xy_all[:, 1]
        keep &= (x >= within[0]) & (x <= within[2]) & (y >= within[1]) & (y <= within[3])
    if len(buildings) and len(xy_all):
        tree = shapely.STRtree(buildings)
        near, _ = tree.query(shapely.points(xy_all), predicate="dwithin", distance=clearance)
        keep[np.unique(near)] = False
    if len(xy_all):
        keep &= inside_grid(xy_all)
    xy_all, name_all = xy_all[keep], name_all[keep]
    return Candidates(xy_all, np.full(len(xy_all), None, dtype=object), name_all, "generated")


def _corner_name(roads: list[str]) -> str:
    named = [r for r in roads if r]
    if len(named) >= 2:
        return f"{named[0]}与{named[1]}交叉口"
    return f"{named[0]}路口" if named else "路口"
