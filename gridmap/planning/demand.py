"""What a station serves, per building: households, residents, recent incidents, or a blend.

A blend ``{"households": 1, "incidents": 2}`` weighs each measure by its share of the county's
total, so measures of different sizes mix as told: w_i = Σ_k c_k · d_ik / Σ_i d_ik.
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

MEASURES = ("households", "population", "incidents")
INCIDENT_WINDOW = timedelta(days=365)
"""Incidents count as demand when reported in the last twelve months."""

MEASURE_NAMES = {"households": "户数", "population": "人口", "incidents": "近12个月事件数"}


def parse(demand: str | Mapping[str, float]) -> dict[str, float]:
    """``"households"`` or ``{"households": 1, "population": 0.5}`` → coefficients, checked."""
    if isinstance(demand, str):
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


def weights(coefficients: Mapping[str, float], measures: Mapping[str, NDArray]) -> NDArray[np.float64]:
    """Demand of each building. A single measure is used as is (households stay households)."""
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
