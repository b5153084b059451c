"""Incidents, their audit log and idempotency keys on PostGIS: the same guarantees as the GeoPackage
store's ``IncidentTables`` (one transaction per write, committed durably before the API answers;
compare-and-set versions; an append-only log enforced by triggers; keys scoped to their sender).

The statistics are counted by GROUP BY where the rows are (PostgreSQL's parallel aggregates over a
city's year take a fraction of a second) and medians read from expression indexes of the durations.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from gridmap.errors import Conflict
from gridmap.store import incident_rollups
from gridmap.store.base import IncidentQuery, IncidentTally
from gridmap.store.incident_tables import (
    EVENT_COLUMNS,
    IDEMPOTENCY_TTL,
    INCIDENT_COLUMNS,
    INCIDENT_REVISION_KEY,
    JSON_COLUMNS,
    OPEN_SQL,
    VERSION_COUNTS_SQL,
    VERSIONED,
    _before,
    _count,
    and_sql,
    order_sql,
    sum_by,
    where_sql,
)

DURATION_SQL: Final = {("reported_at", "accepted_at"): "gridmap_ms(reported_at, accepted_at)",
                       ("reported_at", "resolved_at"): "gridmap_ms(reported_at, resolved_at)"}
TALLY_SQL: Final = ("SELECT category, status, (accepted_at IS NOT NULL)::int, (resolved_at <= due_at)::int, rating, "
                    "count(*) FROM incidents {where} GROUP BY 1, 2, 3, 4, 5")
PLACES_SQL: Final = "SELECT grid_code, community_code, count(*) FROM incidents {where} GROUP BY 1, 2"
BULK_CHUNK: Final = 10_000
"""Incidents a bulk insert reserves ids for and copies at a time (with their events)."""
_INSERTED: Final = [k for k in INCIDENT_COLUMNS if k not in JSON_COLUMNS]


class PostgisIncidents:
    """Mixed into ``PostgisStore``: needs ``connect()`` and ``_transaction()``."""

    incident_rows_read = 0

    def insert_incident(self, record: dict[str, Any], event: dict[str, Any], *, idempotency_key: str | None = None,
                        idempotency_scope: str = "", request_hash: str = "") -> tuple[int, bool]:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            if idempotency_key is not None:
                # two processes retrying the same key at once: the second waits, then finds the first's incident
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))",
                             (idempotency_scope, idempotency_key))
                conn.execute("DELETE FROM idempotency_keys WHERE created_at < %s",
                             (_before(record["reported_at"], IDEMPOTENCY_TTL),))
                row = conn.execute("SELECT incident_id, request_hash FROM idempotency_keys WHERE scope=%s AND key=%s",
                                   (idempotency_scope, idempotency_key)).fetchone()
                if row is not None:
                    if row[1] != request_hash:
                        raise Conflict("该 Idempotency-Key 已用于另一份不同的上报")
                    return int(row[0]), False
            incident_id = _insert(conn, record, [event])
            _bump_revision(conn)
            if idempotency_key is not None:
                conn.execute("INSERT INTO idempotency_keys VALUES (%s, %s, %s, %s, %s)",
                             (idempotency_scope, idempotency_key, incident_id, request_hash, record["reported_at"]))
            return incident_id, True

    def insert_incidents(self, rows: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]) -> int:
        """A history in one transaction: ids reserved from the sequence a chunk at a time, rows and
        events copied (``COPY``), so a reader sees all of it or none."""
        count = 0
        with self._transaction() as conn:  # type: ignore[attr-defined]
            iterator = iter(rows)
            while chunk := list(itertools.islice(iterator, BULK_CHUNK)):
                ids = [r[0] for r in conn.execute(
                    "SELECT nextval(pg_get_serial_sequence('incidents', 'fid')) FROM generate_series(1, %s)",
                    (len(chunk),))]
                _copy_chunk(conn, chunk, ids)
                count += len(chunk)
            _bump_revision(conn)
        return count

    def get_incident(self, incident_id: int) -> dict[str, Any] | None:
        with self.connect() as conn:  # type: ignore[attr-defined]
            row = conn.cursor(row_factory=dict_row).execute(
                f"SELECT {_COLUMNS} FROM incidents WHERE fid=%s", (incident_id,)).fetchone()
        return _incident(row) if row else None

    def update_incident(self, incident_id: int, *, version: int, changes: dict[str, Any],
                        event: dict[str, Any]) -> dict[str, Any]:
        """Applied only if the stored version is still ``version``: the row lock makes a concurrent
        update wait, then re-check the version, so one of two racing writers gets a Conflict."""
        values = {k: (Jsonb(v) if k in JSON_COLUMNS else v) for k, v in changes.items()}
        with self._transaction() as conn:  # type: ignore[attr-defined]
            assignments = ", ".join(f"{_column(k)}=%s" for k in values)
            row = conn.cursor(row_factory=dict_row).execute(
                f"UPDATE incidents SET {assignments}, version=version+1 WHERE fid=%s AND version=%s "
                f"RETURNING {_COLUMNS}", [*values.values(), incident_id, version]).fetchone()
            if row is None:
                raise Conflict("事件已被他人修改（版本不一致），请刷新后重试")
            _bump_revision(conn)
            _insert_events(conn, incident_id, [event])
        return _incident(row)

    def incident_events(self, incident_id: int) -> list[dict[str, Any]]:
        with self.connect() as conn:  # type: ignore[attr-defined]
            return conn.cursor(row_factory=dict_row).execute(
                f"SELECT seq, {', '.join(EVENT_COLUMNS)} FROM incident_events WHERE incident_id=%s ORDER BY seq",
                (incident_id,)).fetchall()

    def query_incidents(self, query: IncidentQuery, *, limit: int | None = None, offset: int = 0,
                        columns: str = "*") -> tuple[list[dict[str, Any]], int]:
        """Newest first; the total from the same snapshot, counted only when the page cannot tell it.
        Served by the read replica when there is one (a listing may lag the primary by a moment)."""
        where, params = where_sql(query, mark="%s")
        wanted = _COLUMNS if columns == "*" else columns

        def work(conn: psycopg.Connection) -> tuple[list[dict[str, Any]], int]:
            with _snapshot(conn):
                if limit == 0:
                    return [], _count(conn, where, params)
                page = "" if limit is None else " LIMIT %s OFFSET %s"
                extra = [] if limit is None else [int(limit), int(offset)]
                rows = conn.cursor(row_factory=dict_row).execute(
                    f"SELECT {wanted} FROM incidents {where} ORDER BY {order_sql(query)}{page}", [*params, *extra]).fetchall()
                if limit is None:
                    total = len(rows)
                elif len(rows) < limit and (rows or offset == 0):
                    total = offset + len(rows)
                else:
                    total = _count(conn, where, params)
                return rows, total

        if query.near is not None:  # the duplicate search at intake must see a report made a moment ago
            with self.connect() as conn:  # type: ignore[attr-defined]
                rows, total = work(conn)
        else:
            rows, total = self.read(work)  # type: ignore[attr-defined]
        self.incident_rows_read += len(rows)
        return [_incident(r) if columns == "*" else r for r in rows], total

    def incident_revision(self) -> str:
        """From where the listings come (the replica when there is one), so that a page cached under this
        revision holds what that revision holds."""
        row = self.read(lambda conn: conn.execute(  # type: ignore[attr-defined]
            "SELECT value FROM gridmap_meta WHERE key=%s", (INCIDENT_REVISION_KEY,)).fetchone())
        return str(row[0]) if row else "0"

    def next_incident_due(self, now: str) -> str | None:
        return self.read(lambda conn: conn.execute(  # type: ignore[attr-defined]
            f"SELECT min(due_at) FROM incidents WHERE due_at >= %s AND {OPEN_SQL}", (now,)).fetchone()[0])

    def incident_counts_by_version(self, query: IncidentQuery) -> dict[tuple[str, int], int]:
        where, params = where_sql(query, mark="%s")
        sql = VERSION_COUNTS_SQL.format(where=and_sql(where, *VERSIONED))
        rows = self.read(lambda conn: conn.execute(sql, params).fetchall())  # type: ignore[attr-defined]
        return {(grid, int(version)): int(n) for grid, version, n in rows}

    def incident_tally(self, query: IncidentQuery, *, now: str) -> IncidentTally:
        """Every figure from one snapshot, counted in the database (the replica when there is one)."""
        where, params = where_sql(query, mark="%s")

        def work(conn: psycopg.Connection) -> IncidentTally:
            with _snapshot(conn):
                if query == IncidentQuery(since=query.since, until=query.until):
                    tally, places = _tally_of_period(conn, query.since, query.until)
                else:
                    tally = conn.execute(TALLY_SQL.format(where=where), params).fetchall()
                    places = conn.execute(PLACES_SQL.format(where=where), params).fetchall()
                overdue = conn.execute(f"SELECT count(*) FROM incidents {and_sql(where, 'due_at < %s', OPEN_SQL)}",
                                       [*params, now]).fetchone()[0]
                accepted = sum(r[-1] for r in tally if r[2])
                resolved = sum(r[-1] for r in tally if r[3] is not None)
                return IncidentTally(
                    total=sum(r[-1] for r in tally), by_status=sum_by(tally, 1), by_category=sum_by(tally, 0),
                    by_grid=sum_by(places, 0), by_community=sum_by(places, 1),
                    accepted=accepted, resolved=resolved,
                    resolved_on_time=sum(r[-1] for r in tally if r[3]),
                    rated=sum(r[-1] for r in tally if r[4] is not None),
                    rating_sum=sum(r[4] * r[-1] for r in tally if r[4] is not None),
                    overdue_open=int(overdue),
                    response_middle_ms=_middle(conn, ("reported_at", "accepted_at"), where, params, accepted),
                    resolution_middle_ms=_middle(conn, ("reported_at", "resolved_at"), where, params, resolved),
                )

        return self.read(work)  # type: ignore[attr-defined]


_COLUMNS: Final = "fid, " + ", ".join(INCIDENT_COLUMNS)
"""Every column but the geometry (derived from lon and lat)."""


def _column(name: str) -> str:
    if name not in INCIDENT_COLUMNS:
        raise ValueError(f"not an incident column: {name}")
    return name


def _incident(row: dict[str, Any]) -> dict[str, Any]:
    record = dict(row)
    record["id"] = record.pop("fid")
    return record


def _insert(conn: psycopg.Connection, record: dict[str, Any], events: list[dict[str, Any]]) -> int:
    names = [k for k in _INSERTED if k in record] + list(JSON_COLUMNS)
    values = [record[k] for k in _INSERTED if k in record] + [Jsonb(record.get(k, [])) for k in JSON_COLUMNS]
    incident_id = conn.execute(f"INSERT INTO incidents ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) "
                               "RETURNING fid", values).fetchone()[0]
    _insert_events(conn, int(incident_id), events)
    return int(incident_id)


def _insert_events(conn: psycopg.Connection, incident_id: int, events: list[dict[str, Any]]) -> None:
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO incident_events ({', '.join(EVENT_COLUMNS)}) "
                        f"VALUES ({', '.join(['%s'] * len(EVENT_COLUMNS))})",
                        [[incident_id if c == "incident_id" else e.get(c) for c in EVENT_COLUMNS] for e in events])


def _copy_chunk(conn: psycopg.Connection, chunk: list[tuple[dict[str, Any], list[dict[str, Any]]]],
                ids: list[int]) -> None:
    """COPY the incidents (ids given) and then their events, in order. Columns a record lacks keep
    their defaults, as in ``_insert``: records of one history share their keys, so one COPY a shape."""
    shapes: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for fid, (record, _) in zip(ids, chunk):
        keys = tuple(k for k in _INSERTED if k in record)
        shapes.setdefault(keys, []).append(
            (fid, *(record[k] for k in keys), *(Jsonb(record.get(k, [])) for k in JSON_COLUMNS)))
    for keys, rows in shapes.items():
        with conn.cursor().copy(f"COPY incidents (fid, {', '.join(keys)}, {', '.join(JSON_COLUMNS)}) FROM STDIN") as w:
            for row in rows:
                w.write_row(row)
    fields = EVENT_COLUMNS[1:]
    with conn.cursor().copy(f"COPY incident_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as w:
        for fid, (_, events) in zip(ids, chunk):
            for event in events:
                w.write_row((fid, *(event.get(f) for f in fields)))


def _bump_revision(conn: psycopg.Connection) -> None:
    """A count of incident writes and a random part (never repeats, even after a restore), in the
    writing transaction; the row lock orders concurrent writers."""
    conn.execute(
        "INSERT INTO gridmap_meta VALUES (%(key)s, '1.' || %(tail)s) ON CONFLICT (key) DO UPDATE SET value = "
        "(split_part(gridmap_meta.value, '.', 1)::bigint + 1)::text || '.' || %(tail)s",
        {"key": INCIDENT_REVISION_KEY, "tail": secrets.token_hex(6)})


@contextmanager
def _snapshot(conn: psycopg.Connection) -> Iterator[None]:
    """Several statements as one read: a REPEATABLE READ transaction (ends with the block)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def _tally_of_period(conn: psycopg.Connection, since: str | None, until: str | None
                     ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Whole months from the rollups (migration 0004), the ragged ends (under a month each) from the
    incidents: the same split as the GeoPackage store's (``incident_rollups.split_period``)."""
    months, edges = incident_rollups.split_period(since, until)
    tally: list[tuple[Any, ...]] = []
    places: list[tuple[Any, ...]] = []
    if months is not None:
        clauses = [c for c, v in (("month >= %s", months[0]), ("month < %s", months[1])) if v is not None]
        values = [v for v in months if v is not None]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        tally += conn.execute(incident_rollups.TALLY_SELECT.format(where=where), values).fetchall()
        places += conn.execute(incident_rollups.PLACES_SELECT.format(where=where), values).fetchall()
    for start, end in edges:
        where, params = where_sql(IncidentQuery(since=start, until=end), mark="%s")
        tally += conn.execute(TALLY_SQL.format(where=where), params).fetchall()
        places += conn.execute(PLACES_SQL.format(where=where), params).fetchall()
    return tally, places


def _middle(conn: psycopg.Connection, span: tuple[str, str], where: str, params: list[Any], count: int
            ) -> tuple[int, ...]:
    """The middle one or two durations of ``span`` in ms, walked in the order of their index."""
    if count == 0:
        return ()
    duration = DURATION_SQL[span]
    rows = conn.execute(f"SELECT {duration} FROM incidents {and_sql(where, f'{duration} IS NOT NULL')} "
                        f"ORDER BY {duration} LIMIT %s OFFSET %s", [*params, 2 - count % 2, (count - 1) // 2]).fetchall()
    return tuple(int(r[0]) for r in rows)
