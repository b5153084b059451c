"""Opening test stores of either backend the way the service opens them (see conftest's ``backend``)."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from gridmap.settings import Settings
from gridmap.store import Store, is_database_url, open_store

PG_SECRET = "p" * 40
"""The receipt secret of PostGIS stores in tests (server mode takes it from GRIDMAP_SECRET)."""


OPENED: list[Store] = []
"""PostGIS stores opened by tests, closed after each test (conftest): each holds a connection pool.
(GeoPackage stores are left open as before: closing one checkpoints a file other tests may hold.)"""


def open_test_store(location: str | Path) -> Store:
    """The store at ``location`` (the PostGIS test secret for a URL; the key file beside a GeoPackage)."""
    if not is_database_url(location):
        return open_store(location)
    store = open_store(location, secret=PG_SECRET)
    OPENED.append(store)
    return store


def close_opened() -> None:
    while OPENED:
        OPENED.pop().close()


def store_settings(**values: Any) -> Settings:
    """``Settings(**values)``, with the PostGIS test secret when ``db`` is a URL and no secret is given."""
    if is_database_url(str(values.get("db", ""))) and not values.get("secret"):
        values["secret"] = PG_SECRET
    return Settings(**values)


def execute_raw(location: str | Path, statement: str, params: tuple[Any, ...] = ()) -> None:
    """One statement straight on the database, bypassing gridmap (``?`` placeholders on both)."""
    if is_database_url(location):
        import psycopg

        with psycopg.connect(str(location)) as conn:
            conn.execute(statement.replace("?", "%s"), params)
        return
    conn = sqlite3.connect(location)
    try:
        conn.execute(statement, params)
        conn.commit()
    finally:
        conn.close()


RAW_ERRORS: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)
try:
    import psycopg

    RAW_ERRORS += (psycopg.Error,)
except ImportError:  # pragma: no cover - psycopg is a dependency
    pass


def dump_text(location: str | Path) -> str:
    """Everything the database holds as text: SQLite's ``iterdump``, or ``pg_dump`` (PostgreSQL's own tool)."""
    if not is_database_url(location):
        conn = sqlite3.connect(location)
        try:
            return "\n".join(conn.iterdump())
        finally:
            conn.close()
    from pgcluster import bin_dir

    done = subprocess.run([str(bin_dir() / "pg_dump"), "--no-owner", str(location)], capture_output=True, text=True,
                          check=True)
    return done.stdout


def location_of(store: Store) -> str | Path:
    return getattr(store, "url", None) or store.path  # type: ignore[attr-defined]


def query_raw(location: str | Path, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of one query straight from the database (``?`` placeholders on both backends)."""
    if is_database_url(location):
        import psycopg

        with psycopg.connect(str(location)) as conn:
            return [tuple(r) for r in conn.execute(statement.replace("?", "%s"), params).fetchall()]
    conn = sqlite3.connect(location)
    try:
        return conn.execute(statement, params).fetchall()
    finally:
        conn.close()
