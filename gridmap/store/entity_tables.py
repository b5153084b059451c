"""Staff-maintained records of the GeoPackage store (standard addresses and aliases, co-governance
registrations, needs, projects …) and their append-only change log.

Every kind of record is a JSON body with a few columns lifted out for filtering and scoping (``key``,
``community_code``, ``grid_code``, ``status``), a per-kind number ``n`` (the record's id within its
kind) and a ``version`` for compare-and-set. Every write appends one row to ``entity_changes`` with
who, when, what and the body before and after, in the same transaction: history cannot be edited
(triggers refuse UPDATE and DELETE) and no change is lost between the record and its log. The
change log's ``seq`` also lets other processes apply only what changed since they last looked.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from gridmap.errors import Conflict
from gridmap.store.base import EntityQuery

ENTITY_COLUMNS: Final = ("kind", "n", "key", "version", "community_code", "grid_code", "status",
                         "created_at", "updated_at", "body")
_BOOKKEEPING: Final = frozenset({"kind", "n", "version", "created_at", "updated_at", "body"})
CHANGE_COLUMNS: Final = ("seq", "kind", "n", "version", "action", "actor", "at", "before", "after")

_DDL: Final = [
    "CREATE TABLE IF NOT EXISTS entities (kind TEXT NOT NULL, n INTEGER NOT NULL, key TEXT, "
    "version INTEGER NOT NULL, community_code TEXT, grid_code TEXT, status TEXT, created_at TEXT NOT NULL, "
    "updated_at TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, n))",
    "CREATE UNIQUE INDEX IF NOT EXISTS entities_key ON entities(kind, key) WHERE key IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS entities_community ON entities(kind, community_code, n)",
    "CREATE INDEX IF NOT EXISTS entities_status ON entities(kind, status, n)",
    "CREATE TABLE IF NOT EXISTS entity_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
    "n INTEGER NOT NULL, version INTEGER NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL, "
    "before TEXT, after TEXT)",
    "CREATE INDEX IF NOT EXISTS entity_changes_record ON entity_changes(kind, n, seq)",
    "CREATE TRIGGER IF NOT EXISTS entity_changes_no_update BEFORE UPDATE ON entity_changes "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS entity_changes_no_delete BEFORE DELETE ON entity_changes "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
]


def entity_where(q: EntityQuery, mark: str, field_sql: str, contains_sql: str) -> tuple[str, list[Any]]:
    """The WHERE clause of a query on one kind, shared by both stores.

    ``field_sql`` and ``contains_sql`` are the backend's spellings of "body field equals" and "body list
    holds", each with one ``{field}`` placeholder for a field name (checked to be an identifier)."""
    clauses, params = [f"kind = {mark}"], [q.kind]
    for column, values in (("community_code", q.communities), ("grid_code", q.grids), ("status", q.statuses)):
        if values is None:
            continue
        if not values:
            clauses.append("1 = 0")
            continue
        clauses.append(f"{column} IN ({', '.join([mark] * len(values))})")
        params.extend(values)
    for name, value in q.fields:
        clauses.append(field_sql.format(field=_field(name)) + f" = {mark}")
        params.append(value)
    for name, value in q.contains:
        clauses.append(contains_sql.format(field=_field(name), mark=mark))
        params.append(value)
    if q.updated_since is not None:
        clauses.append(f"updated_at >= {mark}")
        params.append(q.updated_since)
    return " WHERE " + " AND ".join(clauses), params


def _field(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"not a field name: {name!r}")
    return name


def entity_of(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the services see it: the body's fields, then the row's own columns."""
    body = row["body"]
    body = json.loads(body) if isinstance(body, str) else dict(body)
    return {**body, **{k: row[k] for k in ENTITY_COLUMNS if k not in ("body",)}}


def change_of(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for k in ("before", "after"):
        if isinstance(out.get(k), str):
            out[k] = json.loads(out[k])
    return out


class EntityTables:
    """Mixed into ``GeoPackageStore``: needs ``_transaction()`` and ``_incident_conn()``."""

    _entity_schema_ready = False

    @contextmanager
    def _entity_transaction(self) -> Iterator[sqlite3.Connection]:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            if not self._entity_schema_ready:
                for statement in _DDL:
                    conn.execute(statement)
                self._entity_schema_ready = True
            yield conn

    @contextmanager
    def _entity_read(self) -> Iterator[sqlite3.Connection]:
        if not self._entity_schema_ready:
            with self._entity_transaction():
                pass
        with self._incident_conn() as conn:  # type: ignore[attr-defined]
            yield conn

    def insert_entities(self, kind: str, records: Iterable[dict[str, Any]], *, actor: str, at: str,
                        action: str = "create") -> list[dict[str, Any]]:
        with self._entity_transaction() as conn:
            n = conn.execute("SELECT COALESCE(MAX(n), 0) FROM entities WHERE kind = ?", (kind,)).fetchone()[0]
            out = []
            for record in records:
                n += 1
                row = _new_row(kind, n, record, at)
                try:
                    conn.execute(f"INSERT INTO entities ({', '.join(ENTITY_COLUMNS)}) "
                                 f"VALUES ({', '.join('?' * len(ENTITY_COLUMNS))})", [row[c] for c in ENTITY_COLUMNS])
                except sqlite3.IntegrityError:
                    raise Conflict(f"已存在：{record.get('key')}") from None
                conn.execute("INSERT INTO entity_changes (kind, n, version, action, actor, at, before, after) "
                             "VALUES (?, ?, 1, ?, ?, ?, NULL, ?)", (kind, n, action, actor, at, row["body"]))
                out.append(entity_of(row))
            return out

    def update_entity(self, kind: str, n: int, *, version: int, record: dict[str, Any], actor: str, at: str,
                      action: str = "update") -> dict[str, Any]:
        """Compare-and-set on ``version``: raises Conflict when someone else changed the record first."""
        with self._entity_transaction() as conn:
            conn.row_factory = sqlite3.Row
            old = conn.execute("SELECT * FROM entities WHERE kind = ? AND n = ?", (kind, n)).fetchone()
            if old is None or old["version"] != version:
                raise Conflict("记录已被他人修改（版本不一致），请刷新后重试")
            row = _new_row(kind, n, record, at, version=version + 1, created_at=old["created_at"])
            try:
                conn.execute("UPDATE entities SET key = ?, version = ?, community_code = ?, grid_code = ?, status = ?, "
                             "updated_at = ?, body = ? WHERE kind = ? AND n = ?",
                             (row["key"], row["version"], row["community_code"], row["grid_code"], row["status"],
                              at, row["body"], kind, n))
            except sqlite3.IntegrityError:
                raise Conflict(f"已存在：{record.get('key')}") from None
            conn.execute("INSERT INTO entity_changes (kind, n, version, action, actor, at, before, after) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (kind, n, version + 1, action, actor, at, old["body"], row["body"]))
            return entity_of(row)

    def get_entity(self, kind: str, n: int) -> dict[str, Any] | None:
        with self._entity_read() as conn:
            row = conn.execute("SELECT * FROM entities WHERE kind = ? AND n = ?", (kind, n)).fetchone()
        return entity_of(dict(row)) if row else None

    def find_entity(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._entity_read() as conn:
            row = conn.execute("SELECT * FROM entities WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        return entity_of(dict(row)) if row else None

    def query_entities(self, query: EntityQuery, *, limit: int | None = None, offset: int = 0
                       ) -> tuple[list[dict[str, Any]], int]:
        """Matching records in the order they were created, and the total before paging."""
        where, params = entity_where(query, "?", "json_extract(body, '$.{field}')",
                                     "EXISTS (SELECT 1 FROM json_each(body, '$.{field}') WHERE value = {mark})")
        with self._entity_read() as conn:
            total = conn.execute(f"SELECT count(*) FROM entities{where}", params).fetchone()[0]
            page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
            rows = conn.execute(f"SELECT * FROM entities{where} ORDER BY n{page}", params).fetchall()
        return [entity_of(dict(r)) for r in rows], int(total)

    def entity_changes(self, kind: str, n: int | None = None, *, after_seq: int = 0) -> list[dict[str, Any]]:
        """The change log of one record (or of every record of the kind), oldest first."""
        sql = f"SELECT {', '.join(CHANGE_COLUMNS)} FROM entity_changes WHERE kind = ? AND seq > ?"
        params: list[Any] = [kind, after_seq]
        if n is not None:
            sql += " AND n = ?"
            params.append(n)
        with self._entity_read() as conn:
            rows = conn.execute(sql + " ORDER BY seq", params).fetchall()
        return [change_of(dict(r)) for r in rows]

    def entity_seq(self, kind: str) -> int:
        """The newest change's number of the kind (0 when none): cheap to poll."""
        with self._entity_read() as conn:
            row = conn.execute("SELECT MAX(seq) FROM entity_changes WHERE kind = ?", (kind,)).fetchone()
        return int(row[0] or 0)


def _new_row(kind: str, n: int, record: dict[str, Any], at: str, *, version: int = 1,
             created_at: str | None = None) -> dict[str, Any]:
    """A record's row: the lifted columns copied from its fields of the same names; the body keeps every
    field but the row's bookkeeping, so the change log's before and after are whole records."""
    body = {k: v for k, v in record.items() if k not in _BOOKKEEPING}
    return {"kind": kind, "n": n, "key": record.get("key"), "version": version,
            "community_code": record.get("community_code"), "grid_code": record.get("grid_code"),
            "status": record.get("status"), "created_at": created_at or at, "updated_at": at,
            "body": json.dumps(body, ensure_ascii=False, sort_keys=True)}
