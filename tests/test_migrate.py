"""``gridmap migrate`` upgrades a GeoPackage store written before schema versions were recorded, in place
(the PostGIS store's migrations are tested in tests/test_postgis_store.py)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from stores import query_raw

from gridmap.store import GeoPackageStore
from gridmap.store.incident_tables import SCHEMA_VERSION

pytestmark = pytest.mark.sqlite_only  # the GeoPackage file's own layout


def gridmap(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gridmap", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_a_store_of_the_previous_release_is_upgraded_in_place(sample_db_copy: Path) -> None:
    """The previous release recorded no schema version and had no index on ``updated_at``."""
    conn = sqlite3.connect(sample_db_copy)
    with conn:
        conn.execute("DELETE FROM gridmap_meta WHERE key = 'schema_version'")
        conn.execute("DROP INDEX incidents_updated")
    conn.close()
    assert GeoPackageStore(sample_db_copy).schema_version() == 1
    incidents = query_raw(sample_db_copy, "SELECT count(*), max(fid) FROM incidents")
    done = gridmap("migrate", "--db", sample_db_copy)
    assert done.returncode == 0, done.stderr
    assert f"1 → {SCHEMA_VERSION}" in done.stdout
    assert query_raw(sample_db_copy, "SELECT count(*), max(fid) FROM incidents") == incidents
    assert query_raw(sample_db_copy, "SELECT count(*) FROM sqlite_master WHERE name = 'incidents_updated'") == [(1,)]
    again = gridmap("migrate", "--db", sample_db_copy)
    assert again.returncode == 0 and "已是最新" in again.stdout


def test_migrate_refuses_a_store_that_does_not_exist(tmp_path: Path) -> None:
    done = gridmap("migrate", "--db", tmp_path / "none.gpkg")
    assert done.returncode == 1 and "不存在" in done.stderr and not (tmp_path / "none.gpkg").exists()
