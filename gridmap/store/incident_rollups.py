"""Monthly counts of incidents kept beside the incidents table, so the statistics read a few thousand
rows instead of walking every incident of a city (issue #10).

Two tables, one row per month and combination of what the statistics count by:

- ``incident_rollup``: category, status, first response or not, on time (1), late (0) or not resolved
  (-1), rating (0: none);
- ``incident_place_rollup``: grid and community (``''``: none).

Triggers on ``incidents`` keep them in the same transaction as every insert, update and delete, so
they cannot drift from the rows whatever writes them (the service, a restore, QGIS). A bulk insert
(a history) sets the insert trigger aside and counts its rows at once, with the same keys, before
it commits (``count_inserted``). The month is
the UTC month of ``reported_at``; a period of reports is read as whole months from here and its
ragged ends, at most a month each, from the incidents themselves (``incidents_period`` index).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, Final

MONTH: Final = "substr({r}.reported_at, 1, 7)"
"""'YYYY-MM' of a stored time ('YYYY-MM-DDTHH:MM:SSZ'): the same order as the strings themselves."""
ROLLUPS: Final[dict[str, dict[str, tuple[str, str]]]] = {
    "incident_rollup": {
        "category": ("TEXT", "{r}.category"),
        "status": ("TEXT", "{r}.status"),
        "answered": ("INTEGER", "({r}.accepted_at IS NOT NULL)"),
        "on_time": ("INTEGER", "coalesce({r}.resolved_at <= {r}.due_at, -1)"),
        "rating": ("INTEGER", "coalesce({r}.rating, 0)"),
    },
    "incident_place_rollup": {
        "grid_code": ("TEXT", "coalesce({r}.grid_code, '')"),
        "community_code": ("TEXT", "coalesce({r}.community_code, '')"),
    },
}
"""Per table: its key columns (in primary-key order, the month last) with their type and how an
incident row gives them. Keys are never NULL, so a primary key can find the row to count into."""
COUNTED_COLUMNS: Final = ("reported_at", "category", "status", "accepted_at", "resolved_at", "due_at", "rating",
                          "grid_code", "community_code")
"""The incident columns the rollups depend on: an update of any other column leaves them alone."""
TALLY_SELECT: Final = ("SELECT category, status, answered, nullif(on_time, -1), nullif(rating, 0), sum(n) "
                       "FROM incident_rollup {where} GROUP BY category, status, answered, on_time, rating "
                       "HAVING sum(n) > 0")
PLACES_SELECT: Final = ("SELECT nullif(grid_code, ''), nullif(community_code, ''), sum(n) FROM incident_place_rollup "
                        "{where} GROUP BY grid_code, community_code HAVING sum(n) > 0")
STAMP: Final = "%Y-%m-%dT%H:%M:%SZ"


def _keys(table: str, row: str) -> tuple[list[str], list[str]]:
    """Column names and the expressions that fill them from ``row`` (NEW, OLD or the table)."""
    columns = ROLLUPS[table]
    return [*columns, "month"], [*(expr.format(r=row) for _, expr in columns.values()), MONTH.format(r=row)]


def _count(table: str, row: str, delta: str) -> str:
    names, values = _keys(table, row)
    match = " AND ".join(f"{name} = {value}" for name, value in zip(names, values, strict=True))
    create = (f"INSERT OR IGNORE INTO {table} ({', '.join(names)}, n) VALUES ({', '.join(values)}, 0); "
              if delta.startswith("+") else "")  # a row is always there to take one away from
    return f"{create}UPDATE {table} SET n = n {delta} WHERE {match};"


def _trigger(name: str, event: str, steps: list[tuple[str, str]]) -> str:
    body = " ".join(_count(table, row, delta) for table in ROLLUPS for row, delta in steps)
    return f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON incidents BEGIN {body} END"


def _table(name: str) -> str:
    columns = ROLLUPS[name]
    keys = [*(f"{column} {kind} NOT NULL" for column, (kind, _) in columns.items()), "month TEXT NOT NULL"]
    return (f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(keys)}, n INTEGER NOT NULL, "
            f"PRIMARY KEY ({', '.join([*columns, 'month'])})) WITHOUT ROWID")


INSERT_TRIGGER: Final = "incidents_rollup_insert"
"""Counts each inserted incident: set aside by a bulk insert, which counts its rows at once (``count_inserted``)."""
INSERT_TRIGGER_SQL: Final = _trigger(INSERT_TRIGGER, "INSERT", [("NEW", "+ 1")])
DDL: Final = [
    *(_table(name) for name in ROLLUPS),
    INSERT_TRIGGER_SQL,
    _trigger("incidents_rollup_delete", "DELETE", [("OLD", "- 1")]),
    _trigger("incidents_rollup_update", f"UPDATE OF {', '.join(COUNTED_COLUMNS)}", [("OLD", "- 1"), ("NEW", "+ 1")]),
]


def prepare(conn: sqlite3.Connection) -> None:
    """Create the tables and triggers; a store that had incidents before them gets them counted.

    Runs inside the schema transaction, so the first count and the triggers start together."""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name IN "
                                       f"({', '.join('?' * len(ROLLUPS))})", list(ROLLUPS))}
    for statement in DDL:
        conn.execute(statement)
    for table in ROLLUPS:
        if table not in have:
            conn.execute(recount_sql(table).replace("SELECT", f"INSERT INTO {table} SELECT", 1))


def stop_counting_inserts(conn: sqlite3.Connection) -> None:
    """Drop the insert trigger for a bulk insert; inside its transaction, so no other writer sees it gone."""
    conn.execute(f"DROP TRIGGER IF EXISTS {INSERT_TRIGGER}")


def count_inserted(conn: sqlite3.Connection, first_fid: int) -> None:
    """Count the incidents from ``first_fid`` on into the rollups, as the insert trigger would have
    (the same keys; a row it finds, even at 0, is added to), and put the trigger back.

    One GROUP BY per table: a city's year is a few thousand groups instead of four statements per row."""
    for table in ROLLUPS:
        names, values = _keys(table, "incidents")
        conn.execute(f"INSERT INTO {table} ({', '.join(names)}, n) SELECT {', '.join(values)}, count(*) "
                     f"FROM incidents WHERE fid >= ? GROUP BY {', '.join(str(i + 1) for i in range(len(names)))} "
                     f"ON CONFLICT ({', '.join(names)}) DO UPDATE SET n = n + excluded.n", (first_fid,))
    conn.execute(INSERT_TRIGGER_SQL)


def recount_sql(table: str) -> str:
    """What ``table`` holds, counted afresh from the incidents (its rows with n > 0)."""
    names, values = _keys(table, "incidents")
    return (f"SELECT {', '.join(values)}, count(*) FROM incidents "
            f"GROUP BY {', '.join(str(i + 1) for i in range(len(names)))}")


# -- reading a period ----------------------------------------------------------------------------------

def _month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(moment: datetime) -> datetime:
    return _month_start(moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1, day=1))


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def split_period(since: str | None, until: str | None
                 ) -> tuple[tuple[str | None, str | None] | None, list[tuple[str | None, str | None]]]:
    """[since, until) as whole months ('YYYY-MM' from, to; None: open) and the ragged ends, as
    ranges of stored times, that the months do not cover. No months when the period is within one."""
    first = None if since is None else _parse(since)
    if first is not None and first != _month_start(first):
        first = _next_month(first)
    last = None if until is None else _month_start(_parse(until))
    if first is not None and last is not None and first >= last:
        return None, [(since, until)]
    edges: list[tuple[str | None, str | None]] = []
    if since is not None and first is not None and first.strftime(STAMP) != since:
        edges.append((since, first.strftime(STAMP)))
    if until is not None and last is not None and last.strftime(STAMP) != until:
        edges.append((last.strftime(STAMP), until))
    months = (None if first is None else first.strftime("%Y-%m"), None if last is None else last.strftime("%Y-%m"))
    return months, edges


def read_months(conn: sqlite3.Connection, months: tuple[str | None, str | None]
                ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(tally rows, place rows) of the whole months [from, to), in the shapes of the GROUP BYs over
    incidents: (category, status, answered, on time, rating, n) and (grid, community, n)."""
    clauses, params = [], []
    if months[0] is not None:
        clauses.append("month >= ?")
        params.append(months[0])
    if months[1] is not None:
        clauses.append("month < ?")
        params.append(months[1])
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return (conn.execute(TALLY_SELECT.format(where=where), params).fetchall(),
            conn.execute(PLACES_SELECT.format(where=where), params).fetchall())
