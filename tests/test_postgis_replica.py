"""A read replica (issue #11): a primary and a streaming replica from Debian's packages
(``pg_basebackup -R``), the service given both (``GRIDMAP_DB`` and ``GRIDMAP_DB_READ``).

Listings and statistics come from the replica; an incident is readable by its creator at once (the
primary answers single incidents and every write); the replica catches up within seconds; with the
replica stopped, reads fall back to the primary and keep answering.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from pgcluster import Cluster, new_folder
from stores import PG_SECRET, store_settings

from gridmap.api import create_app
from gridmap.bootstrap import load_sample
from gridmap.settings import SAMPLE_PACKAGE
from gridmap.store import open_store

ADMIN = {"Authorization": "Bearer replica-admin"}
REPORT = {"category": "infra.streetlight", "description": "路灯不亮", "lon": 110.7693, "lat": 35.1425}
CATCH_UP_S = 10


class Pair:
    def __init__(self) -> None:
        self.primary = Cluster.start_new(new_folder())
        self.primary.make_template()
        self.url = self.primary.new_database()
        store = open_store(self.url, secret=PG_SECRET)
        load_sample(store, SAMPLE_PACKAGE)
        store.close()
        self.replica = self.primary.replica(new_folder())
        self.read_url = self.replica.url(self.url.rsplit("/", 1)[1])

    def replay(self, running: bool) -> None:
        with psycopg.connect(self.read_url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()" if running else "SELECT pg_wal_replay_pause()")

    def close(self) -> None:
        for cluster in (self.replica, self.primary):
            cluster.stop("immediate")
            shutil.rmtree(cluster.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    pair = Pair()
    try:
        yield pair
    finally:
        pair.close()


@pytest.fixture(scope="module")
def api(pair: Pair) -> Iterator[TestClient]:
    settings = store_settings(db=pair.url, db_read=pair.read_url, load_sample_if_empty=False,
                              admin_token="replica-admin")
    with TestClient(create_app(settings)) as client:
        yield client


def listed(api: TestClient, incident_id: int) -> bool:
    page = api.get("/v1/incidents", params={"limit": 5}, headers=ADMIN)
    assert page.status_code == 200, page.text
    return incident_id in [item["id"] for item in page.json()["items"]]


def wait_listed(api: TestClient, incident_id: int) -> float:
    started = time.monotonic()
    while not listed(api, incident_id):
        assert time.monotonic() - started < CATCH_UP_S, "the replica did not catch up"
        time.sleep(0.1)
    return time.monotonic() - started


def test_the_replica_is_read_only_and_streaming(pair: Pair) -> None:
    with psycopg.connect(pair.read_url) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    with psycopg.connect(pair.primary.url(), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").fetchone()[0] == 1


def test_listings_come_from_the_replica_and_a_new_incident_from_the_primary(pair: Pair, api: TestClient) -> None:
    pair.replay(False)  # the replica stops applying the primary's changes: what it serves shows it
    try:
        created = api.post("/v1/incidents", json=REPORT)
        assert created.status_code == 201, created.text
        incident_id = created.json()["id"]
        mine = api.get(f"/v1/incidents/{incident_id}", headers=ADMIN)  # the creator reads it at once
        assert mine.status_code == 200 and mine.json()["description"] == "路灯不亮"
        time.sleep(1.0)
        assert not listed(api, incident_id), "the listing did not come from the (paused) replica"
        before = api.get("/v1/incidents/stats", headers=ADMIN).json()
    finally:
        pair.replay(True)
    waited = wait_listed(api, incident_id)
    after = api.get("/v1/incidents/stats", headers=ADMIN).json()
    assert after["total"] == before["total"] + 1
    assert waited < CATCH_UP_S
    assert api.app.state.store.replica_reads > 0


def test_reads_fall_back_to_the_primary_when_the_replica_stops(pair: Pair, api: TestClient) -> None:
    created = api.post("/v1/incidents", json=REPORT).json()["id"]
    wait_listed(api, created)
    pair.replica.stop("immediate")
    try:
        newer = api.post("/v1/incidents", json=REPORT).json()["id"]
        assert listed(api, newer)  # only the primary has it: the listing came from there
        assert api.get("/v1/incidents/stats", headers=ADMIN).status_code == 200
    finally:
        pair.replica.start()
    served = api.app.state.store.replica_reads
    deadline = time.monotonic() + 30
    while api.app.state.store.replica_reads == served and time.monotonic() < deadline:
        listed(api, newer)  # after the retry interval the replica is asked again
        time.sleep(0.5)
    assert api.app.state.store.replica_reads > served


def test_a_replica_url_must_be_postgresql(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        store_settings(db=tmp_path / "x.gpkg", db_read="/tmp/other.gpkg")
