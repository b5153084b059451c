"""Listings, the overdue list and map pages read what they need and no more (issue #10): the plans
SQLite makes for the store's own statements use the indexes, totals are counted only when a page
cannot tell them, and the incident revision lets a cached map page answer without reading incidents.

Statements are caught as the store runs them (SQLite's trace callback on the store's connection)
and explained with ``EXPLAIN QUERY PLAN`` on a copy of the sample county.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridmap.api import create_app
from gridmap.incidents.service import iso
from gridmap.incidents.workflow import DONE
from gridmap.maps.incidents import incidents_version
from gridmap.settings import Settings
from gridmap.store import GeoPackageStore
from gridmap.store.base import IncidentQuery
from gridmap.store.incident_rollups import ROLLUPS, recount_sql
from gridmap.store.incident_tables import HANDLED_STATUSES, INDEXES

NOW = "2026-11-27T12:00:00Z"
FULL_SCAN = re.compile(r"SCAN incidents$")
"""A plan step that reads the whole table (SQLite ≥ 3.36 wording)."""

pytestmark = pytest.mark.sqlite_only  # the GeoPackage file itself; PostGIS has its own tests


@pytest.fixture(scope="module")
def store(sample_db: Path, tmp_path_factory: pytest.TempPathFactory) -> GeoPackageStore:
    db = tmp_path_factory.mktemp("queries") / "sample.gpkg"
    shutil.copy(sample_db, db)
    return GeoPackageStore(db)


@pytest.fixture(scope="module")
def sample(store: GeoPackageStore) -> dict:
    """An incident of the sample year whose grid, community, assignee and category we filter by."""
    rows, _ = store.query_incidents(IncidentQuery(statuses=("closed",)), limit=1)
    return rows[0]


def statements(store: GeoPackageStore, call: Callable[[], object], table: str = "incidents") -> list[str]:
    """The SELECTs from ``table`` that ``call`` makes the store run (on this thread's connection)."""
    seen: list[str] = []
    with store.connect() as conn:
        conn.set_trace_callback(seen.append)
    try:
        call()
    finally:
        with store.connect() as conn:
            conn.set_trace_callback(None)
    return [s for s in seen if s.lstrip().upper().startswith("SELECT") and re.search(rf"FROM {table}\b", s)]


def plan(store: GeoPackageStore, sql: str) -> list[str]:
    with store.connect() as conn:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]


def listing(store: GeoPackageStore, query: IncidentQuery, limit: int = 50) -> list[list[str]]:
    """The plans of every statement one listing page runs."""
    return [plan(store, sql) for sql in statements(store, lambda: store.query_incidents(query, limit=limit))]


def reads_through(plans: list[list[str]], index: str) -> bool:
    """Every statement avoids a full scan of the table and one of them walks ``index``."""
    steps = [step for p in plans for step in p]
    return not any(FULL_SCAN.search(step) for step in steps) and any(uses(step, index) for step in steps)


def uses(step: str, index: str) -> bool:
    return re.search(rf"INDEX {index}\b", step) is not None


def test_the_store_spells_handled_as_the_workflow_does() -> None:
    assert set(HANDLED_STATUSES) == set(DONE)


# -- plans --------------------------------------------------------------------------------------------

FILTERS: dict[str, tuple[Callable[[dict], IncidentQuery], str]] = {
    "overdue": (lambda r: IncidentQuery(overdue_at=NOW), "incidents_open_due"),
    "status": (lambda r: IncidentQuery(statuses=("closed",)), "incidents_status"),
    "category and status": (lambda r: IncidentQuery(categories=(r["category"],), statuses=("closed",)),
                            "incidents_tally"),
    "community": (lambda r: IncidentQuery(community=r["community_code"]), "incidents_community"),
    "grid": (lambda r: IncidentQuery(grid=r["grid_code"]), "incidents_places"),
    "a worker's grid, closed": (lambda r: IncidentQuery(grids=(r["grid_code"],), statuses=("closed",)),
                                "incidents_places"),
    "assignee": (lambda r: IncidentQuery(assignee=r["assignee_code"]), "incidents_assignee"),
    "period": (lambda r: IncidentQuery(since="2026-06-01T00:00:00Z", until="2026-07-01T00:00:00Z"),
               "incidents_period"),
}


@pytest.mark.parametrize("name", FILTERS)
def test_listings_read_through_an_index(store, sample, name) -> None:
    make, index = FILTERS[name]
    plans = listing(store, make(sample), limit=5)
    assert len(plans) == 3  # the page's ids, its rows, the total
    assert reads_through(plans, index), plans


@pytest.mark.parametrize("name", ["status", "community", "assignee"])
def test_one_key_listings_come_newest_first_from_the_index(store, sample, name) -> None:
    make, _ = FILTERS[name]
    plans = listing(store, make(sample), limit=5)
    assert not any("TEMP B-TREE" in step for p in plans for step in p), plans


@pytest.mark.parametrize("name", ["overdue", "grid", "assignee"])
def test_without_its_index_the_listing_reads_the_table(store, sample, name, tmp_path) -> None:
    """The plan checks above have teeth: drop the index and the same listing scans the table."""
    make, index = FILTERS[name]
    copy = tmp_path / "dropped.gpkg"
    with store.connect() as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(store.path, copy)
    bare = GeoPackageStore(copy)
    bare.migrate()
    with bare.connect() as conn:
        conn.execute(f"DROP INDEX {index}")
    assert not reads_through(listing(bare, make(sample), limit=5), index)


@pytest.mark.parametrize(("since", "until", "walks"), [
    ("2026-01-01T00:00:00Z", None, set()),  # whole months: the rollups
    ("2026-01-15T08:00:00Z", "2026-06-20T00:00:00Z", {"incidents_period"}),  # and the two ragged ends
])
def test_the_statistics_of_a_period_read_monthly_counts_and_indexes_only(store, since, until, walks) -> None:
    period = IncidentQuery(since=since, until=until)
    seen = statements(store, lambda: store.incident_tally(period, now=NOW))
    used = set()
    for sql in seen:
        steps = plan(store, sql)
        assert not any(FULL_SCAN.search(step) for step in steps), (sql, steps)
        used |= {name for name in INDEXES if any(uses(step, name) for step in steps)}
    assert used == {"incidents_open_due", "incidents_response_ms", "incidents_resolution_ms", *walks}
    assert len(statements(store, lambda: store.incident_tally(period, now=NOW), "incident_rollup")) == 1
    assert len(statements(store, lambda: store.incident_tally(period, now=NOW), "incident_place_rollup")) == 1


def test_the_statistics_of_other_filters_walk_indexes_in_order(store, sample) -> None:
    scoped = IncidentQuery(grids=(sample["grid_code"],), since="2026-01-01T00:00:00Z")
    seen = statements(store, lambda: store.incident_tally(scoped, now=NOW))
    used = set()
    for sql in seen:
        steps = plan(store, sql)
        assert not any(FULL_SCAN.search(step) for step in steps), (sql, steps)
        assert not any("TEMP B-TREE" in step for step in steps), (sql, steps)  # grouped, sorted by the index
        used |= {name for name in INDEXES if any(uses(step, name) for step in steps)}
    assert used == {"incidents_tally", "incidents_places", "incidents_open_due", "incidents_response_ms",
                    "incidents_resolution_ms"}


# -- totals -------------------------------------------------------------------------------------------

def counts(store: GeoPackageStore, query: IncidentQuery, **page) -> tuple[int, int]:
    """(how many count(*) statements one call ran, the total it answered)."""
    answer: dict = {}

    def call() -> None:
        answer["total"] = store.query_incidents(query, **page)[1]

    seen = statements(store, call)
    return sum("count(*)" in s for s in seen), answer["total"]


def test_a_page_that_ends_the_listing_needs_no_count(store, sample) -> None:
    grid = IncidentQuery(grid=sample["grid_code"])
    everything = len(store.query_incidents(grid)[0])
    assert counts(store, grid, limit=everything + 10) == (0, everything)
    assert counts(store, grid, limit=everything // 2 + 1, offset=everything // 2 + 1) == (0, everything)
    assert counts(store, grid, limit=5) == (1, everything)
    assert counts(store, grid, limit=5, offset=everything + 5) == (1, everything)  # past the end: counted
    assert counts(store, grid, limit=0) == (1, everything)
    assert counts(store, grid) == (0, everything)


# -- the incident revision and the map cache ------------------------------------------------------------

def test_the_revision_changes_with_every_write_and_never_repeats(store, sample) -> None:
    seen = [store.incident_revision()]
    store.query_incidents(IncidentQuery(), limit=5)
    store.incident_tally(IncidentQuery(), now=NOW)
    assert store.incident_revision() == seen[-1]  # reading changes nothing
    record = store.get_incident(sample["id"])
    for _ in range(3):  # three edits within one second
        event = {"at": NOW, "actor": "dispatcher:test", "role": "dispatcher", "action": "supervise",
                 "from_status": record["status"], "to_status": record["status"], "note": None}
        changes = {"supervised_by": "dispatcher:test", "updated_at": NOW}
        record = store.update_incident(record["id"], version=record["version"], changes=changes, event=event)
        seen.append(store.incident_revision())
    assert len(set(seen)) == len(seen)


def test_the_next_due_time_is_when_the_overdue_list_next_changes(store) -> None:
    rows, _ = store.query_incidents(IncidentQuery(), columns="fid, status, due_at")
    start = "2026-11-26T00:00:00Z"
    future = sorted(r["due_at"] for r in rows if r["status"] not in DONE and r["due_at"] >= start)
    assert future, "the sample year ends with open incidents"
    assert store.next_incident_due(start) == future[0]
    assert store.next_incident_due("2099-01-01T00:00:00Z") is None
    due = datetime.fromisoformat(future[0].replace("Z", "+00:00"))
    before, after = due - timedelta(seconds=1), due + timedelta(seconds=1)
    assert incidents_version(store, before) != incidents_version(store, after)
    assert incidents_version(store, before - timedelta(seconds=1)) == incidents_version(store, before)


ADMIN = "queries-admin-token"
needs_assets = pytest.mark.skipif(not Settings().map_assets.is_dir(),
                                  reason="map assets not installed (npm ci --prefix assets)")


@pytest.fixture
def api(sample_db: Path, tmp_path: Path) -> Iterator[TestClient]:
    db = tmp_path / "sample.gpkg"
    shutil.copy(sample_db, db)
    settings = Settings(db=db, load_sample_if_empty=False, admin_token=ADMIN)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        yield client


@needs_assets
def test_a_cached_map_page_reads_no_incident_and_any_transition_rebuilds_it(api: TestClient) -> None:
    state = api.app.state
    first = api.get("/maps/dispatcher?mode=embedded")
    assert first.status_code == 200
    read, misses, hits = state.store.incident_rows_read, state.map_cache.misses, state.map_cache.hits
    again = api.get("/maps/dispatcher?mode=embedded")
    assert again.text == first.text and state.map_cache.hits == hits + 1
    assert state.store.incident_rows_read == read and state.map_cache.misses == misses  # nothing loaded

    incident = api.get("/v1/incidents", params={"status": "dispatched", "limit": 1}).json()["items"][0]
    moved = api.post(f"/v1/incidents/{incident['id']}/transitions", json={"action": "start"},
                     headers={"If-Match": f'"{incident["version"]}"'})
    assert moved.status_code == 200, moved.text
    read = state.store.incident_rows_read
    rebuilt = api.get("/maps/dispatcher?mode=embedded")
    assert state.map_cache.misses == misses + 1 and state.store.incident_rows_read > read
    assert rebuilt.headers["etag"] != first.headers["etag"]


def test_an_older_store_gets_the_indexes_when_opened(sample_db: Path, tmp_path: Path) -> None:
    """A store written before these indexes existed (the old grid index, none of the new) is upgraded."""
    db = tmp_path / "old.gpkg"
    shutil.copy(sample_db, db)
    conn = sqlite3.connect(db)
    try:
        for name in INDEXES:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("CREATE INDEX incidents_grid ON incidents(grid_code)")
        conn.commit()
    finally:
        conn.close()
    store = GeoPackageStore(db)
    store.migrate()
    with store.connect() as conn:
        have = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index' "
                                               "AND tbl_name='incidents' AND sql IS NOT NULL")}
    assert have == set(INDEXES)
    assert store.incident_tally(IncidentQuery(), now=iso(datetime.now(UTC))).total > 0


# -- the monthly counts ------------------------------------------------------------------------------------

def rollups_match_a_recount(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        for table in ROLLUPS:
            kept = sorted(conn.execute(f"SELECT * FROM {table} WHERE n > 0").fetchall())
            assert kept == sorted(conn.execute(recount_sql(table)).fetchall()), table
            assert conn.execute(f"SELECT count(*) FROM {table} WHERE n < 0").fetchone()[0] == 0
    finally:
        conn.close()


def test_the_monthly_counts_follow_every_write(api: TestClient) -> None:
    """Reports, every step of the workflow (a reopen takes the resolution back), a cancellation,
    feedback, and a row deleted behind the service's back: the counts equal a recount after each."""
    store = api.app.state.store
    db = store.path
    rollups_match_a_recount(db)
    point = {"category": "infra.streetlight", "description": "路灯不亮", "lon": 110.7693, "lat": 35.1425}
    made = [TestClient(api.app).post("/v1/incidents", json=point).json() for _ in range(2)]

    def step(incident: dict, action: str, note: str | None = None) -> dict:
        current = api.get(f"/v1/incidents/{incident['id']}").json()
        answer = api.post(f"/v1/incidents/{incident['id']}/transitions", json={"action": action, "note": note},
                          headers={"If-Match": f'"{current["version"]}"'})
        assert answer.status_code == 200, answer.text
        rollups_match_a_recount(db)
        return answer.json()

    for action in ("accept", "dispatch", "start", "resolve"):
        step(made[0], action)
    step(made[0], "reopen", "照明仍不正常")
    for action in ("start", "resolve", "verify", "close"):
        step(made[0], action)
    feedback = TestClient(app=api.app).post(f"/v1/incidents/{made[0]['id']}/feedback",
                                            json={"rating": 4, "receipt": made[0]["receipt"]})
    assert feedback.status_code == 200, feedback.text
    rollups_match_a_recount(db)
    step(made[1], "cancel", "重复上报")
    with store.connect() as conn:
        conn.execute("DELETE FROM incidents WHERE fid = ?", (made[1]["id"],))
    rollups_match_a_recount(db)


def test_an_older_store_gets_its_monthly_counts_when_opened(sample_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "old.gpkg"
    shutil.copy(sample_db, db)
    conn = sqlite3.connect(db)
    try:
        for trigger in ("incidents_rollup_insert", "incidents_rollup_update", "incidents_rollup_delete"):
            conn.execute(f"DROP TRIGGER {trigger}")
        for table in ROLLUPS:
            conn.execute(f"DROP TABLE {table}")
        conn.commit()
    finally:
        conn.close()
    GeoPackageStore(db).migrate()
    rollups_match_a_recount(db)
