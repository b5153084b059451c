"""The embedded store: one SQLite file that is a valid OGC GeoPackage (1.3).

Written through ``sqlite3`` rather than GDAL so that replacing all layers is one SQLite
transaction: a failed or interrupted import leaves the previous package intact. The geometry
encoding (GeoPackageBinary: ``GP`` header, envelope, ISO WKB) is the spec's, so QGIS, GDAL and
``geopandas.read_file(db, layer=...)`` read every layer.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.errors import StoreUnavailable
from gridmap.geo import WGS84
from gridmap.schema import LAYERS, Layer
from gridmap.store.base import Frame, Store
from gridmap.store.incident_tables import IncidentTables

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


class GeoPackageStore(IncidentTables, Store):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self.write_lock = threading.Lock()
        """Writers of this process queue here: SQLite's busy handler would make them sleep and retry."""
        self._connections: list[sqlite3.Connection] = []

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, kept open: closing the last connection to a WAL database
        checkpoints it, which would cost a millisecond or more on every call."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"无法打开数据库 {self.path}：{exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        conn.row_factory = None
        yield conn

    def close(self) -> None:
        if self._connections:
            self.checkpoint()
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

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
            except sqlite3.OperationalError:
                return None
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

    def replace_layers(self, layers: Mapping[str, Frame], *, revision: str) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
        with self.write_lock, self.connect() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._initialise(conn)
                for name, layer in LAYERS.items():
                    self._write_layer(conn, layer, layers.get(name), now)
                conn.execute("INSERT OR REPLACE INTO gridmap_meta VALUES ('revision', ?)", (revision,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        self.checkpoint()

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
