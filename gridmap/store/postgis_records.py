"""Tokens, browser sessions and planning scenarios on PostGIS: the same rows and rules as the
GeoPackage store's tables (token and session ids stored only as hashes; a session is live only while
its token is; scenarios written once and never changed). Every process reads them from the database
on each request, so a token revoked through one process is refused by all of them at once.
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from gridmap.store.scenario_tables import SCENARIO_COLUMNS
from gridmap.store.session_tables import SESSION_COLUMNS

_SCENARIO_JSON = ("parameters", "summary", "proposals")
_SCENARIO_LIST = "id, name, created_by, created_at, revision, parameters, summary"


class PostgisRecords:
    """Mixed into ``PostgisStore``: needs ``connect()`` and ``_transaction()``."""

    # tokens -------------------------------------------------------------------------------------
    def insert_token(self, *, token_id: str, token_hash: str, role: str, worker_code: str | None,
                     label: str | None, created_at: str) -> None:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            conn.execute("INSERT INTO tokens VALUES (%s, %s, %s, %s, %s, %s, NULL)",
                         (token_id, token_hash, role, worker_code, label, created_at))

    def find_token(self, token_hash: str) -> dict[str, Any] | None:
        with self.connect() as conn:  # type: ignore[attr-defined]
            return conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM tokens WHERE hash=%s AND revoked_at IS NULL", (token_hash,)).fetchone()

    def revoke_token(self, token_id: str, *, at: str) -> bool:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            return conn.execute("UPDATE tokens SET revoked_at=%s WHERE id=%s AND revoked_at IS NULL",
                                (at, token_id)).rowcount == 1

    # sessions -----------------------------------------------------------------------------------
    def insert_session(self, record: dict[str, Any]) -> None:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            conn.execute(f"INSERT INTO sessions ({', '.join(SESSION_COLUMNS)}) "
                         f"VALUES ({', '.join(['%s'] * len(SESSION_COLUMNS))})",
                         [record.get(c) for c in SESSION_COLUMNS])

    def find_session(self, id_hash: str) -> dict[str, Any] | None:
        """As ``SessionTables.find_session``: ``token_live`` is 1 while its token is live."""
        with self.connect() as conn:  # type: ignore[attr-defined]
            return conn.cursor(row_factory=dict_row).execute(
                "SELECT s.*, (t.id IS NOT NULL AND t.revoked_at IS NULL)::int AS token_live FROM sessions s "
                "LEFT JOIN tokens t ON t.id = s.token_id AND t.hash = s.token_hash WHERE s.id_hash = %s",
                (id_hash,)).fetchone()

    def end_session(self, id_hash: str, *, at: str) -> bool:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            return conn.execute("UPDATE sessions SET ended_at=%s WHERE id_hash=%s AND ended_at IS NULL",
                                (at, id_hash)).rowcount == 1

    def purge_sessions(self, *, before: str) -> int:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            return conn.execute("DELETE FROM sessions WHERE expires_at < %s", (before,)).rowcount

    # scenarios ----------------------------------------------------------------------------------
    def insert_scenario(self, record: dict[str, Any]) -> int:
        values = [Jsonb(record[c]) if c in _SCENARIO_JSON else record.get(c) for c in SCENARIO_COLUMNS]
        with self._transaction() as conn:  # type: ignore[attr-defined]
            return int(conn.execute(f"INSERT INTO planning_scenarios ({', '.join(SCENARIO_COLUMNS)}) "
                                    f"VALUES ({', '.join(['%s'] * len(SCENARIO_COLUMNS))}) RETURNING id",
                                    values).fetchone()[0])

    def get_scenario(self, scenario_id: int) -> dict[str, Any] | None:
        with self.connect() as conn:  # type: ignore[attr-defined]
            return conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM planning_scenarios WHERE id=%s", (scenario_id,)).fetchone()

    def list_scenarios(self, *, limit: int, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Newest first, from the read replica when there is one."""
        def work(conn: Any) -> tuple[list[dict[str, Any]], int]:
            total = conn.execute("SELECT count(*) FROM planning_scenarios").fetchone()[0]
            rows = conn.cursor(row_factory=dict_row).execute(
                f"SELECT {_SCENARIO_LIST} FROM planning_scenarios ORDER BY id DESC LIMIT %s OFFSET %s",
                (int(limit), int(offset))).fetchall()
            return rows, int(total)

        return self.read(work)  # type: ignore[attr-defined]
