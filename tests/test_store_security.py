"""The store's files are private, its receipt secret lives outside the GeoPackage, and a busy store
answers 503 with Retry-After instead of failing or hanging."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridmap.api import create_app
from gridmap.bootstrap import open_configured_store
from gridmap.importer import import_package
from gridmap.settings import Settings
from gridmap.store import GeoPackageStore

LON, LAT = 110.7693, 35.1425  # inside a grid of the sample county

pytestmark = pytest.mark.sqlite_only  # the GeoPackage file itself; PostGIS has its own tests


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def incident_record(reported_at: str = "2026-03-01T08:00:00Z") -> dict:
    return {"category": "infra.streetlight", "description": "路灯不亮", "lon": LON, "lat": LAT,
            "source": "居民来电", "priority": "normal", "status": "reported", "reported_at": reported_at,
            "due_at": "2026-03-02T08:00:00Z", "updated_at": reported_at, "co_handlers": [], "suggested_units": [],
            "duplicate_of": [], "flags": []}


def report_event() -> dict:
    return {"at": "2026-03-01T08:00:00Z", "actor": "public", "role": "public", "action": "report"}


def old_receipt(secret: str, incident_id: int) -> str:
    """A receipt as the previous release computed it (HMAC of the id with the store's secret)."""
    return hmac.new(secret.encode(), f"incident:{incident_id}".encode(), hashlib.sha256).hexdigest()[:24]


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common default umask (files 0644), so that only gridmap's own care makes them private."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def app_client(sample_db_copy: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(db=sample_db_copy, load_sample_if_empty=False))) as client:
        yield client


def post_report(client: TestClient, **headers: str):
    body = {"category": "infra.streetlight", "description": "路灯不亮", "lon": LON, "lat": LAT}
    return client.post("/v1/incidents", json=body, headers=headers)


class TestFileModes:
    def test_a_new_store_its_wal_shm_and_key_file_are_readable_by_the_owner_only(
            self, tmp_path: Path, tiny_package: Path, loose_umask) -> None:
        db = tmp_path / "new.gpkg"
        store = GeoPackageStore(db)
        import_package(store, tiny_package)
        store.insert_incident(incident_record(), report_event())
        store.secret()
        wal, shm, key = (tmp_path / f"new.gpkg{suffix}" for suffix in ("-wal", "-shm", ".key"))
        assert all(p.exists() for p in (db, wal, shm, key))
        assert {p.name: oct(mode(p)) for p in (db, wal, shm, key)} == {p.name: "0o600" for p in (db, wal, shm, key)}

    def test_a_store_left_readable_by_an_earlier_release_is_tightened_when_opened(
            self, sample_db_copy: Path, loose_umask) -> None:
        GeoPackageStore(sample_db_copy).secret()
        key = sample_db_copy.with_name(sample_db_copy.name + ".key")
        for path in (sample_db_copy, key):
            os.chmod(path, 0o644)
        store = open_configured_store(Settings(db=sample_db_copy, load_sample_if_empty=False))
        assert store.revision() is not None
        assert (oct(mode(sample_db_copy)), oct(mode(key))) == ("0o600", "0o600")


class TestSecret:
    def test_the_geopackage_holds_no_secret_and_receipts_still_verify(self, sample_db_copy: Path) -> None:
        with TestClient(create_app(Settings(db=sample_db_copy, load_sample_if_empty=False))) as client:
            created = [post_report(client).json() for _ in range(3)]
            for incident in created:
                answer = client.get(f"/v1/incidents/{incident['id']}", headers={"X-Receipt": incident["receipt"]})
                assert answer.status_code == 200, answer.text
        key = sample_db_copy.with_name(sample_db_copy.name + ".key")
        secret = key.read_text().strip()
        assert len(secret) == 64 and oct(mode(key)) == "0o600"
        conn = sqlite3.connect(sample_db_copy)
        try:
            meta = dict(conn.execute("SELECT key, value FROM gridmap_meta").fetchall())
        finally:
            conn.close()
        assert "secret" not in meta and secret not in meta.values()
        for path in sample_db_copy.parent.glob(sample_db_copy.name + "*"):
            if path != key:
                assert secret.encode() not in path.read_bytes(), path.name

    def test_a_copy_of_the_geopackage_alone_cannot_make_the_same_receipts(
            self, app_client: TestClient, sample_db_copy: Path, tmp_path: Path) -> None:
        incident = post_report(app_client).json()
        elsewhere = tmp_path / "handed-over"
        elsewhere.mkdir()
        shutil.copy(sample_db_copy, elsewhere / sample_db_copy.name)
        with TestClient(create_app(Settings(db=elsewhere / sample_db_copy.name, load_sample_if_empty=False))) as copy:
            forged = copy.post("/v1/incidents", json={"category": "infra.streetlight", "description": "x",
                                                     "lon": LON, "lat": LAT}).json()["receipt"]
            read = copy.get(f"/v1/incidents/{incident['id']}", headers={"X-Receipt": incident["receipt"]})
        assert read.status_code == 403  # the copy's own key does not know the original's receipts
        assert forged != incident["receipt"]

    def test_GRIDMAP_SECRET_is_used_when_set_and_no_key_file_is_written(self, sample_db_copy: Path) -> None:
        configured = "s" * 40
        store = open_configured_store(Settings(db=sample_db_copy, secret=configured, load_sample_if_empty=False))
        assert store.secret() == configured
        assert not sample_db_copy.with_name(sample_db_copy.name + ".key").exists()
        assert configured not in repr(Settings(db=sample_db_copy, secret=configured))

    def test_a_store_of_the_previous_release_keeps_its_receipts_when_the_secret_moves_out(
            self, sample_db_copy: Path) -> None:
        legacy = "a1" * 32
        conn = sqlite3.connect(sample_db_copy)
        with conn:
            conn.execute("INSERT INTO gridmap_meta VALUES ('secret', ?)", (legacy,))
        conn.close()
        with TestClient(create_app(Settings(db=sample_db_copy, load_sample_if_empty=False))) as client:
            answer = client.get("/v1/incidents/1", headers={"X-Receipt": old_receipt(legacy, 1)})
            assert answer.status_code == 200, answer.text
            new = post_report(client).json()
            assert new["receipt"] == old_receipt(legacy, new["id"])  # the same secret, now from the key file
        key = sample_db_copy.with_name(sample_db_copy.name + ".key")
        assert key.read_text().strip() == legacy and oct(mode(key)) == "0o600"
        conn = sqlite3.connect(sample_db_copy)
        try:
            assert conn.execute("SELECT count(*) FROM gridmap_meta WHERE key='secret'").fetchone()[0] == 0
        finally:
            conn.close()
        for path in sample_db_copy.parent.glob(sample_db_copy.name + "*"):
            if path != key:
                assert legacy.encode() not in path.read_bytes(), path.name


class TestBusyStore:
    def test_a_store_locked_by_another_process_answers_503_with_retry_after_then_recovers(
            self, app_client: TestClient, sample_db_copy: Path) -> None:
        assert post_report(app_client).status_code == 201
        holder = sqlite3.connect(sample_db_copy, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            busy = post_report(app_client)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert busy.status_code == 503, busy.text
        assert busy.headers["Retry-After"] == "2"
        assert busy.json()["error"] == "store_unavailable" and "数据库正忙" in busy.json()["detail"]
        assert post_report(app_client).status_code == 201

    def test_a_writer_stuck_in_this_process_answers_503_instead_of_queueing_forever(
            self, app_client: TestClient) -> None:
        store = app_client.app.state.store
        assert store.write_lock.acquire(timeout=10)
        try:
            busy = post_report(app_client)
        finally:
            store.write_lock.release()
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"
        assert post_report(app_client).status_code == 201
