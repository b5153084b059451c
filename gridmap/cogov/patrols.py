"""未呼先应: patrols of the buildings a worker looks after (issue #13 §4).

A patrol records the track walked, the buildings visited and what was found on the way. Findings
become incidents through the same intake as any report (source 网格员巡查, located, assigned,
flagged as duplicates), so a problem seen on a walk follows the incident loop rather than a list of
its own; a finding that is a standing need rather than a fault (no street lights in a lane) goes on
the 需求清单 instead, through the needs service (source 网格员走访). The walk's length is geodesic (pyproj), and a track that strays far outside the worker's
grid is flagged, not refused: a worker may well walk to a neighbour's grid, but the coverage it is
counted for should be looked at.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Final

import numpy as np
import pyproj
import shapely

from gridmap import records
from gridmap.access import (
    check_patrol_write,
    check_record_read,
    check_record_write,
    shape_patrol,
    shape_record,
)
from gridmap.auth import Actor
from gridmap.cogov import needs
from gridmap.cogov.assignments import assigned_buildings, worker_grids, worker_row
from gridmap.cogov.categories import need_category
from gridmap.cogov.models import NeedCreate
from gridmap.cogov.places import locate
from gridmap.cogov.service_models import (
    PATROL,
    Finding,
    PatrolCreate,
    in_period,
    iso_time,
    page,
    parse_day,
    scoped_records,
)
from gridmap.coverage.service import check_point
from gridmap.errors import Conflict, InvalidInput, NotFound
from gridmap.incidents import service as incidents
from gridmap.incidents.categories import get_category
from gridmap.incidents.models import IncidentCreate
from gridmap.records import view_of
from gridmap.store.base import EntityQuery, Store

LABEL = "巡查记录"
FAR_OUTSIDE_M: Final = 300.0
"""A track point farther than this outside the worker's grid(s) flags the patrol ``track_outside_grid``."""
NOT_VISITED_DAYS: Final = 30
LOCAL: Final = timezone(timedelta(hours=8))
"""A patrol's day is China's calendar day (a 07:00 walk is that morning's, not the previous UTC day's)."""
_GEOD: Final = pyproj.Geod(ellps="WGS84")


def track_length_m(coordinates: list[list[float]]) -> float:
    lons = [p[0] for p in coordinates]
    lats = [p[1] for p in coordinates]
    return float(_GEOD.line_length(lons, lats))


def outside_m(coverage: Any, grid_codes: list[str], coordinates: list[list[float]]) -> float:
    """How far the track's farthest point is outside the union of the grids, in metres (0: inside)."""
    grids = coverage.grids[coverage.grids["code"].isin(grid_codes)]
    if not len(grids):
        return 0.0
    area = grids.geometry.to_crs(coverage.crs).union_all()
    x, y = coverage.to_metric(np.array([p[0] for p in coordinates]), np.array([p[1] for p in coordinates]))
    return float(shapely.distance(area, shapely.points(x, y)).max())


def _local_day(moment: datetime) -> str:
    """The China calendar day of a moment (a time without a zone is read as UTC, as stored)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(LOCAL).date().isoformat()


NEED_SOURCE: Final = "网格员走访"
"""How a need found on a patrol was collected (a source of the 需求清单)."""


def _check_findings(coverage: Any, actor: Actor, body: PatrolCreate, margin_m: float) -> None:
    """Every finding reportable, before anything is written: a known category (an incident's, or a
    need's), a point within the service area, and for a need a community the actor may write in."""
    for i, finding in enumerate(body.findings, start=1):
        try:
            if finding.as_need:
                need_category(finding.category)
            else:
                get_category(finding.category)
            check_point(finding.lon, finding.lat)
        except InvalidInput as e:
            raise InvalidInput(f"第 {i} 条发现：{e.message}") from None
        if not coverage.in_service_area(finding.lon, finding.lat, margin_m):
            raise InvalidInput(f"第 {i} 条发现的位置不在本系统的服务范围内，请核对经纬度")
        if finding.as_need:
            place = locate(coverage, lon=finding.lon, lat=finding.lat, address=None)
            if place is None or place["community_code"] is None:
                raise InvalidInput(f"第 {i} 条发现（需求）的位置不在任何社区内，请核对经纬度")
            check_record_write(actor, coverage, place["community_code"])


def _report(store: Store, coverage: Any, actor: Actor, finding: Finding, *, key: str | None, margin_m: float
            ) -> dict[str, Any]:
    """A finding on the incident loop (source 网格员巡查) or, ``as_need``, on the 需求清单 (source 网格员走访)."""
    if finding.as_need:
        place = locate(coverage, lon=finding.lon, lat=finding.lat, address=None)
        assert place is not None
        need = needs.create(store, coverage, actor, NeedCreate(
            community_code=place["community_code"], title=finding.title or finding.description[:40],
            category=finding.category, description=finding.description, households=finding.households,
            source=NEED_SOURCE, lon=finding.lon, lat=finding.lat))
        return {"need_id": need["id"]}
    report = IncidentCreate(category=finding.category, description=finding.description, lon=finding.lon,
                            lat=finding.lat, source=incidents.WORKER_SOURCE)
    view, _ = incidents.intake(store=store, coverage=coverage, body=report, actor=actor, idempotency_key=key,
                               idempotency_scope=actor.label, service_area_margin_m=margin_m)
    return {"incident_id": view["id"]}


def create(*, store: Store, coverage: Any, actor: Actor, body: PatrolCreate,
           service_area_margin_m: float = incidents.SERVICE_AREA_MARGIN_M,
           idempotency_key: str | None = None) -> tuple[dict[str, Any], bool]:
    """Check everything, then report the findings as incidents, then store the patrol naming them;
    (the patrol, created). A phone on a poor connection resends: with an ``Idempotency-Key`` the same
    sender's resend answers the patrol already stored (its findings' incidents are keyed too, so a
    resend after a failure part way reports none twice); the same key with another body is a 409."""
    check_patrol_write(actor, coverage, body.worker_code)
    request_hash = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    key = f"{actor.label}#{idempotency_key}" if idempotency_key else None
    if key is not None:
        stored = store.find_entity(PATROL, key)
        if stored is not None:
            return _replayed(stored, request_hash, actor, coverage), False
    try:
        worker = worker_row(coverage, body.worker_code)
    except NotFound as e:
        raise InvalidInput(e.message) from None
    unknown = [v.building_code for v in body.visits if v.building_code not in coverage.building_position]
    if unknown:
        raise InvalidInput(f"走访的楼栋 {'、'.join(unknown[:10])} 不存在")
    _check_findings(coverage, actor, body, service_area_margin_m)
    coordinates = body.track.coordinates
    grids = worker_grids(coverage, worker)
    outside = outside_m(coverage, grids, coordinates)
    findings = []
    for i, finding in enumerate(body.findings):
        reported = _report(store, coverage, actor, finding, margin_m=service_area_margin_m,
                           key=f"patrol:{idempotency_key}:{i}" if idempotency_key else None)
        findings.append({**finding.model_dump(mode="json"), **reported})
    record = {
        "key": key,
        "request_hash": request_hash,
        "worker_code": worker["code"],
        "community_code": worker.get("community_code"),
        "grid_code": worker.get("grid_code") or None,
        "started_at": iso_time(body.started_at),
        "ended_at": iso_time(body.ended_at),
        "date": _local_day(body.started_at),
        "track": body.track.model_dump(mode="json"),
        "distance_m": round(track_length_m(coordinates), 1),
        "outside_m": round(outside, 1),
        "flags": ["track_outside_grid"] if outside > FAR_OUTSIDE_M else [],
        "visits": [v.model_dump(mode="json") for v in body.visits],
        "findings": findings,
    }
    try:
        view = records.create(store, coverage, actor, PATROL, [record])[0]
    except Conflict:
        stored = store.find_entity(PATROL, key) if key is not None else None
        if stored is None:
            raise
        return _replayed(stored, request_hash, actor, coverage), False
    return shape_patrol(view, actor=actor), True


def _replayed(stored: dict[str, Any], request_hash: str, actor: Actor, coverage: Any) -> dict[str, Any]:
    if stored.get("request_hash") != request_hash:
        raise Conflict("该 Idempotency-Key 已用于另一份巡查记录，请换一个键")
    return shape_patrol(shape_record(view_of(stored), actor=actor, coverage=coverage), actor=actor)


def get(*, store: Store, coverage: Any, actor: Actor, patrol_id: int) -> dict[str, Any]:
    return shape_patrol(records.get(store, coverage, actor, PATROL, patrol_id, label=LABEL), actor=actor)


def _visited_days(patrols: list[dict[str, Any]]) -> dict[str, str]:
    """Building code → the last day it was visited."""
    last: dict[str, str] = {}
    for p in patrols:
        for v in p.get("visits", []):
            if v["building_code"] not in last or p["date"] > last[v["building_code"]]:
                last[v["building_code"]] = p["date"]
    return last


def worker_patrols(*, store: Store, coverage: Any, actor: Actor, code: str, since: str | None = None,
                   until: str | None = None, limit: int = 50, offset: int = 0, today: date | None = None
                   ) -> dict[str, Any]:
    """A worker's patrols in [since, until) and what they add up to: distance walked, buildings visited,
    the share of their buildings visited, and their buildings not visited in the 30 days before
    ``until`` (or today): those are the ones to walk to next."""
    worker = worker_row(coverage, code)
    check_record_read(actor, coverage, worker.get("community_code"))
    since, until = parse_day(since, "since"), parse_day(until, "until")
    every = scoped_records(store, None, coverage, EntityQuery(kind=PATROL, fields=(("worker_code", code),)))
    every.sort(key=lambda r: (r["started_at"], r["n"]))
    chosen = [r for r in every if in_period(r["date"], since, until)]
    assigned, _ = assigned_buildings(store, coverage, worker)
    visited = sorted({v["building_code"] for r in chosen for v in r.get("visits", [])})
    visited_assigned = set(visited) & set(assigned)
    reference = date.fromisoformat(until) if until else (today or datetime.now(LOCAL).date())
    window_start = (reference - timedelta(days=NOT_VISITED_DAYS)).isoformat()
    last = _visited_days([r for r in every if r["date"] < reference.isoformat()])
    stale = [{"code": b, "last_visited": last.get(b)} for b in assigned if last.get(b, "") < window_start]
    out = page(chosen, actor=actor, coverage=coverage, limit=limit, offset=offset)
    out["items"] = [{k: v for k, v in shape_patrol(item, actor=actor).items() if k != "track"}
                    for item in out["items"]]
    return {
        **out,
        "worker": {k: worker[k] for k in ("code", "name", "role")},
        "period": {"since": since, "until": until},
        "distance_m": round(sum(r["distance_m"] for r in chosen), 1),
        "findings": sum(len(r.get("findings", [])) for r in chosen),
        "buildings_visited": len(visited),
        "visited": visited,
        "assigned_buildings": len(assigned),
        "assigned_visited": len(visited_assigned),
        "visited_share": round(len(visited_assigned) / len(assigned), 4) if assigned else None,
        "not_visited_days": NOT_VISITED_DAYS,
        "not_visited_since": window_start,
        "not_visited": stale,
    }


def period_patrols(store: Store, coverage: Any, *, community: str | None = None, since: str | None = None,
                   until: str | None = None) -> list[dict[str, Any]]:
    query = EntityQuery(kind=PATROL, communities=(community,) if community else None)
    return [r for r in scoped_records(store, None, coverage, query) if in_period(r["date"], since, until)]
