"""The embedded store: one SQLite file that is a valid OGC GeoPackage (1.3).

Written through ``sqlite3`` rather than GDAL so that replacing all layers is one SQLite
transaction: a failed or interrupted import leaves the previous package intact. The geometry
encoding (GeoPackageBinary: ``GP`` header, envelope, ISO WKB) is the spec's, so QGIS, GDAL and
``geopandas.read_file(db, layer=...)`` read every layer.

The file and its WAL are private to their owner (see ``files``) and hold no secret: the receipt
secret is ``GRIDMAP_SECRET`` or a key file beside the store, so a copy of the GeoPackage handed to
someone cannot forge receipts. A busy store answers ``StoreUnavailable`` (503) within seconds.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import struct
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.errors import StoreUnavailable
from gridmap.geo import WGS84
from gridmap.schema import LAYERS, Layer
from gridmap.store import files
from gridmap.store.base import Frame, Store
from gridmap.store.entity_tables import EntityTables
from gridmap.store.incident_tables import IncidentTables
from gridmap.store.photo_tables import PhotoTables
from gridmap.store.scenario_tables import ScenarioTables
from gridmap.store.session_tables import SessionTables
from gridmap.store.timing import TimedWrites
from gridmap.store.unmatched_tables import UnmatchedTables
from gridmap.store.version_tables import (
    INSERT_VERSION,
    LIST_VERSIONS,
    LIVE_KEY,
    LIVE_VERSION,
    SQLITE_VERSION_DDL,
    VERSION_BLOB,
    insert_row,
    version_of,
)

log = logging.getLogger(__name__)

APPLICATION_ID = 0x47504B47  # "GPKG"
USER_VERSION = 10300  # GeoPackage 1.3.0
SRS_ID = 4326

_WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
    'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],'
    'UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],'
    'AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]'
)

_CORE_DDL = """
CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY, organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
CREATE TABLE IF NOT EXISTS gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
  description TEXT DEFAULT '', last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
  table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
CREATE TABLE IF NOT EXISTS gridmap_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_SRS_ROWS = [
    ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian coordinate reference system"),
    ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic coordinate reference system"),
    ("WGS 84 geodetic", SRS_ID, "EPSG", 4326, _WGS84_WKT, "longitude/latitude coordinates in decimal degrees"),
]

BUSY_TIMEOUT_S: Final = 2.0
"""How long one statement waits for another connection's write lock before giving up (SQLite's
busy handler). With ``WRITE_QUEUE_TIMEOUT_S`` a busy store answers 503 within about 4 s."""
WRITE_QUEUE_TIMEOUT_S: Final = 2.0
"""How long a writer waits behind this process's other writers before the store counts as busy."""
BUSY_MESSAGE: Final = "数据库正忙（另一项写入尚未完成），请稍后重试"

_SQL_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "REAL"}
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def encode_geometries(geoms: np.ndarray) -> list[bytes | None]:
    """GeoPackageBinary blobs: little-endian header with an XY envelope, then ISO WKB."""
    wkb = shapely.to_wkb(geoms, byte_order=1, flavor="iso")
    bounds = shapely.bounds(geoms)
    out: list[bytes | None] = []
    for blob, (minx, miny, maxx, maxy) in zip(wkb, bounds):
        if blob is None:
            out.append(None)
            continue
        out.append(b"GP\x00\x03" + struct.pack("<i4d", SRS_ID, minx, maxx, miny, maxy) + blob)
    return out


def decode_geometries(blobs: list[bytes | None]) -> np.ndarray:
    wkb: list[bytes | None] = []
    for blob in blobs:
        if blob is None:
            wkb.append(None)
            continue
        flags = blob[3]
        wkb.append(blob[8 + _ENVELOPE_BYTES[(flags >> 1) & 0x07]:])
    return shapely.from_wkb(np.array(wkb, dtype=object))


class GeoPackageStore(TimedWrites, IncidentTables, SessionTables, ScenarioTables, EntityTables, UnmatchedTables,
                      PhotoTables, Store):
    def __init__(self, path: Path, *, secret: str | None = None) -> None:
        """``secret``: the receipt secret from the settings (``GRIDMAP_SECRET``); None uses the key file."""
        self.path = Path(path)
        self.key_path = files.key_path(self.path)
        self._configured_secret = secret or None
        self._secret: str | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._secret_lock = threading.Lock()
        self.write_lock = threading.Lock()
        """Writers of this process queue here: SQLite's busy handler would make them sleep and retry."""
        self._connections: list[sqlite3.Connection] = []
        self._files_checked = False

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, kept open: closing the last connection to a WAL database
        checkpoints it, which would cost a millisecond or more on every call.

        SQLite's "database is locked" (another process holds the write lock longer than
        ``BUSY_TIMEOUT_S``) leaves here as ``StoreUnavailable``: a 503 to retry, not a 500.
        """
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self._prepare_files()
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA secure_delete=ON")  # deleted rows leave zeros, not residents' data
            except sqlite3.OperationalError as exc:
                if is_busy(exc):
                    raise StoreUnavailable(BUSY_MESSAGE) from exc
                raise StoreUnavailable(f"无法打开数据库 {self.path}：{exc}") from exc
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"无法打开数据库 {self.path}：{exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        conn.row_factory = None
        try:
            yield conn
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise StoreUnavailable(BUSY_MESSAGE) from exc
            raise

    @contextmanager
    def writing(self) -> Iterator[None]:
        """This process's write queue, waited on for at most ``WRITE_QUEUE_TIMEOUT_S``."""
        if not self.write_lock.acquire(timeout=WRITE_QUEUE_TIMEOUT_S):
            raise StoreUnavailable(BUSY_MESSAGE)
        try:
            yield
        finally:
            self.write_lock.release()

    def _prepare_files(self) -> None:
        """Create the store file 0600 before SQLite does (its WAL and -shm inherit the mode);
        tighten the files of a store that an earlier release left readable by others."""
        if self._files_checked:
            return
        if not files.create_private(self.path):
            for path in (self.path, *files.sidecars(self.path), self.key_path):
                files.tighten(path)
        self._files_checked = True

    def close(self) -> None:
        if self._connections:
            self.checkpoint()
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    # the receipt secret: outside the GeoPackage ------------------------------------------------
    def secret(self) -> str:
        """``GRIDMAP_SECRET`` when set, else the key file beside the store (created 0600 on first use)."""
        if self._secret is None:
            with self._secret_lock:
                if self._secret is None:
                    self._secret = self._configured_secret or self._key_file_secret()
        return self._secret

    def _key_file_secret(self) -> str:
        self.migrate()  # a secret an earlier release kept inside the GeoPackage moves to the key file
        try:
            return self.key_path.read_text().strip() or self._new_key()
        except FileNotFoundError:
            return self._new_key()

    def _new_key(self) -> str:
        self.key_path.parent.mkdir(parents=True, exist_ok=True)
        return files.create_once(self.key_path, secrets.token_hex(32).encode()).decode().strip()

    def migrate(self) -> None:
        """Bring a store written by an earlier release up to date (see ``IncidentTables``)."""
        with self._incident_conn():
            pass

    def schema_version(self) -> int:
        """0 for a new file; 1 for a store written before versions were recorded."""
        if not self.path.exists():
            return 0
        with self.connect() as conn:
            try:
                row = conn.execute("SELECT value FROM gridmap_meta WHERE key='schema_version'").fetchone()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return 0
                raise
            if row is not None:
                return int(row[0])
            known = conn.execute("SELECT count(*) FROM sqlite_master WHERE name IN ('incidents', 'gpkg_contents')")
            return 1 if known.fetchone()[0] else 0

    def _move_legacy_secret(self, conn: sqlite3.Connection) -> bool:
        """Earlier releases kept the secret in ``gridmap_meta``: move it to the key file (so the
        receipts already handed out stay valid) and delete it; True when there was one.

        Runs inside the schema transaction; the key file is written before the row is deleted, so a
        crash in between loses nothing. ``secure_delete`` zeroes the row's bytes in the file.
        """
        row = conn.execute("SELECT value FROM gridmap_meta WHERE key='secret'").fetchone()
        if row is None:
            return False
        legacy = str(row[0])
        kept = files.create_once(self.key_path, legacy.encode()).decode().strip()
        if kept != legacy:
            log.warning("%s already existed; the secret found inside %s was discarded", self.key_path, self.path)
        conn.execute("DELETE FROM gridmap_meta WHERE key='secret'")
        log.info("moved the receipt secret out of %s into %s", self.path, self.key_path)
        return True

    def _initialise(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={USER_VERSION}")
        for statement in _CORE_DDL.split(";"):  # not executescript: it would COMMIT our transaction
            if statement.strip():
                conn.execute(statement)
        conn.executemany("INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)", _SRS_ROWS)

    def revision(self) -> str | None:
        if not self.path.exists():
            return None
        with self.connect() as conn:
            try:
                row = conn.execute("SELECT value FROM gridmap_meta WHERE key='revision'").fetchone()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return None  # a new, empty file
                raise
        return row[0] if row else None

    def read_layer(self, name: str) -> Frame:
        layer = LAYERS[name]
        columns = layer.field_names
        rows: list[tuple] = []
        if self.path.exists():
            with self.connect() as conn:
                exists = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
                ).fetchone()
                if exists:
                    select = ", ".join(f'"{c}"' for c in columns + (["geom"] if layer.spatial else []))
                    rows = conn.execute(f'SELECT {select} FROM "{name}" ORDER BY fid').fetchall()
        frame = pd.DataFrame([r[: len(columns)] for r in rows], columns=columns)
        for f in layer.fields:
            if f.type == "int":
                frame[f.name] = frame[f.name].astype(np.int64)
            else:
                frame[f.name] = frame[f.name].astype(object)
        if not layer.spatial:
            return frame
        geoms = decode_geometries([r[-1] for r in rows]) if rows else np.array([], dtype=object)
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)

    def replace_layers(self, layers: Mapping[str, Frame], *, revision: str,
                       version: tuple[dict[str, Any], bytes] | None = None,
                       live_version: int | None = None) -> int | None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
        with self.writing(), self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._initialise(conn)
                for name, layer in LAYERS.items():
                    self._write_layer(conn, layer, layers.get(name), now)
                conn.execute("INSERT OR REPLACE INTO gridmap_meta VALUES ('revision', ?)", (revision,))
                if version is not None:
                    live_version = self._insert_version(conn, *version)
                if live_version is not None:
                    conn.execute("INSERT OR REPLACE INTO gridmap_meta VALUES (?, ?)", (LIVE_KEY, str(live_version)))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        self.checkpoint()
        return live_version

    # boundary versions (version_tables) -------------------------------------------------------
    def _insert_version(self, conn: sqlite3.Connection, version: dict[str, Any], blob: bytes) -> int:
        for statement in SQLITE_VERSION_DDL:
            conn.execute(statement)
        return int(conn.execute(INSERT_VERSION.format(m="?"), insert_row(version, blob)).lastrowid)

    def insert_boundary_version(self, version: dict[str, Any], blob: bytes) -> int:
        with self.writing(), self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._initialise(conn)
                number = self._insert_version(conn, version, blob)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return number

    def _version_query(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not self.path.exists():
            return []
        with self.connect() as conn:
            try:
                return conn.execute(statement, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise

    def boundary_versions(self) -> list[dict[str, Any]]:
        return [version_of(row) for row in self._version_query(LIST_VERSIONS)]

    def boundary_version_blob(self, version_id: int) -> bytes | None:
        rows = self._version_query(VERSION_BLOB.format(m="?"), (int(version_id),))
        return bytes(rows[0][0]) if rows else None

    def live_boundary_version(self) -> int | None:
        rows = self._version_query(LIVE_VERSION)
        return int(rows[0][0]) if rows else None

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file, so a copy of the .gpkg alone holds everything.

        Done after bulk writes; small writes are folded in by SQLite's automatic checkpoints.
        """
        with self.connect() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _write_layer(self, conn: sqlite3.Connection, layer: Layer, frame: Frame | None, now: str) -> None:
        name = layer.name
        conn.execute(f'DROP TABLE IF EXISTS "{name}"')
        conn.execute("DELETE FROM gpkg_geometry_columns WHERE table_name=?", (name,))
        conn.execute("DELETE FROM gpkg_contents WHERE table_name=?", (name,))
        if frame is None:
            if layer.optional:
                return
            frame = pd.DataFrame(columns=layer.field_names)
        columns = ", ".join(f'"{f.name}" {_SQL_TYPES[f.type]}' for f in layer.fields)
        geom_ddl = ', "geom" GEOMETRY' if layer.spatial else ""
        conn.execute(f'CREATE TABLE "{name}" (fid INTEGER PRIMARY KEY AUTOINCREMENT, {columns}{geom_ddl})')
        values = [frame[f.name].tolist() for f in layer.fields]
        if layer.spatial:
            geoms = frame.geometry.values if len(frame) else np.array([], dtype=object)
            values.append(encode_geometries(np.asarray(geoms)))
            bounds = shapely.total_bounds(np.asarray(geoms)) if len(frame) else [None] * 4
            conn.execute(
                "INSERT INTO gpkg_contents VALUES (?, 'features', ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, name, layer.description, now, *[_float_or_none(b) for b in bounds], SRS_ID),
            )
            conn.execute("INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', 'GEOMETRY', ?, 0, 0)", (name, SRS_ID))
        else:
            conn.execute(
                "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change) "
                "VALUES (?, 'attributes', ?, ?, ?)",
                (name, name, layer.description, now),
            )
        placeholders = ", ".join("?" * len(values))
        names = ", ".join([f'"{f.name}"' for f in layer.fields] + (['"geom"'] if layer.spatial else []))
        conn.executemany(
            f'INSERT INTO "{name}" ({names}) VALUES ({placeholders})',
            [tuple(_plain(v) for v in row) for row in zip(*values)],
        )


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLite gave up waiting for a lock held by another connection (SQLITE_BUSY or SQLITE_LOCKED)."""
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(exc)


def _plain(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _float_or_none(value: object) -> float | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return float(value)
