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

Locality (issue #10): every edge is at least as long as the straight line between its ends, so a
walk of length ≤ L stays within L of where it started. Two consequences keep city-sized problems
exact and cheap:

- a graph of only the roads near a scope (``Neighbourhood``, ``RoadNetwork.segments_near``) gives
  the same distances as the whole network for every pair up to the margin, provided each point is
  still snapped to its nearest road of the *whole* network (``WalkGraph`` does so);
- distances up to L from a few nearby sources need only the nodes within L of them: ``from_points``
  groups sources into tiles and runs Dijkstra on each tile's neighbourhood, so the work grows with
  the number of sources, not with sources × the graph's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import shapely
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

EPS = 1e-6
"""Metres added to every edge: csgraph treats zero weights as missing edges."""
TILE_SLACK_M = 0.01
"""Added to a tile's reach so that rounding in node coordinates never leaves out a node at the limit."""
TILE_PER_LIMIT = 2.0
"""Side of the tiles sources are grouped in, in limits: each source's Dijkstra then sees a square of
4 limits' side. Smaller tiles see less per source but pay more per tile (measured on the 10-town city:
1× to 3× the limit within 20 % of each other, 2× the best or close to it at 300, 500 and 835 m)."""
MIN_TILE_M = 500.0
"""Smallest tile side: below it the per-tile overhead (a subgraph, a Dijkstra call) dominates."""
DIJKSTRA_BLOCK = 256
"""Sources per Dijkstra call: its answer is a dense block of sources × nodes, so this bounds memory."""
_RING = np.array([(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)], dtype=np.int64)


@dataclass(frozen=True)
class Snap:
    segment: NDArray[np.int64]
    """Index of the nearest road segment of each point."""
    along: NDArray[np.float64]
    """Distance from the segment's first vertex to the foot of the point."""
    access: NDArray[np.float64]
    """Straight distance from the point to its foot on the road."""

    def then(self, other: Snap) -> Snap:
        """These points followed by ``other``'s (snaps of a scope's buildings are kept and reused)."""
        return Snap(np.r_[self.segment, other.segment], np.r_[self.along, other.along], np.r_[self.access, other.access])


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

    def segments_near(self, area: Neighbourhood) -> NDArray[np.int64]:
        """Segments touching the neighbourhood's cells: every segment within its margin of its points."""
        _, seg = self._tree.query(area.boxes(), predicate="intersects")
        return np.unique(seg)


class Neighbourhood:
    """Everything within ``margin`` metres of some points, over-approximated by square cells.

    Cells have the side ``margin``; the neighbourhood is the cells holding a point and their eight
    neighbours. A place within ``margin`` of a point lies in a cell next to that point's cell, so
    nothing within the margin is missed (a little more is included, which only costs a few roads).
    """

    def __init__(self, xy: NDArray, margin: float) -> None:
        self.margin = float(margin)
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        cells = np.unique(np.floor(xy / self.margin).astype(np.int64), axis=0)
        self.cells = np.unique((cells[:, None, :] + _RING[None]).reshape(-1, 2), axis=0)
        self._keys = _cell_keys(self.cells)

    def contains(self, xy: NDArray) -> NDArray[np.bool_]:
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        return np.isin(_cell_keys(np.floor(xy / self.margin).astype(np.int64)), self._keys)

    def boxes(self) -> NDArray:
        lo = self.cells * self.margin
        return shapely.box(lo[:, 0], lo[:, 1], lo[:, 0] + self.margin, lo[:, 1] + self.margin)


def _cell_keys(cells: NDArray[np.int64]) -> NDArray[np.int64]:
    return cells[:, 0] * (1 << 32) + cells[:, 1]


class WalkGraph:
    """The road network (or the part of it near a scope) with a set of points attached as leaves."""

    def __init__(self, network: RoadNetwork, xy: NDArray, *, segments: NDArray | None = None,
                 snap: Snap | None = None) -> None:
        """``segments``: the network's segments to keep (None: all). Each point is snapped to its nearest
        segment of the whole network, and that segment is always kept, so a point attaches exactly
        where it would on the whole network. ``snap``: ``network.snap(xy)`` when already known."""
        self.network = network
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        self.n_points = len(xy)
        snap = snap if snap is not None else network.snap(xy)
        self.snap = snap
        keep = np.ones(len(network.seg_len), dtype=bool)
        if segments is not None:
            keep[:] = False
            keep[np.asarray(segments, dtype=np.int64)] = True
            keep[snap.segment] = True
        self.n_segments = int(keep.sum())
        # road nodes of the kept segments, numbered 0 … n0-1
        used = np.unique(np.r_[network.seg_a[keep], network.seg_b[keep]])
        node_of = np.full(network.n_nodes, -1, dtype=np.int64)
        node_of[used] = np.arange(len(used))
        seg_a, seg_b = node_of[network.seg_a], node_of[network.seg_b]
        n0 = len(used)
        n = self.n_points
        foot = n0 + np.arange(n)  # the split node of each point on its segment
        self.leaf = n0 + n + np.arange(n)  # the point itself
        rows: list[NDArray] = []
        cols: list[NDArray] = []
        weights: list[NDArray] = []
        # kept segments without points stay whole
        has_point = np.zeros(len(network.seg_len), dtype=bool)
        has_point[snap.segment] = True
        whole = keep & ~has_point
        rows.append(seg_a[whole])
        cols.append(seg_b[whole])
        weights.append(network.seg_len[whole])
        # segments with points become chains a - foot - foot - ... - b, feet ordered along
        order = np.lexsort((np.arange(n), snap.along, snap.segment))
        seg = snap.segment[order]
        along = snap.along[order]
        feet = foot[order]
        start = np.r_[True, seg[1:] != seg[:-1]]
        end = np.r_[seg[1:] != seg[:-1], True]
        # first foot to the segment's start, last foot to its end
        rows.append(seg_a[seg[start]])
        cols.append(feet[start])
        weights.append(along[start])
        rows.append(feet[end])
        cols.append(seg_b[seg[end]])
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
        # where each node lies (metres): road nodes, feet on their segments, the points themselves
        a, b = network.seg_xy_a[snap.segment], network.seg_xy_b[snap.segment]
        t = np.divide(snap.along, network.seg_len[snap.segment], out=np.zeros(n), where=network.seg_len[snap.segment] > 0)
        self.node_xy = np.vstack([network.node_xy[used], a + (b - a) * t[:, None], xy])
        self._tree: cKDTree | None = None

    @property
    def n_nodes(self) -> int:
        return self.graph.shape[0]

    def _node_tree(self) -> cKDTree:
        if self._tree is None:
            self._tree = cKDTree(self.node_xy)
        return self._tree

    def from_points(self, sources: NDArray, targets: NDArray | None = None, *, limit: float = np.inf,
                    tile: float | None = None) -> sp.csr_matrix:
        """Distances from each source point to each target point (rows: targets), up to ``limit``.

        Sparse: only pairs within ``limit`` are stored (a zero distance is stored as ``EPS``). With a
        finite limit the sources are grouped into square tiles (side ``tile``, default two limits) and
        each tile's Dijkstra runs on the nodes within ``limit`` of the tile only: exact, because no
        walk of length ≤ limit leaves that square, and linear in the number of sources.
        """
        sources = np.asarray(sources, dtype=np.int64)
        targets = np.arange(self.n_points) if targets is None else np.asarray(targets, dtype=np.int64)
        if not math.isfinite(limit):
            return self.from_points_dense(sources, targets, limit=limit)
        target_col = np.full(self.n_nodes, -1, dtype=np.int64)
        target_col[self.leaf[targets]] = np.arange(len(targets))
        src_xy = self.node_xy[self.leaf[sources]]
        side = float(tile) if tile else max(TILE_PER_LIMIT * limit, MIN_TILE_M)
        cell = np.floor(src_xy / side).astype(np.int64)
        order = np.lexsort((cell[:, 1], cell[:, 0]))
        breaks = np.flatnonzero(np.any(np.diff(cell[order], axis=0) != 0, axis=1)) + 1
        local = np.full(self.n_nodes, -1, dtype=np.int64)
        data, rows, cols = [], [], []
        for group in np.split(order, breaks) if len(order) else []:
            d, t, s = self._tile(sources[group], src_xy[group], target_col, local, limit)
            data.append(d)
            rows.append(t)
            cols.append(group[s])
        return _sparse(data, rows, cols, (len(targets), len(sources)))

    def _tile(self, sources: NDArray, xy: NDArray, target_col: NDArray, local: NDArray,
              limit: float) -> tuple[NDArray, NDArray, NDArray]:
        """Dijkstra from a few neighbouring sources on the nodes within ``limit`` of them."""
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        reach = float(np.max(hi - lo)) / 2 + limit + TILE_SLACK_M
        nodes = np.asarray(self._node_tree().query_ball_point((lo + hi) / 2, reach, p=np.inf), dtype=np.int64)
        local[nodes] = np.arange(len(nodes))
        try:
            sub = _induced(self.graph, nodes, local)
            starts = local[self.leaf[sources]]
        finally:
            local[nodes] = -1
        is_target = target_col[nodes] >= 0
        columns = target_col[nodes[is_target]]
        data, rows, cols = [], [], []
        for first in range(0, len(starts), DIJKSTRA_BLOCK):  # bounded memory: block × the tile's nodes
            dist = dijkstra(sub, directed=True, indices=starts[first : first + DIJKSTRA_BLOCK], limit=limit)
            dist = dist[:, is_target]
            src, tgt = np.nonzero(dist <= limit)
            data.append(np.maximum(dist[src, tgt], EPS))
            rows.append(columns[tgt])
            cols.append(src + first)
        return np.concatenate(data), np.concatenate(rows), np.concatenate(cols)

    def from_points_dense(self, sources: NDArray, targets: NDArray | None = None, *, limit: float = np.inf,
                          block: int = DIJKSTRA_BLOCK) -> sp.csr_matrix:
        """The same answer as ``from_points`` by blocks of sources over the whole graph.

        What siting did before issue #10: each block costs sources × every node of the graph, so a
        city's candidates × a city's nodes. Kept as the reference the tiled version is tested and
        benchmarked against, and for an unbounded limit.
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
        return _sparse(data, rows, cols, (len(targets), len(sources)))

    def nearest(self, sources: NDArray, targets: NDArray | None = None) -> tuple[NDArray, NDArray]:
        """For each target point: the distance to the nearest source point and which one (-1: none)."""
        sources = np.asarray(sources, dtype=np.int64)
        targets = np.arange(self.n_points) if targets is None else np.asarray(targets, dtype=np.int64)
        if not len(sources):
            return np.full(len(targets), np.inf), np.full(len(targets), -1)
        dist, _, origin = dijkstra(
            self.graph, directed=True, indices=self.leaf[sources], min_only=True, return_predecessors=True
        )
        nodes = self.leaf[targets]
        found = origin[nodes]
        source_of_leaf = np.full(self.graph.shape[0], -1)
        source_of_leaf[self.leaf[sources]] = np.arange(len(sources))
        which = np.where(found >= 0, source_of_leaf[np.maximum(found, 0)], -1)
        return dist[nodes], which


def _induced(graph: sp.csr_matrix, nodes: NDArray[np.int64], local: NDArray[np.int64]) -> sp.csr_matrix:
    """The subgraph on ``nodes`` (``local[node]``: its new number, -1 for nodes left out)."""
    starts, ends = graph.indptr[nodes], graph.indptr[nodes + 1]
    counts = ends - starts
    total = int(counts.sum())
    offsets = np.cumsum(counts) - counts
    pos = np.repeat(starts - offsets, counts) + np.arange(total)
    row = np.repeat(np.arange(len(nodes)), counts)
    col = local[graph.indices[pos]]
    inside = col >= 0
    return sp.csr_matrix((graph.data[pos][inside], (row[inside], col[inside])), shape=(len(nodes), len(nodes)))


def _sparse(data: list[NDArray], rows: list[NDArray], cols: list[NDArray], shape: tuple[int, int]) -> sp.csr_matrix:
    if not data:
        return sp.csr_matrix(shape)
    return sp.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=shape)
