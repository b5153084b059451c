"""Who may see what: the one place that decides, for every output path.

The JSON API, Open311, the maps, exports and the audit history all ask this module for the view
an actor may have of an incident; none of them decides by itself. The policy it enforces is
written in ``docs/security.md``; ``tests/test_access_matrix.py`` checks every route against it.

Views, from most to least:

- ``full``: dispatchers, admins and the assigned worker. Other workers in scope read the same
  incident with the reporter masked, personal numbers and the reporter's name masked in the
  description, and the address without unit, floor or room.
- ``planner``: anonymised points (category, status, times, grid), positions of sensitive
  categories rounded; no description, address, reporter or assignee.
- ``reporter``: whoever holds the receipt: status, time line and public replies, their own place
  (without unit, floor or room: a receipt can be forwarded);
  free text with phone and ID numbers redacted; nothing of who on staff did what.
- ``public``: public categories only; no reporter, redacted description, no unit/floor/room,
  position rounded to about 100 m unless the report is about a public asset (a street light).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import geopandas as gpd
import numpy as np

from gridmap.auth import PUBLIC, Actor
from gridmap.errors import Forbidden, Unauthorized
from gridmap.incidents.categories import CATEGORIES

ROUND_DEGREES: Final = 0.001
"""Public positions snap to the centre of a 0.001° cell: about 110 m north–south, 90 m east–west here."""

STAFF_ROLES: Final = frozenset({"admin", "dispatcher"})
READER_ROLES: Final = frozenset({"admin", "dispatcher", "worker", "planner"})

PLANNER_INCIDENT_FIELDS: Final = (
    "id", "category", "category_name", "category_group", "status", "status_label", "priority",
    "grid_code", "community_code", "reported_at", "due_at", "overdue", "supervised",
)
"""What anonymised incident points carry (planner views, the GIS export): no text, no person."""

PUBLIC_MAP_FIELDS: Final = (
    "id", "category", "category_name", "category_group", "status", "status_label", "grid_code",
    "community_code", "reported_at",
)

# free text --------------------------------------------------------------------------------------

_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8}|\d{5})(\d{3}[\dXx]|\d{1})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})[- ]?(\d{3,4})(\d{4})(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def _mask_id(m: re.Match[str]) -> str:
    head, middle, tail = m.group(1), m.group(2), m.group(3)
    if len(head + middle + tail) not in (15, 18):
        return m.group(0)
    return head[:4] + "*" * (len(head) - 4 + len(middle) + len(tail) - 4) + (head + middle + tail)[-4:]


_UNIT_IN_TEXT = re.compile(r"(?<![\d-])\d{1,3}\s*[-－—]\s*\d{1,3}\s*[-－—]\s*\d{2,5}(?!\d)|\d+\s*(?=单元|层|楼层|室|号房)|(?<=单元)\s*\d+")


def redact_text(text: str | None, *, names: tuple[str | None, ...] = ()) -> str | None:
    """Free text with 身份证 numbers, phone numbers, e-mail addresses, unit/floor/room numbers and the
    given names (the reporter's own) masked: ``139****5678``, ``*单元*室``, ``王**``.

    Names in general cannot be found in Chinese text reliably; the reporter's own name is known."""
    if not text:
        return text
    text = _ID_NUMBER.sub(_mask_id, text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    text = _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _UNIT_IN_TEXT.sub("*", text)
    for name in names:
        if name and len(name) >= 2:
            text = text.replace(name, mask_name(name) or "")
    return text


_NUM = r"(?:\d+|[零〇一二三四五六七八九十百两]+)"
_DASH_ROOM = re.compile(r"(\d+)\s*[-－—]\s*\d+\s*[-－—]\s*\d+.*$")
_UNIT_ON = re.compile(rf"\s*{_NUM}\s*(?:单元|层|楼层|室|户|号房).*$")
_ROOM_AFTER_BUILDING = re.compile(r"((?:号楼|栋|幢|座|#))\s*\d{3,5}.*$")


def coarse_address(address: str | None) -> str | None:
    """The address without unit, floor or room: what the public may read of where a report is."""
    if not address:
        return address
    address = _DASH_ROOM.sub(lambda m: f"{m.group(1)}号楼", address)
    address = _UNIT_ON.sub("", address)
    address = _ROOM_AFTER_BUILDING.sub(lambda m: m.group(1), address).strip()
    return redact_text(address)


def round_position(lon: float, lat: float) -> tuple[float, float]:
    """The centre of the ``ROUND_DEGREES`` cell holding the point (about 100 m)."""
    def snap(v: float) -> float:
        return round((math.floor(v / ROUND_DEGREES) + 0.5) * ROUND_DEGREES, 6)
    return snap(lon), snap(lat)


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


# categories -------------------------------------------------------------------------------------

def is_sensitive(category: str) -> bool:
    """Disputes, care of vulnerable people, public order, mental health: never shown to the public.
    An unknown code counts as sensitive (fail closed)."""
    found = CATEGORIES.get(category)
    return found is None or found.sensitive


def is_public_asset(category: str) -> bool:
    found = CATEGORIES.get(category)
    return found is not None and found.public_asset


PUBLIC_CATEGORIES: Final = tuple(code for code, c in CATEGORIES.items() if not c.sensitive)


# actors and scopes ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """The incidents an actor may read: ``grids`` None means every incident (outside grids too)."""

    grids: frozenset[str] | None
    view: str

    def covers(self, grid_code: str | None) -> bool:
        return self.grids is None or (grid_code is not None and grid_code in self.grids)


def _worker_row(coverage: Any, code: str | None) -> dict[str, Any] | None:
    workers = coverage.workers
    match = workers[workers["code"] == code]
    return match.iloc[0].to_dict() if len(match) else None


def check_actor(actor: Actor, coverage: Any) -> Actor:
    """A worker token whose worker no longer exists (after a re-import) is refused everywhere."""
    if actor.role == "worker" and _worker_row(coverage, actor.worker_code) is None:
        raise Forbidden(f"令牌绑定的网格员 {actor.worker_code} 已不在当前数据中，请重新签发令牌")
    return actor


def worker_grids(actor: Actor, coverage: Any) -> frozenset[str]:
    """A grid worker's grid; a community-level worker's (网格长, 社区民警: no grid) whole community."""
    row = _worker_row(coverage, actor.worker_code)
    if row is None:
        return frozenset()
    if row.get("grid_code"):
        return frozenset({row["grid_code"]})
    grids = coverage.grids
    return frozenset(grids.loc[grids["community_code"] == row.get("community_code"), "code"])


def scope_of(actor: Actor, coverage: Any) -> Scope:
    """What incidents a signed-in actor may list or read; the public lists nothing."""
    if actor.role in STAFF_ROLES:
        return Scope(None, "full")
    if actor.role == "planner":
        return Scope(frozenset(coverage.grids["code"]), "planner")
    if actor.role == "worker":
        return Scope(worker_grids(actor, coverage), "full")
    raise Unauthorized("需要登录令牌")


def check_incident_read(actor: Actor, coverage: Any, record: dict[str, Any]) -> Scope:
    scope = scope_of(actor, coverage)
    if not scope.covers(record.get("grid_code")):
        raise Forbidden("只能查看本人负责范围内的事件" if actor.role == "worker" else "网格外的事件只有指挥中心可以查看")
    return scope


def may_see_reporter(actor: Actor, record: dict[str, Any]) -> bool:
    """Reporter name and phone: dispatchers, admins and the assigned worker only."""
    return actor.role in STAFF_ROLES or (actor.role == "worker" and actor.worker_code == record.get("assignee_code"))


# the console pages (issue #15) ------------------------------------------------------------------

CONSOLE_ROLES: Final = STAFF_ROLES | {"worker"}
"""Who has a console: dispatchers and admins the dispatch console, workers their phone page (我的任务).
Planners read anonymised points and act on nothing, so they have none."""


def check_console(actor: Actor, *, staff_only: bool = False) -> None:
    """Raise ``Unauthorized`` without sign-in, ``Forbidden`` for a role without a console (planners), and for
    workers on the dispatch console's own parts (``staff_only``: the queue of every incident)."""
    if actor.role == PUBLIC:
        raise Unauthorized("处置台需要登录：请在 /login 粘贴令牌登录，或发送 Authorization: Bearer <token>")
    if actor.role not in CONSOLE_ROLES:
        raise Forbidden("规划人员没有处置台（只能查看匿名化的事件点位）")
    if staff_only and actor.role not in STAFF_ROLES:
        raise Forbidden("事件队列只有指挥中心可以查看；网格员请使用“我的任务”（/console）")


# incident views ---------------------------------------------------------------------------------

_PLANNER_KEYS: Final = ("id", "status", "status_label", "category", "grid", "community", "boundary_version",
                        "priority", "reported_at", "due_at", "timestamps", "overdue", "supervised", "version")
_REPORTER_KEYS: Final = ("id", "status", "status_label", "category", "description", "location", "grid",
                         "community", "assignee", "reported_at", "due_at", "timestamps", "overdue", "rating",
                         "comment", "version", "reporter")
"""The assignee is a grid worker, whose name, role and work phone are public service contacts."""


def shape_incident(view: dict[str, Any], record: dict[str, Any], *, actor: Actor, as_reporter: bool = False
                   ) -> dict[str, Any]:
    """Cut a fully rendered incident down to what ``actor`` may see (``as_reporter``: via the receipt)."""
    if as_reporter:
        out = {k: view[k] for k in _REPORTER_KEYS}
        out["description"] = redact_text(view["description"], names=(record["reporter_name"],))
        out["location"] = {**view["location"], "address": coarse_address(view["location"]["address"])}
        out["reporter"] = {"name": mask_name(record["reporter_name"]), "phone": mask_phone(record["reporter_phone"])}
        return out
    if actor.role == "planner":
        out = {k: view[k] for k in _PLANNER_KEYS}
        lon, lat = _planner_position(record)
        out["location"] = {"lon": lon, "lat": lat}
        return out
    if not may_see_reporter(actor, record):
        names = (record["reporter_name"],)
        view = {**view, "reporter": {"name": mask_name(record["reporter_name"]),
                                     "phone": mask_phone(record["reporter_phone"])},
                "description": redact_text(view["description"], names=names),
                "location": {**view["location"], "address": coarse_address(view["location"]["address"])}}
    return view


def _planner_position(record: dict[str, Any]) -> tuple[float, float]:
    if is_sensitive(record["category"]):
        return round_position(record["lon"], record["lat"])
    return record["lon"], record["lat"]


def public_position(category: str, lon: float, lat: float) -> tuple[float, float]:
    return (lon, lat) if is_public_asset(category) else round_position(lon, lat)


def public_incident(record: dict[str, Any]) -> dict[str, Any] | None:
    """What anyone may read of a stored incident; None for sensitive categories (they do not exist
    for the public)."""
    if is_sensitive(record["category"]):
        return None
    lon, lat = public_position(record["category"], record["lon"], record["lat"])
    return {
        "id": record["id"], "category": record["category"], "status": record["status"],
        "description": redact_text(record["description"], names=(record["reporter_name"],)),
        "address": coarse_address(record["address"]),
        "lon": lon, "lat": lat, "grid_code": record["grid_code"], "reported_at": record["reported_at"],
        "updated_at": record["updated_at"], "due_at": record["due_at"],
    }


# history ----------------------------------------------------------------------------------------

def shape_history(events: list[dict[str, Any]], *, actor: Actor, as_reporter: bool = False) -> list[dict[str, Any]]:
    """Staff in scope read the whole audit log; the reporter reads status changes and public replies."""
    if not as_reporter:
        if actor.role == "planner":
            raise Forbidden("规划人员不能查看事件处置记录")
        return events
    return [{"at": e["at"], "action": e["action"], "from_status": e["from_status"], "to_status": e["to_status"],
             "reply": e.get("reply")}
            for e in events if e["action"] == "report" or e["from_status"] != e["to_status"] or e.get("reply")]


# photos -----------------------------------------------------------------------------------------

INTAKE_PHOTO_WINDOW: Final = timedelta(minutes=30)
"""How long after reporting the reporter (the public with the receipt, or the worker who reported on
patrol) may still add intake photos: long enough for a second try on a weak network, short enough that
a forwarded receipt cannot be used to attach pictures to someone else's report later."""
PHOTO_HANDLER_ROLES: Final = frozenset({"admin", "dispatcher", "worker"})
"""Who adds 处置前/后 photos: those who may start and resolve (``workflow.HANDLERS``), workers in scope."""


def check_photo_add(actor: Actor, coverage: Any, record: dict[str, Any], stage: str, *, as_reporter: bool,
                    reported_by_actor: bool, within_window: bool) -> None:
    """May ``actor`` add photos of ``stage`` (intake, before, after) to ``record``?

    - dispatchers and admins: any stage (intake photos too: a picture sent in by a caller);
    - workers in scope: 处置前/后; intake photos only to a report they made themselves (on patrol), within
      ``INTAKE_PHOTO_WINDOW``;
    - the reporter (the public with the receipt): intake photos to their own report, within the window;
    - planners: none; the public without a receipt: 401.
    Which statuses a stage may be added in is the service's rule (``gridmap.incidents.photos``)."""
    if as_reporter:
        if stage != "intake":
            raise Forbidden("居民只能为自己的上报补充照片（上报环节），处置前/后照片由工作人员上传")
        if not within_window:
            raise Forbidden(f"上报 {_minutes(INTAKE_PHOTO_WINDOW)} 分钟后不能再补充照片；如需补充请联系指挥中心")
        return
    if actor.role == PUBLIC:
        raise Unauthorized("添加照片需要登录令牌，或上报时返回的回执码（X-Receipt 请求头）")
    if actor.role == "planner":
        raise Forbidden("规划人员不能添加事件照片")
    check_incident_read(actor, coverage, record)
    if actor.role not in PHOTO_HANDLER_ROLES:
        raise Forbidden("没有权限添加照片")
    if stage == "intake" and actor.role == "worker":
        if not reported_by_actor:
            raise Forbidden("网格员只能为本人上报的事件补充上报照片；处置照片请选择处置前或处置后")
        if not within_window:
            raise Forbidden(f"上报 {_minutes(INTAKE_PHOTO_WINDOW)} 分钟后不能再补充上报照片；处置照片请选择处置前或处置后")


def check_photo_read(actor: Actor, coverage: Any, record: dict[str, Any], *, as_reporter: bool) -> None:
    """Photos are served only to those who may read the incident; planners read none (their view of an
    incident is anonymised points, and a photo cannot be anonymised)."""
    if as_reporter:
        return
    if actor.role == PUBLIC:
        raise Unauthorized("查看照片需要登录令牌，或上报时返回的回执码（X-Receipt 请求头）")
    if actor.role == "planner":
        raise Forbidden("规划人员不能查看事件照片")
    check_incident_read(actor, coverage, record)


def photo_visible(photo: dict[str, Any], record: dict[str, Any], *, actor: Actor, as_reporter: bool) -> bool:
    """Which of an incident's photos a reader who passed ``check_photo_read`` sees.

    Dispatchers, admins and the assignee see every photo. The reporter sees the photos they added
    themselves, nothing of the staff's. Other workers in scope get what the masking rules give them:
    they read the incident with the reporter masked, so the photos a resident took of a sensitive
    matter (a dispute, care of a vulnerable person: the people, the inside of a home) are left out for
    them; a resident's photo of a public-category report (a street light) is no more private than the
    public thumbnail Open311 shows of it, and the staff's 处置前/后 photos are work records."""
    if as_reporter:
        return photo["role"] == PUBLIC
    if actor.role == "planner" or actor.role == PUBLIC:
        return False
    if may_see_reporter(actor, record):
        return True
    return not (photo["role"] == PUBLIC and is_sensitive(record["category"]))


def shape_photo(photo: dict[str, Any], *, actor: Actor, as_reporter: bool) -> dict[str, Any]:
    """A photo's metadata as a reader sees it: who added it (an actor label, as in the history) for staff
    and workers; the reporter reads only that it was theirs."""
    if as_reporter:
        return {k: v for k, v in photo.items() if k != "by"}
    return photo


def public_photo(photo: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether anyone may fetch the photo's thumbnail (Open311 ``media_url``): an intake photo of a report
    the public may read at all (not a sensitive category), unless the report was cancelled (作废: how a
    dispatcher takes an abusive or mistaken report, and its picture, off the public list)."""
    return (photo["stage"] == "intake" and not is_sensitive(record["category"])
            and record["status"] != "cancelled")


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


# maps -------------------------------------------------------------------------------------------

def incidents_for_map(frame: gpd.GeoDataFrame, *, actor: Actor, coverage: Any) -> gpd.GeoDataFrame:
    """The incident points a map may draw for ``actor`` (the frame carries no reporter data)."""
    if actor.role == PUBLIC:
        public = frame[~frame["category"].map(is_sensitive).astype(bool)]
        return _rounded(public[[*PUBLIC_MAP_FIELDS, public.geometry.name]].copy(), everything=False)
    scope = scope_of(actor, coverage)
    shown = frame if scope.grids is None else frame[frame["grid_code"].isin(scope.grids)]
    if scope.view == "planner":
        return _rounded(shown[[*PLANNER_INCIDENT_FIELDS, shown.geometry.name]].copy(), everything=False,
                        only_sensitive=True)
    return shown


def _rounded(frame: gpd.GeoDataFrame, *, everything: bool, only_sensitive: bool = False) -> gpd.GeoDataFrame:
    if not len(frame):
        return frame
    if only_sensitive:
        move = frame["category"].map(is_sensitive).to_numpy(dtype=bool)
    else:
        move = ~frame["category"].map(is_public_asset).to_numpy(dtype=bool) | everything
    x, y = frame.geometry.x.to_numpy().copy(), frame.geometry.y.to_numpy().copy()
    snapped = np.array([round_position(a, b) for a, b in zip(x[move], y[move])]).reshape(-1, 2)
    x[move], y[move] = snapped[:, 0], snapped[:, 1]
    return frame.set_geometry(gpd.points_from_xy(x, y, crs=frame.crs))


# staff-maintained records: addresses, aliases, co-governance -------------------------------------

RECORD_PERSONAL_FIELDS: Final = ("phone", "id_number", "contact_phone")
"""Fields of staff-maintained records that are personal data (a registered Party member's phone, a
unit contact's phone): shown to dispatchers and admins and to staff of the record's own community;
masked for other readers; never public."""


def record_communities(actor: Actor, coverage: Any) -> frozenset[str] | None:
    """The communities whose records an actor may read and write: None for every community
    (dispatchers, admins); a worker's own community (grid workers and community-level workers alike:
    co-governance is organised per community); nothing for the public."""
    if actor.role in STAFF_ROLES:
        return None
    if actor.role == "worker":
        row = _worker_row(coverage, actor.worker_code)
        return frozenset({str(row["community_code"])}) if row is not None and row.get("community_code") else frozenset()
    if actor.role == "planner":
        return None
    raise Unauthorized("需要登录令牌")


def check_record_read(actor: Actor, coverage: Any, community_code: str | None) -> None:
    allowed = record_communities(actor, coverage)
    if allowed is not None and community_code not in allowed:
        raise Forbidden("只能查看本社区的记录")


def check_record_write(actor: Actor, coverage: Any, community_code: str | None) -> None:
    """Dispatchers and admins write everywhere; workers in their own community; planners read only."""
    if actor.role == "planner":
        raise Forbidden("规划人员只能查看，不能修改")
    allowed = record_communities(actor, coverage)
    if allowed is not None and community_code not in allowed:
        raise Forbidden("只能登记或修改本社区的记录")


def shape_record(record: dict[str, Any], *, actor: Actor, coverage: Any) -> dict[str, Any]:
    """A record as ``actor`` may read it: personal fields (and a person's name beside them) masked
    for planners and for readers outside the record's community."""
    own = record_communities(actor, coverage)
    if actor.role != "planner" and (own is None or record.get("community_code") in own):
        return record
    out = dict(record)
    for name in RECORD_PERSONAL_FIELDS:
        if out.get(name):
            out[name] = mask_phone(str(out[name]))
    if out.get("name") and any(record.get(n) for n in RECORD_PERSONAL_FIELDS):
        out["name"] = mask_name(str(out["name"]))
    if out.get("contact_name"):  # a unit's contact person (双报到), named beside their phone
        out["contact_name"] = mask_name(str(out["contact_name"]))
    return out


def check_patrol_write(actor: Actor, coverage: Any, worker_code: str) -> None:
    """A patrol is a worker's own account of where they walked: a worker records only their own (not a
    colleague's, even in the same grid); dispatchers and admins record for anyone (a patrol written up
    from paper); planners read only."""
    if actor.role in STAFF_ROLES:
        return
    if actor.role == "planner":
        raise Forbidden("规划人员只能查看，不能修改")
    if actor.role == "worker":
        if actor.worker_code != worker_code:
            raise Forbidden("网格员只能登记本人的巡查记录")
        return
    raise Unauthorized("需要登录令牌")


MEDIATION_KIND: Final = "调解"


def shape_meeting(record: dict[str, Any], *, actor: Actor) -> dict[str, Any]:
    """A mediation's record names the parties of a dispute and what was agreed between them: planners
    (who read every community for figures) get its outcomes and links, not its text or attendees."""
    if actor.role != "planner" or record.get("kind") != MEDIATION_KIND:
        return record
    out = dict(record)
    out["attendees"] = []
    out["items"] = [{"need_id": i.get("need_id"), "incident_id": i.get("incident_id"), "outcome": i.get("outcome")}
                    for i in record.get("items", [])]
    return out


def shape_patrol(record: dict[str, Any], *, actor: Actor) -> dict[str, Any]:
    """A patrol's track is where a named worker was, minute by minute: planners read patrols for
    their figures (distance, buildings, findings), not the track itself."""
    if actor.role != "planner" or "track" not in record:
        return record
    return {**record, "track": None}


# the standard address library --------------------------------------------------------------------

LIBRARY_EDITORS: Final = STAFF_ROLES
"""Who adds and corrects standard addresses and aliases, and reads what was not found: the command
centre and operators (the library is the whole county's, not one community's)."""


def check_library_edit(actor: Actor) -> None:
    if actor.role == PUBLIC:
        raise Unauthorized("需要登录令牌")
    if actor.role not in LIBRARY_EDITORS:
        raise Forbidden("只有指挥中心和管理员可以维护标准地址库")


# OGC API Features (/ogc) -----------------------------------------------------------------------------

OGC_PUBLIC_COLLECTIONS: Final = ("regions", "grids", "stations", "roads")
"""What the public map and the public JSON API already show: areas, grids with their workers' public
service contacts, service stations, named roads."""
OGC_SIGNED_IN_COLLECTIONS: Final = ("buildings", "precincts", "units", "incidents")
"""What the signed-in maps draw: buildings with their households, police precincts, co-building units, and
incidents, the last only as ``incidents_for_map`` cuts them (a worker their scope, a planner anonymised)."""


def ogc_collections(actor: Actor) -> tuple[str, ...]:
    """The OGC collections ``actor`` may list, in the order they are listed."""
    if actor.role == PUBLIC:
        return OGC_PUBLIC_COLLECTIONS
    return OGC_PUBLIC_COLLECTIONS + OGC_SIGNED_IN_COLLECTIONS


def check_ogc_collection(actor: Actor, collection: str) -> None:
    """A signed-in collection asked for by the public is 401 (a token would help), as for the map tiles;
    an unknown collection is the caller's 404, decided by the OGC service."""
    if collection in OGC_SIGNED_IN_COLLECTIONS and actor.role == PUBLIC:
        raise Unauthorized("该图层需要登录（Authorization: Bearer <token> 或登录会话）")


# Boundary versions (/v1/versions, /maps/versions) --------------------------------------------------

VERSION_READERS: Final = frozenset({"admin", "dispatcher", "planner", "worker"})
"""Every signed-in role: versions are grid outlines with dates, and a diff names the workers whose grid
changed (name and role, no phone), which every worker may know about a redraw. The public gets 401:
the public map shows the grids in force, not the county's plans."""


def check_versions_read(actor: Actor) -> None:
    if actor.role == PUBLIC:
        raise Unauthorized("网格版本需要登录（Authorization: Bearer <token> 或登录会话）")
    if actor.role not in VERSION_READERS:
        raise Forbidden("该角色无权查看网格版本")
