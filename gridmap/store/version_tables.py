"""Boundary versions in the store (issue #14 §3): every import of grids is kept with the date it takes
effect, so lookups can answer "which grid was this in on 1 March" and incidents stay with the grid they
were routed under after the grids are redrawn.

A version row holds the import's boundary layers (grids and the workers placed in them) as one
compressed blob (``gridmap.versions.snapshot``), never the whole package: buildings, stations and the
rest have no dates, and a city's buildings in every version would multiply the store's size. The
live layers carry the id of the version whose boundaries they hold in ``gridmap_meta``
(``boundary_version``). Rows are never updated or deleted: older versions are kept.

The SQL is shared by both backends (``{m}`` is the placeholder of the driver).
"""

from __future__ import annotations

from typing import Any, Final

VERSION_COLUMNS: Final = ("effective_from", "label", "revision", "created_at", "actor", "counts")
"""The metadata of a version, in the order they are inserted (``id`` is given by the database)."""
LIVE_KEY: Final = "boundary_version"

SQLITE_VERSION_DDL: Final = (
    ("CREATE TABLE IF NOT EXISTS boundary_versions (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "effective_from TEXT NOT NULL, label TEXT NOT NULL, revision TEXT NOT NULL, created_at TEXT NOT NULL, "
    "actor TEXT NOT NULL, counts TEXT NOT NULL, layers BLOB NOT NULL)"),
    ("CREATE TRIGGER IF NOT EXISTS boundary_versions_no_update BEFORE UPDATE ON boundary_versions "
    "BEGIN SELECT RAISE(ABORT, 'boundary versions are kept as imported'); END"),
    ("CREATE TRIGGER IF NOT EXISTS boundary_versions_no_delete BEFORE DELETE ON boundary_versions "
    "BEGIN SELECT RAISE(ABORT, 'boundary versions are kept as imported'); END"),
)
INSERT_VERSION: Final = ("INSERT INTO boundary_versions (" + ", ".join(VERSION_COLUMNS) + ", layers) VALUES ("
                         + ", ".join(["{m}"] * (len(VERSION_COLUMNS) + 1)) + ")")
LIST_VERSIONS: Final = ("SELECT id, " + ", ".join(VERSION_COLUMNS)
                        + " FROM boundary_versions ORDER BY effective_from, id")
VERSION_BLOB: Final = "SELECT layers FROM boundary_versions WHERE id = {m}"
LIVE_VERSION: Final = f"SELECT value FROM gridmap_meta WHERE key = '{LIVE_KEY}'"


def version_of(row: Any) -> dict[str, Any]:
    """A version's metadata as a plain dict (``counts`` stays the JSON text the store keeps)."""
    values = dict(zip(("id", *VERSION_COLUMNS), tuple(row), strict=True))
    values["id"] = int(values["id"])
    return values


def insert_row(version: dict[str, Any], blob: bytes) -> tuple[Any, ...]:
    return (*(version[c] for c in VERSION_COLUMNS), blob)
