"""Incident, audit-log, idempotency and token tables of the GeoPackage store.

``incidents`` is a GeoPackage feature table (QGIS shows it as a point layer); the audit log is
append-only, enforced by triggers, so not even a bug in the service can edit history. Every write
is one SQLite transaction committed with ``synchronous=FULL`` before the API answers, so an
acknowledged report survives the process being killed.

Idempotency keys belong to whoever sent them (a staff actor, or a public client address) and are
forgotten after ``IDEMPOTENCY_TTL``: another sender's key never finds, nor reveals, an incident.
"""

from __future__ import annotations

import itertools
import json
import operator
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

import shapely

from gridmap.errors import Conflict
from gridmap.store import incident_rollups
from gridmap.store.base import IncidentQuery, IncidentTally

IDEMPOTENCY_TTL: Final = timedelta(hours=24)
"""A retry later than this is a new report; expired keys are purged whenever a key is stored."""

INCIDENT_COLUMNS: dict[str, str] = {
    "category": "TEXT NOT NULL",
    "description": "TEXT NOT NULL",
    "lon": "REAL NOT NULL",
    "lat": "REAL NOT NULL",
    "address": "TEXT",
    "match_level": "TEXT",
    "community_code": "TEXT",
    "grid_code": "TEXT",
    "precinct_code": "TEXT",
    "reporter_name": "TEXT",
    "reporter_phone": "TEXT",
    "source": "TEXT NOT NULL",
    "priority": "TEXT NOT NULL",
    "status": "TEXT NOT NULL",
    "assignee_code": "TEXT",
    "boundary_version": "INTEGER",
    "co_handlers": "TEXT NOT NULL DEFAULT '[]'",
    "suggested_units": "TEXT NOT NULL DEFAULT '[]'",
    "duplicate_of": "TEXT NOT NULL DEFAULT '[]'",
    "flags": "TEXT NOT NULL DEFAULT '[]'",
    "supervised_by": "TEXT",
    "supervised_at": "TEXT",
    "merged_into": "INTEGER",
    "reported_at": "TEXT NOT NULL",
    "accepted_at": "TEXT",
    "dispatched_at": "TEXT",
    "started_at": "TEXT",
    "resolved_at": "TEXT",
    "verified_at": "TEXT",
    "closed_at": "TEXT",
    "cancelled_at": "TEXT",
    "due_at": "TEXT NOT NULL",
    "rating": "INTEGER",
    "comment": "TEXT",
    "version": "INTEGER NOT NULL DEFAULT 1",
    "updated_at": "TEXT NOT NULL",
}
JSON_COLUMNS = ("co_handlers", "suggested_units", "duplicate_of", "flags")
EVENT_COLUMNS = ("incident_id", "at", "actor", "role", "action", "from_status", "to_status", "note", "reply")
"""``note`` is for staff; ``reply`` is the public answer the reporter reads with the receipt."""

HANDLED_STATUSES: Final = ("resolved", "verified", "closed", "cancelled")
"""``gridmap.incidents.workflow.DONE`` as this store spells it in SQL (a test keeps the two equal)."""
OPEN_SQL: Final = f"status NOT IN ({', '.join(repr(s) for s in HANDLED_STATUSES)})"
"""Not yet handled: written once, because SQLite uses the partial index of open incidents only
for a query that repeats its condition word for word."""


def _duration_ms(start: str, end: str) -> str:
    """Milliseconds from ``start`` to ``end`` (NULL when ``end`` is). SQLite keeps times to the
    millisecond (julianday() is milliseconds / 86,400,000), so the rounded difference is exact;
    julianday() rather than unixepoch() keeps the index readable by SQLite before 3.38 (QGIS)."""
    return f"round((julianday({end}) - julianday({start})) * 86400000)"


RESPONSE_MS: Final = _duration_ms("reported_at", "accepted_at")
RESOLUTION_MS: Final = _duration_ms("reported_at", "resolved_at")
DURATIONS: Final = {("reported_at", "accepted_at"): ("incidents_response_ms", RESPONSE_MS),
                    ("reported_at", "resolved_at"): ("incidents_resolution_ms", RESOLUTION_MS)}
"""The durations whose medians the statistics give, each with the index that holds it sorted."""

TALLY_KEYS: Final = "category, status, accepted_at IS NOT NULL, resolved_at <= due_at, rating"
"""What the statistics count by, besides places: one GROUP BY over an index in this order gives
counts by category and status, responses, resolutions, on time (NULL: not resolved) and ratings."""
PLACE_KEYS: Final = "grid_code, community_code"

INDEXES: Final = {
    # Listings, newest first: an SQLite index on x holds (x, fid), so equal x come in fid order.
    "incidents_status": "(status)",
    "incidents_community": "(community_code)",
    "incidents_assignee": "(assignee_code)",
    "incidents_period": f"(reported_at, {TALLY_KEYS}, {PLACE_KEYS})",  # and the ragged ends of a period
    "incidents_category": "(category, reported_at)",  # also the duplicate search at intake
    # Overdue: only the incidents still open, by due time (a few per cent of the table).
    "incidents_open_due": f"(due_at, status, reported_at) WHERE {OPEN_SQL}",
    # Statistics over any filter: each walks one index in key order, reading no row (a period of reports
    # is mostly read from the monthly counts of ``incident_rollups``).
    "incidents_tally": f"({TALLY_KEYS}, reported_at)",  # and listings by category and status
    "incidents_places": f"({PLACE_KEYS}, reported_at)",  # and listings by grid
    "incidents_response_ms": f"({RESPONSE_MS}, reported_at)",
    "incidents_resolution_ms": f"({RESOLUTION_MS}, reported_at)",
    # What changed since a time: the map's prepared incidents take in only those (issue #10).
    "incidents_updated": "(updated_at)",
}
"""Every index of the incidents table, by name: what the listings, the overdue list and the
statistics read instead of the table (tests check the plans with EXPLAIN QUERY PLAN)."""
OBSOLETE_INDEXES: Final = ("incidents_grid", "incidents_reported")  # led by incidents_places, incidents_period
"""Indexes of earlier releases that another index now covers: dropped when a store is opened."""
INCIDENT_REVISION_KEY: Final = "incident_revision"
SCHEMA_VERSION: Final = 4
"""The GeoPackage store's layout: 1 for every store before versions were recorded (issue #11), whose
upgrades ``_prepare_schema`` still makes (secret moved out, scoped idempotency keys, public replies,
monthly rollups); 2 records itself; 3 adds ``incidents_updated``; 4 adds
incidents.boundary_version (issue #14). Raise it with each later change of these
tables (stores are upgraded when opened, and by ``gridmap migrate``)."""
ANALYSIS_LIMIT: Final = 10_000
"""Index entries ANALYZE samples per index (about 15 ms for 540,000 incidents). Without its figures
SQLite's planner takes every index key as equally selective and may walk every closed incident
to list the few of one grid; roughly right figures are enough to tell nine statuses from ten
thousand grids."""
BULK_CACHE_KIB: Final = 256 * 1024
"""SQLite's page cache while a bulk insert runs (default: 2 MiB): the new rows' pages, and the sorts
that build the incident indexes again, stay in memory. Given back when the insert ends."""

BULK_CHUNK: Final = 10_000
"""Incidents a bulk insert turns into tuples and hands to SQLite at a time (with their events)."""
ROWS_PER_STATEMENT: Final = 100
"""Rows of one ``INSERT … VALUES (…), (…)`` of a bulk insert (fewer if SQLite's limit of parameters says so)."""

INDEX_DDL: Final = [f"CREATE INDEX IF NOT EXISTS {name} ON incidents{columns}" for name, columns in INDEXES.items()]
_DDL = [
    "CREATE TABLE IF NOT EXISTS incidents (fid INTEGER PRIMARY KEY AUTOINCREMENT, "
    + ", ".join(f"{name} {kind}" for name, kind in INCIDENT_COLUMNS.items())
    + ", geom POINT)",
    *(f"DROP INDEX IF EXISTS {name}" for name in OBSOLETE_INDEXES),
    *INDEX_DDL,
    "CREATE TABLE IF NOT EXISTS incident_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "incident_id INTEGER NOT NULL REFERENCES incidents(fid), at TEXT NOT NULL, actor TEXT NOT NULL, "
    "role TEXT NOT NULL, action TEXT NOT NULL, from_status TEXT, to_status TEXT, note TEXT, reply TEXT)",
    "CREATE INDEX IF NOT EXISTS incident_events_incident ON incident_events(incident_id, seq)",
    "CREATE TRIGGER IF NOT EXISTS incident_events_no_update BEFORE UPDATE ON incident_events "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS incident_events_no_delete BEFORE DELETE ON incident_events "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TABLE IF NOT EXISTS idempotency_keys (scope TEXT NOT NULL, key TEXT NOT NULL, "
    "incident_id INTEGER NOT NULL, request_hash TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (scope, key))",
    "CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys(created_at)",
    "CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, hash TEXT UNIQUE NOT NULL, role TEXT NOT NULL, "
    "worker_code TEXT, label TEXT, created_at TEXT NOT NULL, revoked_at TEXT)",
]


def _add_missing_event_columns(conn: sqlite3.Connection) -> None:
    """Stores written before public replies existed get the column (ALTER passes the append-only triggers);
    stores written before boundary versions get the incidents' version column (schema version 4)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(incident_events)")}
    if "reply" not in have:
        conn.execute("ALTER TABLE incident_events ADD COLUMN reply TEXT")
    have = {row[1] for row in conn.execute("PRAGMA table_info(incidents)")}
    if "boundary_version" not in have:
        conn.execute("ALTER TABLE incidents ADD COLUMN boundary_version INTEGER")


def _row_to_incident(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    record["id"] = record.pop("fid")
    record.pop("geom", None)
    for name in JSON_COLUMNS:
        record[name] = json.loads(record[name])
    return record


class IncidentTables:
    """Mixed into ``GeoPackageStore``: needs ``connect()``, ``writing()``, ``_initialise(conn)``,
    ``_move_legacy_secret(conn)`` and ``checkpoint()``."""

    _incident_schema_ready = False
    incident_rows_read = 0
    """Incidents handed out by ``query_incidents`` through this store object: what requests cost
    (a cached map page, for one, reads none)."""

    @contextmanager
    def _incident_conn(self) -> Iterator[sqlite3.Connection]:
        with self.connect() as conn:  # type: ignore[attr-defined]
            conn.row_factory = sqlite3.Row
            if not self._incident_schema_ready:
                self._prepare_schema(conn)
            yield conn

    def _prepare_schema(self, conn: sqlite3.Connection) -> None:
        """Create the incident tables and upgrade an earlier release's store; once per store object.

        May run under ``write_lock`` already (from ``_transaction``), so it does not take it.
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._initialise(conn)  # type: ignore[attr-defined]
            _drop_unscoped_idempotency_keys(conn)
            for statement in _DDL:
                conn.execute(statement)
            _add_missing_event_columns(conn)
            incident_rollups.prepare(conn)
            conn.execute("INSERT OR REPLACE INTO gridmap_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            _analyze(conn)
            conn.execute(
                "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, "
                "last_change, srs_id) VALUES ('incidents', 'features', 'incidents', '诉求/事件', "
                "strftime('%Y-%m-%dT%H:%M:%fZ','now'), 4326)"
            )
            conn.execute(
                "INSERT OR IGNORE INTO gpkg_geometry_columns VALUES ('incidents', 'geom', 'POINT', 4326, 0, 0)"
            )
            moved = self._move_legacy_secret(conn)  # type: ignore[attr-defined]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._incident_schema_ready = True
        if moved:
            self.checkpoint()  # type: ignore[attr-defined]  # the WAL may still hold the deleted row

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self.writing(), self._incident_conn() as conn:  # type: ignore[attr-defined]
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _insert(conn: sqlite3.Connection, record: dict[str, Any], events: Iterable[dict[str, Any]]) -> int:
        from gridmap.store.geopackage import encode_geometries

        values = {k: (json.dumps(record[k], ensure_ascii=False) if k in JSON_COLUMNS else record.get(k))
                  for k in INCIDENT_COLUMNS if k in record or k in JSON_COLUMNS}
        for k in JSON_COLUMNS:
            values[k] = json.dumps(record.get(k, []), ensure_ascii=False)
        geom = encode_geometries(shapely.points([[record["lon"], record["lat"]]]))[0]
        names = list(values) + ["geom"]
        cursor = conn.execute(
            f"INSERT INTO incidents ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [*values.values(), geom],
        )
        incident_id = int(cursor.lastrowid)
        conn.executemany(
            f"INSERT INTO incident_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})",
            [[incident_id if c == "incident_id" else e.get(c) for c in EVENT_COLUMNS] for e in events],
        )
        return incident_id

    def insert_incident(
        self, record: dict[str, Any], event: dict[str, Any], *, idempotency_key: str | None = None,
        idempotency_scope: str = "", request_hash: str = "",
    ) -> tuple[int, bool]:
        """Returns (id, created); a key this scope used within ``IDEMPOTENCY_TTL`` returns the first
        incident it created. ``record["reported_at"]`` is the clock keys are dated and expired by."""
        with self._transaction() as conn:
            if idempotency_key is not None:
                conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?",
                             (_before(record["reported_at"], IDEMPOTENCY_TTL),))
                row = conn.execute("SELECT incident_id, request_hash FROM idempotency_keys WHERE scope=? AND key=?",
                                   (idempotency_scope, idempotency_key)).fetchone()
                if row is not None:
                    if row["request_hash"] != request_hash:
                        raise Conflict("该 Idempotency-Key 已用于另一份不同的上报")
                    return int(row["incident_id"]), False
            incident_id = self._insert(conn, record, [event])
            _bump_incident_revision(conn)
            if idempotency_key is not None:
                conn.execute("INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                             (idempotency_scope, idempotency_key, incident_id, request_hash, record["reported_at"]))
            return incident_id, True

    def insert_incidents(self, rows: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]) -> int:
        """Bulk insert (a history): each record with its full event list, in one transaction.

        Inside that transaction the incident indexes and the rollups' insert trigger are set aside,
        the rows go in ``BULK_CHUNK`` at a time as tuples (``ROWS_PER_STATEMENT`` a statement), then the
        indexes are built again (one sort each), the new rows counted into the rollups (one GROUP BY
        each, ``count_inserted``) and the trigger put back: what inserting them one by one would store,
        at a third of the cost for a city's history (``docs/benchmarks.md``). Other connections see
        the store before or after, never between; a failure rolls all of it back, indexes and trigger
        included. Building the indexes again sorts the whole table, so a few rows added to a large
        store cost seconds: this is for histories, not for reports."""
        count = 0
        with self._transaction() as conn, _bulk_cache(conn):
            first = _next_fid(conn)
            for name in INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS {name}")
            incident_rollups.stop_counting_inserts(conn)
            for chunk in _chunks(rows, BULK_CHUNK):
                _insert_chunk(conn, chunk, first + count)
                count += len(chunk)
            for statement in INDEX_DDL:
                conn.execute(statement)
            incident_rollups.count_inserted(conn, first)
            _bump_incident_revision(conn)
            _analyze(conn)  # the table may have grown a hundredfold
        self.checkpoint()  # type: ignore[attr-defined]
        return count

    def get_incident(self, incident_id: int) -> dict[str, Any] | None:
        with self._incident_conn() as conn:
            row = conn.execute("SELECT * FROM incidents WHERE fid=?", (incident_id,)).fetchone()
        return _row_to_incident(row) if row else None

    def update_incident(
        self, incident_id: int, *, version: int, changes: dict[str, Any], event: dict[str, Any]
    ) -> dict[str, Any]:
        """Apply changes only if the stored version is still ``version`` (no lost updates)."""
        sets = {k: (json.dumps(v, ensure_ascii=False) if k in JSON_COLUMNS else v) for k, v in changes.items()}
        with self._transaction() as conn:
            assignments = ", ".join(f"{k}=?" for k in sets)
            cursor = conn.execute(
                f"UPDATE incidents SET {assignments}, version=version+1 WHERE fid=? AND version=?",
                [*sets.values(), incident_id, version],
            )
            if cursor.rowcount != 1:
                raise Conflict("事件已被他人修改（版本不一致），请刷新后重试")
            _bump_incident_revision(conn)
            conn.execute(
                f"INSERT INTO incident_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})",
                [incident_id if c == "incident_id" else event.get(c) for c in EVENT_COLUMNS],
            )
            row = conn.execute("SELECT * FROM incidents WHERE fid=?", (incident_id,)).fetchone()
        return _row_to_incident(row)

    def incident_events(self, incident_id: int) -> list[dict[str, Any]]:
        with self._incident_conn() as conn:
            rows = conn.execute(
                f"SELECT seq, {', '.join(EVENT_COLUMNS)} FROM incident_events WHERE incident_id=? ORDER BY seq",
                (incident_id,),
            ).fetchall()
        return [dict(r) for r in rows]

    def query_incidents(self, query: IncidentQuery, *, limit: int | None = None, offset: int = 0,
                        columns: str = "*") -> tuple[list[dict[str, Any]], int]:
        """A page is found by ids first (an index holds them; only ids are sorted), then read.
        Counts only when the page cannot tell the total: a short page (or all rows) is the end."""
        where, params = where_sql(query)
        with self._incident_conn() as conn, _snapshot(conn):
            if limit == 0:
                return [], _count(conn, where, params)
            if limit is None:
                rows = conn.execute(f"SELECT {columns} FROM incidents {where} ORDER BY {order_sql(query)}",
                                    params).fetchall()
            else:
                rows = _page(conn, columns, where, params, limit, offset, order_sql(query))
            if limit is None:
                total = len(rows)
            elif len(rows) < limit and (rows or offset == 0):
                total = offset + len(rows)
            else:
                total = _count(conn, where, params)
        self.incident_rows_read += len(rows)
        return [_row_to_incident(r) if columns == "*" else dict(r) for r in rows], total

    def incident_revision(self) -> str:
        """Changes in the same transaction as every incident write; never repeats (``_bump_incident_revision``)."""
        with self._incident_conn() as conn:
            row = conn.execute("SELECT value FROM gridmap_meta WHERE key=?",
                               (INCIDENT_REVISION_KEY,)).fetchone()
        return str(row[0]) if row else "0"

    def next_incident_due(self, now: str) -> str | None:
        with self._incident_conn() as conn:
            row = conn.execute(f"SELECT min(due_at) FROM incidents INDEXED BY incidents_open_due "
                               f"WHERE due_at >= ? AND {OPEN_SQL}", (now,)).fetchone()
        return row[0]

    def incident_counts_by_version(self, query: IncidentQuery) -> dict[tuple[str, int], int]:
        where, params = where_sql(query)
        with self._incident_conn() as conn:
            rows = conn.execute(VERSION_COUNTS_SQL.format(where=and_sql(where, *VERSIONED)), params).fetchall()
        return {(grid, int(version)): int(n) for grid, version, n in rows}

    def incident_tally(self, query: IncidentQuery, *, now: str) -> IncidentTally:
        """Every figure in one read transaction (one snapshot), reading no incident row: a period of
        reports from the monthly counts and, for its ragged ends, an index; any other filter from two
        GROUP BY walks over indexes. Medians from half-walks of the durations' indexes."""
        where, params = where_sql(query)
        with self._incident_conn() as conn, _snapshot(conn):
            if query == IncidentQuery(since=query.since, until=query.until):
                tally, places = _tally_of_period(conn, query.since, query.until)
            else:
                tally, places = _tally_of_rows(conn, where, params, "incidents_tally", "incidents_places")
            overdue = conn.execute(f"SELECT count(*) FROM incidents INDEXED BY incidents_open_due "
                                   f"{and_sql(where, 'due_at < ?', OPEN_SQL)}", [*params, now]).fetchone()[0]
            accepted = sum(t.n for t in tally if t.answered)
            resolved = sum(t.n for t in tally if t.on_time is not None)
            return IncidentTally(
                total=sum(t.n for t in tally),
                by_status=sum_by(tally, 1), by_category=sum_by(tally, 0),
                by_grid=sum_by(places, 0), by_community=sum_by(places, 1),
                accepted=accepted, resolved=resolved,
                resolved_on_time=sum(t.n for t in tally if t.on_time),
                rated=sum(t.n for t in tally if t.rating is not None),
                rating_sum=sum(t.rating * t.n for t in tally if t.rating is not None),
                overdue_open=int(overdue),
                response_middle_ms=_middle(conn, ("reported_at", "accepted_at"), where, params, accepted),
                resolution_middle_ms=_middle(conn, ("reported_at", "resolved_at"), where, params, resolved),
            )

    # tokens -------------------------------------------------------------------------------------
    def insert_token(self, *, token_id: str, token_hash: str, role: str, worker_code: str | None,
                     label: str | None, created_at: str) -> None:
        with self._transaction() as conn:
            conn.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, NULL)",
                         (token_id, token_hash, role, worker_code, label, created_at))

    def find_token(self, token_hash: str) -> dict[str, Any] | None:
        with self._incident_conn() as conn:
            row = conn.execute("SELECT * FROM tokens WHERE hash=? AND revoked_at IS NULL", (token_hash,)).fetchone()
        return dict(row) if row else None

    def revoke_token(self, token_id: str, *, at: str) -> bool:
        with self._transaction() as conn:
            cursor = conn.execute("UPDATE tokens SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (at, token_id))
            return cursor.rowcount == 1


def _bump_incident_revision(conn: sqlite3.Connection) -> None:
    """A count of incident writes and a random part, changed inside the writing transaction.

    The count alone could repeat: restore an older backup, write again, and the count reaches a
    value it had before with other content; a cache keyed by it would serve a stale page. The
    random part never repeats. Cheaper than ``max(updated_at)``, which misses edits in one second.
    """
    row = conn.execute("SELECT value FROM gridmap_meta WHERE key=?", (INCIDENT_REVISION_KEY,)).fetchone()
    head = str(row[0]).split(".")[0] if row else "0"
    count = int(head) + 1 if head.isdigit() else 1
    conn.execute("INSERT OR REPLACE INTO gridmap_meta VALUES (?, ?)",
                 (INCIDENT_REVISION_KEY, f"{count}.{secrets.token_hex(6)}"))


def _next_fid(conn: sqlite3.Connection) -> int:
    """The id AUTOINCREMENT would give the next incident: above any ever used, even if deleted since."""
    row = conn.execute("SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'incidents'), 0), "
                       "coalesce((SELECT max(fid) FROM incidents), 0))").fetchone()
    return int(row[0]) + 1


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


_to_json = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps(value, ensure_ascii=False)`` without making an encoder per call."""
_INSERT_EVENT: Final = f"INSERT INTO incident_events ({', '.join(EVENT_COLUMNS)})"


def _json_cell(value: Any) -> str:
    return "[]" if value == [] else _to_json(value)


class _Columns(NamedTuple):
    """How records with one set of keys become rows: the INSERT, and the record's plain columns."""

    head: str
    plain: Callable[[dict[str, Any]], tuple[Any, ...]]


def _columns_of(keys: tuple[str, ...]) -> _Columns:
    """The columns ``_insert`` writes for a record with these keys: its own, and every JSON column
    (``[]`` when it lacks one); any other column it lacks keeps its default."""
    plain = [k for k in INCIDENT_COLUMNS if k in keys and k not in JSON_COLUMNS]
    names = ["fid", *plain, *JSON_COLUMNS, "geom"]
    return _Columns(f"INSERT INTO incidents ({', '.join(names)})", operator.itemgetter(*plain))  # lon, lat at least


def _insert_chunk(conn: sqlite3.Connection, chunk: list[tuple[dict[str, Any], list[dict[str, Any]]]],
                  first_fid: int) -> None:
    """Incidents with ids from ``first_fid`` on, in order, stored as ``_insert`` stores each, and
    their events, in order (their ``seq`` as one by one). Rows go to SQLite as tuples, many a statement."""
    from gridmap.store.geopackage import encode_geometries

    geoms = encode_geometries(shapely.points([r["lon"] for r, _ in chunk], [r["lat"] for r, _ in chunk]))
    plans: dict[tuple[str, ...], _Columns] = {}
    incidents: dict[str, list[tuple[Any, ...]]] = {}
    events: list[tuple[Any, ...]] = []
    fields = EVENT_COLUMNS[1:]
    for fid, (record, record_events), geom in zip(itertools.count(first_fid), chunk, geoms):
        keys = tuple(record)
        plan = plans.get(keys) or plans.setdefault(keys, _columns_of(keys))
        incidents.setdefault(plan.head, []).append(
            (fid, *plan.plain(record), *(_json_cell(record.get(k, [])) for k in JSON_COLUMNS), geom))
        events += [(fid, *map(event.get, fields)) for event in record_events]
    for head, rows in incidents.items():
        _insert_rows(conn, head, rows)
    _insert_rows(conn, _INSERT_EVENT, events)


def _insert_rows(conn: sqlite3.Connection, head: str, rows: list[tuple[Any, ...]]) -> None:
    """``INSERT … VALUES`` of every row, in order, ``ROWS_PER_STATEMENT`` rows a statement: a statement
    per row (``executemany``) costs about 40% more for the millions of events of a city's history."""
    if not rows:
        return
    width = len(rows[0])
    per = max(1, min(ROWS_PER_STATEMENT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    one = f"({', '.join('?' * width)})"
    whole = len(rows) - len(rows) % per
    if whole:
        conn.executemany(f"{head} VALUES {', '.join([one] * per)}",
                         (list(itertools.chain.from_iterable(rows[i:i + per])) for i in range(0, whole, per)))
    if whole < len(rows):
        conn.execute(f"{head} VALUES {', '.join([one] * (len(rows) - whole))}",
                     list(itertools.chain.from_iterable(rows[whole:])))


def _analyze(conn: sqlite3.Connection) -> None:
    """Refresh the planner's figures on the incident indexes (``ANALYSIS_LIMIT``)."""
    conn.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
    conn.execute("ANALYZE incidents")


@contextmanager
def _bulk_cache(conn: sqlite3.Connection) -> Iterator[None]:
    before = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size={int(before)}")


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """Several reads as one: in WAL mode each statement outside a transaction sees the latest commit."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


NEWEST_SQL: Final = "fid DESC"
URGENT_SQL: Final = (f"CASE WHEN priority = 'urgent' AND {OPEN_SQL} THEN 0 ELSE 1 END, "
                     f"CASE WHEN {OPEN_SQL} THEN 0 ELSE 1 END, due_at, fid DESC")
"""The most urgent first: open urgent reports, then every open report by due time (the longest overdue
first), then handled ones; the same SQL in both stores."""


def order_sql(q: IncidentQuery) -> str:
    """The ORDER BY of a listing (``IncidentQuery.order``); an unknown order is the newest first."""
    return URGENT_SQL if q.order == "urgent" else NEWEST_SQL


def _page(conn: sqlite3.Connection, columns: str, where: str, params: list[Any], limit: int, offset: int,
          order: str = NEWEST_SQL) -> list[sqlite3.Row]:
    """Rows ``offset`` to ``offset + limit`` in ``order`` (newest first by default). Sorting whole rows to
    keep fifty would read every match from the table (a category of a city: tens of thousands); sorting
    ids reads none (the urgent order reads the few columns it sorts by from the indexes)."""
    ids = [row[0] for row in conn.execute(
        f"SELECT fid FROM incidents {where} ORDER BY {order} LIMIT ? OFFSET ?", [*params, int(limit), int(offset)])]
    if not ids:
        return []
    inside = f"SELECT {columns} FROM incidents WHERE fid IN ({', '.join('?' * len(ids))}) "
    if order == NEWEST_SQL:
        return conn.execute(inside + "ORDER BY fid DESC", ids).fetchall()
    in_turn = " ".join(f"WHEN ? THEN {i}" for i in range(len(ids)))
    return conn.execute(inside + f"ORDER BY CASE fid {in_turn} END", [*ids, *ids]).fetchall()


def _count(conn: Any, where: str, params: list[Any]) -> int:
    """Incidents ``where`` selects (a connection of either store: the SQL is the same)."""
    return int(conn.execute(f"SELECT count(*) FROM incidents {where}", params).fetchone()[0])


VERSIONED: Final = ("grid_code IS NOT NULL", "boundary_version IS NOT NULL")
VERSION_COUNTS_SQL: Final = ("SELECT grid_code, boundary_version, count(*) FROM incidents {where} "
                             "GROUP BY grid_code, boundary_version")
"""Incidents per grid and the boundary version they were routed under (both stores)."""


def and_sql(where: str, *clauses: str) -> str:
    """``where`` (as made by ``_where``, possibly empty) with more conditions."""
    return (f"{where} AND " if where else "WHERE ") + " AND ".join(clauses)


class _Tally(NamedTuple):
    """One group of ``TALLY_KEYS`` and how many incidents it holds."""

    category: str
    status: str
    answered: int
    on_time: int | None
    rating: int | None
    n: int


def _tally_of_rows(conn: sqlite3.Connection, where: str, params: list[Any], tally_index: str, places_index: str
                   ) -> tuple[list[_Tally], list[tuple[Any, ...]]]:
    """(tally groups, place groups) of the incidents ``where`` selects, each from one index."""
    tally = [_Tally(*row) for row in conn.execute(
        f"SELECT {TALLY_KEYS}, count(*) FROM incidents INDEXED BY {tally_index} {where} GROUP BY 1, 2, 3, 4, 5",
        params)]
    places = conn.execute(f"SELECT {PLACE_KEYS}, count(*) FROM incidents INDEXED BY {places_index} {where} "
                          "GROUP BY 1, 2", params).fetchall()
    return tally, places


def _tally_of_period(conn: sqlite3.Connection, since: str | None, until: str | None
                     ) -> tuple[list[_Tally], list[tuple[Any, ...]]]:
    """Whole months from the rollups, ragged ends (under a month each) from ``incidents_period``."""
    months, edges = incident_rollups.split_period(since, until)
    tally: list[_Tally] = []
    places: list[tuple[Any, ...]] = []
    if months is not None:
        month_tally, places = incident_rollups.read_months(conn, months)
        tally = [_Tally(*row) for row in month_tally]
    for start, end in edges:
        where, params = where_sql(IncidentQuery(since=start, until=end))
        more_tally, more_places = _tally_of_rows(conn, where, params, "incidents_period", "incidents_period")
        tally += more_tally
        places += more_places
    return tally, places


def sum_by(rows: list[tuple[Any, ...]], position: int) -> dict[str | None, int]:
    """Counts by one key of rows (key, key, …, count) that were grouped by several."""
    out: dict[str | None, int] = {}
    for row in rows:
        out[row[position]] = out.get(row[position], 0) + int(row[-1])
    return out


def _middle(conn: sqlite3.Connection, span: tuple[str, str], where: str, params: list[Any], count: int
            ) -> tuple[int, ...]:
    """The middle one (odd ``count``) or two (even) of the sorted durations of ``span``, in ms.

    SQLite has no median: the duration's index is walked in order and the rows before the middle
    are skipped (OFFSET), which reads half the index and sorts nothing.
    """
    if count == 0:
        return ()
    index, duration = DURATIONS[span]
    rows = conn.execute(
        f"SELECT {duration} FROM incidents INDEXED BY {index} {and_sql(where, f'{duration} IS NOT NULL')} "
        f"ORDER BY {duration} LIMIT ? OFFSET ?", [*params, 2 - count % 2, (count - 1) // 2]).fetchall()
    return tuple(int(r[0]) for r in rows)


def _before(timestamp: str, span: timedelta) -> str:
    """The ISO 8601 UTC timestamp ``span`` earlier, in the stored format (so strings compare)."""
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00")) - span
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _drop_unscoped_idempotency_keys(conn: sqlite3.Connection) -> None:
    """Earlier releases keyed ``idempotency_keys`` by the key alone, for every sender at once. Those
    rows cannot be given a sender afterwards, so the table is dropped and made again with a scope;
    a retry that spans the upgrade is at worst one duplicate report."""
    columns = [r[1] for r in conn.execute("PRAGMA table_info(idempotency_keys)").fetchall()]
    if columns and "scope" not in columns:
        conn.execute("DROP TABLE idempotency_keys")


def where_sql(q: IncidentQuery, mark: str = "?") -> tuple[str, list[Any]]:
    """The WHERE clause of ``q`` and its parameters, with ``mark`` as the placeholder (``?`` for SQLite,
    ``%s`` for psycopg): one filter language for both stores."""
    clauses: list[str] = []
    params: list[Any] = []

    def add(sql: str, *values: Any) -> None:
        clauses.append(sql.replace("?", mark))
        params.extend(values)

    def among(column: str, values: tuple[str, ...]) -> None:
        add(f"{column} IN ({', '.join('?' * len(values))})" if values else "1 = 0", *values)

    if q.statuses:
        among("status", q.statuses)
    if q.categories:
        among("category", q.categories)
    if q.community:
        add("community_code = ?", q.community)
    if q.grids is not None:
        among("grid_code", q.grids)
    if q.grid:
        add("grid_code = ?", q.grid)
    if q.assignee:
        add("assignee_code = ?", q.assignee)
    if q.since:
        add("reported_at >= ?", q.since)
    if q.until:
        add("reported_at < ?", q.until)
    if q.bbox:
        minx, miny, maxx, maxy = q.bbox
        add("lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?", minx, maxx, miny, maxy)
    if q.overdue_at is not None:
        add(f"due_at < ? AND {OPEN_SQL}", q.overdue_at)
    if q.supervised_at is not None:
        add(f"(supervised_by IS NOT NULL OR due_at < ?) AND {OPEN_SQL}", q.supervised_at)
    if q.near is not None:
        lon, lat, dlon, dlat = q.near
        add("lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?", lon - dlon, lon + dlon, lat - dlat, lat + dlat)
    if q.updated_since is not None:
        add("updated_at >= ?", q.updated_since)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
