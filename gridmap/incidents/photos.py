"""Incident photos: added at intake (上报) and on handling (处置前/处置后), served to those who may see them.

Service functions in the style of ``gridmap.incidents.service``: the API routers, the Open311 intake and the
server-rendered pages all call these and decide nothing themselves. Who may add and see photos is
``gridmap.access`` (``check_photo_add``, ``check_photo_read``, ``photo_visible``, ``public_photo``); what a
stored photo is made of is ``gridmap.incidents.images`` (upright, at most 2048 px, no EXIF, GPS, maker notes,
XMP, ICC or comments: re-encoded from the pixels alone); where it is kept is the store (a folder beside a
GeoPackage, a ``bytea`` table on PostGIS).

An upload is checked whole before anything is written: one bad file (not JPEG/PNG/HEIC, too large, too
many pixels, undecodable) refuses the whole upload with a 4xx and nothing is stored. The photos and one
history row (who, which stage, how many; never the bytes) are then written in one transaction.

For the pages::

    from gridmap.incidents import photos
    added = photos.attach_photos(store=store, coverage=coverage, incident_id=42, stage="after",
                                 files=[(upload.filename, await upload.read(), upload.content_type)],
                                 actor=actor)                      # receipt="…" for a resident
    shown = photos.list_photos(store=store, coverage=coverage, incident_id=42, actor=actor)
    data = photos.read_photo(store=store, coverage=coverage, photo_id=shown[0]["id"], actor=actor,
                             thumbnail=True)                       # JPEG bytes
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from gridmap import access
from gridmap.auth import PUBLIC, Actor
from gridmap.coverage.service import Coverage
from gridmap.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from gridmap.incidents.images import MAX_PHOTO_BYTES, OUTPUT_TYPE, CleanPhoto, clean_photo, shown_name
from gridmap.incidents.service import _existing, iso, receipt_for, utcnow
from gridmap.incidents.workflow import STATUS_LABELS
from gridmap.store.base import Store

STAGES: Final = {"intake": "上报", "before": "处置前", "after": "处置后"}
"""The steps a photo belongs to, with their labels (the stage of a form, the caption on a page)."""
MAX_PHOTOS_PER_STAGE: Final = 4
"""Photos an incident may have at each stage, as 网格通 apps allow: enough to show a place and a repair."""
STAGE_STATUSES: Final = {
    "before": frozenset({"dispatched", "in_progress"}),
    "after": frozenset({"in_progress", "resolved"}),
}
"""Statuses in which 处置前/后 photos may be added: before from dispatch to the start of work, after while
working and once resolved (a page may resolve first, then send the photos). Intake photos: any status
but closed or cancelled, for staff; the reporter within ``access.INTAKE_PHOTO_WINDOW`` of reporting."""
CLOSED_FOR_PHOTOS: Final = frozenset({"closed", "cancelled"})
PHOTO_ACTION: Final = "photo"
"""The history's action for an upload (its note says the stage and the count)."""
PHOTO_URL: Final = "/v1/photos/{id}"
THUMBNAIL_URL: Final = "/v1/photos/{id}/thumbnail"
PUBLIC_MEDIA_URL: Final = "/open311/v2/media/{id}.jpg"
"""The public, stripped thumbnail of an intake photo of a public-category report (Open311 ``media_url``)."""

Upload = tuple[str | None, bytes, str | None]
"""(file name, bytes, declared content type) of one uploaded file, as a form gives it. Only the bytes
decide what the file is; the name appears in error messages only and is never stored."""


@dataclass(frozen=True)
class PreparedPhotos:
    """An upload checked and cleaned, not yet stored (``prepare_photos``): what ``store_photos`` writes."""

    stage: str
    photos: tuple[CleanPhoto, ...]


def check_stage(stage: str | None) -> str:
    if stage not in STAGES:
        raise InvalidInput(f"照片环节 stage 应为 {', '.join(f'{k}（{v}）' for k, v in STAGES.items())}")
    return stage


def prepare_photos(files: Sequence[Upload], stage: str) -> PreparedPhotos:
    """Check and clean every file of an upload without storing anything.

    422 for no file, more than ``MAX_PHOTOS_PER_STAGE``, an unknown stage, or any file that is not a
    JPEG, PNG or HEIC photo within the pixel limit; 413 for a file over ``MAX_PHOTO_BYTES``. The first bad
    file refuses the whole upload (its name is in the message)."""
    stage = check_stage(stage)
    if not files:
        raise InvalidInput("没有收到照片文件")
    if len(files) > MAX_PHOTOS_PER_STAGE:
        raise InvalidInput(f"一次最多上传 {MAX_PHOTOS_PER_STAGE} 张照片（收到 {len(files)} 张）")
    cleaned = []
    for position, (filename, data, _declared) in enumerate(files, start=1):
        cleaned.append(clean_photo(bytes(data), name=shown_name(filename, position)))
    return PreparedPhotos(stage, tuple(cleaned))


def attach_photos(*, store: Store, coverage: Coverage, incident_id: int, files: Sequence[Upload], stage: str,
                  actor: Actor, receipt: str | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Add photos of one stage to an incident; their metadata as ``actor`` sees it (``list_photos``'s items).

    ``files``: ``[(filename, bytes, content_type), …]``, 1 to ``MAX_PHOTOS_PER_STAGE`` of them (JPEG, PNG or
    HEIC, each at most ``MAX_PHOTO_BYTES``). ``stage``: ``"intake"`` (上报), ``"before"`` (处置前) or
    ``"after"`` (处置后). ``actor``: the signed-in actor (``Actor(PUBLIC)`` for a resident, who then
    needs ``receipt``, the receipt returned at intake, and may add intake photos to that report only,
    within ``access.INTAKE_PHOTO_WINDOW``).

    Who may add what is ``access.check_photo_add``; the stage must fit the status (``STAGE_STATUSES``).
    Everything is checked before anything is written; then the photos and one history row are stored
    in one transaction. Errors (``gridmap.errors``, messages in Chinese): 401/403 who may not, 404 no such
    incident, 422 a bad file, stage or status, 413 a file too large, 409 the stage is full (another upload
    came first), 503 the store is busy.
    """
    record = _existing(store, incident_id)
    as_reporter = _receipt_holder(store, record, actor, receipt)
    check_stage(stage)
    now = now or utcnow()
    _check_add(store, coverage, record, stage, actor, as_reporter, now)
    prepared = prepare_photos(files, stage)
    return store_photos(store=store, coverage=coverage, incident_id=incident_id, prepared=prepared, actor=actor,
                        as_reporter=as_reporter, now=now)


def store_photos(*, store: Store, coverage: Coverage, incident_id: int, prepared: PreparedPhotos, actor: Actor,
                 as_reporter: bool = False, now: datetime | None = None) -> list[dict[str, Any]]:
    """Write photos already checked by ``prepare_photos`` (with the history row). For callers that
    cleaned the photos before the incident existed (a report sent with its photos, Open311's media):
    they check the files first, create the incident, then store. Other callers use ``attach_photos``."""
    now = now or utcnow()
    _existing(store, incident_id)
    existing = [p for p in store.incident_photos([incident_id]) if p["stage"] == prepared.stage]
    if len(existing) + len(prepared.photos) > MAX_PHOTOS_PER_STAGE:
        raise InvalidInput(f"{STAGES[prepared.stage]}照片最多 {MAX_PHOTOS_PER_STAGE} 张：已有 {len(existing)} 张，"
                           f"还可上传 {max(0, MAX_PHOTOS_PER_STAGE - len(existing))} 张")
    at = iso(now)
    rows = [{"id": secrets.token_hex(12), "incident_id": incident_id, "stage": prepared.stage, "created_at": at,
             "actor": actor.label, "role": actor.role, "width": p.width, "height": p.height, "size": len(p.image),
             "thumb_width": p.thumb_width, "thumb_height": p.thumb_height, "thumb_size": len(p.thumbnail),
             "sha256": hashlib.sha256(p.image).hexdigest(), "image": p.image, "thumbnail": p.thumbnail}
            for p in prepared.photos]
    event = {"at": at, "actor": actor.label, "role": actor.role, "action": PHOTO_ACTION,
             "note": f"{STAGES[prepared.stage]}照片 {len(rows)} 张"}
    store.insert_photos(incident_id, rows, event=event, limit=MAX_PHOTOS_PER_STAGE)
    return [_metadata(row, actor=actor, as_reporter=as_reporter) for row in rows]


def list_photos(*, store: Store, coverage: Coverage, incident_id: int, actor: Actor,
                receipt: str | None = None) -> list[dict[str, Any]]:
    """The incident's photos ``actor`` may see, oldest first: metadata with ``url`` and ``thumbnail_url``.

    Staff and workers in scope (the assignee everything; other workers what ``access.photo_visible``
    leaves them), the reporter with ``receipt`` their own; planners none (403), the public without a
    receipt 401, a worker outside the incident's scope 403."""
    record = _existing(store, incident_id)
    as_reporter = _receipt_holder(store, record, actor, receipt)
    access.check_photo_read(actor, coverage, record, as_reporter=as_reporter)
    return _visible(store.incident_photos([incident_id]), record, actor=actor, as_reporter=as_reporter)


def photos_for_view(*, store: Store, record: dict[str, Any], actor: Actor, as_reporter: bool) -> list[dict[str, Any]]:
    """The photo list of an incident's detail, for a reader already allowed to read the incident; planners
    get none (their view has no ``photos`` at all)."""
    return _visible(store.incident_photos([record["id"]]), record, actor=actor, as_reporter=as_reporter)


def read_photo(*, store: Store, coverage: Coverage, photo_id: str, actor: Actor, receipt: str | None = None,
               thumbnail: bool = False) -> bytes:
    """The stored JPEG (``thumbnail``: the small one) for a reader who may see it; 404 when the photo does
    not exist or is one this reader may not see among the incident's photos (as if it did not exist),
    401/403 when the reader may not see the incident's photos at all."""
    photo = store.get_photo(photo_id) if is_photo_id(photo_id) else None
    if photo is None:
        raise NotFound("照片不存在")
    record = _existing(store, int(photo["incident_id"]))
    as_reporter = _receipt_holder(store, record, actor, receipt)
    access.check_photo_read(actor, coverage, record, as_reporter=as_reporter)
    if not access.photo_visible(photo, record, actor=actor, as_reporter=as_reporter):
        raise NotFound("照片不存在")
    data = store.photo_bytes(photo_id, thumbnail=thumbnail)
    if data is None:
        raise NotFound("照片文件不存在")
    return data


def public_thumbnail(*, store: Store, photo_id: str) -> bytes:
    """The thumbnail anyone may fetch (Open311 ``media_url``): only of an intake photo of a public-category
    report not cancelled (``access.public_photo``); anything else answers exactly as a missing photo."""
    photo = store.get_photo(photo_id) if is_photo_id(photo_id) else None
    record = store.get_incident(int(photo["incident_id"])) if photo is not None else None
    if photo is None or record is None or not access.public_photo(photo, record):
        raise NotFound("照片不存在")
    data = store.photo_bytes(photo_id, thumbnail=True)
    if data is None:
        raise NotFound("照片不存在")
    return data


def public_media(store: Store, records: Sequence[dict[str, Any]]) -> dict[int, str]:
    """incident id → the id of its first public photo (``access.public_photo``), for Open311 listings."""
    wanted = [r for r in records if not access.is_sensitive(r["category"])]
    by_id = {int(r["id"]): r for r in wanted}
    out: dict[int, str] = {}
    for photo in store.incident_photos(list(by_id)):
        incident_id = int(photo["incident_id"])
        if incident_id not in out and access.public_photo(photo, by_id[incident_id]):
            out[incident_id] = photo["id"]
    return out


def is_photo_id(photo_id: str) -> bool:
    """Whether ``photo_id`` can be a photo's id at all (24 hex digits): anything else is simply not found."""
    return len(photo_id) == 24 and all(c in "0123456789abcdef" for c in photo_id)


# helpers ------------------------------------------------------------------------------------------

def _receipt_holder(store: Store, record: dict[str, Any], actor: Actor, receipt: str | None) -> bool:
    """True when the public caller holds the incident's receipt; a wrong receipt is 403, none 401 (as for
    reading the incident); signed-in callers are judged by their role, not by a receipt."""
    if actor.role != PUBLIC:
        return False
    if receipt is None:
        raise Unauthorized("需要登录令牌，或上报时返回的回执码（X-Receipt 请求头）")
    if not hmac.compare_digest(receipt.encode(), receipt_for(store, record["id"]).encode()):
        raise Forbidden("回执码与该事件不符")
    return True


def _check_add(store: Store, coverage: Coverage, record: dict[str, Any], stage: str, actor: Actor,
               as_reporter: bool, now: datetime) -> None:
    within = _parse(record["reported_at"]) + access.INTAKE_PHOTO_WINDOW >= now
    reported_by_actor = stage == "intake" and actor.role == "worker" and any(
        e["action"] == "report" and e["actor"] == actor.label for e in store.incident_events(record["id"]))
    access.check_photo_add(actor, coverage, record, stage, as_reporter=as_reporter,
                           reported_by_actor=reported_by_actor, within_window=within)
    status = record["status"]
    allowed = STAGE_STATUSES.get(stage)
    if (allowed is None and status in CLOSED_FOR_PHOTOS) or (allowed is not None and status not in allowed):
        raise InvalidInput(f"事件当前状态为“{STATUS_LABELS[status]}”，不能添加{STAGES[stage]}照片")


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def _visible(photos: list[dict[str, Any]], record: dict[str, Any], *, actor: Actor, as_reporter: bool
             ) -> list[dict[str, Any]]:
    return [_metadata(p, actor=actor, as_reporter=as_reporter) for p in photos
            if access.photo_visible(p, record, actor=actor, as_reporter=as_reporter)]


def _metadata(photo: dict[str, Any], *, actor: Actor, as_reporter: bool) -> dict[str, Any]:
    shown = {
        "id": photo["id"],
        "stage": photo["stage"],
        "stage_label": STAGES.get(photo["stage"], photo["stage"]),
        "created_at": photo["created_at"],
        "by": photo["actor"],
        "by_role": photo["role"],
        "content_type": OUTPUT_TYPE,
        "width": photo["width"],
        "height": photo["height"],
        "size": photo["size"],
        "thumbnail": {"width": photo["thumb_width"], "height": photo["thumb_height"], "size": photo["thumb_size"]},
        "url": PHOTO_URL.format(id=photo["id"]),
        "thumbnail_url": THUMBNAIL_URL.format(id=photo["id"]),
    }
    return access.shape_photo(shown, actor=actor, as_reporter=as_reporter)

