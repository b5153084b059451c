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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pandas as pd

from gridmap.coverage.service import Coverage, check_point
from gridmap.incidents.categories import Category, get_category
from gridmap.incidents.service import _assignee_for, iso
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


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) or value == "" else str(value)


def load_history(store: Store, coverage: Coverage, path: Path, *, batch: int = HISTORY_BATCH) -> int:
    """Insert every incident of the CSV at ``path`` with its events; the number inserted."""
    return store.insert_incidents(history_rows(coverage, path, batch=batch))


def history_rows(coverage: Coverage, path: Path, *, batch: int = HISTORY_BATCH) -> Iterator[Row]:
    """(record, events) of each row of the CSV, in file order, read and derived ``batch`` rows at a time."""
    assignees: dict[str | None, str | None] = {}
    with pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=batch) as chunks:
        for frame in chunks:
            yield from _derive(coverage, frame, assignees)


def _derive(coverage: Coverage, frame: pd.DataFrame, assignees: dict[str | None, str | None]) -> Iterator[Row]:
    lon = frame["lon"].astype(float).to_numpy()
    lat = frame["lat"].astype(float).to_numpy()
    for x, y in zip(lon.tolist(), lat.tolist()):
        check_point(x, y)
    grids, communities, precincts = coverage.places(lon, lat)
    categories = [get_category(code) for code in frame["category"]]
    units = _suggested_units(coverage, lon, lat, categories)
    columns = list(frame.columns)
    for i, values in enumerate(zip(*(frame[c].tolist() for c in columns))):
        grid = grids[i]
        if grid not in assignees:
            assignees[grid] = _assignee_for(coverage, grid)
        yield _row(dict(zip(columns, values)), categories[i], float(lon[i]), float(lat[i]), grid, communities[i],
                   precincts[i], assignees[grid], units[i])


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


def _row(r: dict[str, str], category: Category, lon: float, lat: float, grid: str | None, community: str | None,
         precinct: dict[str, str] | None, assignee: str | None, units: list[dict[str, Any]]) -> Row:
    reported = datetime.fromisoformat(r["reported_at"].replace("Z", "+00:00"))
    worker_actor = f"worker:{assignee}" if assignee else "worker:?"
    record = {
        "category": category.code, "description": r["description"], "lon": lon, "lat": lat,
        "address": None, "match_level": None, "community_code": community,
        "grid_code": grid, "precinct_code": precinct["code"] if precinct else None,
        "reporter_name": _text(r["reporter_name"]), "reporter_phone": _text(r["reporter_phone"]),
        "source": r["source"], "priority": r["priority"], "status": r["status"], "assignee_code": assignee,
        "co_handlers": [{"type": "precinct", **precinct}] if category.police and precinct else [],
        "suggested_units": units,
        "duplicate_of": [], "flags": [] if grid else ["outside_grids"],
        "reported_at": r["reported_at"], "due_at": iso(reported + timedelta(hours=category.hours)),
        "rating": int(r["rating"]) if r["rating"] else None, "comment": _text(r["comment"]),
    }
    for column, *_ in STEPS:
        record[column] = _text(r[column])
    record["cancelled_at"] = _text(r["cancelled_at"])
    reporter = worker_actor if r["source"] == "网格员巡查" else "public"
    events = [{"at": r["reported_at"], "actor": reporter, "role": reporter.split(":")[0], "action": "report",
               "from_status": None, "to_status": "reported", "note": None}]
    for column, action, source, target, role in STEPS:
        if record[column]:
            actor = worker_actor if role == "worker" else "dispatcher:sample"
            events.append({"at": record[column], "actor": actor, "role": role, "action": action,
                           "from_status": source, "to_status": target, "note": None})
    if record["cancelled_at"]:
        events.append({"at": record["cancelled_at"], "actor": "dispatcher:sample", "role": "dispatcher",
                       "action": "cancel", "from_status": events[-1]["to_status"], "to_status": "cancelled",
                       "note": r["note"] or None})
    if record["rating"] is not None:
        events.append({"at": record["closed_at"], "actor": "public", "role": "public", "action": "feedback",
                       "from_status": "closed", "to_status": "closed", "note": f"评分 {record['rating']}"})
    record["updated_at"] = events[-1]["at"]
    record["version"] = len(events)
    return record, events
