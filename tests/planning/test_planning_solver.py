"""Siting models: our HiGHS optima equal spopt's (PuLP + CBC) and brute force over every site combination."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from gridmap.planning import solver

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PuLP on its CBC command

spopt_locate = pytest.importorskip("spopt.locate")
pulp = pytest.importorskip("pulp")


def _instance(seed: int, n_demand: int = 90, n_sites: int = 25, n_existing: int = 3):
    rng = np.random.default_rng(seed)
    demand = rng.uniform(0, 2000, (n_demand, 2))
    sites = rng.uniform(0, 2000, (n_existing + n_sites, 2))
    cost = np.hypot(demand[:, None, 0] - sites[None, :, 0], demand[:, None, 1] - sites[None, :, 1])
    weights = rng.integers(1, 60, n_demand).astype(float)
    return cost, weights, n_existing


def _cbc():
    return pulp.PULP_CBC_CMD(msg=False)


def _predefined(n_existing: int, n_sites: int) -> np.ndarray:
    return np.r_[np.ones(n_existing, dtype=bool), np.zeros(n_sites, dtype=bool)]


# ------------------------------------------------------------------ equal to spopt


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("k", [2, 5])
def test_max_coverage_equals_spopt(seed: int, k: int) -> None:
    cost, w, ne = _instance(seed)
    radius = 300.0
    n_sites = cost.shape[1] - ne
    covered = (cost[:, :ne] <= radius).any(axis=1)
    ours = solver.max_coverage(sp.csr_matrix(cost[:, ne:] <= radius), w, k, covered=covered)
    theirs = spopt_locate.MCLP.from_cost_matrix(
        cost, w, radius, p_facilities=ne + k, predefined_facilities_arr=_predefined(ne, n_sites)
    ).solve(_cbc())
    assert ours.optimal and ours.gap == 0
    assert w[covered].sum() + ours.objective == pytest.approx(theirs.problem.objective.value())
    # the chosen sites achieve what we claim
    reach = (cost[:, ne + ours.chosen] <= radius).any(axis=1) | covered
    assert w[reach].sum() == pytest.approx(theirs.problem.objective.value())


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_set_cover_equals_spopt(seed: int) -> None:
    cost, w, _ = _instance(seed, n_existing=0)
    radius = 550.0
    cost = cost[(cost <= radius).any(axis=1)]  # LSCP needs every demand point coverable
    full = np.ones(len(cost))
    ours = solver.set_cover(sp.csr_matrix(cost <= radius), full, float(len(cost)))
    theirs = spopt_locate.LSCP.from_cost_matrix(cost, radius).solve(_cbc())
    assert ours.optimal
    assert ours.objective == pytest.approx(theirs.problem.objective.value())
    assert (cost[:, ours.chosen] <= radius).any(axis=1).all()


@pytest.mark.parametrize("seed", [7, 8, 9])
@pytest.mark.parametrize("k", [1, 4])
def test_p_median_equals_spopt(seed: int, k: int) -> None:
    cost, w, ne = _instance(seed, n_demand=70, n_sites=20)
    n_sites = cost.shape[1] - ne
    d0 = cost[:, :ne].min(axis=1)
    ours = solver.p_median(sp.csr_matrix(cost[:, ne:]), w, k, d0=d0)
    theirs = spopt_locate.PMedian.from_cost_matrix(
        cost, w, p_facilities=ne + k, predefined_facilities_arr=_predefined(ne, n_sites)
    ).solve(_cbc())
    assert ours.optimal
    assert ours.objective == pytest.approx(theirs.problem.objective.value(), rel=1e-6)
    achieved = np.minimum(d0, cost[:, ne + ours.chosen].min(axis=1))
    assert float(w @ achieved) == pytest.approx(ours.objective, rel=1e-9)


def test_p_median_without_existing_stations_equals_spopt() -> None:
    cost, w, _ = _instance(10, n_demand=60, n_sites=15, n_existing=0)
    ours = solver.p_median(sp.csr_matrix(cost), w, 3)
    theirs = spopt_locate.PMedian.from_cost_matrix(cost, w, p_facilities=3).solve(_cbc())
    assert ours.objective == pytest.approx(theirs.problem.objective.value(), rel=1e-6)


def test_network_instance_from_the_sample_equals_spopt(planner) -> None:
    """A slice of the sample county's real walking-distance matrix, solved both ways."""
    cands = planner.candidates("generated", 200.0)
    dist = planner.reach(cands, "network", 800.0).toarray()[::30][:, ::4]  # 160 buildings × ~100 sites
    cost = np.where(dist > 0, dist, 1e6)
    w = planner.households[::30]
    ours = solver.max_coverage(sp.csr_matrix(cost <= 400), w, 6)
    theirs = spopt_locate.MCLP.from_cost_matrix(cost, w, 400.0, p_facilities=6).solve(_cbc())
    assert ours.optimal and ours.objective == pytest.approx(theirs.problem.objective.value())


# ------------------------------------------------------------------ equal to brute force


def _tiny(seed: int):
    rng = np.random.default_rng(seed)
    cost = rng.uniform(0, 1000, (14, 7))
    return cost, rng.integers(1, 20, 14).astype(float)


@pytest.mark.parametrize("seed", range(4))
def test_all_objectives_equal_brute_force(seed: int) -> None:
    cost, w = _tiny(seed)
    radius, k = 350.0, 2
    d0 = np.full(len(w), 700.0)  # one far-away existing station for everyone
    covered = np.zeros(len(w), dtype=bool)
    covered[:3] = True
    combos = list(itertools.combinations(range(cost.shape[1]), k))
    cover = cost <= radius

    best_cover = max(w[covered | cover[:, list(c)].any(axis=1)].sum() for c in combos)
    got = solver.max_coverage(sp.csr_matrix(cover), w, k, covered=covered)
    assert w[covered].sum() + got.objective == best_cover

    best_median = min(float(w @ np.minimum(d0, cost[:, list(c)].min(axis=1))) for c in combos)
    got = solver.p_median(sp.csr_matrix(cost), w, k, d0=d0)
    assert got.objective == pytest.approx(best_median)

    need = 0.8 * w.sum() - w[covered].sum()
    fewest = next(
        n for n in range(cost.shape[1] + 1)
        if any(w[covered | cover[:, list(c)].any(axis=1)].sum() - w[covered].sum() >= need - 1e-9
               for c in itertools.combinations(range(cost.shape[1]), n))
    )
    got = solver.set_cover(sp.csr_matrix(cover), w, need, covered=covered)
    assert got.objective == fewest


def _served_with_capacity(cover: np.ndarray, w: np.ndarray, sites: tuple[int, ...], capacity: float) -> float:
    """Most demand the sites can serve when each serves ≤ capacity (demand may split): an LP."""
    pairs = [(i, j) for j in sites for i in np.flatnonzero(cover[:, j])]
    if not pairs:
        return 0.0
    n = len(pairs)
    a_ub, b_ub = [], []
    for i in {p[0] for p in pairs}:
        a_ub.append([1.0 if p[0] == i else 0.0 for p in pairs])
        b_ub.append(1.0)
    for j in sites:
        a_ub.append([w[p[0]] if p[1] == j else 0.0 for p in pairs])
        b_ub.append(capacity)
    res = linprog(-np.array([w[p[0]] for p in pairs]), A_ub=a_ub, b_ub=b_ub, bounds=[(0, 1)] * n)
    return -res.fun


@pytest.mark.parametrize("seed", range(3))
def test_capacitated_max_coverage_equals_brute_force(seed: int) -> None:
    cost, w = _tiny(seed)
    cover = cost <= 450
    capacity = 25.0
    best = max(_served_with_capacity(cover, w, c, capacity) for c in itertools.combinations(range(7), 2))
    got = solver.max_coverage(sp.csr_matrix(cover), w, 2, capacity=capacity)
    assert got.objective == pytest.approx(best, abs=1e-6)
    assert got.served is not None and np.all(got.served <= capacity + 1e-6)


# ------------------------------------------------------------------ reductions keep the optimum


def test_reductions_merge_demand_and_drop_dominated_sites() -> None:
    cover = sp.csr_matrix(np.array([
        [1, 1, 0, 0],
        [1, 1, 0, 0],  # same set as row 0: merged
        [0, 1, 1, 0],
        [0, 0, 0, 1],
    ]))
    a, w, cols = solver._reduce_cover(cover, np.array([1.0, 2.0, 3.0, 4.0]), drop_dominated=True)
    # site 0 ⊂ site 1: dropped; site 2 ⊂ site 1 too
    assert list(cols) == [1, 3]
    assert a.shape == (2, 2) and sorted(w) == [4.0, 6.0]
    got = solver.max_coverage(cover, np.array([1.0, 2.0, 3.0, 4.0]), 1)
    assert got.objective == 6.0 and list(got.chosen) == [1]


def test_greedy_start_and_time_limit_report_a_gap_field() -> None:
    cost, w, _ = _instance(11, n_demand=200, n_sites=60, n_existing=0)
    got = solver.max_coverage(sp.csr_matrix(cost <= 250), w, 5, time_limit=5)
    assert got.stats["greedy"] == 5
    assert got.optimal and got.gap == 0.0


@pytest.mark.parametrize("seed", [12, 13])
def test_reduced_and_full_models_have_the_same_optimum(seed: int) -> None:
    cost, w, ne = _instance(seed, n_demand=300, n_sites=80)
    covered = (cost[:, :ne] <= 250).any(axis=1)
    cover = sp.csr_matrix(cost[:, ne:] <= 250)
    reduced = solver.max_coverage(cover, w, 6, covered=covered)
    full = solver.max_coverage(cover, w, 6, covered=covered, reduce=False)
    assert reduced.stats["candidates_reduced"] < full.stats["candidates_reduced"]
    assert reduced.objective == full.objective
