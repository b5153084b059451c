"""What a station serves, per building: households, residents, recent incidents, the households of open
needs (需求清单), or a blend.

A blend ``{"households": 1, "incidents": 2}`` weighs each measure by its share of the county's
total, so measures of different sizes mix as told: w_i = Σ_k c_k · d_ik / Σ_i d_ik.

A sum ``"households+needs"`` adds measures of the same unit as they are: a building's households, plus
once more each household an open need there affects (collected, accepted or in a project). Where
residents have asked for something, demand is that much heavier, in households a planner can read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from gridmap.errors import InvalidInput

MEASURES = ("households", "population", "incidents", "needs")
INCIDENT_WINDOW = timedelta(days=365)
"""Incidents count as demand when reported in the last twelve months."""

MEASURE_NAMES = {"households": "户数", "population": "人口", "incidents": "近12个月事件数",
                 "needs": "未办结需求涉及户数"}
UNITS = {"households": "户", "population": "人", "incidents": "件", "needs": "户"}
"""Measures of one unit may be summed as they are (``households+needs``); others only blended by share."""
OPEN_NEED_STATUSES = ("collected", "accepted", "in_project")
"""Needs still asking (``gridmap.cogov.kinds.NEED_OPEN_STATUSES``): done and rejected ones weigh nothing."""


def is_sum(demand: str | Mapping[str, float]) -> bool:
    """``"households+needs"``: measures added as they are, not by their shares."""
    return isinstance(demand, str) and "+" in demand


def parse(demand: str | Mapping[str, float]) -> dict[str, float]:
    """``"households"`` or ``{"households": 1, "population": 0.5}`` → coefficients, checked."""
    if is_sum(demand):
        names = [part.strip() for part in str(demand).split("+")]
        coefficients = {name: 1.0 for name in names}
        known = [n for n in names if n in MEASURES]
        if len(known) == len(names) and len({UNITS[n] for n in names}) > 1:
            raise InvalidInput(f"只有单位相同的需求指标可以直接相加（如 households+needs）；{demand} 请用加权组合，"
                               "如 {\"population\": 1, \"incidents\": 1}")
    elif isinstance(demand, str):
        coefficients = {demand: 1.0}
    else:
        coefficients = {str(k): float(v) for k, v in demand.items()}
    unknown = [k for k in coefficients if k not in MEASURES]
    if unknown:
        raise InvalidInput(f"未知的需求指标 {'、'.join(unknown)}（可选：{', '.join(MEASURES)}）")
    if not coefficients or any(not np.isfinite(v) or v < 0 for v in coefficients.values()) or not any(
        v > 0 for v in coefficients.values()
    ):
        raise InvalidInput("需求权重必须为非负数，且至少一个大于 0")
    return coefficients


def incident_counts(
    incidents: gpd.GeoDataFrame,
    building_xy: NDArray,
    to_metric: Callable[[NDArray, NDArray], tuple[NDArray, NDArray]],
    *,
    now: datetime | None = None,
    window: timedelta = INCIDENT_WINDOW,
) -> NDArray[np.float64]:
    """Incidents of the last ``window`` counted at the building nearest each one (metric distance)."""
    counts = np.zeros(len(building_xy))
    if incidents is None or not len(incidents) or not len(building_xy):
        return counts
    now = now or datetime.now(timezone.utc)
    reported = pd.to_datetime(incidents["reported_at"], utc=True)
    recent = incidents[(reported >= pd.Timestamp(now - window)) & (reported <= pd.Timestamp(now))]
    recent = recent[recent.geometry.notna() & ~recent.geometry.is_empty]
    if not len(recent):
        return counts
    x, y = to_metric(recent.geometry.x.to_numpy(), recent.geometry.y.to_numpy())
    _, nearest = cKDTree(building_xy).query(np.column_stack([x, y]))
    return np.bincount(nearest, minlength=len(building_xy)).astype(float)


def need_households(
    needs: list[dict],
    building_xy: NDArray,
    to_metric: Callable[[NDArray, NDArray], tuple[NDArray, NDArray]],
    building_community: NDArray,
    households: NDArray,
) -> NDArray[np.float64]:
    """The households of open needs per building. A need with a point counts at the building nearest it
    (metric distance); a need recorded without one belongs to its whole community, so its households are
    shared among the community's buildings in proportion to their households (equally when none are
    recorded); a need of a community with no building is left out."""
    out = np.zeros(len(building_xy))
    if not needs or not len(building_xy):
        return out
    placed = [n for n in needs if n.get("status") in OPEN_NEED_STATUSES and n.get("lon") is not None
              and n.get("lat") is not None]
    if placed:
        x, y = to_metric(np.array([float(n["lon"]) for n in placed]), np.array([float(n["lat"]) for n in placed]))
        _, nearest = cKDTree(building_xy).query(np.column_stack([x, y]))
        np.add.at(out, nearest, [float(n.get("households") or 0) for n in placed])
    communities = np.asarray(building_community, dtype=object)
    for need in needs:
        if need.get("status") not in OPEN_NEED_STATUSES or (need.get("lon") is not None and need.get("lat") is not None):
            continue
        mine = np.flatnonzero(communities == need.get("community_code"))
        if not len(mine):
            continue
        share = np.asarray(households, dtype=float)[mine]
        share = share / share.sum() if share.sum() > 0 else np.full(len(mine), 1 / len(mine))
        out[mine] += float(need.get("households") or 0) * share
    return out


def load_needs(store) -> list[dict]:
    """The open needs of every community (the 需求清单 records still asking)."""
    from gridmap.store.base import EntityQuery

    rows, _ = store.query_entities(EntityQuery(kind="need", statuses=OPEN_NEED_STATUSES))
    return rows


def weights(coefficients: Mapping[str, float], measures: Mapping[str, NDArray], *, summed: bool = False
            ) -> NDArray[np.float64]:
    """Demand of each building. A single measure is used as is (households stay households); ``summed``
    adds the measures as they are (one unit), else a blend weighs each by its share."""
    if summed:
        return sum(c * np.asarray(measures[name], dtype=float) for name, c in coefficients.items())
    if len(coefficients) == 1:
        (name, c), = coefficients.items()
        return c * np.asarray(measures[name], dtype=float)
    total = None
    for name, c in coefficients.items():
        values = np.asarray(measures[name], dtype=float)
        s = values.sum()
        part = c * values / s if s > 0 else np.zeros_like(values)
        total = part if total is None else total + part
    return total


def load_incidents(store, *, now: datetime | None = None) -> gpd.GeoDataFrame:
    """Recent incidents from the incidents service (``incidents_frame``): WGS84 points, ``reported_at``."""
    try:
        from gridmap.incidents.service import incidents_frame
    except ImportError as exc:  # pragma: no cover - incidents not installed in this build
        raise InvalidInput("事件模块不可用，不能以事件数作为需求") from exc
    now = now or datetime.now(timezone.utc)
    try:
        from gridmap.store.base import IncidentQuery

        since = (now - INCIDENT_WINDOW).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return incidents_frame(store, query=IncidentQuery(since=since), now=now)
    except (ImportError, TypeError):  # pragma: no cover - an older incidents_frame(store)
        return incidents_frame(store)
