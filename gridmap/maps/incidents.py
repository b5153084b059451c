"""The incidents the maps draw (``gridmap.incidents.service.incidents_frame``), what they depend on
(``incidents_version``, read without reading any incident), an empty frame with the same columns,
and a synthetic history for benchmarks and tests."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo import WGS84
from gridmap.incidents.service import incidents_frame, iso
from gridmap.incidents.workflow import DONE, STATUS_LABELS
from gridmap.store.base import IncidentQuery

COLUMNS = ["id", "category", "category_name", "category_group", "status", "status_label", "priority", "grid_code",
           "community_code", "assignee_name", "reported_at", "due_at", "overdue", "supervised"]

OPEN_STATUSES = frozenset(STATUS_LABELS) - DONE


def empty_incidents() -> gpd.GeoDataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    for c in ("reported_at", "due_at"):
        frame[c] = pd.Series(dtype="datetime64[ns, UTC]")
    frame["overdue"] = pd.Series(dtype=bool)
    frame["supervised"] = pd.Series(dtype=bool)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)


def load_incidents(store: Any, coverage: Any = None, *, now: datetime | None = None,
                   grids: Iterable[str] | None = None, only_open: bool = False) -> gpd.GeoDataFrame:
    """The store's incidents, without personal data; overdue as of ``now`` (default: now). With ``grids``,
    only those grids' incidents (and with ``only_open`` only the open ones), found through the store's
    index: a worker's map reads its grids' incidents, not a city's."""
    if grids is None and not only_open:
        return incidents_frame(store, coverage, now=now)
    query = IncidentQuery(statuses=tuple(sorted(OPEN_STATUSES)) if only_open else (),
                          grids=tuple(grids) if grids is not None else None)
    return incidents_frame(store, coverage, query=query, now=now)


def incidents_version(store: Any, now: datetime) -> tuple[str, str | None]:
    """Changes whenever the incidents a map draws as of ``now`` change, without loading them.

    The store's incident revision changes with every incident write; with no write, time alone
    changes them, when an open incident becomes overdue: the earliest due time still ahead marks
    that moment. Two indexed look-ups, where fingerprinting the frame loaded every incident.
    """
    return store.incident_revision(), store.next_incident_due(iso(now))


def fingerprint(incidents: gpd.GeoDataFrame) -> str:
    """Changes whenever any incident of a frame changes (status, assignee, position…): the cache key
    of frames that do not come from the store (``app.state.map_incidents``)."""
    if not len(incidents):
        return "empty"
    digest = hashlib.blake2b(digest_size=12)
    columns = [c for c in incidents.columns if c != incidents.geometry.name]
    digest.update(pd.util.hash_pandas_object(incidents[columns].astype(str), index=False).to_numpy().tobytes())
    digest.update(shapely.to_wkb(np.asarray(incidents.geometry.values)).astype(bytes).tobytes())
    return digest.hexdigest()


SYNTHETIC_CATEGORIES = [
    ("safety.fire", "消防隐患", "安全隐患"), ("safety.wall", "墙体脱落/倾斜", "安全隐患"),
    ("infra.streetlight", "路灯", "基础设施"), ("infra.road", "道路", "基础设施"), ("infra.water", "供水", "基础设施"),
    ("sanitation.cleaning", "卫生保洁", "环境卫生"), ("sanitation.toilet", "旱厕", "环境卫生"),
    ("dispute.neighbour", "邻里", "矛盾纠纷"), ("service.elderly", "老年人/残疾人帮扶", "民生服务"),
    ("security.public_order", "治安", "治安"), ("other.other", "其他", "其他"),
]


def synthetic_incidents(coverage: Any, n: int = 5000, *, seed: int = 5, now: datetime | None = None
                        ) -> gpd.GeoDataFrame:
    """``n`` plausible incidents at the sample county's buildings over 90 days (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    now = now or datetime(2025, 6, 30, 12, tzinfo=timezone.utc)
    pick = rng.integers(0, len(coverage.buildings), n)
    xy = coverage.building_xy[pick] + rng.normal(0, 0.00015, (n, 2))
    grids = coverage.locate_grids(xy[:, 0], xy[:, 1])
    fallback = coverage.building_grid[pick]
    grids = np.where(pd.isna(grids), fallback, grids)
    communities = coverage.grids.set_index("code")["community_code"]
    workers = coverage.workers[coverage.workers["grid_code"].fillna("") != ""].groupby("grid_code")["name"].first()
    cats = rng.integers(0, len(SYNTHETIC_CATEGORIES), n)
    age_h = rng.exponential(24 * 20, n).clip(0, 24 * 90)
    reported = pd.to_datetime([now - timedelta(hours=float(h)) for h in age_h], utc=True)
    statuses = np.array(list(STATUS_LABELS))
    weights = np.array([6, 6, 8, 10, 12, 8, 40, 4, 6], dtype=float)
    status = statuses[rng.choice(len(statuses), n, p=weights / weights.sum())]
    young = age_h < 48
    status = np.where(young & (rng.random(n) < 0.6), rng.choice(statuses[:4], n), status)
    hours = np.array([72, 24, 48, 72, 24, 24, 72, 72, 48, 4, 120])[cats]
    due = reported + pd.to_timedelta(hours, unit="h")
    is_open = np.isin(status, list(OPEN_STATUSES))
    overdue = is_open & (due < pd.Timestamp(now))
    assignee = [workers.get(g, "") if s not in ("reported", "accepted") else "" for g, s in zip(grids, status)]
    frame = pd.DataFrame({
        "id": [f"SJ{(now - timedelta(hours=float(h))).strftime('%Y%m%d')}{i:05d}" for i, h in enumerate(age_h)],
        "category": [SYNTHETIC_CATEGORIES[c][0] for c in cats],
        "category_name": [SYNTHETIC_CATEGORIES[c][1] for c in cats],
        "category_group": [SYNTHETIC_CATEGORIES[c][2] for c in cats],
        "status": status,
        "status_label": [STATUS_LABELS[s] for s in status],
        "priority": rng.choice(["normal", "urgent"], n, p=[0.85, 0.15]),
        "grid_code": grids,
        "community_code": [communities.get(g) for g in grids],
        "assignee_name": assignee,
        "reported_at": reported,
        "due_at": due,
        "overdue": overdue,
        "supervised": overdue & (rng.random(n) < 0.3),
    })
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=WGS84)
