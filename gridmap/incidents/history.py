"""Load a recorded incident history (the sample county's year, ``incidents.csv``) into a store.

Grids, communities, assignees, police co-handlers, suggested units and due times are derived by
the same rules as live intake, and every step of each timeline becomes an audit event.

The file is read in batches of ``HISTORY_BATCH`` rows; each batch is placed at once (grids, communities
and precincts located together) and handed to the store as it is derived, inside the store's one bulk
transaction: a history of 540,000 incidents (a city of 100 towns) loads with the memory of one batch,
and, as before, either all of it is committed (durably) or none.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from gridmap.coverage.service import Coverage, check_point, paused_gc
from gridmap.incidents.categories import Category, get_category
from gridmap.incidents.service import _assignee_for
from gridmap.store.base import Store

HISTORY_BATCH: Final = 10_000
"""Rows read, derived and handed to the store at a time: bounds the memory of a load, whatever its size."""

STEPS = [
    ("accepted_at", "accept", "reported", "accepted", "dispatcher"),
    ("dispatched_at", "dispatch", "accepted", "dispatched", "dispatcher"),
    ("started_at", "start", "dispatched", "in_progress", "worker"),
    ("resolved_at", "resolve", "in_progress", "resolved", "worker"),
    ("verified_at", "verify", "resolved", "verified", "dispatcher"),
    ("closed_at", "close", "verified", "closed", "dispatcher"),
]

Row = tuple[dict[str, Any], list[dict[str, Any]]]


def load_history(store: Store, coverage: Coverage, path: Path, *, batch: int = HISTORY_BATCH) -> int:
    """Insert every incident of the CSV at ``path`` with its events; the number inserted.

    The garbage collector is paused meanwhile (``paused_gc``): a load makes tens of millions of short-lived
    objects, freed by reference counting (deriving and storing a history makes no cycles), and the
    collections they would set off walk the heap again and again, the city's Coverage included: at 100
    towns they cost more time than storing the incidents' events."""
    with paused_gc():
        return store.insert_incidents(history_rows(coverage, path, batch=batch))


def history_rows(coverage: Coverage, path: Path, *, batch: int = HISTORY_BATCH) -> Iterator[Row]:
    """(record, events) of each row of the CSV, in file order, read and derived ``batch`` rows at a time."""
    assignees: dict[str | None, str | None] = {}
    with pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=batch) as chunks:
        for frame in chunks:
            yield from _derive(coverage, frame, assignees)


def _derive(coverage: Coverage, frame: pd.DataFrame, assignees: dict[str | None, str | None]) -> Iterator[Row]:
    """The batch's rows: places, units and due times computed for the whole batch, then one record each."""
    lon = frame["lon"].astype(float).to_numpy()
    lat = frame["lat"].astype(float).to_numpy()
    for x, y in zip(lon.tolist(), lat.tolist()):
        check_point(x, y)
    grids, communities, precincts = coverage.places(lon, lat)
    categories = [get_category(code) for code in frame["category"].tolist()]
    units = _suggested_units(coverage, lon, lat, categories)
    due = _due_times(frame["reported_at"], categories)
    for grid in set(grids.tolist()) - assignees.keys():
        assignees[grid] = _assignee_for(coverage, grid)
    plain = zip(*(frame[c].tolist() for c in PLAIN_COLUMNS))
    texts = zip(*([value or None for value in frame[c].tolist()] for c in TEXT_COLUMNS))
    times = zip(*([value or None for value in frame[c].tolist()] for c, *_ in STEPS))
    for x, y, grid, community, precinct, category, suggested, due_at, p, t, s in zip(
            lon.tolist(), lat.tolist(), grids.tolist(), communities.tolist(), precincts, categories, units, due,
            plain, texts, times, strict=True):
        yield _row(p, t, s, category, x, y, grid, community, precinct, assignees[grid], suggested, due_at)


PLAIN_COLUMNS: Final = ("description", "source", "priority", "status", "reported_at")
TEXT_COLUMNS: Final = ("reporter_name", "reporter_phone", "rating", "comment", "note", "cancelled_at")
"""Columns whose empty cells are None, as are the times of ``STEPS`` (the CSV is read as text, empty cells as "")."""


def _due_times(reported: pd.Series, categories: list[Category]) -> list[str]:
    """``iso(reported_at + category.hours)`` of each row, computed for the whole batch (UTC, to the second)."""
    moments = pd.to_datetime(reported, utc=True, format="ISO8601").dt.tz_localize(None).to_numpy()
    hours = np.array([category.hours for category in categories], dtype="timedelta64[h]")
    return [f"{stamp}Z" for stamp in np.datetime_as_string((moments + hours).astype("datetime64[s]")).tolist()]


def _suggested_units(coverage: Coverage, lon, lat, categories: list[Category]) -> list[list[dict[str, Any]]]:
    """Each row's suggested units, computed for all rows of a category's resources at once."""
    out: list[list[dict[str, Any]]] = [[] for _ in categories]
    rows_of: dict[tuple[str, ...], list[int]] = {}
    for i, category in enumerate(categories):
        rows_of.setdefault(category.resources, []).append(i)
    for resources, rows in rows_of.items():
        for i, units in zip(rows, coverage.nearest_units_many(lon[rows], lat[rows], resources)):
            out[i] = units
    return out


def _row(plain: tuple[str, ...], text: tuple[str | None, ...], times: tuple[str | None, ...], category: Category,
         lon: float, lat: float, grid: str | None, community: str | None, precinct: dict[str, str] | None,
         assignee: str | None, units: list[dict[str, Any]], due_at: str) -> Row:
    """One row's record and events, from its ``PLAIN_COLUMNS``, ``TEXT_COLUMNS`` and times of ``STEPS``."""
    description, source, priority, status, reported_at = plain
    reporter_name, reporter_phone, rating, comment, note, cancelled_at = text
    worker_actor = f"worker:{assignee}" if assignee else "worker:?"
    record = {
        "category": category.code, "description": description, "lon": lon, "lat": lat,
        "address": None, "match_level": None, "community_code": community,
        "grid_code": grid, "precinct_code": precinct["code"] if precinct else None,
        "reporter_name": reporter_name, "reporter_phone": reporter_phone,
        "source": source, "priority": priority, "status": status, "assignee_code": assignee,
        "co_handlers": [{"type": "precinct", **precinct}] if category.police and precinct else [],
        "suggested_units": units,
        "duplicate_of": [], "flags": [] if grid else ["outside_grids"],
        "reported_at": reported_at, "due_at": due_at,
        "rating": int(rating) if rating else None, "comment": comment,
    }
    reporter = worker_actor if source == "网格员巡查" else "public"
    events = [{"at": reported_at, "actor": reporter, "role": reporter.split(":")[0], "action": "report",
               "from_status": None, "to_status": "reported", "note": None}]
    for (column, action, source_status, target, role), at in zip(STEPS, times):
        record[column] = at
        if at:
            actor = worker_actor if role == "worker" else "dispatcher:sample"
            events.append({"at": at, "actor": actor, "role": role, "action": action,
                           "from_status": source_status, "to_status": target, "note": None})
    record["cancelled_at"] = cancelled_at
    if cancelled_at:
        events.append({"at": cancelled_at, "actor": "dispatcher:sample", "role": "dispatcher",
                       "action": "cancel", "from_status": events[-1]["to_status"], "to_status": "cancelled",
                       "note": note})
    if record["rating"] is not None:
        events.append({"at": record["closed_at"], "actor": "public", "role": "public", "action": "feedback",
                       "from_status": "closed", "to_status": "closed", "note": f"评分 {record['rating']}"})
    record["updated_at"] = events[-1]["at"]
    record["version"] = len(events)
    return record, events
