"""Incident photos of the GeoPackage store: metadata rows in the GeoPackage, the JPEGs in a folder beside it.

A photo is written once and never changed. Its bytes would make the GeoPackage grow by megabytes a
report (and every backup and copy handed to QGIS with it), so they go to ``<store>.photos/``, a folder
private to its owner (0700, files 0600) next to the store file, one file per photo named by the photo's
random id (``ab/ab12….jpg`` and ``ab/ab12….thumb.jpg``): nothing in a name tells an incident, a person
or the content. The row (``incident_photos``) says which incident, which stage, who added it and when.

The files are written (and synced) before the rows' transaction; when that transaction fails the files
it would have referred to are deleted again, so a refused or failed upload leaves the store as it was.
A file without a row is never served (reads go through the row). Ids are random: two uploads never
write the same file, so deleting one's files cannot take another's.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from gridmap.errors import Conflict, NotFound
from gridmap.store import files
from gridmap.store.incident_tables import EVENT_COLUMNS

PHOTO_COLUMNS: Final = ("id", "incident_id", "stage", "created_at", "actor", "role", "width", "height", "size",
                        "thumb_width", "thumb_height", "thumb_size", "sha256")
"""What is kept of a photo besides its bytes: no file name, no EXIF, nothing the upload said of itself."""
PHOTO_ID: Final = re.compile(r"[0-9a-f]{24}")
"""``secrets.token_hex(12)``: the only names a photo file can have (a path is never built from anything else)."""
FOLDER_SUFFIX: Final = ".photos"
FOLDER_MODE: Final = 0o700

PHOTO_DDL: Final = [
    "CREATE TABLE IF NOT EXISTS incident_photos (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
    "incident_id INTEGER NOT NULL REFERENCES incidents(fid), stage TEXT NOT NULL, created_at TEXT NOT NULL, "
    "actor TEXT NOT NULL, role TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, "
    "size INTEGER NOT NULL, thumb_width INTEGER NOT NULL, thumb_height INTEGER NOT NULL, "
    "thumb_size INTEGER NOT NULL, sha256 TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS incident_photos_incident ON incident_photos(incident_id, stage, n)",
]
STAGE_COUNT_SQL: Final = "SELECT count(*) FROM incident_photos WHERE incident_id = {m} AND stage = {m}"
PHOTO_SELECT: Final = f"SELECT {', '.join(PHOTO_COLUMNS)} FROM incident_photos"


def photo_folder(db: Path) -> Path:
    """The folder of a GeoPackage store's photos: ``gridmap.gpkg`` → ``gridmap.gpkg.photos``."""
    return db.with_name(db.name + FOLDER_SUFFIX)


def photo_path(folder: Path, photo_id: str, *, thumbnail: bool = False) -> Path:
    if not PHOTO_ID.fullmatch(photo_id):
        raise ValueError(f"not a photo id: {photo_id!r}")
    return folder / photo_id[:2] / f"{photo_id}{'.thumb' if thumbnail else ''}.jpg"


def photo_row(photo: dict[str, Any], incident_id: int) -> list[Any]:
    return [incident_id if c == "incident_id" else photo[c] for c in PHOTO_COLUMNS]


def photo_event(event: dict[str, Any], incident_id: int, status: str) -> list[Any]:
    """The history row of an upload: the incident's status as read in the writing transaction, unchanged."""
    values = {**event, "incident_id": incident_id, "from_status": status, "to_status": status}
    return [values.get(c) for c in EVENT_COLUMNS]


def check_room(count: int, adding: int, limit: int) -> None:
    if count + adding > limit:
        raise Conflict(f"该环节已有 {count} 张照片，每个环节最多 {limit} 张（可能有人同时上传，请刷新后查看）")


class PhotoTables:
    """Mixed into ``GeoPackageStore``: needs ``path``, ``_transaction()`` and ``_incident_conn()``."""

    _photo_schema_ready = False

    @property
    def photo_folder(self) -> Path:
        return photo_folder(self.path)  # type: ignore[attr-defined]

    @contextmanager
    def _photo_transaction(self) -> Iterator[sqlite3.Connection]:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            if not self._photo_schema_ready:
                for statement in PHOTO_DDL:
                    conn.execute(statement)
                self._photo_schema_ready = True
            yield conn

    @contextmanager
    def _photo_read(self) -> Iterator[sqlite3.Connection]:
        if not self._photo_schema_ready:
            with self._photo_transaction():
                pass
        with self._incident_conn() as conn:  # type: ignore[attr-defined]
            yield conn

    def insert_photos(self, incident_id: int, photos: Sequence[dict[str, Any]], *, event: dict[str, Any],
                      limit: int) -> None:
        written = self._write_files(photos)
        try:
            with self._photo_transaction() as conn:
                row = conn.execute("SELECT status FROM incidents WHERE fid = ?", (incident_id,)).fetchone()
                if row is None:
                    raise NotFound(f"事件 {incident_id} 不存在")
                for stage in {p["stage"] for p in photos}:
                    count = conn.execute(STAGE_COUNT_SQL.format(m="?"), (incident_id, stage)).fetchone()[0]
                    check_room(int(count), sum(p["stage"] == stage for p in photos), limit)
                conn.executemany(f"INSERT INTO incident_photos ({', '.join(PHOTO_COLUMNS)}) "
                                 f"VALUES ({', '.join('?' * len(PHOTO_COLUMNS))})",
                                 [photo_row(p, incident_id) for p in photos])
                conn.execute(f"INSERT INTO incident_events ({', '.join(EVENT_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})",
                             photo_event(event, incident_id, row["status"]))
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise

    def _write_files(self, photos: Sequence[dict[str, Any]]) -> list[Path]:
        """Each photo's two files, private and synced; the paths written (to delete if the rows fail)."""
        folder = self.photo_folder
        written: list[Path] = []
        try:
            folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
            files.tighten(folder)  # a folder left open to others by hand is closed again (0700)
            for photo in photos:
                for thumbnail, data in ((False, photo["image"]), (True, photo["thumbnail"])):
                    path = photo_path(folder, photo["id"], thumbnail=thumbnail)
                    path.parent.mkdir(mode=FOLDER_MODE, exist_ok=True)
                    if path.exists():  # a random id of 96 bits: never, unless something is very wrong
                        raise Conflict(f"照片编号 {photo['id']} 已被占用，请重试")
                    files.write_private(path, data)
                    written.append(path)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return written

    def incident_photos(self, incident_ids: Sequence[int]) -> list[dict[str, Any]]:
        ids = sorted({int(i) for i in incident_ids})
        if not ids:
            return []
        out: list[dict[str, Any]] = []
        with self._photo_read() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                out += [dict(r) for r in conn.execute(
                    f"{PHOTO_SELECT} WHERE incident_id IN ({', '.join('?' * len(chunk))}) ORDER BY incident_id, n",
                    chunk)]
        return out

    def get_photo(self, photo_id: str) -> dict[str, Any] | None:
        with self._photo_read() as conn:
            row = conn.execute(f"{PHOTO_SELECT} WHERE id = ?", (photo_id,)).fetchone()
        return dict(row) if row else None

    def photo_bytes(self, photo_id: str, *, thumbnail: bool = False) -> bytes | None:
        if not PHOTO_ID.fullmatch(photo_id) or self.get_photo(photo_id) is None:
            return None
        try:
            return photo_path(self.photo_folder, photo_id, thumbnail=thumbnail).read_bytes()
        except FileNotFoundError:
            return None

