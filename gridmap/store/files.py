"""Files of the store that hold residents' data or its secret: created private (0600), written atomically.

The GeoPackage, its ``-wal`` and ``-shm`` and the key file beside it are readable by their owner
only. SQLite gives ``-wal`` and ``-shm`` the database file's mode, so creating the database file
with 0600 before SQLite opens it is enough for all three. A store left group- or world-readable by
an earlier release is tightened when it is opened (and a warning names the file, never its
content).
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

PRIVATE_MODE: Final = 0o600
"""Owner read and write, nobody else: the store, its WAL and shared memory, key files, backups."""
KEY_SUFFIX: Final = ".key"


def key_path(db: Path) -> Path:
    """The key file beside a store or a backup: ``gridmap.gpkg`` → ``gridmap.gpkg.key``."""
    return db.with_name(db.name + KEY_SUFFIX)


def sidecars(db: Path) -> tuple[Path, Path]:
    """SQLite's write-ahead log and shared-memory index of ``db``."""
    return db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")


def create_private(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; True when this call created it.

    ``os.open`` with O_EXCL, not ``touch`` and ``chmod``: there is no moment when the file exists
    with the umask's looser mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def tighten(path: Path) -> None:
    """Take away group and world access from an existing file (earlier releases left it 0644)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    try:
        os.chmod(path, mode & 0o700 or PRIVATE_MODE)
    except OSError as exc:
        log.warning("cannot restrict %s (mode %o) to its owner: %s", path, mode, exc)
        return
    log.warning("restricted %s from mode %o to %o: it holds residents' data", path, mode, mode & 0o700)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, mode 0600, synced to disk before it is renamed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def create_once(path: Path, data: bytes) -> bytes:
    """Write ``data`` to ``path`` unless it exists; the file's content either way.

    Two processes starting at once (two server workers) agree on one value: the file appears whole
    (written aside, then hard-linked, which fails if the name is taken) and the loser reads it.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)
    sync_directory(path.parent)
    return data


def sync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows opening a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
