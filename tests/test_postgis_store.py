"""What the PostGIS store promises beyond the shared suite (which runs on both stores, see conftest):
schema versions and ``gridmap migrate``, one snapshot per read of the layers while another process
imports, compare-and-set and idempotency under real concurrency, the audit log guarded by the
database, revision announcements, and a 503 while PostgreSQL is down with recovery afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from pgcluster import Cluster, new_folder
from stores import PG_SECRET, execute_raw, open_test_store, query_raw, store_settings

from gridmap.api import create_app
from gridmap.errors import Conflict, GridmapError
from gridmap.importer import import_package
from gridmap.settings import Settings
from gridmap.store import PostgisStore, open_store
from gridmap.store.base import IncidentQuery
from gridmap.store.postgis import SCHEMA_VERSION, migrations

ADMIN = {"Authorization": "Bearer pg-admin"}
STAMP = "2026-03-01T08:00:00Z"


def record(**changes) -> dict:
    base = {"category": "infra.road", "description": "路面塌陷", "lon": 110.7693, "lat": 35.1425, "source": "居民来电",
            "priority": "normal", "status": "reported", "reported_at": STAMP, "due_at": STAMP, "updated_at": STAMP}
    return {**base, **changes}


EVENT = {"at": STAMP, "actor": "public", "role": "public", "action": "report", "to_status": "reported"}


@pytest.fixture
def url(pg_cluster: Cluster) -> str:
    return pg_cluster.new_database()


@pytest.fixture
def blank_url(pg_cluster: Cluster) -> str:
    """A database with nothing in it, not even PostGIS: what an operator hands to gridmap."""
    name = f"blank_{time.monotonic_ns()}"
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    return pg_cluster.url(name)


def gridmap(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gridmap", *args], capture_output=True, text=True, timeout=120,
                          env=env)


class TestSchema:
    def test_a_new_database_gets_postgis_and_every_table(self, blank_url: str) -> None:
        store = open_test_store(blank_url)
        assert store.schema_version() == 0
        store.migrate()
        assert store.schema_version() == SCHEMA_VERSION == migrations()[-1][0]
        tables = {r[0] for r in query_raw(blank_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"incidents", "incident_events", "tokens", "sessions", "planning_scenarios", "grids", "buildings"} <= tables
        indexes = {r[0] for r in query_raw(blank_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'grids'")}
        assert "grids_geom" in indexes

    def test_gridmap_migrate_upgrades_a_store_of_the_previous_version_in_place(self, blank_url: str) -> None:
        """A store written by the previous release (schema 1): its rows survive, the new trigger arrives."""
        first = dict(migrations())[1]
        with psycopg.connect(blank_url, autocommit=True) as conn:
            conn.execute(first)
            conn.execute("INSERT INTO gridmap_meta VALUES ('schema_version', '1')")
            conn.execute("INSERT INTO tokens VALUES ('t1', 'hash-1', 'planner', NULL, '旧令牌', %s, NULL)", (STAMP,))
        done = gridmap("migrate", "--db", blank_url)
        assert done.returncode == 0, done.stderr
        assert f"1 → {SCHEMA_VERSION}" in done.stdout
        assert query_raw(blank_url, "SELECT id, label FROM tokens") == [("t1", "旧令牌")]
        assert query_raw(blank_url, "SELECT count(*) FROM pg_trigger WHERE tgname = 'gridmap_meta_announce'") == [(1,)]
        assert query_raw(blank_url, "SELECT count(*) FROM pg_indexes WHERE indexname = 'incidents_updated'") == [(1,)]
        again = gridmap("migrate", "--db", blank_url)
        assert again.returncode == 0 and "已是最新" in again.stdout

    def test_migrate_refuses_a_database_it_cannot_reach(self) -> None:
        done = gridmap("migrate", "--db", "postgresql://gridmap@127.0.0.1:1/none")
        assert done.returncode == 1 and "数据库暂时无法连接" in done.stderr

    def test_server_mode_needs_the_secret_and_says_so(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        store = open_store(url)
        with pytest.raises(GridmapError, match="GRIDMAP_SECRET"):
            store.secret()
        store.close()
        monkeypatch.delenv("GRIDMAP_SECRET", raising=False)
        app = create_app(Settings(db=url, load_sample_if_empty=False))
        with pytest.raises(GridmapError, match="GRIDMAP_SECRET"), TestClient(app):
            pass


class TestLayers:
    def test_a_reader_sees_the_old_package_or_the_new_one_never_a_mix(self, url: str, make_package) -> None:
        """Imports alternate between two packages while another store object reads every layer."""
        def fewer(layers):
            layers["buildings"] = layers["buildings"].iloc[:1]
            layers["workers"] = layers["workers"].iloc[:1]

        packages = {"full": make_package(lambda layers: None), "fewer": make_package(fewer)}
        writer, reader = open_test_store(url), open_test_store(url)
        import_package(writer, packages["full"])
        shapes = {}
        for name, package in packages.items():
            import_package(writer, package)
            layers = reader.read_layers()
            shapes[(len(layers["buildings"]), len(layers["workers"]))] = name
        assert len(shapes) == 2
        stop = threading.Event()
        seen: list[tuple[int, int]] = []

        def imports() -> None:
            while not stop.is_set():
                for package in packages.values():
                    import_package(writer, package)

        thread = threading.Thread(target=imports)
        thread.start()
        try:
            for _ in range(40):
                layers = reader.read_layers()
                seen.append((len(layers["buildings"]), len(layers["workers"])))
        finally:
            stop.set()
            thread.join()
        assert set(seen) <= set(shapes), f"mixed reads: {set(seen) - set(shapes)}"

    def test_an_import_is_announced_to_every_watcher(self, url: str, tiny_package: Path) -> None:
        heard: list[str] = []
        arrived = threading.Event()
        watcher = open_test_store(url)
        stop = watcher.watch_revisions(lambda revision: (heard.append(revision), arrived.set()))
        try:
            time.sleep(0.5)  # the watcher is listening
            importer = open_test_store(url)
            import_package(importer, tiny_package)
            assert arrived.wait(2.0), "no announcement within 2 s"
            assert heard == [importer.revision()]
        finally:
            stop()


class TestIncidents:
    def test_two_processes_editing_one_version_one_wins_one_conflicts(self, url: str) -> None:
        first, second = open_test_store(url), open_test_store(url)
        incident_id, _ = first.insert_incident(record(), EVENT)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def edit(store: PostgisStore, who: str) -> None:
            barrier.wait()
            try:
                store.update_incident(incident_id, version=1, changes={"status": "accepted", "assignee_code": who},
                                      event={**EVENT, "action": "accept", "actor": who})
                outcomes.append("ok")
            except Conflict:
                outcomes.append("conflict")

        threads = [threading.Thread(target=edit, args=(s, w)) for s, w in ((first, "a"), (second, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["conflict", "ok"]
        assert first.get_incident(incident_id)["version"] == 2
        assert len(first.incident_events(incident_id)) == 2

    def test_the_same_key_sent_twice_at_once_makes_one_incident(self, url: str) -> None:
        stores = [open_test_store(url) for _ in range(4)]
        barrier = threading.Barrier(len(stores))
        answers: list[tuple[int, bool]] = []

        def send(store: PostgisStore) -> None:
            barrier.wait()
            answers.append(store.insert_incident(record(), EVENT, idempotency_key="k", idempotency_scope="ip:1",
                                                 request_hash="h"))

        threads = [threading.Thread(target=send, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({incident_id for incident_id, _ in answers}) == 1
        assert sorted(created for _, created in answers) == [False, False, False, True]
        assert query_raw(url, "SELECT count(*) FROM incidents") == [(1,)]

    def test_the_audit_log_refuses_update_delete_and_truncate(self, url: str) -> None:
        store = open_test_store(url)
        incident_id, _ = store.insert_incident(record(), EVENT)
        for statement in ("UPDATE incident_events SET note = 'x' WHERE incident_id = ?",
                          "DELETE FROM incident_events WHERE incident_id = ?", "TRUNCATE incident_events CASCADE"):
            with pytest.raises(psycopg.Error, match="append-only"):
                execute_raw(url, statement, (incident_id,) if "?" in statement else ())
        assert len(store.incident_events(incident_id)) == 1

    def test_a_history_goes_in_whole_or_not_at_all(self, url: str) -> None:
        store = open_test_store(url)
        before = store.incident_revision()

        def rows():
            yield record(), [EVENT]
            yield record(description=None), [EVENT]  # NOT NULL: the load fails half way

        with pytest.raises(psycopg.Error):
            store.insert_incidents(rows())
        assert query_raw(url, "SELECT count(*) FROM incidents") == [(0,)]
        assert store.incident_revision() == before
        assert store.insert_incidents(iter([(record(), [EVENT, {**EVENT, "action": "accept"}])])) == 1
        [(new_id,)] = query_raw(url, "SELECT fid FROM incidents")
        assert [e["action"] for e in store.incident_events(new_id)] == ["report", "accept"]


@pytest.fixture
def own_cluster(tiny_package: Path) -> Iterator[tuple[Cluster, str]]:
    """A cluster of this test's own, to stop and start under a running app."""
    cluster = Cluster.start_new(new_folder())
    try:
        cluster.make_template()
        url = cluster.new_database()
        import_package(open_test_store(url), tiny_package)
        yield cluster, url
    finally:
        cluster.stop("immediate")
        shutil.rmtree(cluster.folder, ignore_errors=True)


def test_postgres_down_answers_503_with_retry_after_then_recovers(own_cluster: tuple[Cluster, str]) -> None:
    cluster, url = own_cluster
    settings = store_settings(db=url, load_sample_if_empty=False, admin_token="pg-admin", secret=PG_SECRET)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/incidents", headers=ADMIN).status_code == 200
        cluster.stop("immediate")
        down = client.get("/v1/incidents", headers=ADMIN)
        assert down.status_code == 503, down.text
        assert down.headers["Retry-After"] and "数据库" in down.json()["detail"]
        assert client.get("/health").status_code in (200, 503)
        cluster.start()
        deadline = time.monotonic() + 15
        while (answer := client.get("/v1/incidents", headers=ADMIN)).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert answer.status_code == 200, answer.text


def test_a_restart_loads_the_index_from_the_hosts_cache_folder(url: str, tiny_package: Path, tmp_path: Path) -> None:
    """GRIDMAP_CACHE_DIR: the index of a revision is built once per host, then read back at each start."""
    import_package(open_test_store(url), tiny_package)
    folder = tmp_path / "cache"
    settings = store_settings(db=url, load_sample_if_empty=False, cache_dir=folder)
    with TestClient(create_app(settings)) as first:
        assert (first.app.state.coverage.cache.builds, first.app.state.coverage.cache.loads) == (1, 0)
        first.app.state.coverage.cache.wait()
    files = list(folder.iterdir())
    assert len(files) == 1 and "@127.0.0.1-" in files[0].name and "gridmap@" not in files[0].name
    assert folder.stat().st_mode & 0o777 == 0o700
    with TestClient(create_app(settings)) as second:
        assert (second.app.state.coverage.cache.builds, second.app.state.coverage.cache.loads) == (0, 1)
        answer = second.get("/v1/lookup", params={"lon": 110.7693, "lat": 35.1425})
        assert answer.status_code == 200


def test_the_monthly_counts_follow_every_write_and_equal_a_recount(url: str) -> None:
    """Migration 0004: statement triggers keep the rollups in the writing transaction (inserts, a COPY'd
    history, updates of counted columns, deletes); they always equal a GROUP BY over the incidents."""
    store = open_test_store(url)
    incident_id, _ = store.insert_incident(record(), EVENT)
    store.insert_incidents(iter([(record(category="infra.water", reported_at="2026-04-02T08:00:00Z"), [EVENT])] * 3))
    store.update_incident(incident_id, version=1, changes={"status": "accepted", "accepted_at": STAMP},
                          event={**EVENT, "action": "accept"})
    store.update_incident(incident_id, version=2, changes={"description": "不计入统计的修改"},
                          event={**EVENT, "action": "note"})
    recount = ("SELECT category, status, (accepted_at IS NOT NULL)::int, coalesce((resolved_at <= due_at)::int, -1), "
               "coalesce(rating, 0), substr(reported_at, 1, 7), count(*)::int FROM incidents GROUP BY 1, 2, 3, 4, 5, 6")
    kept = "SELECT category, status, answered, on_time, rating, month, n FROM incident_rollup WHERE n > 0"
    assert sorted(query_raw(url, kept)) == sorted(query_raw(url, recount))
    assert sorted(query_raw(url, kept)) == [("infra.road", "accepted", 1, -1, 0, "2026-03", 1),
                                            ("infra.water", "reported", 0, -1, 0, "2026-04", 3)]
    tally = store.incident_tally(IncidentQuery(since="2026-03-01T00:00:00Z", until="2026-05-01T00:00:00Z"),
                                 now=STAMP)
    assert tally.total == 4 and tally.by_category == {"infra.road": 1, "infra.water": 3} and tally.accepted == 1
