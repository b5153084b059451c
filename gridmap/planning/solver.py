"""Facility location models solved exactly with HiGHS: maximal covering, set covering, p-median.

Pure numerics: inputs are sparse matrices over demand points (rows) and candidate sites
(columns), outputs are the chosen columns. Existing stations enter as what each demand point
already has: ``covered`` (within reach of an existing station) for the covering models, ``d0``
(distance to the nearest existing station) for the p-median.

The models are reduced before they are built, without changing the optimum:

- demand already covered, of zero weight, or out of every candidate's reach is dropped;
- demand points with the same set of covering candidates are merged (their weights add up);
- a candidate whose covered set is contained in another's is dropped (identical sets: the lower
  index stays) — swapping it for its dominator never loses coverage (covering models without
  capacity only).

The constraint matrices are built directly in CSC form and passed to HiGHS in one call, with a
greedy solution as the starting incumbent and a time limit; the answer reports the proven gap.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

INF = highspy.kHighsInf


@dataclass
class Solution:
    chosen: NDArray[np.int64]
    """Indices of the chosen candidates (columns of the input), ascending."""
    objective: float
    """Max covering: newly covered demand. Set covering: number of sites. P-median: total weighted
    distance (existing stations included)."""
    bound: float
    gap: float
    optimal: bool
    status: str
    seconds: float
    stats: dict[str, Any] = field(default_factory=dict)
    served: NDArray | None = None
    """With a capacity: the demand weight each chosen site serves (same order as ``chosen``)."""


# ---------------------------------------------------------------- reductions


def _merge_rows(a: sp.csr_matrix, w: NDArray) -> tuple[sp.csr_matrix, NDArray, NDArray]:
    """Rows with the same column set merged; returns (matrix, weights, group of each input row)."""
    a = a.tocsr()
    a.sort_indices()
    keys = {}
    group = np.empty(a.shape[0], dtype=np.int64)
    indptr, indices = a.indptr, a.indices
    for i in range(a.shape[0]):
        key = indices[indptr[i] : indptr[i + 1]].tobytes()
        group[i] = keys.setdefault(key, len(keys))
    n = len(keys)
    weights = np.bincount(group, weights=w, minlength=n)
    first = np.full(n, -1)
    first[group[::-1]] = np.arange(a.shape[0])[::-1]
    merged = a[first]
    merged.data[:] = 1
    return merged.astype(np.float64), weights, group


def _undominated(a: sp.csr_matrix) -> NDArray[np.int64]:
    """Columns whose row set is not contained in another column's (identical: lowest index kept)."""
    a = (a > 0).astype(np.float64).tocsc()
    size = np.asarray(a.sum(axis=0)).ravel()
    overlap = (a.T @ a).tocoo()
    j, other, common = overlap.row, overlap.col, overlap.data
    contained = (j != other) & (common >= size[j] - 0.5)
    strictly = size[other] > size[j] + 0.5
    beaten = contained & (strictly | (other < j))
    dominated = np.zeros(a.shape[1], dtype=bool)
    dominated[j[beaten]] = True
    dominated |= size == 0
    return np.flatnonzero(~dominated)


def _reduce_cover(a: sp.csr_matrix, w: NDArray, *, drop_dominated: bool) -> tuple[sp.csr_matrix, NDArray, NDArray]:
    """Merged demand and kept candidates: (matrix over kept columns, merged weights, kept columns)."""
    cols = np.arange(a.shape[1])
    a, w, _ = _merge_rows(a, w)
    if drop_dominated and a.shape[1]:
        cols = _undominated(a)
        a = a[:, cols]
        nonempty = np.diff(a.tocsr().indptr) > 0
        a, w, _ = _merge_rows(a[nonempty], w[nonempty])
    return a.tocsr(), w, cols


# ---------------------------------------------------------------- HiGHS


_BANNER_LOCK = threading.Lock()
_banner_shown = False


def _highs() -> highspy.Highs:
    """A silent HiGHS instance. The first one prints a banner straight to file descriptor 1 (past
    ``sys.stdout``), which would corrupt ``gridmap plan … --json``: it is sent to /dev/null."""
    global _banner_shown
    with _BANNER_LOCK:
        if not _banner_shown:
            _banner_shown = True
            sys.stdout.flush()
            saved = os.dup(1)
            try:
                with open(os.devnull, "w") as null:
                    os.dup2(null.fileno(), 1)
                    h = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
        else:
            h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


def _run(
    *,
    sense_max: bool,
    cost: NDArray,
    col_lo: NDArray,
    col_hi: NDArray,
    integer: NDArray,
    matrix: sp.csc_matrix,
    row_lo: NDArray,
    row_hi: NDArray,
    start: NDArray | None,
    time_limit: float,
    integral_objective: bool,
    rel_gap: float = 0.0,
) -> tuple[NDArray, float, float, str]:
    h = _highs()
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", float(rel_gap))
    if integral_objective:
        h.setOptionValue("mip_abs_gap", 1.0 - 1e-6)
    lp = highspy.HighsLp()
    lp.num_col_ = len(cost)
    lp.num_row_ = len(row_lo)
    lp.col_cost_ = np.asarray(cost, dtype=np.float64)
    lp.col_lower_ = np.asarray(col_lo, dtype=np.float64)
    lp.col_upper_ = np.asarray(col_hi, dtype=np.float64)
    lp.row_lower_ = np.asarray(row_lo, dtype=np.float64)
    lp.row_upper_ = np.asarray(row_hi, dtype=np.float64)
    lp.sense_ = highspy.ObjSense.kMaximize if sense_max else highspy.ObjSense.kMinimize
    matrix = sp.csc_matrix(matrix)
    matrix.sum_duplicates()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = matrix.data.astype(np.float64)
    lp.a_matrix_.num_col_ = len(cost)
    lp.a_matrix_.num_row_ = len(row_lo)
    lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in integer]
    h.passModel(lp)
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = np.asarray(start, dtype=np.float64)
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    if info.primal_solution_status < 2:  # no feasible solution
        return np.zeros(len(cost)), math.nan, math.nan, status
    x = np.asarray(h.getSolution().col_value)
    return x, float(info.objective_function_value), float(info.mip_dual_bound), status


def _gap(objective: float, bound: float, *, sense_max: bool, integral: bool, scale: float | None = None) -> float:
    if not math.isfinite(objective):
        return math.inf
    if not math.isfinite(bound):
        bound = objective
    if integral:
        bound = math.floor(bound + 1e-6) if sense_max else math.ceil(bound - 1e-6)
    diff = max(0.0, (bound - objective) if sense_max else (objective - bound))
    return diff / max(abs(scale if scale is not None else objective), 1e-9)


def _integral(w: NDArray) -> bool:
    return bool(np.all(np.abs(w - np.round(w)) < 1e-9))


# ---------------------------------------------------------------- greedy starts


def greedy_cover(a: sp.csr_matrix, w: NDArray, *, k: int | None = None, need: float | None = None) -> list[int]:
    """Add the candidate covering the most uncovered weight until k sites, or until ``need`` is met."""
    a = a.tocsr()
    at = a.T.tocsr()
    left = w.astype(float).copy()
    chosen: list[int] = []
    got = 0.0
    while True:
        if k is not None and len(chosen) >= k:
            break
        if need is not None and got >= need - 1e-9:
            break
        gain = at @ left
        gain[chosen] = -1
        j = int(np.argmax(gain)) if len(gain) else -1
        if j < 0 or gain[j] <= 0:
            break
        chosen.append(j)
        rows = at.indices[at.indptr[j] : at.indptr[j + 1]]
        got += left[rows].sum()
        left[rows] = 0
    return chosen


def greedy_median(dist: sp.csr_matrix, d0: NDArray, w: NDArray, k: int) -> list[int]:
    """Add the candidate that saves the most weighted distance, k times."""
    dist = dist.tocsc()
    current = d0.astype(float).copy()
    chosen: list[int] = []
    rows, cols = dist.nonzero()
    values = np.asarray(dist[rows, cols]).ravel()
    for _ in range(k):
        saving = np.bincount(cols, weights=w[rows] * np.maximum(0.0, current[rows] - values), minlength=dist.shape[1])
        saving[chosen] = -1
        j = int(np.argmax(saving)) if len(saving) else -1
        if j < 0 or saving[j] <= 0:
            break
        chosen.append(j)
        col = dist[:, j]
        r = col.indices
        current[r] = np.minimum(current[r], col.data)
    return chosen


# ---------------------------------------------------------------- models


def max_coverage(
    cover: sp.spmatrix,
    weights: NDArray,
    k: int,
    *,
    covered: NDArray | None = None,
    capacity: float | None = None,
    time_limit: float = 30.0,
    reduce: bool = True,
) -> Solution:
    """Choose k candidates maximising the weight of demand newly within reach.

    ``cover[i, j]`` nonzero: candidate j reaches demand point i. ``covered[i]``: already reached by
    an existing station. ``capacity``: weight one new site can serve (demand may be split).
    ``reduce=False`` skips merging demand and dropping dominated candidates (for comparison).
    """
    return _covering("max", cover, weights, k=k, covered=covered, capacity=capacity, time_limit=time_limit,
                     reduce=reduce)


def set_cover(
    cover: sp.spmatrix,
    weights: NDArray,
    need: float,
    *,
    covered: NDArray | None = None,
    capacity: float | None = None,
    time_limit: float = 30.0,
) -> Solution:
    """The fewest candidates that newly reach at least ``need`` weight of demand (``need`` ≤ 0: none)."""
    return _covering("set", cover, weights, need=need, covered=covered, capacity=capacity, time_limit=time_limit)


def _covering(
    kind: str,
    cover: sp.spmatrix,
    weights: NDArray,
    *,
    k: int = 0,
    need: float = 0.0,
    covered: NDArray | None,
    capacity: float | None,
    time_limit: float,
    reduce: bool = True,
) -> Solution:
    t0 = time.perf_counter()
    a = sp.csr_matrix(cover, dtype=np.float64)
    a.data[:] = 1
    a.eliminate_zeros()
    w = np.asarray(weights, dtype=float)
    n_demand, n_cand = a.shape
    open_ = (w > 0) & (np.diff(a.indptr) > 0)
    if covered is not None:
        open_ &= ~np.asarray(covered, dtype=bool)
    a, w = a[open_], w[open_]
    if reduce:
        a, w, cols = _reduce_cover(a, w, drop_dominated=capacity is None)
    else:
        cols = np.arange(n_cand)
    stats = {"demand": n_demand, "candidates": n_cand, "demand_reduced": a.shape[0], "candidates_reduced": len(cols)}
    integral = _integral(w) if kind == "max" else True
    reachable = float(w.sum())
    if kind == "set" and need <= 1e-9:
        return Solution(np.empty(0, dtype=np.int64), 0.0, 0.0, 0.0, True, "Optimal", time.perf_counter() - t0, stats)
    if kind == "set" and need > reachable + 1e-9:
        return Solution(np.empty(0, dtype=np.int64), math.nan, math.nan, math.inf, False, "Infeasible",
                        time.perf_counter() - t0, stats)
    if kind == "max" and (k <= 0 or a.shape[0] == 0 or len(cols) == 0):
        return Solution(np.empty(0, dtype=np.int64), 0.0, 0.0, 0.0, True, "Optimal", time.perf_counter() - t0, stats)
    ng, nc = a.shape
    sites = min(k, nc) if kind == "max" else None
    if kind == "max" and capacity is None and sites == nc:
        chosen = cols[np.arange(nc)]
        return Solution(np.sort(chosen), reachable, reachable, 0.0, True, "Optimal", time.perf_counter() - t0, stats)
    greedy = greedy_cover(a, w, k=sites) if kind == "max" else greedy_cover(a, w, need=need)

    if capacity is None:
        # columns: y (nc, binary), z (ng, [0, 1]); rows: z_g - sum_{j in N(g)} y_j <= 0, then the budget row
        link = sp.hstack([-a, sp.identity(ng, format="csr")], format="csr")
        if kind == "max":
            budget = sp.csr_matrix(np.r_[np.ones(nc), np.zeros(ng)])
            matrix = sp.vstack([link, budget], format="csc")
            row_lo = np.r_[np.full(ng, -INF), sites]
            row_hi = np.r_[np.zeros(ng), sites]
            cost = np.r_[np.zeros(nc), w]
        else:
            demand_row = sp.csr_matrix(np.r_[np.zeros(nc), w])
            matrix = sp.vstack([link, demand_row], format="csc")
            row_lo = np.r_[np.full(ng, -INF), need]
            row_hi = np.r_[np.zeros(ng), INF]
            cost = np.r_[np.ones(nc), np.zeros(ng)]
        y0 = np.zeros(nc)
        y0[greedy] = 1
        start = np.r_[y0, np.minimum(1.0, a @ y0)]
        n_assign = 0
    else:
        # columns: y (nc), x_p for each (g, j) pair p; rows: sum_j x_gj <= 1 (ng), capacity (nc),
        # x_p - y_j <= 0 (pairs), budget or demand row
        coo = a.tocoo()
        g_of, j_of = coo.row, coo.col
        npairs = len(g_of)
        p = np.arange(npairs)
        one_each = sp.csr_matrix((np.ones(npairs), (g_of, nc + p)), shape=(ng, nc + npairs))
        cap = sp.csr_matrix(
            (np.r_[-capacity * np.ones(nc), w[g_of]], (np.r_[np.arange(nc), j_of], np.r_[np.arange(nc), nc + p])),
            shape=(nc, nc + npairs),
        )
        open_link = sp.csr_matrix((np.r_[np.ones(npairs), -np.ones(npairs)], (np.r_[p, p], np.r_[nc + p, j_of])),
                                  shape=(npairs, nc + npairs))
        if kind == "max":
            last = sp.csr_matrix(np.r_[np.ones(nc), np.zeros(npairs)])
            row_lo_last, row_hi_last = sites, sites
            cost = np.r_[np.zeros(nc), w[g_of]]
        else:
            last = sp.csr_matrix(np.r_[np.zeros(nc), w[g_of]])
            row_lo_last, row_hi_last = need, INF
            cost = np.r_[np.ones(nc), np.zeros(npairs)]
        matrix = sp.vstack([one_each, cap, open_link, last], format="csc")
        row_lo = np.r_[np.full(ng, -INF), np.full(nc, -INF), np.full(npairs, -INF), row_lo_last]
        row_hi = np.r_[np.ones(ng), np.zeros(nc), np.zeros(npairs), row_hi_last]
        start = None  # a feasible split of capacitated demand is not worth computing here
        n_assign = npairs
    ncols = len(cost)
    integer = np.r_[np.ones(nc, dtype=bool), np.zeros(ncols - nc, dtype=bool)]
    x, obj, bound, status = _run(
        sense_max=kind == "max", cost=cost, col_lo=np.zeros(ncols), col_hi=np.ones(ncols), integer=integer,
        matrix=matrix, row_lo=row_lo, row_hi=row_hi, start=start, time_limit=time_limit,
        integral_objective=integral and capacity is None,
    )
    stats.update(variables=ncols, constraints=len(row_lo), assignments=n_assign, greedy=len(greedy))
    if not math.isfinite(obj):
        return Solution(np.empty(0, dtype=np.int64), math.nan, math.nan, math.inf, False, status,
                        time.perf_counter() - t0, stats)
    picked = np.flatnonzero(x[:nc] > 0.5)
    chosen = cols[picked]
    order = np.argsort(chosen)
    chosen, picked = chosen[order], picked[order]
    served = None
    if capacity is not None:
        per_site = np.bincount(j_of, weights=w[g_of] * x[nc:], minlength=nc)
        served = per_site[picked]
    gap = _gap(obj, bound, sense_max=kind == "max", integral=integral and capacity is None)
    optimal = status == "Optimal" and gap <= 1e-6
    return Solution(chosen, obj, bound, gap, optimal, status, time.perf_counter() - t0, stats, served)


def p_median(
    dist: sp.spmatrix,
    weights: NDArray,
    k: int,
    *,
    d0: NDArray | None = None,
    capacity: float | None = None,
    time_limit: float = 30.0,
    rel_gap: float = 1e-7,
) -> Solution:
    """Choose k candidates minimising the total weighted distance to the nearest open site.

    ``dist[i, j]``: distance from demand i to candidate j, stored for the pairs that matter (a pair
    no nearer than ``d0[i]`` may be left out). ``d0``: distance to the nearest existing station
    (None: no stations yet; every demand point must then reach some candidate). With ``capacity``,
    a new site serves at most that weight; the rest stays with its existing station.
    """
    t0 = time.perf_counter()
    d = sp.csr_matrix(dist, dtype=np.float64)
    w = np.asarray(weights, dtype=float)
    n_demand, n_cand = d.shape
    if d0 is None:
        rowmax = np.zeros(n_demand)
        if d.nnz:
            rowmax = np.asarray(d.max(axis=1).todense()).ravel()
        d0_eff = rowmax + 1.0
        base_missing = np.diff(d.indptr) == 0
        if np.any(base_missing & (w > 0)):
            raise ValueError("a demand point reaches no candidate and there is no existing station")
    else:
        d0_eff = np.asarray(d0, dtype=float)
    coo = d.tocoo()
    keep = (coo.data < d0_eff[coo.row]) & (w[coo.row] > 0)
    rows, cols, vals = coo.row[keep], coo.col[keep], coo.data[keep]
    base = float(np.sum(w * d0_eff))
    stats = {"demand": n_demand, "candidates": n_cand, "pairs": int(len(rows))}
    if k <= 0 or not len(rows):
        total = base if d0 is not None else math.nan
        return Solution(np.empty(0, dtype=np.int64), total, total, 0.0, True, "Optimal", time.perf_counter() - t0, stats)
    used = np.unique(cols)
    col_of = np.full(n_cand, -1)
    col_of[used] = np.arange(len(used))
    nc = len(used)
    j = col_of[cols]
    used_rows = np.unique(rows)
    row_of = np.full(n_demand, -1)
    row_of[used_rows] = np.arange(len(used_rows))
    i = row_of[rows]
    ng = len(used_rows)
    npairs = len(rows)
    sites = min(k, nc)
    p = np.arange(npairs)
    saving = w[rows] * (d0_eff[rows] - vals)
    blocks = [
        sp.csr_matrix((np.ones(npairs), (i, nc + p)), shape=(ng, nc + npairs)),  # sum_j x_ij <= 1
        sp.csr_matrix((np.r_[np.ones(npairs), -np.ones(npairs)], (np.r_[p, p], np.r_[nc + p, j])),
                      shape=(npairs, nc + npairs)),  # x_ij <= y_j
        sp.csr_matrix(np.r_[np.ones(nc), np.zeros(npairs)]),  # sum y = k
    ]
    row_lo = [np.full(ng, -INF), np.full(npairs, -INF), [sites]]
    row_hi = [np.ones(ng), np.zeros(npairs), [sites]]
    if capacity is not None:
        blocks.insert(2, sp.csr_matrix((np.r_[-capacity * np.ones(nc), w[rows]], (np.r_[np.arange(nc), j],
                                        np.r_[np.arange(nc), nc + p])), shape=(nc, nc + npairs)))
        row_lo.insert(2, np.full(nc, -INF))
        row_hi.insert(2, np.zeros(nc))
    matrix = sp.vstack(blocks, format="csc")
    row_lo_a, row_hi_a = np.concatenate(row_lo), np.concatenate(row_hi)
    cost = np.r_[np.zeros(nc), saving]
    ncols = len(cost)
    start = None
    greedy: list[int] = []
    if capacity is None:
        sub = sp.csr_matrix((vals, (rows, j)), shape=(n_demand, nc))
        greedy = greedy_median(sub, d0_eff, w, sites)
        y0 = np.zeros(nc)
        y0[greedy] = 1
        # each demand point to its nearest chosen site, when nearer than d0
        x0 = np.zeros(npairs)
        open_pair = y0[j] > 0
        best = np.full(n_demand, np.inf)
        np.minimum.at(best, rows[open_pair], vals[open_pair])
        pick = open_pair & (vals == best[rows])
        first = np.zeros(n_demand, dtype=bool)
        for q in np.flatnonzero(pick):
            if not first[rows[q]]:
                first[rows[q]] = True
                x0[q] = 1
        start = np.r_[y0, x0]
    integer = np.r_[np.ones(nc, dtype=bool), np.zeros(npairs, dtype=bool)]
    x, obj, bound, status = _run(
        sense_max=True, cost=cost, col_lo=np.zeros(ncols), col_hi=np.ones(ncols), integer=integer, matrix=matrix,
        row_lo=row_lo_a, row_hi=row_hi_a, start=start, time_limit=time_limit, integral_objective=False,
        rel_gap=rel_gap,
    )
    stats.update(variables=ncols, constraints=len(row_lo_a), greedy=len(greedy), candidates_reduced=nc,
                 demand_reduced=ng)
    if not math.isfinite(obj):
        return Solution(np.empty(0, dtype=np.int64), math.nan, math.nan, math.inf, False, status,
                        time.perf_counter() - t0, stats)
    total = base - obj
    picked = np.flatnonzero(x[:nc] > 0.5)
    chosen = used[picked]
    served = None
    if capacity is not None:
        served = np.bincount(j, weights=w[rows] * x[nc:], minlength=nc)[picked]
    gap = _gap(obj, bound, sense_max=True, integral=False, scale=total)
    optimal = status == "Optimal" and gap <= max(rel_gap, 1e-6) * 10
    return Solution(chosen, total, base - bound if math.isfinite(bound) else math.nan, gap, optimal, status,
                    time.perf_counter() - t0, stats, served)
