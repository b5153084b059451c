"""Addresses the library could not place, counted per day, text and community (GeoPackage store).

Staff read them as "which places to add first" (``GET /v1/addresses/unmatched``). The text is what
the matcher did not find (the unknown compound and building number), with phone, ID and room numbers
masked before it gets here; counts are per day so ``since`` can be answered without a row per lookup.
"""

from __future__ import annotations

from typing import Any, Final

UNMATCHED_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS unmatched_addresses (day TEXT NOT NULL, text TEXT NOT NULL, "
    "community_code TEXT NOT NULL DEFAULT '', count INTEGER NOT NULL, last_seen TEXT NOT NULL, "
    "PRIMARY KEY (day, text, community_code))"
)
UNMATCHED_UPSERT: Final = (
    "INSERT INTO unmatched_addresses (day, text, community_code, count, last_seen) VALUES ({m}, {m}, {m}, {m}, {m}) "
    "ON CONFLICT (day, text, community_code) DO UPDATE SET count = unmatched_addresses.count + excluded.count, "
    "last_seen = excluded.last_seen"
)
UNMATCHED_TOTALS: Final = (
    "SELECT text, community_code, SUM(count) AS count, MAX(last_seen) AS last_seen FROM unmatched_addresses "
    "WHERE day >= {m} GROUP BY text, community_code"
)
UNMATCHED_PAGE: Final = " ORDER BY count DESC, text, community_code LIMIT {limit} OFFSET {offset}"


def rows_of(counts: dict[tuple[str, str], int], at: str) -> list[tuple[str, str, str, int, str]]:
    """(day, text, community, count, last seen) rows of a collector's counts."""
    return [(at[:10], text, community, n, at) for (text, community), n in sorted(counts.items())]


class UnmatchedTables:
    """Mixed into ``GeoPackageStore``: needs ``_transaction()`` and ``_incident_conn()``."""

    _unmatched_ready = False

    def _unmatched_schema(self, conn: Any) -> None:
        if not self._unmatched_ready:
            conn.execute(UNMATCHED_DDL)
            self._unmatched_ready = True

    def count_unmatched(self, counts: dict[tuple[str, str], int], *, at: str) -> None:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            self._unmatched_schema(conn)
            conn.executemany(UNMATCHED_UPSERT.format(m="?"), rows_of(counts, at))

    def unmatched_addresses(self, *, since: str, limit: int, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        if not self._unmatched_ready:
            with self._transaction() as conn:  # type: ignore[attr-defined]
                self._unmatched_schema(conn)
        totals = UNMATCHED_TOTALS.format(m="?")
        with self._incident_conn() as conn:  # type: ignore[attr-defined]
            total = conn.execute(f"SELECT count(*) FROM ({totals})", (since[:10],)).fetchone()[0]
            rows = conn.execute(totals + UNMATCHED_PAGE.format(limit=int(limit), offset=int(offset)),
                                (since[:10],)).fetchall()
        return [dict(r) for r in rows], int(total)
