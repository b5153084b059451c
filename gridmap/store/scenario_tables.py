"""The ``planning_scenarios`` table of the GeoPackage store: every station-siting run, kept.

A scenario is written once and never changed, so one planner's run cannot replace what another
planner is looking at (``/maps/planner?scenario=ID`` always shows the same proposals). Parameters,
summary and proposals are JSON text: a scenario is read whole, never queried inside.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SCENARIO_COLUMNS = ("name", "created_by", "created_at", "revision", "parameters", "summary", "proposals")
_JSON_COLUMNS = ("parameters", "summary", "proposals")
_LIST_COLUMNS = ("id", "name", "created_by", "created_at", "revision", "parameters", "summary")

_DDL = [
    "CREATE TABLE IF NOT EXISTS planning_scenarios (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "name TEXT NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL, revision TEXT, "
    "parameters TEXT NOT NULL, summary TEXT NOT NULL, proposals TEXT NOT NULL)",
]


def _row_to_scenario(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    for name in _JSON_COLUMNS:
        if name in record:
            record[name] = json.loads(record[name])
    return record


class ScenarioTables:
    """Mixed into ``GeoPackageStore``: needs ``_transaction()`` and ``_incident_conn()``."""

    _scenario_schema_ready = False

    @contextmanager
    def _scenario_transaction(self) -> Iterator[sqlite3.Connection]:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            if not self._scenario_schema_ready:
                for statement in _DDL:
                    conn.execute(statement)
                self._scenario_schema_ready = True
            yield conn

    @contextmanager
    def _scenario_read(self) -> Iterator[sqlite3.Connection]:
        if not self._scenario_schema_ready:
            with self._scenario_transaction():
                pass
        with self._incident_conn() as conn:  # type: ignore[attr-defined]
            yield conn

    def insert_scenario(self, record: dict[str, Any]) -> int:
        values = [json.dumps(record[c], ensure_ascii=False) if c in _JSON_COLUMNS else record.get(c)
                  for c in SCENARIO_COLUMNS]
        with self._scenario_transaction() as conn:
            cursor = conn.execute(
                f"INSERT INTO planning_scenarios ({', '.join(SCENARIO_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(SCENARIO_COLUMNS))})",
                values,
            )
            return int(cursor.lastrowid)

    def get_scenario(self, scenario_id: int) -> dict[str, Any] | None:
        with self._scenario_read() as conn:
            row = conn.execute("SELECT * FROM planning_scenarios WHERE id=?", (scenario_id,)).fetchone()
        return _row_to_scenario(row) if row else None

    def list_scenarios(self, *, limit: int, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Scenarios newest first, without their proposals, and how many there are."""
        with self._scenario_read() as conn:
            total = conn.execute("SELECT count(*) FROM planning_scenarios").fetchone()[0]
            rows = conn.execute(
                f"SELECT {', '.join(_LIST_COLUMNS)} FROM planning_scenarios "
                "ORDER BY id DESC LIMIT ? OFFSET ?",
                (int(limit), int(offset)),
            ).fetchall()
        return [_row_to_scenario(r) for r in rows], int(total)
