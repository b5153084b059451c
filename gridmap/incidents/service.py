"""Incident service functions: intake, reading with access rules, transitions, statistics.

Keyword-only functions in the style of a service layer: routers parse, call one of these, return.
Who may see what is decided by ``gridmap.access`` (dispatchers and admins everything; a worker the
incidents of their grid, a community-level worker those of their community; planners anonymised
points; the public reports and follows its own report with the receipt returned at intake); this
module asks it and never decides by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import geopandas as gpd
import pandas as pd
import pyproj

from gridmap import access
from gridmap.address.matcher import check_address
from gridmap.auth import PUBLIC, Actor, require
from gridmap.coverage.service import Coverage, check_point
from gridmap.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unauthorized,
)
from gridmap.geo import WGS84
from gridmap.incidents.categories import CATEGORIES, expand_categories, get_category
from gridmap.incidents.models import PUBLIC_SOURCE, IncidentCreate, TransitionRequest
from gridmap.incidents.workflow import DONE, FINAL, STATUS_LABELS, TRANSITIONS, check_statuses
from gridmap.store.base import IncidentQuery, Store
from gridmap.versions.figures import reshaped_grid_figures

EDGE_FLAG_M = 30.0
DUPLICATE_RADIUS_M = 50.0
DUPLICATE_WINDOW = timedelta(days=7)
ASSIGNEE_ROLES = ("专职网格员", "兼职网格员", "网格长")
SERVICE_AREA_MARGIN_M = 5000.0
"""Reports farther than this outside the county boundary are refused (settings may change it)."""
WORKER_SOURCE = "网格员巡查"
_GEOD = pyproj.Geod(ellps="WGS84")
TIMESTAMP_OF = {
    "accepted": "accepted_at", "dispatched": "dispatched_at", "in_progress": "started_at",
    "resolved": "resolved_at", "verified": "verified_at", "closed": "closed_at", "cancelled": "cancelled_at",
}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def receipt_for(store: Store, incident_id: int) -> str:
    """The reporter's token for following their own report: derived, never stored."""
    return hmac.new(store.secret().encode(), f"incident:{incident_id}".encode(), hashlib.sha256).hexdigest()[:24]


# intake ---------------------------------------------------------------------------------------

def _locate(coverage: Coverage, body: IncidentCreate, margin_m: float
            ) -> tuple[float, float, str | None, list[str]]:
    if body.lon is not None and body.lat is not None:
        check_point(body.lon, body.lat)
        if not coverage.in_service_area(body.lon, body.lat, margin_m):
            raise InvalidInput(f"位置 ({body.lon:.5f}, {body.lat:.5f}) 不在本系统的服务范围内"
                               f"（县界外 {margin_m / 1000:g} 公里以上），请核对经纬度")
        return body.lon, body.lat, None, []
    check_address(body.address)
    if coverage.matcher is None:
        raise InvalidInput("地址库尚未建立，请提供经纬度")
    match = coverage.matcher.match(body.address)
    position = coverage.building_position.get(match.building.code) if match.building else None
    flags = ["address_ambiguous"] if match.ambiguous else []
    if match.level == "road" and match.location is not None:
        # a doorplate the library does not hold, placed between its known neighbours on the same side:
        # routable (its grid is the one that point lies in), and flagged so dispatchers know it is estimated
        return match.location.lon, match.location.lat, match.level, [*flags, "address_interpolated"]
    if match.level not in ("building", "compound") or position is None:
        raise InvalidInput(f"地址“{body.address}”无法定位到楼栋（匹配级别 {match.level}），请提供经纬度或更详细的地址")
    lon, lat = (float(v) for v in coverage.building_xy[position])
    return lon, lat, match.level, flags


def _assignee_for(coverage: Coverage, grid_code: str | None) -> str | None:
    if grid_code is None:
        return None
    workers = coverage.grid_workers(grid_code)
    for role in ASSIGNEE_ROLES:
        for w in workers:
            if w["role"] == role:
                return w["code"]
    return None


def _duplicates(store: Store, category: str, lon: float, lat: float, now: datetime) -> list[int]:
    dlat = DUPLICATE_RADIUS_M / 111_000 * 1.5
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    rows, _ = store.query_incidents(
        IncidentQuery(categories=(category,), since=iso(now - DUPLICATE_WINDOW), near=(lon, lat, dlon, dlat)),
        columns="fid, lon, lat, status",
    )
    out = []
    for row in rows:
        if row["status"] in FINAL:
            continue
        _, _, distance = _GEOD.inv(lon, lat, row["lon"], row["lat"])
        if distance <= DUPLICATE_RADIUS_M:
            out.append(int(row["fid"]))
    return sorted(out)


def _channel(actor: Actor, body: IncidentCreate, channel: str | None) -> tuple[str, str]:
    """(source, priority): the channel a report came in on is set by who sent it, not by what it says.

    Dispatchers and admins record calls from any channel and set the priority; a worker's report is
    a patrol finding; everyone else reports as a resident (Open311 as itself). A value that the
    sender may not set is refused rather than silently replaced, so a client learns its mistake.
    """
    if actor.role in access.STAFF_ROLES:
        return body.source or channel or "居民来电", body.priority or "normal"
    own = WORKER_SOURCE if actor.role == "worker" else channel or PUBLIC_SOURCE
    if body.source not in (None, own):
        raise Forbidden(f"上报来源由系统按渠道确定（此渠道为“{own}”），不能指定为“{body.source}”")
    if body.priority not in (None, "normal"):
        raise Forbidden("优先级由指挥中心确定，上报时不能指定")
    return own, "normal"


def intake(*, store: Store, coverage: Coverage, body: IncidentCreate, actor: Actor,
           idempotency_key: str | None = None, idempotency_scope: str = "", channel: str | None = None,
           service_area_margin_m: float = SERVICE_AREA_MARGIN_M,
           now: datetime | None = None) -> tuple[dict[str, Any], bool]:
    """Register a report: locate, assign the grid's worker, add police and units, flag duplicates."""
    now = now or utcnow()
    category = get_category(body.category)
    source, priority = _channel(actor, body, channel)
    lon, lat, match_level, flags = _locate(coverage, body, service_area_margin_m)
    answer = coverage.lookup(lon, lat)
    grid_code = answer["grid"]["code"] if answer["grid"] else None
    if grid_code is None:
        flags.append("outside_grids")
    elif coverage.distance_to_grid_edge(grid_code, lon, lat) <= EDGE_FLAG_M:
        flags.append("near_grid_edge")
    co_handlers = []
    if category.police and answer["precinct"]:
        co_handlers.append({"type": "precinct", **answer["precinct"]})
    duplicates = _duplicates(store, category.code, lon, lat, now)
    if duplicates:
        flags.append("possible_duplicate")
    reporter = body.reporter or None
    record = {
        "category": category.code,
        "description": body.description,
        "lon": lon,
        "lat": lat,
        "address": body.address,
        "match_level": match_level,
        "community_code": answer["community"]["code"] if answer["community"] else None,
        "grid_code": grid_code,
        "precinct_code": answer["precinct"]["code"] if answer["precinct"] else None,
        "reporter_name": reporter.name if reporter else None,
        "reporter_phone": reporter.phone if reporter else None,
        "source": source,
        "priority": priority,
        "status": "reported",
        "assignee_code": _assignee_for(coverage, grid_code),
        "boundary_version": store.live_boundary_version(),  # the grids ``coverage`` was built from
        "co_handlers": co_handlers,
        "suggested_units": coverage.nearest_units(lon, lat, category.resources),
        "duplicate_of": duplicates,
        "flags": flags,
        "reported_at": iso(now),
        "due_at": iso(now + timedelta(hours=category.hours)),
        "updated_at": iso(now),
    }
    event = {"at": iso(now), "actor": actor.label, "role": actor.role, "action": "report",
             "from_status": None, "to_status": "reported", "note": None}
    request_hash = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    incident_id, created = store.insert_incident(record, event, idempotency_key=idempotency_key,
                                                 idempotency_scope=idempotency_scope, request_hash=request_hash)
    view = render(store=store, coverage=coverage, record=store.get_incident(incident_id), actor=actor, now=now,
                  as_reporter=actor.role == PUBLIC)
    view["receipt"] = receipt_for(store, incident_id)
    return view, created


# reading --------------------------------------------------------------------------------------

def _reader(store: Store, coverage: Coverage, record: dict[str, Any], actor: Actor, receipt: str | None
            ) -> bool:
    """Checks that ``actor`` may read ``record``; True when they read it as its reporter (the receipt)."""
    if actor.role == PUBLIC:
        if receipt is None:
            raise Unauthorized("查询上报进度需要回执码（X-Receipt 请求头）或登录令牌")
        if not hmac.compare_digest(receipt.encode(), receipt_for(store, record["id"]).encode()):
            raise Forbidden("回执码与该事件不符")
        return True
    access.check_incident_read(actor, coverage, record)
    return False


def _ref(coverage: Coverage, code: str | None, kind: str) -> dict[str, Any] | None:
    if not code:
        return None
    if kind == "grid":
        try:
            return coverage.grid_ref(code)
        except NotFound:
            return {"code": code, "name": None}
    if kind == "worker":
        match = coverage.workers[coverage.workers["code"] == code]
        return {"code": code, "name": match["name"].iat[0] if len(match) else None,
                "role": match["role"].iat[0] if len(match) else None}
    return {"code": code, "name": coverage.region_name(code)}


def render(*, store: Store, coverage: Coverage, record: dict[str, Any], actor: Actor,
           now: datetime | None = None, as_reporter: bool = False) -> dict[str, Any]:
    """The incident as ``actor`` may see it (``gridmap.access`` cuts the full view down)."""
    now = now or utcnow()
    category = CATEGORIES.get(record["category"])
    overdue = record["status"] not in DONE and record["due_at"] < iso(now)
    assignee = _ref(coverage, record["assignee_code"], "worker")
    view = {
        "id": record["id"],
        "status": record["status"],
        "status_label": STATUS_LABELS[record["status"]],
        "category": {"code": record["category"], "name": category.name if category else None,
                     "group": category.group_name if category else None},
        "description": record["description"],
        "location": {"lon": record["lon"], "lat": record["lat"], "address": record["address"],
                     "match_level": record["match_level"]},
        "grid": _ref(coverage, record["grid_code"], "grid"),
        "community": _ref(coverage, record["community_code"], "region"),
        "assignee": assignee,
        "boundary_version": record.get("boundary_version"),
        "co_handlers": record["co_handlers"],
        "suggested_units": record["suggested_units"],
        "duplicate_of": record["duplicate_of"],
        "merged_into": record["merged_into"],
        "flags": record["flags"],
        "source": record["source"],
        "priority": record["priority"],
        "reporter": {"name": record["reporter_name"], "phone": record["reporter_phone"]},
        "reported_at": record["reported_at"],
        "due_at": record["due_at"],
        "timestamps": {column: record[column] for column in TIMESTAMP_OF.values()},
        "overdue": overdue,
        "supervised": overdue or record["supervised_by"] is not None,
        "supervision": (
            {"ordered_by": record["supervised_by"], "at": record["supervised_at"], "overdue": overdue,
             "responsible": assignee}
            if overdue or record["supervised_by"] else None
        ),
        "rating": record["rating"],
        "comment": record["comment"],
        "version": record["version"],
    }
    return access.shape_incident(view, record, actor=actor, as_reporter=as_reporter)


def get(*, store: Store, coverage: Coverage, incident_id: int, actor: Actor,
        receipt: str | None = None) -> dict[str, Any]:
    """The incident as ``actor`` may see it, with ``photos`` (``gridmap.incidents.photos``): the photos this
    reader may see (planners none, and no ``photos`` key)."""
    from gridmap.incidents import photos  # photos builds on this module

    record = _existing(store, incident_id)
    as_reporter = _reader(store, coverage, record, actor, receipt)
    view = render(store=store, coverage=coverage, record=record, actor=actor, as_reporter=as_reporter)
    if as_reporter or actor.role != "planner":
        view["photos"] = photos.photos_for_view(store=store, record=record, actor=actor, as_reporter=as_reporter)
    return view


def _existing(store: Store, incident_id: int) -> dict[str, Any]:
    record = store.get_incident(incident_id)
    if record is None:
        raise NotFound(f"事件 {incident_id} 不存在")
    return record


def _parse_time(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} 应为 ISO 8601 日期或时间，如 2026-01-31 或 2026-01-31T08:00:00Z") from None
    return iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


ORDERS: Final = ("newest", "urgent")
"""Listing orders: the newest report first, or the most urgent (urgent priority, then earliest due) first."""


def build_query(*, coverage: Coverage, actor: Actor, status: list[str] | None = None,
                category: list[str] | None = None, community: str | None = None, grid: str | None = None,
                assignee: str | None = None, overdue: bool = False, since: str | None = None,
                until: str | None = None, bbox: str | None = None, supervised: bool = False,
                order: str = "newest", now: datetime | None = None) -> IncidentQuery:
    """Filters from query parameters, limited to what the actor may read (``gridmap.access.scope_of``).

    ``overdue``: open and past due; ``supervised``: open and past due or under 督办 (the dispatch console's
    超期/督办 queue); ``order``: ``newest`` or ``urgent`` (``IncidentQuery.order``)."""
    scope = access.scope_of(actor, coverage)
    check_statuses(status)
    categories = expand_categories(category)
    box = None
    if bbox:
        try:
            box = tuple(float(v) for v in bbox.split(","))
        except ValueError:
            box = ()
        if len(box) != 4:
            raise InvalidInput("bbox 应为 minlon,minlat,maxlon,maxlat")
    if grid is not None and not scope.covers(grid):
        raise Forbidden("只能查看本人负责范围内的网格")
    return IncidentQuery(
        grids=tuple(sorted(scope.grids)) if scope.grids is not None else None,
        statuses=tuple(status or ()), categories=tuple(categories), community=community, grid=grid,
        assignee=assignee, since=_parse_time(since, "since"), until=_parse_time(until, "until"), bbox=box,
        overdue_at=iso(now or utcnow()) if overdue else None,
        supervised_at=iso(now or utcnow()) if supervised else None,
        order=order if order in ORDERS else "newest",
    )


def list_incidents(*, store: Store, coverage: Coverage, actor: Actor, query: IncidentQuery, limit: int = 50,
                   offset: int = 0) -> dict[str, Any]:
    access.scope_of(actor, coverage)
    rows, total = store.query_incidents(query, limit=limit, offset=offset)
    now = utcnow()
    return {"items": [render(store=store, coverage=coverage, record=r, actor=actor, now=now) for r in rows],
            "total": total, "limit": limit, "offset": offset}


def history(*, store: Store, coverage: Coverage, incident_id: int, actor: Actor,
            receipt: str | None = None) -> list[dict[str, Any]]:
    """The audit log as the actor may read it: staff in scope all of it, the reporter the time line."""
    record = _existing(store, incident_id)
    as_reporter = _reader(store, coverage, record, actor, receipt)
    return access.shape_history(store.incident_events(incident_id), actor=actor, as_reporter=as_reporter)


# transitions ----------------------------------------------------------------------------------

def transition(*, store: Store, coverage: Coverage, incident_id: int, actor: Actor, request: TransitionRequest,
               if_match: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    step = TRANSITIONS.get(request.action)
    if step is None:
        raise InvalidInput(f"未知操作 {request.action!r}（可选：{', '.join(TRANSITIONS)}）")
    record = _existing(store, incident_id)
    require(actor, *access.READER_ROLES)
    if actor.role not in step.roles:
        raise Forbidden(f"角色 {actor.role} 无权执行“{step.label}”")
    access.check_incident_read(actor, coverage, record)
    if if_match is None:
        raise PreconditionRequired("流转需要 If-Match 请求头（事件的 ETag 版本号），以免覆盖他人的处理")
    if if_match != record["version"]:
        raise PreconditionFailed(f"版本不一致：当前为 {record['version']}，请求基于 {if_match}；请刷新后重试")
    if record["status"] not in step.sources:
        raise InvalidInput(f"事件当前状态为“{STATUS_LABELS[record['status']]}”，不能执行“{step.label}”")
    if step.needs_note and not (request.note and request.note.strip()):
        raise InvalidInput(f"“{step.label}”需要填写原因 (note)")
    changes: dict[str, Any] = {"updated_at": iso(now)}
    if step.target is not None:
        changes["status"] = step.target
        changes[TIMESTAMP_OF.get(step.target, "updated_at")] = iso(now)
    if request.action == "dispatch" and request.assignee:
        if not len(coverage.workers[coverage.workers["code"] == request.assignee]):
            raise NotFound(f"网格员 {request.assignee} 不存在")
        changes["assignee_code"] = request.assignee
    if request.action == "supervise":
        changes.update(supervised_by=actor.label, supervised_at=iso(now))
    if request.action == "reopen":
        changes.update(resolved_at=None, verified_at=None)
    if request.action == "cancel" and request.merge_into is not None:
        target = store.get_incident(request.merge_into)
        if target is None or request.merge_into == incident_id:
            raise InvalidInput(f"合并目标事件 {request.merge_into} 不存在")
        changes["merged_into"] = request.merge_into
    event = {"at": iso(now), "actor": actor.label, "role": actor.role, "action": request.action,
             "from_status": record["status"], "to_status": step.target or record["status"], "note": request.note,
             "reply": request.reply}
    updated = store.update_incident(incident_id, version=record["version"], changes=changes, event=event)
    return render(store=store, coverage=coverage, record=updated, actor=actor, now=now)


def feedback(*, store: Store, coverage: Coverage, incident_id: int, receipt: str | None, rating: int,
             comment: str | None) -> dict[str, Any]:
    """The resident's rating (反馈) once the incident has been handled."""
    record = _existing(store, incident_id)
    _reader(store, coverage, record, Actor(PUBLIC), receipt)
    if record["status"] not in ("resolved", "verified", "closed"):
        raise InvalidInput("事件处置完成后才能评价")
    if record["rating"] is not None:
        raise Conflict("该事件已评价过，每件事只能评价一次")
    now = utcnow()
    event = {"at": iso(now), "actor": "public", "role": PUBLIC, "action": "feedback",
             "from_status": record["status"], "to_status": record["status"], "note": f"评分 {rating}"}
    updated = store.update_incident(incident_id, version=record["version"],
                                    changes={"rating": rating, "comment": comment, "updated_at": iso(now)},
                                    event=event)
    return render(store=store, coverage=coverage, record=updated, actor=Actor(PUBLIC), as_reporter=True)


# frames and statistics --------------------------------------------------------------------------

FRAME_COLUMNS = ("fid, category, status, priority, source, lon, lat, grid_code, community_code, assignee_code, "
                 "reported_at, accepted_at, resolved_at, closed_at, cancelled_at, due_at, supervised_by, rating")


def _frame(store: Store, query: IncidentQuery) -> pd.DataFrame:
    rows, _ = store.query_incidents(query, columns=FRAME_COLUMNS)
    frame = pd.DataFrame(rows, columns=[c.strip() for c in FRAME_COLUMNS.split(",")])
    for column in ("reported_at", "accepted_at", "resolved_at", "closed_at", "cancelled_at", "due_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame.rename(columns={"fid": "id"})


def incidents_frame(store: Store, coverage: Coverage | None = None, *, query: IncidentQuery | None = None,
                    now: datetime | None = None) -> gpd.GeoDataFrame:
    """Incidents as a point layer (WGS84) for maps and planning; no personal data."""
    frame = _frame(store, query or IncidentQuery())
    now_ts = pd.Timestamp(now or utcnow())
    done = frame["status"].isin(DONE)
    names = {w: n for w, n in zip(coverage.workers["code"], coverage.workers["name"])} if coverage else {}
    out = pd.DataFrame({
        "id": frame["id"].astype(str),
        "category": frame["category"],
        "category_name": frame["category"].map(lambda c: CATEGORIES[c].name if c in CATEGORIES else c),
        "category_group": frame["category"].map(lambda c: CATEGORIES[c].group_name if c in CATEGORIES else ""),
        "status": frame["status"],
        "status_label": frame["status"].map(STATUS_LABELS),
        "priority": frame["priority"],
        "grid_code": frame["grid_code"],
        "community_code": frame["community_code"],
        "assignee_name": frame["assignee_code"].map(lambda c: names.get(c, c or "")),
        "reported_at": frame["reported_at"],
        "due_at": frame["due_at"],
        "overdue": (~done) & (frame["due_at"] < now_ts),
        "supervised": frame["supervised_by"].notna() | ((~done) & (frame["due_at"] < now_ts)),
    })
    return gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=WGS84)


MS_PER_S: Final = 1000
S_PER_HOUR: Final = 3600


def _median_hours(middle_ms: tuple[int, ...]) -> float | None:
    """The median in hours, rounded to 0.01, from the middle one or two sorted durations (ms).

    Computed exactly as pandas did when the statistics were a frame (``Series.median`` of
    ``Timedelta.total_seconds() / 3600``): seconds as whole seconds plus the remainder, each value
    in hours, then the mean of the two middle values; so the figures do not move by a rounding step.
    """
    if not middle_ms:
        return None
    hours = [(whole + rest / MS_PER_S) / S_PER_HOUR
             for whole, rest in (divmod(ms, MS_PER_S) for ms in middle_ms)]
    return round(hours[0] if len(hours) == 1 else (hours[0] + hours[1]) / 2, 2)


def _rate(part: int, whole: int, digits: int) -> float | None:
    return round(part / whole, digits) if whole else None


def _by_key(counts: dict[str | None, int]) -> dict[str, int]:
    """Counts keyed by code in code order; incidents without one (outside every grid) under ""."""
    out: dict[str, int] = {}
    for key, n in counts.items():
        if n:
            out[key or ""] = out.get(key or "", 0) + n
    return dict(sorted(out.items()))


def statistics(*, store: Store, actor: Actor, since: str | None = None, until: str | None = None,
               now: datetime | None = None) -> dict[str, Any]:
    """Counts and timings over incidents reported in [since, until), all counted in the store.

    The rules: first response is acceptance, resolution is ``resolved_at`` (reopened incidents
    lose it); on time is resolved no later than due; closure is closed among all but cancelled;
    overdue is open and past due now. Each figure is None when nothing in the period counts for it.
    """
    require(actor, "admin", "dispatcher", "planner")
    query = IncidentQuery(since=_parse_time(since, "since"), until=_parse_time(until, "until"))
    tally = store.incident_tally(query, now=iso(now or utcnow()))
    closed, cancelled = tally.by_status.get("closed", 0), tally.by_status.get("cancelled", 0)
    return {
        "period": {"since": query.since, "until": query.until},
        "total": tally.total,
        "by_status": _by_key(tally.by_status),
        "by_category": _by_key(tally.by_category),
        "by_community": _by_key(tally.by_community),
        "by_grid": _by_key(tally.by_grid),
        "median_hours_to_first_response": _median_hours(tally.response_middle_ms),
        "median_hours_to_resolution": _median_hours(tally.resolution_middle_ms),
        "on_time_rate": _rate(tally.resolved_on_time, tally.resolved, 4),
        "closure_rate": _rate(closed, tally.total - cancelled, 4),
        "average_rating": _rate(tally.rating_sum, tally.rated, 2),
        "overdue_open": tally.overdue_open,
        "reshaped_grids": _reshaped_grids(store, query),
    }


def _reshaped_grids(store: Store, query: IncidentQuery) -> list[dict[str, Any]]:
    """``by_grid`` counts incidents in the grid as it was when they were routed; for a grid redrawn in the
    period, its figures per version and per km² (``gridmap.versions.figures``). One version: nothing to say."""
    if len(store.boundary_versions()) < 2:
        return []
    return reshaped_grid_figures(store, store.incident_counts_by_version(query))
