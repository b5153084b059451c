"""Open311 GeoReport v2 (JSON) over the incident service, so existing Open311 clients can report.

Service codes are the leaf category codes; statuses map to open/closed. Open311 is read by
anyone, so every request it shows is the public view of ``gridmap.access``: no reporter, phone
and ID numbers in the description masked, no unit/floor/room, positions rounded to about 100 m
(except for public assets such as street lights), and sensitive categories not at all.

Photos follow the Open311 media extension: a request may be sent as ``multipart/form-data`` with its photo
in ``media`` (up to ``photos.MAX_PHOTOS_PER_STAGE`` of them), stored as the report's intake photos, stripped
of location and device data like every photo; a request of a public category that has one shows it as
``media_url``, a public thumbnail (``/open311/v2/media/{id}.jpg``). A ``media_url`` sent in is not fetched:
the server reaches out to no address a client names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from gridmap import access
from gridmap.auth import PUBLIC, Actor
from gridmap.coverage.service import Coverage
from gridmap.errors import InvalidInput, NotFound
from gridmap.incidents import photos, service
from gridmap.incidents.categories import CATEGORIES
from gridmap.incidents.models import IncidentCreate, Reporter
from gridmap.incidents.workflow import FINAL, STATUS_LABELS
from gridmap.store.base import IncidentQuery, Store


def services() -> list[dict[str, Any]]:
    return [
        {"service_code": c.code, "service_name": c.name, "description": f"{c.group_name}：{c.name}（时限 {c.hours} 小时）",
         "metadata": False, "type": "realtime", "keywords": c.group_name, "group": c.group_name}
        for c in CATEGORIES.values()
    ]


def _as_request(record: dict[str, Any], media: dict[int, str] | None = None, base_url: str = ""
                ) -> dict[str, Any] | None:
    """The public view of a stored incident in GeoReport v2 fields; None for sensitive categories.
    ``media``: incident id → its public photo (``photos.public_media``), shown as ``media_url``."""
    shown = access.public_incident(record)
    if shown is None:
        return None
    category = CATEGORIES[shown["category"]]
    return {
        "service_request_id": str(shown["id"]),
        "status": "closed" if shown["status"] in FINAL else "open",
        "status_notes": STATUS_LABELS[shown["status"]],
        "service_name": category.name,
        "service_code": shown["category"],
        "description": shown["description"],
        "agency_responsible": shown["grid_code"],
        "requested_datetime": shown["reported_at"],
        "updated_datetime": shown["updated_at"],
        "expected_datetime": shown["due_at"],
        "address": shown["address"],
        "lat": shown["lat"],
        "long": shown["lon"],
        "media_url": media_url(base_url, (media or {}).get(int(shown["id"]))),
    }


def media_url(base_url: str, photo_id: str | None) -> str | None:
    """The public thumbnail's URL (absolute: Open311 clients fetch it as given), None without a photo."""
    return f"{base_url}{photos.PUBLIC_MEDIA_URL.format(id=photo_id)}" if photo_id else None


def create(*, store: Store, coverage: Coverage, fields: dict[str, Any], actor: Actor,
           media: Sequence[photos.Upload] = (),
           service_area_margin_m: float = service.SERVICE_AREA_MARGIN_M) -> list[dict[str, Any]]:
    """Register a request; ``media``: its photos (the media extension's ``media`` files), checked and
    cleaned before the incident is made, so a bad photo refuses the whole request and stores nothing."""
    def number(name: str) -> float | None:
        value = fields.get(name)
        if value in (None, ""):
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"{name} 不是数字") from None

    if not fields.get("service_code"):
        raise InvalidInput("缺少 service_code")
    name = " ".join(str(fields[k]) for k in ("last_name", "first_name") if fields.get(k)) or None
    try:
        body = _body(fields, name, number("long"), number("lat"))
    except ValidationError as exc:
        said = "；".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise InvalidInput(f"请求参数有误：{said}") from None
    prepared = photos.prepare_photos(media, "intake") if media else None
    view, _ = service.intake(store=store, coverage=coverage, body=body, actor=actor, channel="Open311",
                             service_area_margin_m=service_area_margin_m)
    if prepared is not None:
        photos.store_photos(store=store, coverage=coverage, incident_id=view["id"], prepared=prepared, actor=actor,
                            as_reporter=actor.role == PUBLIC)
    return [{"service_request_id": str(view["id"]), "service_notice": f"已受理登记，时限至 {view['due_at']}",
             "account_id": None, "token": view["receipt"]}]


def _body(fields: dict[str, Any], name: str | None, lon: float | None, lat: float | None) -> IncidentCreate:
    return IncidentCreate(
        category=str(fields["service_code"]),
        description=str(fields.get("description") or "（无描述）"),
        lon=lon, lat=lat,
        address=fields.get("address_string") or None,
        reporter=Reporter(name=name, phone=fields.get("phone") or None),
    )


def list_requests(*, store: Store, service_code: str | None = None, status: str | None = None,
                  start_date: str | None = None, end_date: str | None = None, limit: int = 1000,
                  base_url: str = "") -> list[dict[str, Any]]:
    statuses: tuple[str, ...] = ()
    if status == "open":
        statuses = tuple(s for s in STATUS_LABELS if s not in FINAL)
    elif status == "closed":
        statuses = tuple(FINAL)
    elif status:
        raise InvalidInput("status 应为 open 或 closed")
    wanted = tuple(service_code.split(",")) if service_code else access.PUBLIC_CATEGORIES
    public = tuple(c for c in wanted if c in access.PUBLIC_CATEGORIES)
    if not public:
        return []
    query = IncidentQuery(
        statuses=statuses,
        categories=public,
        since=service._parse_time(start_date, "start_date"),
        until=service._parse_time(end_date, "end_date"),
    )
    rows, _ = store.query_incidents(query, limit=limit)
    media = photos.public_media(store, rows)
    return [shown for shown in (_as_request(r, media, base_url) for r in rows) if shown is not None]


MAX_ID = 2**63 - 1
"""SQLite's INTEGER range: Open311 ids are strings, so one beyond it is simply not a request."""


def get_request(*, store: Store, request_id: str, base_url: str = "") -> list[dict[str, Any]]:
    number = int(request_id) if request_id.isascii() and request_id.isdigit() else None
    record = store.get_incident(number) if number is not None and number <= MAX_ID else None
    shown = _as_request(record, photos.public_media(store, [record]), base_url) if record is not None else None
    if shown is None:  # a sensitive category answers exactly as a missing request does
        raise NotFound(f"请求 {request_id} 不存在")
    return [shown]


def media(*, store: Store, photo_id: str) -> bytes:
    """The public thumbnail behind a ``media_url`` (``photos.public_thumbnail``)."""
    return photos.public_thumbnail(store=store, photo_id=photo_id)
