"""Coverage figures of groups of buildings (the scope, each community, each grid), every group at once.

Each figure is a sum over buildings, so ``np.bincount`` gives it for all groups in one pass: a
city's 10,000 grids cost one pass over its buildings, where a mask per grid cost grids × buildings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Figures:
    """Per building of a scope: what it holds, whether it is covered, how far its nearest station is."""

    households: NDArray[np.float64]
    population: NDArray[np.float64]
    covered: NDArray[np.bool_]
    dist: NDArray[np.float64]
    weights: NDArray[np.float64] | None = None
    """Demand weights of a siting run (adds ``demand`` and ``demand_covered``)."""

    def total(self) -> dict[str, Any]:
        return self.by(np.zeros(len(self.households), dtype=np.int64), 1)[0]

    def by(self, labels: NDArray[np.int64], n: int) -> list[dict[str, Any]]:
        """Figures of groups 0 … n-1; a building labelled -1 is in none of them."""
        labels = np.asarray(labels, dtype=np.int64)
        inside = labels >= 0
        group = labels[inside]

        def add(values: NDArray) -> NDArray:
            return np.bincount(group, weights=np.asarray(values, dtype=float)[inside], minlength=n)

        hh, pop, cov = self.households, self.population, self.covered
        finite = np.isfinite(self.dist) & (hh > 0)
        sums = {
            "buildings": np.bincount(group, minlength=n),
            "buildings_covered": np.bincount(group[cov[inside]], minlength=n),
            "households": add(hh),
            "households_covered": add(np.where(cov, hh, 0.0)),
            "population": add(pop),
            "population_covered": add(np.where(cov, pop, 0.0)),
            "walk": add(np.where(finite, self.dist, 0.0) * np.where(finite, hh, 0.0)),
            "walkers": add(np.where(finite, hh, 0.0)),
        }
        if self.weights is not None:
            sums["demand"] = add(self.weights)
            sums["demand_covered"] = add(np.where(cov, self.weights, 0.0))
        return [_row({k: v[i] for k, v in sums.items()}) for i in range(n)]


def _row(s: dict[str, Any]) -> dict[str, Any]:
    households, hc = float(s["households"]), float(s["households_covered"])
    population, pc = float(s["population"]), float(s["population_covered"])
    mean = float(s["walk"]) / float(s["walkers"]) if s["walkers"] > 0 else None
    out = {
        "buildings": int(s["buildings"]),
        "buildings_covered": int(s["buildings_covered"]),
        "households": int(households),
        "households_covered": int(hc),
        "households_uncovered": int(households - hc),
        "population": int(population),
        "population_covered": int(pc),
        "population_uncovered": int(population - pc),
        "share": round(hc / households, 4) if households else None,
        "population_share": round(pc / population, 4) if population else None,
        "mean_distance_m": round(mean, 1) if mean is not None else None,
    }
    if "demand" in s:
        out["demand"] = round(float(s["demand"]), 6)
        out["demand_covered"] = round(float(s["demand_covered"]), 6)
    return out
