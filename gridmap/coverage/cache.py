"""The built ``Coverage`` (indexes and address library) kept on disk beside the store, one file per revision.

Why: at city scale the build takes tens of seconds (100 towns: 10,500 grids, 477,500 buildings), and a
server restarted with an unchanged store would pay it again for nothing. The store's revision is a hash
of the imported layers, so a file built for that revision is still right as long as the code that built
it is the same; the file therefore also carries a fingerprint of that code (``CACHE_VERSION``, the
sources of ``gridmap.coverage`` and ``gridmap.address``, and the versions of the libraries whose objects
it holds) and is used only when both match.

The file is a pickle, and unpickling runs code: it is authenticated with an HMAC keyed from the store's
receipt secret, so a file not written by a process holding that secret — tampered with, truncated,
copied from another installation — is ignored, like a missing or unreadable one: a warning in the log,
then a rebuild. Start-up never fails because of the cache. Written atomically (temporary file, fsync,
rename), mode 0600. It holds the layers (areas, buildings, grid workers' public contacts), never
incidents or anything residents sent.

Layout: ``<db>.coverage-<revision>.cache`` = magic, fingerprint, revision, pickle, HMAC-SHA256 trailer.
Older revisions' files are removed when a new one is written.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import logging
import os
import pickle
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Final

from gridmap.coverage.service import Coverage, paused_gc
from gridmap.store import files
from gridmap.store.base import Store

log = logging.getLogger(__name__)

CACHE_VERSION: Final = 1
"""Bump when what a built Coverage holds changes in a way the source fingerprint would not notice."""
MAGIC: Final = b"GRIDMAP-COVERAGE-CACHE\n"
MAC_BYTES: Final = 32
READ_CHUNK: Final = 1 << 20
STALE_TEMP_S: Final = 3600
"""A temporary file older than this was left by a writer that died; the next writer removes it."""
_LIBRARIES: Final = ("numpy", "pandas", "geopandas", "shapely", "pyproj", "scipy", "pyahocorasick", "pypinyin")
_SOURCES: Final = ("coverage", "address")
"""Packages of gridmap whose objects are in the file (or build them): any change to them invalidates it."""


def cache_path(db: Path, revision: str) -> Path:
    """``gridmap.gpkg`` at revision ``abc`` → ``gridmap.gpkg.coverage-abc.cache`` beside it."""
    return db.with_name(f"{db.name}.coverage-{revision}.cache")


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """Hash of the code that builds and holds a Coverage: the cache version, gridmap's sources, libraries."""
    digest = hashlib.sha256(f"{CACHE_VERSION}|{sys.version}".encode())
    for name in _LIBRARIES:
        try:
            digest.update(f"|{name}={importlib.metadata.version(name)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"|{name}=?".encode())
    package = Path(__file__).resolve().parent.parent
    for path in sorted(p for folder in _SOURCES for p in (package / folder).rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:32]


def _key(store: Store) -> bytes:
    """The HMAC key: derived from the receipt secret, so the secret itself is never used twice."""
    return hmac.new(store.secret().encode(), b"gridmap coverage cache", hashlib.sha256).digest()


def _header(revision: str) -> bytes:
    return MAGIC + fingerprint().encode() + b"\n" + revision.encode() + b"\n"


class CoverageCache:
    """The cache files of one store (a file-backed store: ``store.path``)."""

    def __init__(self, store: Store, db: Path) -> None:
        self.store = store
        self.db = db
        self.loads = 0
        """Coverages this object loaded from disk (tests read it to tell a cache hit from a rebuild)."""
        self.builds = 0
        self._writer: threading.Thread | None = None
        self._write_lock = threading.Lock()

    @classmethod
    def for_store(cls, store: Store) -> CoverageCache | None:
        """A cache beside a file-backed store, or under a server-mode store's ``cache_base``
        (``GRIDMAP_CACHE_DIR``); None for a store with neither (no cache then)."""
        db = getattr(store, "path", None) or getattr(store, "cache_base", None)
        return cls(store, Path(db)) if db is not None else None

    def load(self, revision: str) -> Coverage | None:
        """The cached Coverage of ``revision``, or None when there is no usable file (never raises)."""
        path = cache_path(self.db, revision)
        try:
            with path.open("rb") as f:
                coverage = self._read(f, revision)
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - whatever is wrong with the file, the answer is: rebuild
            log.warning("ignored the coverage cache %s (%s: %s); rebuilding", path.name, type(exc).__name__, exc)
            return None
        if coverage is None:
            log.info("the coverage cache %s was written by another version of gridmap; rebuilding", path.name)
            return None
        self.loads += 1
        return coverage

    def _read(self, f: BinaryIO, revision: str) -> Coverage | None:
        header = _header(revision)
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError("not a coverage cache file")
        f.seek(0)
        if f.read(len(header)) != header:
            return None
        size = os.fstat(f.fileno()).st_size
        if size < len(header) + MAC_BYTES:
            raise ValueError("truncated")
        mac = hmac.new(_key(self.store), header, hashlib.sha256)
        remaining = size - len(header) - MAC_BYTES
        while remaining:
            chunk = f.read(min(READ_CHUNK, remaining))
            if not chunk:
                raise ValueError("truncated")
            mac.update(chunk)
            remaining -= len(chunk)
        if not hmac.compare_digest(mac.digest(), f.read(MAC_BYTES)):
            raise ValueError("authentication failed (corrupt, or not written with this store's secret)")
        f.seek(len(header))
        coverage = _unpickle(f)
        if not isinstance(coverage, Coverage) or coverage.revision != revision:
            raise ValueError("holds something else than this revision's coverage")
        return coverage

    def save(self, coverage: Coverage, *, built_at: float | None = None) -> Path | None:
        """Write ``coverage`` for its revision atomically (0600); files of coverages built before it (other,
        older revisions) go. ``built_at``: when it was built (``time.time()``), default now. Never raises."""
        if coverage.revision is None:
            return None
        path = cache_path(self.db, coverage.revision)
        started = time.perf_counter()
        with self._write_lock:
            try:
                self._write(path, coverage)
            except Exception as exc:  # noqa: BLE001 - a cache that cannot be written costs the next start only
                log.warning("could not write the coverage cache %s (%s: %s)", path.name, type(exc).__name__, exc)
                return None
            self._remove_others(keep=path, before=time.time() if built_at is None else built_at)
        log.info("coverage of revision %s cached in %s in %.2f s", coverage.revision, path.name,
                 time.perf_counter() - started)
        return path

    def save_later(self, coverage: Coverage) -> None:
        """``save`` in a background thread: a running server answers from a new Coverage at once, and the
        file (a quarter of a gigabyte at 100 towns, ~15 s to write) follows."""
        self._writer = threading.Thread(target=self.save, args=(coverage,), kwargs={"built_at": time.time()},
                                        name="coverage-cache", daemon=True)
        self._writer.start()

    def wait(self) -> None:
        """Until the file ``save_later`` is writing is written (tests, benchmarks, a command about to exit)."""
        if self._writer is not None:
            self._writer.join()

    def _write(self, path: Path, coverage: Coverage) -> None:
        header = _header(str(coverage.revision))
        mac = hmac.new(_key(self.store), header, hashlib.sha256)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(header)
                pickle.dump(coverage, _Signing(f, mac.update), protocol=pickle.HIGHEST_PROTOCOL)
                f.write(mac.digest())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        files.sync_directory(path.parent)

    def _remove_others(self, keep: Path, before: float) -> None:
        """Files written before ``before`` (older builds: a file finished later comes from a newer build,
        which an import may have started while this one was being written), and temporary files that a
        writer which died left behind."""
        now = time.time()
        for other in self.db.parent.glob(f"{self.db.name}.coverage-*.cache"):
            try:
                if other != keep and other.stat().st_mtime < before:
                    other.unlink()
            except FileNotFoundError:
                pass
        for temp in self.db.parent.glob(f".{self.db.name}.coverage-*"):
            try:
                if now - temp.stat().st_mtime > STALE_TEMP_S:
                    temp.unlink()
            except FileNotFoundError:
                pass


class _Signing:
    """A file for ``pickle.dump`` that feeds every byte it writes to the MAC as well."""

    def __init__(self, f: BinaryIO, update: Callable[[bytes], None]) -> None:
        self._f = f
        self._update = update

    def write(self, data: bytes) -> int:
        self._update(data)
        return self._f.write(data)


def _unpickle(f: BinaryIO) -> object:
    with paused_gc():  # half the load time at 100 towns went to the collector walking the growing heap
        return pickle.load(f)


def load_or_build(store: Store, cache: CoverageCache | None, *, background: bool = False) -> Coverage:
    """The store's Coverage: from the cache when it holds this revision, else built and cached.

    ``background``: the file is written by a thread while the caller goes on (``cache.wait()`` for it) —
    for a server that is already answering; at start-up it is written before returning, because a
    server stopped soon after would otherwise die mid-write (uvicorn re-raises SIGTERM once it has shut
    down, and a signal does not wait for threads).

    The revision is read before and after the layers: if an import landed in between, the Coverage
    is built but not cached (its layers may not be the revision's; the next revision check rebuilds).
    """
    revision = store.revision()
    if cache is not None and revision is not None:
        started = time.perf_counter()
        hit = cache.load(revision)
        if hit is not None:
            log.info("coverage of revision %s loaded from %s in %.2f s", revision, cache_path(cache.db, revision).name,
                     time.perf_counter() - started)
            return hit
    started = time.perf_counter()
    coverage = Coverage.from_layers(store.read_layers(), revision=revision)
    steps = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in coverage.build_seconds.items())
    log.info("coverage of revision %s built in %.2f s (%s)", revision, time.perf_counter() - started, steps)
    if cache is not None:
        cache.builds += 1
        if revision is not None and store.revision() == revision:
            if background:
                cache.save_later(coverage)
            else:
                cache.save(coverage)
    return coverage
