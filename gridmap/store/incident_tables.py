"""Incident, audit-log, idempotency and token tables of the GeoPackage store.

``incidents`` is a GeoPackage feature table (QGIS shows it as a point layer); the audit log is
append-only, enforced by triggers, so not even a bug in the service can edit history. Every write
is one SQLite transaction committed with ``synchronous=FULL`` before the API answers, so an
acknowledged report survives the process being killed.

Idempotency keys belong to whoever sent them (a staff actor, or a public client address) and are
forgotten after ``IDEMPOTENCY_TTL``: another sender's key never finds, nor reveals, an incident.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Final

import shapely

from gridmap.errors import Conflict
from gridmap.store.base import IncidentQuery

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

_DDL = [
    "CREATE TABLE IF NOT EXISTS incidents (fid INTEGER PRIMARY KEY AUTOINCREMENT, "
    + ", ".join(f"{name} {kind}" for name, kind in INCIDENT_COLUMNS.items())
    + ", geom POINT)",
    "CREATE INDEX IF NOT EXISTS incidents_status ON incidents(status)",
    "CREATE INDEX IF NOT EXISTS incidents_grid ON incidents(grid_code)",
    "CREATE INDEX IF NOT EXISTS incidents_reported ON incidents(reported_at)",
    "CREATE INDEX IF NOT EXISTS incidents_category ON incidents(category, reported_at)",
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
    """Stores written before public replies existed get the column (ALTER passes the append-only triggers)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(incident_events)")}
    if "reply" not in have:
        conn.execute("ALTER TABLE incident_events ADD COLUMN reply TEXT")


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
            if idempotency_key is not None:
                conn.execute("INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                             (idempotency_scope, idempotency_key, incident_id, request_hash, record["reported_at"]))
            return incident_id, True

    def insert_incidents(self, rows: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]) -> int:
        """Bulk insert (sample history): each record with its full event list, in one transaction."""
        count = 0
        with self._transaction() as conn:
            for record, events in rows:
                self._insert(conn, record, events)
                count += 1
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
        where, params = _where(query)
        with self._incident_conn() as conn:
            total = conn.execute(f"SELECT count(*) FROM incidents {where}", params).fetchone()[0]
            page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
            rows = conn.execute(f"SELECT {columns} FROM incidents {where} ORDER BY fid DESC{page}", params).fetchall()
        return [_row_to_incident(r) if columns == "*" else dict(r) for r in rows], int(total)

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


def _where(q: IncidentQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []

    def add(sql: str, *values: Any) -> None:
        clauses.append(sql)
        params.extend(values)

    if q.statuses:
        add(f"status IN ({', '.join('?' * len(q.statuses))})", *q.statuses)
    if q.categories:
        add(f"category IN ({', '.join('?' * len(q.categories))})", *q.categories)
    if q.community:
        add("community_code = ?", q.community)
    if q.grids is not None:
        add(f"grid_code IN ({', '.join('?' * len(q.grids))})" if q.grids else "0", *q.grids)
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
        add("due_at < ? AND status NOT IN ('resolved', 'verified', 'closed', 'cancelled')", q.overdue_at)
    if q.near is not None:
        lon, lat, dlon, dlat = q.near
        add("lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?", lon - dlon, lon + dlon, lat - dlat, lat + dlat)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
