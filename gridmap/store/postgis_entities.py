"""Staff-maintained records and their change log on PostGIS: the same rows and rules as the GeoPackage
store's ``EntityTables`` (compare-and-set versions, the log written in the record's transaction and
refused UPDATE and DELETE by triggers). A kind's numbers are handed out under a transaction-scoped
advisory lock on the kind, so two processes adding records at once never take the same number.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from gridmap.errors import Conflict
from gridmap.store.base import EntityQuery
from gridmap.store.entity_tables import (
    CHANGE_COLUMNS,
    ENTITY_COLUMNS,
    _new_row,
    change_of,
    entity_of,
    entity_where,
)
from gridmap.store.unmatched_tables import UNMATCHED_PAGE, UNMATCHED_TOTALS, UNMATCHED_UPSERT, rows_of

_VALUES = ", ".join("%s::jsonb" if c == "body" else "%s" for c in ENTITY_COLUMNS)


class PostgisEntities:
    """Mixed into ``PostgisStore``: needs ``connect()``, ``read()`` and ``_transaction()``."""

    def insert_entities(self, kind: str, records: Iterable[dict[str, Any]], *, actor: str, at: str,
                        action: str = "create") -> list[dict[str, Any]]:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('gridmap_entities'), hashtext(%s))", (kind,))
            n = conn.execute("SELECT COALESCE(MAX(n), 0) FROM entities WHERE kind = %s", (kind,)).fetchone()[0]
            out = []
            for record in records:
                n += 1
                row = _new_row(kind, n, record, at)
                try:
                    with conn.transaction():
                        conn.execute(f"INSERT INTO entities ({', '.join(ENTITY_COLUMNS)}) VALUES ({_VALUES})",
                                     [row[c] for c in ENTITY_COLUMNS])
                except psycopg.errors.UniqueViolation:
                    raise Conflict(f"已存在：{record.get('key')}") from None
                conn.execute("INSERT INTO entity_changes (kind, n, version, action, actor, at, before, after) "
                             "VALUES (%s, %s, 1, %s, %s, %s, NULL, %s::jsonb)",
                             (kind, n, action, actor, at, row["body"]))
                out.append(entity_of(row))
            return out

    def update_entity(self, kind: str, n: int, *, version: int, record: dict[str, Any], actor: str, at: str,
                      action: str = "update") -> dict[str, Any]:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            old = conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM entities WHERE kind = %s AND n = %s FOR UPDATE", (kind, n)).fetchone()
            if old is None or old["version"] != version:
                raise Conflict("记录已被他人修改（版本不一致），请刷新后重试")
            row = _new_row(kind, n, record, at, version=version + 1, created_at=old["created_at"])
            try:
                with conn.transaction():
                    conn.execute("UPDATE entities SET key = %s, version = %s, community_code = %s, grid_code = %s, "
                                 "status = %s, updated_at = %s, body = %s::jsonb WHERE kind = %s AND n = %s",
                                 (row["key"], row["version"], row["community_code"], row["grid_code"], row["status"],
                                  at, row["body"], kind, n))
            except psycopg.errors.UniqueViolation:
                raise Conflict(f"已存在：{record.get('key')}") from None
            conn.execute("INSERT INTO entity_changes (kind, n, version, action, actor, at, before, after) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
                         (kind, n, version + 1, action, actor, at, Jsonb(old["body"]), row["body"]))
            return entity_of(row)

    def get_entity(self, kind: str, n: int) -> dict[str, Any] | None:
        with self.connect() as conn:  # type: ignore[attr-defined]
            row = conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM entities WHERE kind = %s AND n = %s", (kind, n)).fetchone()
        return entity_of(row) if row else None

    def find_entity(self, kind: str, key: str) -> dict[str, Any] | None:
        with self.connect() as conn:  # type: ignore[attr-defined]
            row = conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM entities WHERE kind = %s AND key = %s", (kind, key)).fetchone()
        return entity_of(row) if row else None

    def query_entities(self, query: EntityQuery, *, limit: int | None = None, offset: int = 0
                       ) -> tuple[list[dict[str, Any]], int]:
        where, params = entity_where(query, "%s", "(body ->> '{field}')", "(body -> '{field}') ? {mark}")
        page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""

        def work(conn: Any) -> tuple[list[dict[str, Any]], int]:
            total = conn.execute(f"SELECT count(*) FROM entities{where}", params).fetchone()[0]
            rows = conn.cursor(row_factory=dict_row).execute(
                f"SELECT * FROM entities{where} ORDER BY n{page}", params).fetchall()
            return [entity_of(r) for r in rows], int(total)

        return self.read(work)  # type: ignore[attr-defined]

    def entity_changes(self, kind: str, n: int | None = None, *, after_seq: int = 0) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(CHANGE_COLUMNS)} FROM entity_changes WHERE kind = %s AND seq > %s"
        params: list[Any] = [kind, after_seq]
        if n is not None:
            sql += " AND n = %s"
            params.append(n)
        with self.connect() as conn:  # type: ignore[attr-defined]
            rows = conn.cursor(row_factory=dict_row).execute(sql + " ORDER BY seq", params).fetchall()
        return [change_of(r) for r in rows]

    def entity_seq(self, kind: str) -> int:
        with self.connect() as conn:  # type: ignore[attr-defined]
            row = conn.execute("SELECT MAX(seq) FROM entity_changes WHERE kind = %s", (kind,)).fetchone()
        return int(row[0] or 0)

    # addresses the library could not place (see ``unmatched_tables``) ------------------------------
    def count_unmatched(self, counts: dict[tuple[str, str], int], *, at: str) -> None:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            conn.cursor().executemany(UNMATCHED_UPSERT.format(m="%s"), rows_of(counts, at))

    def unmatched_addresses(self, *, since: str, limit: int, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        totals = UNMATCHED_TOTALS.format(m="%s")

        def work(conn: Any) -> tuple[list[dict[str, Any]], int]:
            total = conn.execute(f"SELECT count(*) FROM ({totals}) t", (since[:10],)).fetchone()[0]
            rows = conn.cursor(row_factory=dict_row).execute(
                totals + UNMATCHED_PAGE.format(limit=int(limit), offset=int(offset)), (since[:10],)).fetchall()
            return [{**r, "count": int(r["count"])} for r in rows], int(total)

        return self.read(work)  # type: ignore[attr-defined]
