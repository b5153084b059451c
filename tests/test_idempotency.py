"""Idempotency keys belong to their sender and are forgotten after a day.

A retry by the same sender returns the first incident; the same key from anyone else is simply a
new report (never a 409, never the first sender's incident or receipt); a key older than 24 h is
forgotten and purged. Stores of the previous release (one global key table) are upgraded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from stores import location_of, query_raw, open_test_store, store_settings

from gridmap import auth
from gridmap.api import create_app
from gridmap.store.incident_tables import IDEMPOTENCY_TTL

LON, LAT = 110.7693, 35.1425
BODY = {"category": "infra.road", "description": "路面塌陷", "lon": LON, "lat": LAT}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def record(reported_at: str) -> dict:
    return {"category": "infra.road", "description": "路面塌陷", "lon": LON, "lat": LAT, "source": "居民来电",
            "priority": "normal", "status": "reported", "reported_at": reported_at, "due_at": reported_at,
            "updated_at": reported_at, "co_handlers": [], "suggested_units": [], "duplicate_of": [], "flags": []}


EVENT = {"at": "2026-03-01T08:00:00Z", "actor": "public", "role": "public", "action": "report"}


@pytest.fixture
def app(sample_db_copy: Path) -> Iterator[FastAPI]:
    application = create_app(store_settings(db=sample_db_copy, load_sample_if_empty=False))
    with TestClient(application):  # runs the lifespan: the store and index live on app.state
        yield application


def from_address(app: FastAPI, host: str) -> TestClient:
    """A client of the running app seen from another address (the lifespan already ran)."""
    return TestClient(app, client=(host, 40000))


def bearer(db: Path, role: str) -> dict:
    return {"Authorization": f"Bearer {auth.create_token(open_test_store(db), role=role)[1]}"}


class TestScope:
    def test_a_retry_from_the_same_address_returns_the_first_incident(self, app: FastAPI) -> None:
        client = from_address(app, "10.0.0.1")
        first = client.post("/v1/incidents", json=BODY, headers={"Idempotency-Key": "k-retry"})
        again = client.post("/v1/incidents", json=BODY, headers={"Idempotency-Key": "k-retry"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"] and again.json()["receipt"] == first.json()["receipt"]

    def test_the_same_key_from_another_address_is_a_new_report_that_reveals_nothing(self, app: FastAPI) -> None:
        mine = from_address(app, "10.0.0.1").post("/v1/incidents", json=BODY, headers={"Idempotency-Key": "k-1"})
        theirs = from_address(app, "10.0.0.2").post("/v1/incidents", json=BODY, headers={"Idempotency-Key": "k-1"})
        assert (mine.status_code, theirs.status_code) == (201, 201)
        assert theirs.json()["id"] != mine.json()["id"]
        assert theirs.json()["receipt"] != mine.json()["receipt"]
        assert mine.json()["receipt"] not in theirs.text

    def test_a_guessed_key_with_another_body_is_no_conflict_for_another_sender(self, app: FastAPI) -> None:
        from_address(app, "10.0.0.1").post("/v1/incidents", json=BODY, headers={"Idempotency-Key": "k-2"})
        other = from_address(app, "10.0.0.2").post("/v1/incidents", json={**BODY, "description": "别的"},
                                                    headers={"Idempotency-Key": "k-2"})
        assert other.status_code == 201  # a 409 would tell the sender that someone used this key

    def test_staff_keys_are_per_token_and_apart_from_the_public(self, app: FastAPI, sample_db_copy: Path) -> None:
        client = from_address(app, "10.0.0.1")
        one, two = bearer(sample_db_copy, "dispatcher"), bearer(sample_db_copy, "dispatcher")
        ids = [client.post("/v1/incidents", json=BODY, headers={**h, "Idempotency-Key": "k-3"}).json()["id"]
               for h in (one, two, {})]
        assert len(set(ids)) == 3
        again = client.post("/v1/incidents", json=BODY, headers={**one, "Idempotency-Key": "k-3"})
        assert again.status_code == 200 and again.json()["id"] == ids[0]


class TestExpiry:
    def test_a_key_is_remembered_for_a_day_then_forgotten_and_purged(self, tmp_path: Path, copy_store) -> None:
        store = open_test_store(copy_store.empty(tmp_path, "keys.gpkg"))
        start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

        def send(moment: datetime, key: str = "k") -> tuple[int, bool]:
            return store.insert_incident(record(stamp(moment)), EVENT, idempotency_key=key,
                                         idempotency_scope="public:10.0.0.1", request_hash="h")

        first, created = send(start)
        assert created
        assert send(start + IDEMPOTENCY_TTL - timedelta(minutes=1)) == (first, False)
        later, created = send(start + IDEMPOTENCY_TTL + timedelta(minutes=1))
        assert created and later != first
        rows = query_raw(location_of(store), "SELECT key, incident_id FROM idempotency_keys")
        assert rows == [("k", later)]  # the expired row is gone, not just ignored

    def test_the_ttl_is_24_hours(self) -> None:
        assert IDEMPOTENCY_TTL == timedelta(hours=24)


def test_a_store_of_the_previous_release_gets_scoped_keys(tmp_path: Path) -> None:
    db = tmp_path / "old.gpkg"
    open_test_store(db).insert_incident(record("2026-03-01T08:00:00Z"), EVENT)
    conn = sqlite3.connect(db)
    with conn:  # the previous release's table: one key for every sender
        conn.execute("DROP TABLE idempotency_keys")
        conn.execute("CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, incident_id INTEGER NOT NULL, "
                     "request_hash TEXT NOT NULL, created_at TEXT NOT NULL)")
        conn.execute("INSERT INTO idempotency_keys VALUES ('k', 1, 'h', '2026-03-01T08:00:00Z')")
    conn.close()
    store = open_test_store(db)
    for scope in ("public:10.0.0.1", "public:10.0.0.2"):
        incident_id, created = store.insert_incident(record("2026-03-01T09:00:00Z"), EVENT, idempotency_key="k",
                                                     idempotency_scope=scope, request_hash="h")
        assert created and incident_id != 1
    conn = sqlite3.connect(db)
    try:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(idempotency_keys)")]
        keys = conn.execute("SELECT scope, key FROM idempotency_keys ORDER BY scope").fetchall()
    finally:
        conn.close()
    assert columns[:2] == ["scope", "key"]
    assert keys == [("public:10.0.0.1", "k"), ("public:10.0.0.2", "k")]
