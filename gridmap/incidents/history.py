"""Load a recorded incident history (the sample county's year, ``incidents.csv``) into a store.

Grids, communities, assignees, police co-handlers, suggested units and due times are derived by
the same rules as live intake, and every step of each timeline becomes an audit event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from gridmap.coverage.service import Coverage
from gridmap.incidents.categories import get_category
from gridmap.incidents.service import _assignee_for, iso
from gridmap.store.base import Store

STEPS = [
    ("accepted_at", "accept", "reported", "accepted", "dispatcher"),
    ("dispatched_at", "dispatch", "accepted", "dispatched", "dispatcher"),
    ("started_at", "start", "dispatched", "in_progress", "worker"),
    ("resolved_at", "resolve", "in_progress", "resolved", "worker"),
    ("verified_at", "verify", "resolved", "verified", "dispatcher"),
    ("closed_at", "close", "verified", "closed", "dispatcher"),
]


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) or value == "" else str(value)


def load_history(store: Store, coverage: Coverage, path: Path) -> int:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    lon = frame["lon"].astype(float).to_numpy()
    lat = frame["lat"].astype(float).to_numpy()
    grids = coverage.locate_grids(lon, lat)
    rows = []
    for i, r in enumerate(frame.to_dict("records")):
        category = get_category(r["category"])
        answer = coverage.lookup(float(lon[i]), float(lat[i]))
        grid = grids[i]
        assignee = _assignee_for(coverage, grid)
        reported = datetime.fromisoformat(r["reported_at"].replace("Z", "+00:00"))
        worker_actor = f"worker:{assignee}" if assignee else "worker:?"
        record = {
            "category": category.code, "description": r["description"], "lon": float(lon[i]), "lat": float(lat[i]),
            "address": None, "match_level": None,
            "community_code": answer["community"]["code"] if answer["community"] else None,
            "grid_code": grid, "precinct_code": answer["precinct"]["code"] if answer["precinct"] else None,
            "reporter_name": _text(r["reporter_name"]), "reporter_phone": _text(r["reporter_phone"]),
            "source": r["source"], "priority": r["priority"], "status": r["status"], "assignee_code": assignee,
            "co_handlers": [{"type": "precinct", **answer["precinct"]}] if category.police and answer["precinct"]
            else [],
            "suggested_units": coverage.nearest_units(float(lon[i]), float(lat[i]), category.resources),
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
        rows.append((record, events))
    return store.insert_incidents(rows)
