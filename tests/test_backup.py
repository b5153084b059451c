"""`gridmap backup` copies a live store consistently (WAL included) and `gridmap restore` puts it back;
anything but a gridmap GeoPackage is refused with the target left untouched."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import geopandas as gpd
import pytest
from servers import free_port, start_server
from shapely.geometry import Point

from gridmap import auth
from gridmap.incidents.service import receipt_for
from gridmap.store import GeoPackageStore

pytestmark = pytest.mark.sqlite_only  # the GeoPackage file itself; PostGIS has its own tests


def gridmap(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gridmap", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def incidents_in(db: Path) -> dict[int, str]:
    """id → description, read with plain SQLite from the file alone (no -wal beside it)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT fid, description FROM incidents").fetchall())
    finally:
        conn.close()


def fingerprint(*paths: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "absent" for p in paths}


@pytest.mark.slow
def test_a_backup_during_concurrent_writes_holds_every_incident_acknowledged_before_it(
        sample_db_copy: Path, tmp_path: Path) -> None:
    db = sample_db_copy
    staff = {"Authorization": f"Bearer {auth.create_token(GeoPackageStore(db), role='dispatcher')[1]}",
             "Content-Type": "application/json"}
    port = free_port()
    server = start_server(db, port)
    acknowledged: dict[int, tuple[str, str]] = {}
    refused: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            body = {"category": "infra.streetlight", "description": f"backup-{n}-{i}",
                    "lon": 110.7693 + 0.0001 * n, "lat": 35.1425 + 0.00001 * i}
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/incidents", method="POST",
                                             data=json.dumps(body).encode(), headers=staff)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.loads(response.read())
                    if response.status == 201:
                        with lock:
                            acknowledged[answer["id"]] = (body["description"], answer["receipt"])
            except urllib.error.HTTPError as exc:
                if exc.code != 503:  # busy may happen; anything else is a bug
                    refused.append(f"{exc.code} {exc.read()[:200]!r}")
            i += 1
            stop.wait(0.2)  # a steady load: the WAL is folded into the file only every few seconds

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    out = tmp_path / "backups" / "nightly.gpkg"
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        with lock:
            before = dict(acknowledged)
        result = gridmap("backup", out, "--db", db)  # the writers keep writing meanwhile
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        server.terminate()
        server.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    assert len(before) >= 40 and refused == []
    assert "0600" in result.stdout and "nightly.gpkg.key" in result.stdout

    key = out.with_name("nightly.gpkg.key")
    assert (mode(out), mode(key)) == ("0o600", "0o600")
    assert not out.with_name("nightly.gpkg-wal").exists()
    backed_up = incidents_in(out)
    missing = {i: d for i, (d, _) in before.items() if backed_up.get(i) != d}
    assert missing == {}

    fresh = tmp_path / "restored" / "store.gpkg"
    restored = gridmap("restore", out, "--db", fresh)
    assert restored.returncode == 0, restored.stderr
    store = GeoPackageStore(fresh)
    for incident_id, (description, receipt) in before.items():
        assert store.get_incident(incident_id)["description"] == description
        assert receipt_for(store, incident_id) == receipt  # the key travelled with the backup
    assert (mode(fresh), mode(fresh.with_name("store.gpkg.key"))) == ("0o600", "0o600")


def with_key(db: Path) -> Path:
    """The store with its key file created (as by its first receipt), all connections closed."""
    store = GeoPackageStore(db)
    store.secret()
    store.close()
    return db


def test_restore_over_an_existing_store_replaces_its_content_and_key(sample_db_copy: Path, tmp_path: Path,
                                                                     tiny_package: Path) -> None:
    with_key(sample_db_copy)
    backup = tmp_path / "sample-backup.gpkg"
    assert gridmap("backup", backup, "--db", sample_db_copy).returncode == 0
    target = tmp_path / "other.gpkg"
    assert gridmap("import", tiny_package, "--db", target).returncode == 0
    with_key(target)
    result = gridmap("restore", backup, "--db", target)
    assert result.returncode == 0, result.stderr
    assert incidents_in(target) == incidents_in(sample_db_copy)
    assert GeoPackageStore(target).revision() == GeoPackageStore(sample_db_copy).revision()
    assert target.with_name("other.gpkg.key").read_bytes() == backup.with_name("sample-backup.gpkg.key").read_bytes()


def test_backup_does_not_overwrite_unless_forced(sample_db_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.gpkg"
    out.write_text("an older backup")
    refused = gridmap("backup", out, "--db", sample_db_copy)
    assert refused.returncode == 1 and "已存在" in refused.stderr and out.read_text() == "an older backup"
    assert gridmap("backup", out, "--db", sample_db_copy, "--force").returncode == 0
    assert len(incidents_in(out)) == len(incidents_in(sample_db_copy))


def not_sqlite(path: Path) -> None:
    path.write_text("网格,事件\n1,2\n", encoding="utf-8")


def someone_elses_geopackage(path: Path) -> None:
    gpd.GeoDataFrame({"name": ["x"]}, geometry=[Point(110.77, 35.14)], crs="EPSG:4326").to_file(path, driver="GPKG")


def truncated_store(path: Path, sample: Path) -> None:
    path.write_bytes(sample.read_bytes()[: 200 * 4096])


@pytest.mark.parametrize("make", [not_sqlite, someone_elses_geopackage, truncated_store],
                         ids=["csv", "foreign-gpkg", "truncated"])
def test_restore_refuses_anything_but_a_gridmap_geopackage_and_leaves_the_target(
        make, sample_db_copy: Path, tmp_path: Path) -> None:
    with_key(sample_db_copy)
    bad = tmp_path / "bad.gpkg"
    make(bad, sample_db_copy) if make is truncated_store else make(bad)
    shutil.copy(sample_db_copy.with_name(sample_db_copy.name + ".key"), tmp_path / "bad.gpkg.key")
    files = [sample_db_copy, sample_db_copy.with_name(sample_db_copy.name + ".key")]
    before = fingerprint(*files)
    result = gridmap("restore", bad, "--db", sample_db_copy)
    assert result.returncode == 1
    assert result.stderr.startswith("错误：") and "未作任何改动" in result.stderr
    assert fingerprint(*files) == before
    assert sorted(p.name for p in sample_db_copy.parent.iterdir() if p.name.startswith(".gridmap-")) == []


def _photographed(db: Path) -> list[dict]:
    """Two 处置前 photos on the store's first open incident, added as a dispatcher would."""
    import io

    from PIL import Image

    from gridmap.auth import Actor
    from gridmap.coverage.service import Coverage
    from gridmap.incidents import photos

    store = GeoPackageStore(db)
    coverage = Coverage.from_layers(store.read_layers())
    incident = next(i for i, _ in incidents_in(db).items()
                    if store.get_incident(i)["status"] in ("dispatched", "in_progress"))
    pictures = []
    for colour in ((200, 30, 30), (30, 30, 200)):
        out = io.BytesIO()
        Image.new("RGB", (64, 48), colour).save(out, "JPEG")
        pictures.append(("现场.jpg", out.getvalue(), "image/jpeg"))
    added = photos.attach_photos(store=store, coverage=coverage, incident_id=incident, files=pictures,
                                 stage="before", actor=Actor("dispatcher"))
    store.close()
    return added


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_backup_and_restore_carry_the_incident_photos(sample_db_copy: Path, tmp_path: Path,
                                                      tiny_package: Path) -> None:
    added = _photographed(sample_db_copy)
    source_photos = sample_db_copy.with_name(sample_db_copy.name + ".photos")
    backup = tmp_path / "with-photos.gpkg"
    done = gridmap("backup", backup, "--db", sample_db_copy)
    assert done.returncode == 0, done.stderr
    copied = backup.with_name("with-photos.gpkg.photos")
    assert _folder_bytes(copied) == _folder_bytes(source_photos)
    assert len(_folder_bytes(copied)) == 2 * len(added)  # each photo and its thumbnail
    assert stat.S_IMODE(copied.stat().st_mode) == 0o700
    target = tmp_path / "target.gpkg"
    assert gridmap("import", tiny_package, "--db", target).returncode == 0
    stray = target.with_name("target.gpkg.photos")
    stray.mkdir()
    (stray / "left-over.jpg").write_bytes(b"not one of the backup's")
    assert gridmap("restore", backup, "--db", target).returncode == 0
    assert _folder_bytes(stray) == _folder_bytes(copied)  # the folder matches the restored database


def test_a_backup_whose_photo_files_are_missing_is_refused(sample_db_copy: Path, tmp_path: Path) -> None:
    _photographed(sample_db_copy)
    folder = sample_db_copy.with_name(sample_db_copy.name + ".photos")
    next(folder.rglob("*.thumb.jpg")).unlink()
    refused = gridmap("backup", tmp_path / "b.gpkg", "--db", sample_db_copy)
    assert refused.returncode == 1 and "照片文件缺失" in refused.stderr
    assert not (tmp_path / "b.gpkg").exists() and not (tmp_path / "b.gpkg.photos").exists()
