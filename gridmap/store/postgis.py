"""The server store: PostgreSQL with PostGIS, for several API processes on several hosts (issue #11).

Selected by a ``postgresql://`` location (``GRIDMAP_DB`` or ``--db``); a path still means the
GeoPackage store, which stays the default. Connections come from a psycopg 3 pool.

Layers are tables in EPSG:4326 with a GiST index on ``geom``. Replacing the layers is one transaction
that deletes and inserts rows (never drops tables: a reader's snapshot keeps seeing the old rows of a
table that was replaced, whereas a dropped and re-created table would look empty to it), and
``read_layers`` reads every layer in one REPEATABLE READ snapshot: a reader sees the old package or
the new one, never a mix. The schema is plain numbered SQL files (``migrations/postgis``) applied in
order under an advisory lock, so several processes starting at once upgrade it once.

The receipt secret is never kept in the database (a dump handed to someone must not forge receipts):
server mode needs ``GRIDMAP_SECRET``, the same on every host.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from gridmap.errors import GridmapError, StoreUnavailable
from gridmap.geo import WGS84
from gridmap.schema import LAYERS, Layer
from gridmap.store.base import Frame, Store
from gridmap.store.postgis_entities import PostgisEntities
from gridmap.store.postgis_incidents import PostgisIncidents, _snapshot
from gridmap.store.postgis_photos import PostgisPhotos
from gridmap.store.postgis_records import PostgisRecords
from gridmap.store.timing import TimedWrites
from gridmap.store.version_tables import (
    INSERT_VERSION,
    LIST_VERSIONS,
    LIVE_KEY,
    LIVE_VERSION,
    VERSION_BLOB,
    insert_row,
    version_of,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

POOL_MIN: Final = 1
POOL_MAX: Final = 8
"""Connections one process keeps: the API's thread pool runs at most a few store calls at once."""
CONNECT_TIMEOUT_S: Final = 3
"""How long opening one connection may take before the server counts as unreachable."""
POOL_WAIT_S: Final = 10.0
"""How long a request waits for a pooled connection before it is a 503: longer than one connect, so
that a busy host (a connection being opened while others are in use) is not taken for a server that is down."""
REPLICA_WAIT_S: Final = 3.0
"""The same wait on the read replica: shorter, since the primary is there to answer instead."""
REPLICA_RETRY_S: Final = 5.0
"""After the replica failed, reads go to the primary for this long before the replica is asked again."""
WATCH_POLL_S: Final = 1.0
"""How often the revision watcher looks up from waiting to see whether it was stopped."""
WATCH_RETRY_S: Final = 2.0
SCHEMA_LOCK: Final = 0x67726964  # "grid": the advisory lock that serialises migrations
DOWN_MESSAGE: Final = "数据库暂时无法连接，请稍后重试"
NO_SECRET: Final = "服务器模式（PostGIS）需要设置 GRIDMAP_SECRET（至少 32 个字符，各主机相同）"
SQL_TYPES: Final = {"str": "text", "int": "bigint", "float": "double precision"}
SCHEMES: Final = ("postgresql://", "postgres://")


_OPEN_POOLS: set[ConnectionPool] = set()
"""Pools open until their store is closed, or until the interpreter exits: a pool left to the garbage
collector could be collected on one of its own worker threads, which cannot stop themselves."""


@atexit.register
def _close_open_pools() -> None:
    for pool in list(_OPEN_POOLS):
        pool.close(timeout=1)


def is_database_url(location: object) -> bool:
    """True for a PostgreSQL connection URL (server mode), False for a GeoPackage path."""
    return isinstance(location, str) and location.startswith(SCHEMES)


def migrations() -> list[tuple[int, str]]:
    """(version, SQL) of every migration file, in order: ``NNNN_name.sql``."""
    folder = resources.files("gridmap.store.migrations") / "postgis"
    found = sorted((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8"))
                   for entry in folder.iterdir() if entry.name.endswith(".sql"))
    return found


SCHEMA_VERSION: Final = migrations()[-1][0]


class _Transactions:
    """Every write is one transaction of one pooled connection; ``TimedWrites`` wraps this to time it."""

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        with self.connect() as conn:  # type: ignore[attr-defined]
            yield conn


class PostgisStore(TimedWrites, PostgisIncidents, PostgisRecords, PostgisEntities, PostgisPhotos, _Transactions,
                   Store):
    def __init__(self, url: str, *, secret: str | None = None, read_url: str | None = None,
                 cache_dir: Path | None = None, pool_max: int = POOL_MAX) -> None:
        """``read_url``: a streaming replica for reads that may lag a moment (listings, statistics,
        scenario lists); None sends every read to ``url``. ``cache_dir``: where this host keeps the
        lookup index of each revision (``GRIDMAP_CACHE_DIR``), so a restart does not rebuild it."""
        self.url = url
        self.cache_base = _cache_base(cache_dir, url) if cache_dir is not None else None
        """The name the index cache files of this database start with (``gridmap.coverage.cache``)."""
        self.read_url = read_url
        self._secret = secret
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self.pool = _pool(url, pool_max, POOL_WAIT_S)
        self.read_pool = _pool(read_url, pool_max, REPLICA_WAIT_S) if read_url else None
        self._open_lock = threading.Lock()
        self._replica_down_until = 0.0
        self._watches: list[threading.Event] = []
        self.replica_reads = 0
        """Reads the replica answered (the metrics and the tests read it)."""

    def __repr__(self) -> str:  # never the password
        return f"PostgisStore({psycopg.conninfo.conninfo_to_dict(self.url).get('dbname')!r})"

    # connections ------------------------------------------------------------------------------
    @contextmanager
    def connect(self, *, schema: bool = True) -> Iterator[psycopg.Connection]:
        """A pooled connection inside a transaction: committed when the block ends, rolled back on
        an error. A server that is down or does not answer is ``StoreUnavailable`` (503)."""
        self._open(self.pool)
        try:
            with self.pool.connection() as conn:
                if schema and not self._schema_ready:
                    self._migrate(conn)
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            if isinstance(exc, psycopg.errors.QueryCanceled):
                raise
            stats = self.pool.get_stats()
            log.warning("PostgreSQL unavailable: %s (pool size %s, available %s, waiting %s, connection errors %s)",
                        type(exc).__name__, stats.get("pool_size"), stats.get("pool_available"),
                        stats.get("requests_waiting"), stats.get("connections_errors", 0))
            raise StoreUnavailable(DOWN_MESSAGE) from exc

    def _open(self, pool: ConnectionPool) -> None:
        if pool not in _OPEN_POOLS:
            with self._open_lock:
                if pool not in _OPEN_POOLS:
                    pool.open(wait=False)
                    _OPEN_POOLS.add(pool)

    def read(self, work: Callable[[psycopg.Connection], T]) -> T:
        """``work(conn)`` on the replica when there is one and it answers, else on the primary.

        A replica that fails (down, unreachable, a broken connection) is left alone for
        ``REPLICA_RETRY_S`` and the work is done again on the primary: reads keep answering."""
        if self.read_pool is not None and time.monotonic() >= self._replica_down_until:
            self._open(self.read_pool)
            try:
                with self.read_pool.connection() as conn:
                    answer = work(conn)
                self.replica_reads += 1
                return answer
            except (PoolTimeout, psycopg.OperationalError) as exc:
                if isinstance(exc, psycopg.errors.QueryCanceled):
                    raise
                log.warning("read replica unavailable (%s); reading from the primary for %.0f s",
                            type(exc).__name__, REPLICA_RETRY_S)
                self._replica_down_until = time.monotonic() + REPLICA_RETRY_S
        with self.connect() as conn:
            return work(conn)

    def close(self) -> None:
        for stop in self._watches:
            stop.set()
        for pool in (self.pool, self.read_pool):
            if pool is not None and pool in _OPEN_POOLS:
                pool.close()
                _OPEN_POOLS.discard(pool)

    def secret(self) -> str:
        if not self._secret:
            raise GridmapError(NO_SECRET)
        return self._secret

    # schema -------------------------------------------------------------------------------------
    def migrate(self) -> None:
        with self.connect():
            pass

    def schema_version(self) -> int:
        with self.connect(schema=False) as conn:
            return _schema_version(conn)

    def _migrate(self, conn: psycopg.Connection) -> None:
        """Apply the migrations this database has not had yet, each in the transaction of its version row."""
        with self._schema_lock:
            if self._schema_ready:
                return
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                have = _schema_version(conn)
                for version, text in migrations():
                    if version > have:
                        conn.execute(text)  # type: ignore[arg-type]  # our own files, never user input
                        conn.execute("INSERT INTO gridmap_meta VALUES ('schema_version', %s) ON CONFLICT (key) "
                                     "DO UPDATE SET value = excluded.value", (str(version),))
                        log.info("PostGIS store upgraded to schema version %d", version)
                for layer in LAYERS.values():
                    conn.execute(_layer_ddl(layer))
            conn.commit()
            self._schema_ready = True

    # layers -------------------------------------------------------------------------------------
    def revision(self) -> str | None:
        with self.connect() as conn:
            row = conn.execute("SELECT value FROM gridmap_meta WHERE key = 'revision'").fetchone()
        return row[0] if row else None

    def read_layer(self, name: str) -> Frame:
        with self.connect() as conn:
            return _read_layer(conn, LAYERS[name])

    def read_layers(self) -> dict[str, Frame]:
        """Every layer from one snapshot: an import committing meanwhile is not half seen. Always from the
        primary: the index built from them is labelled with the primary's revision."""
        with self.connect() as conn, _snapshot(conn):
            return {name: _read_layer(conn, layer) for name, layer in LAYERS.items()}

    def replace_layers(self, layers: Mapping[str, Frame], *, revision: str,
                       version: tuple[dict[str, Any], bytes] | None = None,
                       live_version: int | None = None) -> int | None:
        with self.connect() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK + 1,))  # one import at a time
            for name, layer in LAYERS.items():
                _write_layer(conn, layer, layers.get(name))
            conn.execute(_SET_META, ("revision", revision))
            if version is not None:
                live_version = _insert_version(conn, *version)
            if live_version is not None:
                conn.execute(_SET_META, (LIVE_KEY, str(live_version)))
        return live_version

    # boundary versions (version_tables; the table is migration 0007) -------------------------
    def insert_boundary_version(self, version: dict[str, Any], blob: bytes) -> int:
        with self.connect() as conn:
            return _insert_version(conn, version, blob)

    def boundary_versions(self) -> list[dict[str, Any]]:
        return self.read(lambda conn: [version_of(row) for row in conn.execute(LIST_VERSIONS).fetchall()])

    def boundary_version_blob(self, version_id: int) -> bytes | None:
        row = self.read(lambda conn: conn.execute(VERSION_BLOB.format(m="%s"), (int(version_id),)).fetchone())
        return bytes(row[0]) if row else None

    def live_boundary_version(self) -> int | None:
        row = self.read(lambda conn: conn.execute(LIVE_VERSION).fetchone())
        return int(row[0]) if row else None

    def watch_revisions(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """LISTEN on ``gridmap_revision`` (announced by a trigger, migration 0002) in a daemon thread
        with its own connection; reconnects after ``WATCH_RETRY_S`` when the server goes away."""
        stop = threading.Event()

        def run() -> None:
            while not stop.is_set():
                try:
                    with psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                        conn.execute("LISTEN gridmap_revision")
                        while not stop.is_set():
                            for note in conn.notifies(timeout=WATCH_POLL_S):
                                callback(note.payload)
                except psycopg.Error as exc:
                    if not stop.is_set():
                        log.warning("revision watch interrupted (%s); retrying", type(exc).__name__)
                    stop.wait(WATCH_RETRY_S)

        threading.Thread(target=run, name="gridmap-revision-watch", daemon=True).start()
        self._watches.append(stop)
        return stop.set

    def checkpoint(self) -> None:
        """Nothing to fold in: PostgreSQL's own WAL makes each commit durable."""


_SET_META: Final = "INSERT INTO gridmap_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


def _insert_version(conn: psycopg.Connection, version: dict[str, Any], blob: bytes) -> int:
    return int(conn.execute(INSERT_VERSION.format(m="%s") + " RETURNING id", insert_row(version, blob)).fetchone()[0])


def _cache_base(folder: Path, url: str) -> Path:
    """``<folder>/<database>@<host>-<port>``: one name per database, no password in it; the folder is
    made private (0700), as the GeoPackage store's files are."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    name = f"{info.get('dbname', 'postgres')}@{info.get('host', 'local')}-{info.get('port', 5432)}"
    return folder / "".join(c if c.isalnum() or c in "@-_." else "_" for c in name)


def _pool(url: str, size: int, wait_s: float) -> ConnectionPool:
    return ConnectionPool(url, min_size=POOL_MIN, max_size=size, open=False, timeout=wait_s,
                          check=ConnectionPool.check_connection, num_workers=1,
                          kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "gridmap"})


def _schema_version(conn: psycopg.Connection) -> int:
    exists = conn.execute("SELECT to_regclass('gridmap_meta') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    row = conn.execute("SELECT value FROM gridmap_meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def _layer_ddl(layer: Layer) -> sql.Composed:
    columns = [sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(SQL_TYPES[f.type])) for f in layer.fields]
    if layer.spatial:
        columns.append(sql.SQL("geom geometry(Geometry, 4326)"))
    table = sql.Identifier(layer.name)
    ddl = sql.SQL("CREATE TABLE IF NOT EXISTS {} (fid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, {})").format(
        table, sql.SQL(", ").join(columns))
    if not layer.spatial:
        return ddl
    index = sql.SQL("; CREATE INDEX IF NOT EXISTS {} ON {} USING gist (geom)").format(
        sql.Identifier(f"{layer.name}_geom"), table)
    return ddl + index


def _read_layer(conn: psycopg.Connection, layer: Layer) -> Frame:
    names = [sql.Identifier(n) for n in layer.field_names]
    if layer.spatial:
        names.append(sql.SQL("ST_AsBinary(geom)"))
    query = sql.SQL("SELECT {} FROM {} ORDER BY fid").format(sql.SQL(", ").join(names), sql.Identifier(layer.name))
    rows = conn.execute(query).fetchall()
    width = len(layer.fields)
    frame = pd.DataFrame([r[:width] for r in rows], columns=layer.field_names)
    for f in layer.fields:
        frame[f.name] = frame[f.name].astype(np.int64 if f.type == "int" else object)
    if not layer.spatial:
        return frame
    geoms = shapely.from_wkb(np.array([r[-1] for r in rows], dtype=object)) if rows else np.array([], dtype=object)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)


def _write_layer(conn: psycopg.Connection, layer: Layer, frame: Frame | None) -> None:
    """DELETE then COPY: readers holding an older snapshot keep seeing the old rows."""
    table = sql.Identifier(layer.name)
    conn.execute(sql.SQL("DELETE FROM {}").format(table))
    if frame is None or not len(frame):
        return
    names = [sql.Identifier(f.name) for f in layer.fields]
    columns: list[list[Any]] = [[_plain(v) for v in frame[f.name].tolist()] for f in layer.fields]
    if layer.spatial:
        names.append(sql.Identifier("geom"))
        geoms = shapely.set_srid(np.asarray(frame.geometry.values), 4326)
        columns.append(list(shapely.to_wkb(geoms, hex=True, include_srid=True)))
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(table, sql.SQL(", ").join(names))
    with conn.cursor().copy(copy) as writer:
        for row in zip(*columns):
            writer.write_row(row)


def _plain(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
