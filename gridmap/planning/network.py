"""The walking network: roads noded at every crossing, points snapped to the nearest road.

Everything here is in a projected CRS (metres). The roads are split into straight segments
between vertices; each point to be routed (a building, a station, a candidate site) is
projected onto its nearest segment, the segment is split there, and the point becomes a leaf
hanging off the split node by its access leg (the straight walk from the door to the road).
A leaf has one edge, so no shortest path runs through one, and the distance between two points
is simply the shortest path between their leaves:

    access(a) + along the roads from a's foot to b's foot + access(b)

(two points whose feet lie on the same segment walk straight along it). Shortest paths are
scipy's Dijkstra on a CSR matrix, from many sources at once and cut off at a distance limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import shapely
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

EPS = 1e-6
"""Metres added to every edge: csgraph treats zero weights as missing edges."""


@dataclass(frozen=True)
class Snap:
    segment: NDArray[np.int64]
    """Index of the nearest road segment of each point."""
    along: NDArray[np.float64]
    """Distance from the segment's first vertex to the foot of the point."""
    access: NDArray[np.float64]
    """Straight distance from the point to its foot on the road."""


class RoadNetwork:
    """Roads (metric LineStrings) noded into straight segments."""

    def __init__(self, lines: NDArray) -> None:
        lines = np.asarray([g for g in lines if g is not None and not g.is_empty], dtype=object)
        if not len(lines):
            raise ValueError("no roads")
        noded = shapely.get_parts(shapely.union_all(lines))
        coords, owner = shapely.get_coordinates(noded, return_index=True)
        same = owner[1:] == owner[:-1]
        a = coords[:-1][same]
        b = coords[1:][same]
        keep = np.hypot(*(b - a).T) > 0
        a, b = a[keep], b[keep]
        self.line_of_segment = owner[:-1][same][keep]
        """Index into ``self.lines`` (the noded pieces) of each segment."""
        self.lines = noded
        key = np.round(np.vstack([a, b]), 2)
        nodes, inverse = np.unique(key, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        self.node_xy = nodes
        self.seg_a = inverse[: len(a)]
        self.seg_b = inverse[len(a):]
        self.seg_xy_a = a
        self.seg_xy_b = b
        self.seg_len = np.hypot(*(b - a).T)
        self.segments = shapely.linestrings(np.stack([a, b], axis=1))
        self._tree = shapely.STRtree(self.segments)

    @property
    def n_nodes(self) -> int:
        return len(self.node_xy)

    def degree(self) -> NDArray[np.int64]:
        return np.bincount(np.concatenate([self.seg_a, self.seg_b]), minlength=self.n_nodes)

    def snap(self, xy: NDArray) -> Snap:
        """The nearest segment of each point, where its foot lies along it, and how far it is."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if not len(xy):
            empty = np.empty(0)
            return Snap(np.empty(0, dtype=np.int64), empty, empty)
        points = shapely.points(xy)
        (which, seg), dist = self._tree.query_nearest(points, return_distance=True, all_matches=True)
        # ties (a point equally near two segments): the lowest segment index, deterministically
        order = np.lexsort((seg, which))
        which, seg, dist = which[order], seg[order], dist[order]
        first = np.r_[True, which[1:] != which[:-1]]
        seg, dist = seg[first], dist[first]
        along = shapely.line_locate_point(self.segments[seg], points)
        return Snap(seg.astype(np.int64), np.clip(along, 0.0, self.seg_len[seg]), dist)


class WalkGraph:
    """The road network with a set of points attached as leaves; distances between the points."""

    def __init__(self, network: RoadNetwork, xy: NDArray) -> None:
        self.network = network
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        self.n_points = len(xy)
        snap = network.snap(xy)
        self.snap = snap
        n0 = network.n_nodes
        n = self.n_points
        foot = n0 + np.arange(n)  # the split node of each point on its segment
        self.leaf = n0 + n + np.arange(n)  # the point itself
        rows: list[NDArray] = []
        cols: list[NDArray] = []
        weights: list[NDArray] = []
        # segments without points stay whole
        has_point = np.zeros(len(network.seg_len), dtype=bool)
        has_point[snap.segment] = True
        rows.append(network.seg_a[~has_point])
        cols.append(network.seg_b[~has_point])
        weights.append(network.seg_len[~has_point])
        # segments with points become chains a - foot - foot - ... - b, feet ordered along
        order = np.lexsort((np.arange(n), snap.along, snap.segment))
        seg = snap.segment[order]
        along = snap.along[order]
        feet = foot[order]
        start = np.r_[True, seg[1:] != seg[:-1]]
        end = np.r_[seg[1:] != seg[:-1], True]
        # first foot to the segment's start, last foot to its end
        rows.append(network.seg_a[seg[start]])
        cols.append(feet[start])
        weights.append(along[start])
        rows.append(feet[end])
        cols.append(network.seg_b[seg[end]])
        weights.append(network.seg_len[seg[end]] - along[end])
        # consecutive feet on the same segment
        inner = ~end[:-1]
        rows.append(feet[:-1][inner])
        cols.append(feet[1:][inner])
        weights.append(along[1:][inner] - along[:-1][inner])
        # each leaf hangs off its foot by the access leg
        rows.append(foot)
        cols.append(self.leaf)
        weights.append(snap.access)
        r = np.concatenate(rows)
        c = np.concatenate(cols)
        w = np.concatenate(weights) + EPS
        size = n0 + 2 * n
        graph = sp.coo_matrix((np.r_[w, w], (np.r_[r, c], np.r_[c, r])), shape=(size, size)).tocsr()
        graph.sum_duplicates()
        self.graph = graph

    def from_points(self, sources: NDArray, targets: NDArray | None = None, *, limit: float = np.inf,
                    block: int = 256) -> sp.csr_matrix:
        """Distances from each source point to each target point (rows: targets), up to ``limit``.

        Sparse: only pairs within ``limit`` are stored (a zero distance is stored as ``EPS``).
        """
        sources = np.asarray(sources, dtype=np.int64)
        targets = np.arange(self.n_points) if targets is None else np.asarray(targets, dtype=np.int64)
        target_nodes = self.leaf[targets]
        data, rows, cols = [], [], []
        for lo in range(0, len(sources), block):
            chunk = sources[lo : lo + block]
            dist = dijkstra(self.graph, directed=False, indices=self.leaf[chunk], limit=limit)
            dist = dist[:, target_nodes]
            src, tgt = np.nonzero(np.isfinite(dist) & (dist <= limit))
            data.append(np.maximum(dist[src, tgt], EPS))
            rows.append(tgt)
            cols.append(src + lo)
        if not data:
            return sp.csr_matrix((len(targets), len(sources)))
        return sp.csr_matrix(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(targets), len(sources)),
        )

    def nearest(self, sources: NDArray, targets: NDArray | None = None) -> tuple[NDArray, NDArray]:
        """For each target point: the distance to the nearest source point and which one (-1: none)."""
        sources = np.asarray(sources, dtype=np.int64)
        targets = np.arange(self.n_points) if targets is None else np.asarray(targets, dtype=np.int64)
        if not len(sources):
            return np.full(len(targets), np.inf), np.full(len(targets), -1)
        dist, _, origin = dijkstra(
            self.graph, directed=False, indices=self.leaf[sources], min_only=True, return_predecessors=True
        )
        nodes = self.leaf[targets]
        found = origin[nodes]
        source_of_leaf = np.full(self.graph.shape[0], -1)
        source_of_leaf[self.leaf[sources]] = np.arange(len(sources))
        which = np.where(found >= 0, source_of_leaf[np.maximum(found, 0)], -1)
        return dist[nodes], which
