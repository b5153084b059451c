"""Incident photos on PostGIS: the metadata and both JPEGs in one ``bytea`` row (migration 0008), so every
API host serves the same photos with no shared folder; the same rules as the GeoPackage store's
``PhotoTables`` (all or none with the history row, at most ``limit`` a stage).

Uploads to one incident are serialised by a transaction-scoped advisory lock on the incident (not a
lock on its row, which would hold up its transitions), so two uploads at once cannot both pass the count.
Reads go to the primary: a photo just added is shown at once, and a replica's lag would make it a 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.rows import dict_row

from gridmap.errors import NotFound
from gridmap.store.incident_tables import EVENT_COLUMNS
from gridmap.store.photo_tables import (
    PHOTO_COLUMNS,
    PHOTO_ID,
    PHOTO_SELECT,
    STAGE_COUNT_SQL,
    check_room,
    photo_event,
    photo_row,
)


class PostgisPhotos:
    """Mixed into ``PostgisStore``: needs ``connect()`` and ``_transaction()``."""

    def insert_photos(self, incident_id: int, photos: Sequence[dict[str, Any]], *, event: dict[str, Any],
                      limit: int) -> None:
        with self._transaction() as conn:  # type: ignore[attr-defined]
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('gridmap_photos'), hashtext(%s))", (str(incident_id),))
            row = conn.execute("SELECT status FROM incidents WHERE fid = %s", (incident_id,)).fetchone()
            if row is None:
                raise NotFound(f"事件 {incident_id} 不存在")
            for stage in {p["stage"] for p in photos}:
                count = conn.execute(STAGE_COUNT_SQL.format(m="%s"), (incident_id, stage)).fetchone()[0]
                check_room(int(count), sum(p["stage"] == stage for p in photos), limit)
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO incident_photos ({', '.join(PHOTO_COLUMNS)}, image, thumbnail) "
                    f"VALUES ({', '.join(['%s'] * (len(PHOTO_COLUMNS) + 2))})",
                    [[*photo_row(p, incident_id), p["image"], p["thumbnail"]] for p in photos])
            conn.execute(f"INSERT INTO incident_events ({', '.join(EVENT_COLUMNS)}) "
                         f"VALUES ({', '.join(['%s'] * len(EVENT_COLUMNS))})",
                         photo_event(event, incident_id, row[0]))

    def incident_photos(self, incident_ids: Sequence[int]) -> list[dict[str, Any]]:
        ids = sorted({int(i) for i in incident_ids})
        if not ids:
            return []
        with self.connect() as conn:  # type: ignore[attr-defined]
            return conn.cursor(row_factory=dict_row).execute(
                f"{PHOTO_SELECT} WHERE incident_id = ANY(%s) ORDER BY incident_id, n", (ids,)).fetchall()

    def get_photo(self, photo_id: str) -> dict[str, Any] | None:
        with self.connect() as conn:  # type: ignore[attr-defined]
            return conn.cursor(row_factory=dict_row).execute(f"{PHOTO_SELECT} WHERE id = %s", (photo_id,)).fetchone()

    def photo_bytes(self, photo_id: str, *, thumbnail: bool = False) -> bytes | None:
        if not PHOTO_ID.fullmatch(photo_id):
            return None
        column = "thumbnail" if thumbnail else "image"
        with self.connect() as conn:  # type: ignore[attr-defined]
            row = conn.execute(f"SELECT {column} FROM incident_photos WHERE id = %s", (photo_id,)).fetchone()
        return bytes(row[0]) if row else None
