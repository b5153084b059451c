"""The ``sessions`` table of the GeoPackage store: browser sign-ins (``gridmap.sessions``).

Only a SHA-256 hash of each session id is stored, so a copy of the store cannot be used to take
over a session. A session names the token it was opened with; reading it joins the ``tokens``
table, so revoking the token (CLI or admin API, any process) ends its sessions on the next request.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SESSION_COLUMNS = ("id_hash", "csrf", "role", "worker_code", "token_id", "token_hash", "created_at",
                   "expires_at", "ended_at")

_DDL = [
    "CREATE TABLE IF NOT EXISTS sessions (id_hash TEXT PRIMARY KEY, csrf TEXT NOT NULL, role TEXT NOT NULL, "
    "worker_code TEXT, token_id TEXT NOT NULL, token_hash TEXT NOT NULL, created_at TEXT NOT NULL, "
    "expires_at TEXT NOT NULL, ended_at TEXT)",
    "CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires_at)",
]


class SessionTables:
    """Mixed into ``GeoPackageStore``: needs ``_transaction()`` and ``_incident_conn()`` (tokens table)."""

    _session_schema_ready = False

    @contextmanager
    def _session_transaction(self) -> Iterator[sqlite3.Connection]:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            if not self._session_schema_ready:
                for statement in _DDL:
                    conn.execute(statement)
                self._session_schema_ready = True
            yield conn

    @contextmanager
    def _session_read(self) -> Iterator[sqlite3.Connection]:
        if not self._session_schema_ready:
            with self._session_transaction():
                pass
        with self._incident_conn() as conn:  # type: ignore[attr-defined]
            yield conn

    def insert_session(self, record: dict[str, Any]) -> None:
        with self._session_transaction() as conn:
            places = ", ".join("?" * len(SESSION_COLUMNS))
            conn.execute(f"INSERT INTO sessions ({', '.join(SESSION_COLUMNS)}) VALUES ({places})",
                         [record.get(c) for c in SESSION_COLUMNS])

    def find_session(self, id_hash: str) -> dict[str, Any] | None:
        """The session row with its token's state: ``token_live`` is 1 while the token it was opened
        with exists, has the same hash and is not revoked (always 0 for ``GRIDMAP_ADMIN_TOKEN``
        sessions, which have no tokens row: the caller checks those against the setting)."""
        with self._session_read() as conn:
            row = conn.execute(
                "SELECT s.*, (t.id IS NOT NULL AND t.revoked_at IS NULL) AS token_live FROM sessions s "
                "LEFT JOIN tokens t ON t.id = s.token_id AND t.hash = s.token_hash WHERE s.id_hash = ?",
                (id_hash,),
            ).fetchone()
        return dict(row) if row else None

    def end_session(self, id_hash: str, *, at: str) -> bool:
        with self._session_transaction() as conn:
            cursor = conn.execute("UPDATE sessions SET ended_at=? WHERE id_hash=? AND ended_at IS NULL",
                                  (at, id_hash))
            return cursor.rowcount == 1

    def purge_sessions(self, *, before: str) -> int:
        """Drop sessions that expired before ``before``: the table does not grow without bound."""
        with self._session_transaction() as conn:
            return conn.execute("DELETE FROM sessions WHERE expires_at < ?", (before,)).rowcount
