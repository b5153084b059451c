"""Loading a history in bulk (issue #10): the store sets its incident indexes and the rollups' insert
trigger aside inside the one transaction, and puts them back before it commits. What it stores is
what inserting the rows one by one (indexes, triggers and all) stores, and a failure at any point
leaves the store as it was. How fast it is: ``bench/bench_startup.py``, never a test."""

from __future__ import annotations

import gc
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gridmap.coverage.service import Coverage
from gridmap.errors import GridmapError
from gridmap.importer import import_package
from gridmap.incidents.history import history_rows, load_history
from gridmap.settings import SAMPLE_PACKAGE
from gridmap.store import GeoPackageStore, incident_tables
from gridmap.store.base import IncidentQuery
from gridmap.store.incident_rollups import INSERT_TRIGGER, ROLLUPS, recount_sql
from gridmap.store.incident_tables import INDEXES

Row = tuple[dict[str, Any], list[dict[str, Any]]]
HISTORY = SAMPLE_PACKAGE / "incidents.csv"
CHUNK = 512
"""Rows a bulk insert takes at a time in these tests: the sample year is many chunks, the last one short."""

pytestmark = pytest.mark.sqlite_only  # the GeoPackage file itself; PostGIS has its own tests


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incident_tables, "BULK_CHUNK", CHUNK)


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample county's layers and no incident."""
    path = tmp_path_factory.mktemp("layers") / "layers.gpkg"
    import_package(GeoPackageStore(path), SAMPLE_PACKAGE)
    GeoPackageStore(path).migrate()
    return path


@pytest.fixture(scope="module")
def rows(empty_db: Path) -> list[Row]:
    """The sample year as the history gives it to the store."""
    store = GeoPackageStore(empty_db)
    return list(history_rows(Coverage.from_layers(store.read_layers(), revision=store.revision()), HISTORY))


def copy_of(db: Path, tmp_path: Path, name: str) -> GeoPackageStore:
    target = tmp_path / name
    shutil.copy(db, target)
    return GeoPackageStore(target)


def one_by_one(store: GeoPackageStore, rows: list[Row]) -> None:
    """The per-row path: each incident and its events inserted with every index and trigger in place."""
    with store._transaction() as conn:
        for record, events in rows:
            store._insert(conn, record, events)


def contents(store: GeoPackageStore) -> dict[str, Any]:
    """Everything a load writes, row for row, and the schema of the incident tables."""
    with store.connect() as conn:
        return {
            "incidents": conn.execute("SELECT * FROM incidents ORDER BY fid").fetchall(),
            "events": conn.execute("SELECT * FROM incident_events ORDER BY seq").fetchall(),
            **{table: conn.execute(f"SELECT * FROM {table} ORDER BY {', '.join(ROLLUPS[table])}, month").fetchall()
               for table in ROLLUPS},
            "sequence": conn.execute("SELECT name, seq FROM sqlite_sequence ORDER BY name").fetchall(),
            "schema": sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                                          "WHERE tbl_name IN ('incidents', 'incident_events')").fetchall()),
        }


def rollups_match_a_recount(store: GeoPackageStore) -> None:
    with store.connect() as conn:
        for table in ROLLUPS:
            kept = sorted(conn.execute(f"SELECT * FROM {table} WHERE n > 0").fetchall())
            assert kept == sorted(conn.execute(recount_sql(table)).fetchall()), table


def test_the_sample_year_is_stored_as_one_by_one(empty_db: Path, rows: list[Row], tmp_path: Path) -> None:
    """Rows, events and their ids, both rollup tables and the schema: the same either way."""
    bulk, single = copy_of(empty_db, tmp_path, "bulk.gpkg"), copy_of(empty_db, tmp_path, "single.gpkg")
    assert bulk.insert_incidents(iter(rows)) == len(rows) == 5400
    one_by_one(single, rows)
    stored = contents(bulk)
    assert stored == contents(single)
    assert len(stored["events"]) > 4 * len(rows)
    assert {name for _, name, *_ in stored["schema"]} >= {*INDEXES, INSERT_TRIGGER}
    rollups_match_a_recount(bulk)


def test_a_load_onto_incidents_that_were_edited_and_deleted_adds_up(empty_db: Path, rows: list[Row],
                                                                    tmp_path: Path) -> None:
    """Counts left at 0 by updates are added to, not duplicated; ids continue above a deleted one
    (AUTOINCREMENT); a load of nothing changes nothing but the revision."""
    bulk, single = copy_of(empty_db, tmp_path, "bulk.gpkg"), copy_of(empty_db, tmp_path, "single.gpkg")
    first, second = rows[:1500], rows[1500:2600]
    for store in (bulk, single):
        one_by_one(store, first)
        for fid in range(1, 400, 3):  # moved to other months, statuses and places: rollup rows at 0
            incident = store.get_incident(fid)
            store.update_incident(fid, version=incident["version"], event={
                "at": "2026-01-01T00:00:00Z", "actor": "dispatcher:test", "role": "dispatcher", "action": "edit",
                "from_status": incident["status"], "to_status": "closed"},
                changes={"status": "closed", "reported_at": f"2024-0{fid % 9 + 1}-01T00:00:00Z",
                         "grid_code": None, "rating": 5})
        with store.connect() as conn:
            conn.execute("DELETE FROM incidents WHERE fid = ?", (len(first),))
    with bulk.connect() as conn:
        assert conn.execute("SELECT count(*) FROM incident_rollup WHERE n = 0").fetchone()[0] > 0
    assert bulk.insert_incidents(iter([])) == 0
    assert bulk.insert_incidents(iter(second)) == len(second)
    one_by_one(single, second)
    assert contents(bulk) == contents(single)
    assert bulk.get_incident(len(first)) is None and bulk.get_incident(len(first) + 1)["description"] \
        == second[0][0]["description"]
    rollups_match_a_recount(bulk)


def failing(rows: list[Row], after: int, error: Exception) -> Iterator[Row]:
    yield from rows[:after]
    raise error


@pytest.mark.parametrize("how", ["the rows stop with an error", "SQLite refuses a row"])
def test_a_failed_load_leaves_the_store_as_it_was(sample_db: Path, rows: list[Row], tmp_path: Path,
                                                  how: str) -> None:
    """After more than a chunk went in (the indexes and the trigger already set aside), the error
    comes out and the store holds what it held: incidents, events, counts, indexes, trigger, revision;
    then it takes reports as before, counted by the trigger."""
    store = copy_of(sample_db, tmp_path, "sample.gpkg")
    before, revision = contents(store), store.incident_revision()
    more = [(dict(record), events) for record, events in rows[:3 * CHUNK]]
    if how == "SQLite refuses a row":
        more[-1][0]["category"] = None  # NOT NULL
        with pytest.raises(sqlite3.IntegrityError):
            store.insert_incidents(iter(more))
    else:
        with pytest.raises(GridmapError):
            store.insert_incidents(failing(more, 2 * CHUNK + 10, GridmapError("broken history")))
    assert contents(store) == before
    assert store.incident_revision() == revision
    record, events = rows[0]
    store.insert_incident(record, events[0])
    rollups_match_a_recount(store)
    assert store.query_incidents(IncidentQuery(), limit=1)[1] == len(before["incidents"]) + 1


def test_a_history_that_fails_midway_leaves_the_store_and_the_collector_as_they_were(
        sample_db: Path, tmp_path: Path) -> None:
    store = copy_of(sample_db, tmp_path, "sample.gpkg")
    coverage = Coverage.from_layers(store.read_layers(), revision=store.revision())
    before = contents(store)
    broken = tmp_path / "incidents.csv"
    lines = HISTORY.read_text(encoding="utf-8").splitlines()
    lines[3000] = "nonsense.category" + lines[3000][lines[3000].index(","):]
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(GridmapError):
        load_history(store, coverage, broken, batch=700)
    assert contents(store) == before
    assert gc.isenabled()  # paused for the load only
    assert load_history(store, coverage, HISTORY, batch=700) == 5400
    assert gc.isenabled()
    rollups_match_a_recount(store)


def test_the_sample_store_has_every_index_and_trigger_after_its_bulk_load(sample_db: Path) -> None:
    store = GeoPackageStore(sample_db)
    with store.connect() as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'incidents'")}
        analysed = {row[0] for row in conn.execute("SELECT idx FROM sqlite_stat1 WHERE tbl = 'incidents'")}
    assert names >= {*INDEXES, "incidents_rollup_insert", "incidents_rollup_update", "incidents_rollup_delete"}
    assert analysed >= set(INDEXES)  # the planner's figures for the indexes built again
    rollups_match_a_recount(store)
