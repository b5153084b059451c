"""Backups of a live store and restores from them, through SQLite's online backup API.

A ``cp`` of the GeoPackage misses what is still in its write-ahead log; the backup API reads the
database as one consistent snapshot, WAL included, while the server keeps writing. The copy is a
single self-contained file (rollback journal, no ``-wal``), mode 0600. The receipt secret is not
in the GeoPackage, so the key file beside the store is copied beside the backup (``OUT.key``,
0600); keep the two together and as private as the store itself. When the secret comes from
``GRIDMAP_SECRET`` there is no key file and the deployer keeps that setting. Incident photos live in a
folder beside the store (``<store>.photos/``, ``gridmap.store.photo_tables``): the photos the copied
database lists are copied beside the backup (``OUT.photos/``), after the database, so every row of the
copy has its files (a photo stored meanwhile is in neither).

A restore checks the file is a gridmap GeoPackage before touching anything, then replaces the
store's content in one SQLite transaction: a running server sees the old store or the restored
one, never a mix.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from gridmap.errors import Conflict, InvalidInput, NotFound, StoreUnavailable
from gridmap.store import files
from gridmap.store.geopackage import APPLICATION_ID, BUSY_MESSAGE, BUSY_TIMEOUT_S, GeoPackageStore, is_busy
from gridmap.store.photo_tables import photo_folder, photo_path


@dataclass(frozen=True)
class Copied:
    """What a backup or restore wrote: the database, its incident count and package revision, and
    the key file that went with it (None: there was none to copy)."""

    path: Path
    incidents: int
    revision: str | None
    key: Path | None


def backup(db: Path, out: Path, *, overwrite: bool = False) -> Copied:
    """Copy the store ``db`` to ``out`` (and its key file to ``out.key``) while it may be in use."""
    db, out = Path(db), Path(out)
    if not db.is_file():
        raise NotFound(f"数据库 {db} 不存在")
    if out.resolve() == db.resolve():
        raise InvalidInput("备份文件不能是数据库本身")
    if out.exists() and not overwrite:
        raise Conflict(f"{out} 已存在；换一个文件名，或加 --force 覆盖")
    out.parent.mkdir(parents=True, exist_ok=True)
    with _private_workdir(out.parent) as work:
        tmp = work / out.name
        _copy_database(db, tmp)
        incidents, revision = _check_gridmap_package(tmp, str(db))
        with _staged_photos(tmp, photo_folder(db), out.parent) as photos:  # all there, or no backup
            os.replace(tmp, out)
            _swap_photos(photos, photo_folder(out))
    files.sync_directory(out.parent)
    key = None
    if files.key_path(db).is_file():
        key = files.key_path(out)
        files.write_private(key, files.key_path(db).read_bytes())
    return Copied(out, incidents, revision, key)


def _listed_photos(db: Path) -> list[str]:
    with closing(_open(db)) as conn:
        try:
            return [row[0] for row in conn.execute("SELECT id FROM incident_photos")]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise


@contextmanager
def _staged_photos(db: Path, source: Path, beside: Path) -> Iterator[Path | None]:
    """The photos ``db`` lists, copied from ``source`` into a fresh private folder in ``beside`` (0700,
    files 0600); None when there are none. A listed photo whose files are missing is refused (the store
    is damaged) before anything is replaced."""
    listed = _listed_photos(db)
    fresh = Path(tempfile.mkdtemp(dir=beside, prefix=".gridmap-photos-"))
    try:
        for photo_id in listed:
            for thumbnail in (False, True):
                found = photo_path(source, photo_id, thumbnail=thumbnail)
                if not found.is_file():
                    raise InvalidInput(f"照片文件缺失：{found}（数据库列出了它）")
                copy = photo_path(fresh, photo_id, thumbnail=thumbnail)
                copy.parent.mkdir(mode=0o700, exist_ok=True)
                files.write_private(copy, found.read_bytes())
        yield fresh if listed else None
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


def _swap_photos(fresh: Path | None, target: Path) -> None:
    """``target`` becomes ``fresh`` (or goes, when there are no photos): the folder matches its database."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    if fresh is not None:
        os.replace(fresh, target)
    shutil.rmtree(old, ignore_errors=True)
    files.sync_directory(target.parent)


def restore(source: Path, db: Path) -> Copied:
    """Replace the store ``db`` with the backup ``source`` (and its key file, when it has one).

    Anything that is not a sound gridmap GeoPackage is refused and ``db`` is left as it was.
    """
    source, db = Path(source), Path(db)
    if not source.is_file():
        raise NotFound(f"备份文件 {source} 不存在")
    if db.exists() and source.resolve() == db.resolve():
        raise InvalidInput("备份文件就是数据库本身，无需恢复")
    db.parent.mkdir(parents=True, exist_ok=True)
    with _private_workdir(db.parent) as work, ExitStack() as stack:
        tmp = work / db.name
        _copy_database(source, tmp)  # the source is only read, and checked in the copy
        incidents, revision = _check_gridmap_package(tmp, str(source))
        legacy_secret = _has_legacy_secret(tmp)
        photos = stack.enter_context(_staged_photos(tmp, photo_folder(source), db.parent))
        if db.exists():
            _copy_database(tmp, db, standalone=False)  # one transaction, WAL-aware: readers see old or new
        else:
            for stale in files.sidecars(db):
                stale.unlink(missing_ok=True)
            os.replace(tmp, db)
            files.sync_directory(db.parent)
        _swap_photos(photos, photo_folder(db))
    key = _restore_key(source, db, legacy_secret)
    store = GeoPackageStore(db)
    try:
        store.migrate()  # a backup of an earlier release: its secret moves out of the GeoPackage
    finally:
        store.close()
    return Copied(db, incidents, revision, key)


def _restore_key(source: Path, db: Path, legacy_secret: bool) -> Path | None:
    """The backup's key file replaces the store's; without one, a secret still inside the restored
    GeoPackage (an earlier release's) must win over a key file left from another store."""
    if files.key_path(source).is_file():
        files.write_private(files.key_path(db), files.key_path(source).read_bytes())
        return files.key_path(db)
    if legacy_secret:
        files.key_path(db).unlink(missing_ok=True)
    return None


@contextmanager
def _private_workdir(folder: Path) -> Iterator[Path]:
    """A 0700 directory beside the target, so the final rename stays on one file system."""
    work = Path(tempfile.mkdtemp(dir=folder, prefix=".gridmap-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _copy_database(source: Path, target: Path, *, standalone: bool = True) -> None:
    """SQLite's backup API from ``source`` into ``target`` (created 0600 when new), all pages in one
    step: a consistent snapshot of the source, one transaction on the target. ``standalone``: the
    target is a new file, left in rollback-journal mode so that it is complete on its own."""
    files.create_private(target)
    try:
        with closing(_open(source)) as src, closing(_open(target)) as dst:
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # not a database: fails here
            src.backup(dst)
            if standalone:
                dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise StoreUnavailable(BUSY_MESSAGE) from exc
        raise InvalidInput(f"无法复制 {source}：{exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{source} 不是 SQLite 数据库（{exc}）") from exc


def _open(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)


def _check_gridmap_package(path: Path, shown: str) -> tuple[int, str | None]:
    """(incident count, package revision) of a sound gridmap GeoPackage; InvalidInput (naming the
    file as ``shown``: the checked copy has another name) otherwise."""
    try:
        with closing(_open(path)) as conn:
            if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                raise InvalidInput(f"{shown} 不是 GeoPackage 文件")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"gpkg_contents", "gridmap_meta"} <= tables:
                raise InvalidInput(f"{shown} 是 GeoPackage，但不是 gridmap 的数据库（缺少 gridmap_meta）")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise InvalidInput(f"{shown} 已损坏：{check}")
            row = conn.execute("SELECT value FROM gridmap_meta WHERE key='revision'").fetchone()
            incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()[0] if "incidents" in tables else 0
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{shown} 不是可用的 SQLite 数据库（{exc}）") from exc
    return int(incidents), (row[0] if row else None)


def _has_legacy_secret(path: Path) -> bool:
    with closing(_open(path)) as conn:
        return conn.execute("SELECT 1 FROM gridmap_meta WHERE key='secret'").fetchone() is not None
