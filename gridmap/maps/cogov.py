"""The co-governance records the maps draw — needs, resources, projects and patrol coverage — as frames
cut to what the caller may read, by the rules of the JSON API (``gridmap.access``):

- the records of the caller's communities only (``record_communities``: a worker their own community,
  planners, dispatchers and admins every community; the public nothing: 401);
- only the fields a popup shows, none of them personal: a need's title, category, households and status
  (never its description or address, which may name the resident who asked); a resource's provider as
  the JSON API names it (a member by code alone) with its description redacted (``redact_text``);
- patrol coverage: a worker's own buildings (包楼院) and their own visits, as
  ``GET /v1/workers/{code}/patrols`` counts them; dispatchers, admins and planners every worker's (the
  JSON API lets planners read patrols without their tracks, and coverage carries no track).

Where a record has no point of its own it is drawn near its community's centre, records sharing a
point spread on a small ring so each stays clickable; the popup says so (``place``). Nothing here
draws: ``gridmap.layers`` does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd

from gridmap.access import check_record_read, record_communities, redact_text, shape_record
from gridmap.auth import Actor
from gridmap.cogov import kinds
from gridmap.cogov.assignments import assigned_buildings, assignments
from gridmap.cogov.needs import STATUS_LABELS as NEED_LABELS
from gridmap.cogov.patrols import LOCAL, NOT_VISITED_DAYS
from gridmap.cogov.places import community_centre, station_row, unit_row
from gridmap.cogov.projects import STATUS_LABELS as PROJECT_LABELS
from gridmap.cogov.resources import PROVIDER_KINDS
from gridmap.cogov.service_models import BUILDING_ASSIGNMENT, PATROL, scoped_records
from gridmap.errors import InvalidInput, NotFound
from gridmap.geo import WGS84
from gridmap.records import view_of
from gridmap.store.base import EntityQuery, Store

LAYERS: Final = ("needs", "resources", "projects", "patrol_coverage")
DEPENDS_ON: Final = {"needs": (kinds.NEED,), "resources": (kinds.RESOURCE, kinds.MEMBER, kinds.TEAM),
                     "projects": (kinds.PROJECT, kinds.NEED), "patrol_coverage": (PATROL, BUILDING_ASSIGNMENT)}
"""The record kinds each layer is made from: their change numbers (``entity_seq``) key cached tiles and pages."""
SPREAD_M: Final = 35.0
"""Records drawn at one point (a community's centre, a unit with several offers) spread on a ring this wide."""
AT_POINT: Final = "需求地点"
NEAR_CENTRE: Final = "社区大致位置（未标注地点）"
_METRES_PER_DEGREE: Final = 111_320.0


def today() -> date:
    """China's calendar day: patrols count by it (``gridmap.cogov.patrols``)."""
    return datetime.now(LOCAL).date()


def version(store: Store, layer: str, day: date) -> tuple[Any, ...]:
    """Changes whenever what ``layer`` draws may change: the change numbers of its kinds (and, for patrol
    coverage, the day: a building falls out of the 30-day window with time alone)."""
    return (layer, *(store.entity_seq(kind) for kind in DEPENDS_ON[layer]),
            day.isoformat() if layer == "patrol_coverage" else None)


def versions(store: Store, layers: Iterable[str], day: date) -> tuple[Any, ...]:
    return tuple(version(store, layer, day) for layer in layers)


def _readable(store: Store, coverage: Any, actor: Actor, query: EntityQuery) -> list[dict[str, Any]]:
    """The records of the query the actor may read, as the JSON API shows them (shaped, ``id`` for ``n``)."""
    record_communities(actor, coverage)  # the public: 401
    return [shape_record(view_of(r), actor=actor, coverage=coverage)
            for r in scoped_records(store, actor, coverage, query)]


def _spread(lon: list[float], lat: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points sharing a position moved onto a ring of ``SPREAD_M`` around it (first at north, clockwise)."""
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    groups: dict[tuple[float, float], list[int]] = defaultdict(list)
    for i, key in enumerate(zip(np.round(x, 7), np.round(y, 7))):
        groups[key].append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        for j, i in enumerate(members):
            angle = 2 * math.pi * j / len(members)
            x[i] += SPREAD_M * math.sin(angle) / (_METRES_PER_DEGREE * math.cos(math.radians(y[i])))
            y[i] += SPREAD_M * math.cos(angle) / _METRES_PER_DEGREE
    return x, y


def _frame(rows: list[dict[str, Any]], lon: list[float], lat: list[float], columns: list[str]) -> gpd.GeoDataFrame:
    x, y = _spread(lon, lat)
    data = pd.DataFrame(rows, columns=columns, dtype=object)  # object: counts stay integers, gaps None
    return gpd.GeoDataFrame(data, geometry=gpd.points_from_xy(x, y), crs=WGS84)


def _centre(coverage: Any, community: str | None) -> tuple[float, float] | None:
    return community_centre(coverage, community) if community else None


# needs ------------------------------------------------------------------------------------------------

NEED_COLUMNS: Final = ["id", "title", "category", "households", "status", "status_label", "community_code",
                       "community_name", "grid_code", "place"]


def needs_frame(store: Store, coverage: Any, actor: Actor, *, community: str | None = None,
                statuses: tuple[str, ...] | None = None) -> gpd.GeoDataFrame:
    """The needs the actor may read (of one community when asked), at their point or their community's."""
    query = EntityQuery(kind=kinds.NEED, communities=(community,) if community else None, statuses=statuses)
    rows, lon, lat = [], [], []
    for need in _readable(store, coverage, actor, query):
        if need.get("lon") is not None and need.get("lat") is not None:
            where, place = (float(need["lon"]), float(need["lat"])), AT_POINT
        else:
            where, place = _centre(coverage, need.get("community_code")), NEAR_CENTRE
        if where is None:
            continue
        rows.append({**{c: need.get(c) for c in NEED_COLUMNS}, "place": place,
                     "status_label": need.get("status_label") or NEED_LABELS.get(need.get("status"), "")})
        lon.append(where[0])
        lat.append(where[1])
    return _frame(rows, lon, lat, NEED_COLUMNS)


# resources --------------------------------------------------------------------------------------------

RESOURCE_COLUMNS: Final = ["id", "provider_kind", "provider", "category", "description", "quantity", "communities",
                           "available_until", "community_code", "place"]


def _provider_place(store: Store, coverage: Any, resource: dict[str, Any]) -> tuple[tuple[float, float] | None, str]:
    """Where the provider is: a unit's site; a team's station, else its community; a member's community
    (a person is never placed closer than that); failing all, the resource's own community."""
    kind, code = resource.get("provider_kind"), resource.get("provider_code")
    try:
        if kind == "unit":
            unit = unit_row(coverage, code)
            return (unit["lon"], unit["lat"]), "单位所在地"
        if kind == "team":
            team = store.find_entity(kinds.TEAM, code)
            if team is not None and team.get("station_code"):
                station = station_row(coverage, team["station_code"])
                return (station["lon"], station["lat"]), f"党群服务站（{station['name']}）"
            if team is not None:
                return _centre(coverage, team.get("community_code")), "团队所在社区"
        if kind == "member":
            member = store.find_entity(kinds.MEMBER, code)
            if member is not None:
                return _centre(coverage, member.get("community_code")), "党员报到社区"
    except (InvalidInput, NotFound):  # a unit or station a newer package dropped
        pass
    return _centre(coverage, resource.get("community_code")), "资源所属社区"


def _number(value: Any) -> Any:
    """20.0 reads 20 in a popup."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _provider_name(resource: dict[str, Any]) -> str:
    provider = resource.get("provider") or {}
    if resource.get("provider_kind") == "member":  # named by code only, as the JSON API names them
        return f"在职党员 {resource.get('provider_code')}"
    return str(provider.get("name") or resource.get("provider_code") or "")


def resources_frame(store: Store, coverage: Any, actor: Actor, *, day: date | None = None) -> gpd.GeoDataFrame:
    """The offers that still hold (active, not used up, not past their end) that the actor may read."""
    day = day or today()
    rows, lon, lat = [], [], []
    for resource in _readable(store, coverage, actor, EntityQuery(kind=kinds.RESOURCE, statuses=("active",))):
        until = resource.get("available_until")
        if resource.get("quantity") == 0 or (until and until < day.isoformat()):
            continue
        where, place = _provider_place(store, coverage, resource)
        if where is None:
            continue
        rows.append({"id": resource["id"], "provider_kind": PROVIDER_KINDS.get(resource.get("provider_kind"), ""),
                     "provider": _provider_name(resource), "category": resource.get("category"),
                     "description": redact_text(resource.get("description")) or "",
                     "quantity": _number(resource.get("quantity")),
                     "communities": "、".join(resource.get("community_names") or resource.get("communities") or []),
                     "available_until": until, "community_code": resource.get("community_code"), "place": place})
        lon.append(where[0])
        lat.append(where[1])
    return _frame(rows, lon, lat, RESOURCE_COLUMNS)


# projects ---------------------------------------------------------------------------------------------

PROJECT_COLUMNS: Final = ["id", "title", "status", "status_label", "lead_unit_name", "households",
                          "households_benefited", "planned_start", "planned_end", "rating", "needs_count",
                          "community_code", "community_name", "place"]


def _unit_name(coverage: Any, project: dict[str, Any]) -> str:
    try:
        return unit_row(coverage, project.get("lead_unit_code") or "")["name"]
    except InvalidInput:
        return str(project.get("lead_unit_code") or "")


def projects_frame(store: Store, coverage: Any, actor: Actor) -> gpd.GeoDataFrame:
    """The projects the actor may read, but cancelled ones, at the mean of their needs' points (the needs
    with one), else at their community's centre."""
    shown = tuple(s for s in kinds.PROJECT_STATUSES if s != kinds.PROJECT_CANCELLED)
    rows, lon, lat = [], [], []
    for project in _readable(store, coverage, actor, EntityQuery(kind=kinds.PROJECT, statuses=shown)):
        points = []
        for n in project.get("needs") or []:
            need = store.get_entity(kinds.NEED, int(n))
            if need is not None and need.get("lon") is not None and need.get("lat") is not None:
                points.append((float(need["lon"]), float(need["lat"])))
        if points:
            where, place = (float(np.mean([p[0] for p in points])), float(np.mean([p[1] for p in points]))), AT_POINT
        else:
            where, place = _centre(coverage, project.get("community_code")), NEAR_CENTRE
        if where is None:
            continue
        rows.append({**{c: project.get(c) for c in PROJECT_COLUMNS}, "needs_count": len(project.get("needs") or []),
                     "place": place, "lead_unit_name": project.get("lead_unit_name") or _unit_name(coverage, project),
                     "status_label": project.get("status_label") or PROJECT_LABELS.get(project.get("status"), "")})
        lon.append(where[0])
        lat.append(where[1])
    return _frame(rows, lon, lat, PROJECT_COLUMNS)


# patrol coverage --------------------------------------------------------------------------------------

COVERAGE_COLUMNS: Final = ["code", "name", "households", "grid_name", "workers", "state", "state_label",
                           "last_visited", "days_since"]
STATE_LABELS: Final = {"visited": f"近 {NOT_VISITED_DAYS} 天内走访过", "stale": f"超过 {NOT_VISITED_DAYS} 天未走访",
                       "never": "从未走访"}


def patrol_workers(store: Store, coverage: Any, actor: Actor, worker_code: str | None = None) -> dict[str, list[str]]:
    """Worker code → their buildings (assigned, else their grid's) for the coverage the actor may see: a
    worker their own; others every worker's, or ``worker_code``'s (whose community the actor may read)."""
    record_communities(actor, coverage)  # the public: 401
    if actor.role == "worker":
        worker_code = actor.worker_code
    if worker_code is None:
        return assignments(store, coverage)
    workers = coverage.workers[coverage.workers["code"] == worker_code]
    if not len(workers):
        raise NotFound(f"网格员 {worker_code} 不存在")
    worker = workers.iloc[0].to_dict()
    check_record_read(actor, coverage, worker.get("community_code"))
    return {worker_code: assigned_buildings(store, coverage, worker)[0]}


def patrol_coverage_frame(store: Store, coverage: Any, actor: Actor, *, worker_code: str | None = None,
                          day: date | None = None) -> gpd.GeoDataFrame:
    """The buildings of the workers in view with the last day one of their responsible workers visited
    them: ``visited`` within the last ``NOT_VISITED_DAYS`` days (today included), ``stale`` before, ``never``.

    For one worker this is what ``GET /v1/workers/{code}/patrols?until=<tomorrow>`` lists as
    ``not_visited`` (those not ``visited``), day by day."""
    day = day or today()
    responsible = patrol_workers(store, coverage, actor, worker_code)
    until = (day + timedelta(days=1)).isoformat()
    window_start = (day + timedelta(days=1) - timedelta(days=NOT_VISITED_DAYS)).isoformat()
    codes = set(responsible)
    query = EntityQuery(kind=PATROL, fields=(("worker_code", next(iter(codes))),)) if len(codes) == 1 \
        else EntityQuery(kind=PATROL)
    rows, _ = store.query_entities(query)
    last: dict[tuple[str, str], str] = {}
    for patrol in rows:
        who, when = patrol.get("worker_code"), patrol.get("date") or ""
        if who not in codes or when >= until:
            continue
        for visit in patrol.get("visits", []):
            key = (who, visit["building_code"])
            if when > last.get(key, ""):
                last[key] = when
    names = dict(zip(coverage.workers["code"], coverage.workers["name"]))
    by_building: dict[str, list[str]] = defaultdict(list)
    for who, buildings in responsible.items():
        for building in buildings:
            by_building[building].append(who)
    grid_names = dict(zip(coverage.grids["code"], coverage.grids["name"]))
    out, geoms = [], []
    for building in sorted(by_building):
        position = coverage.building_position.get(building)
        if position is None:  # a building a newer package dropped
            continue
        who = sorted(by_building[building])
        seen = max((last.get((w, building), "") for w in who), default="")
        state = "visited" if seen and seen >= window_start else ("stale" if seen else "never")
        row = coverage.buildings.iloc[position]
        out.append({"code": building, "name": row["name"], "households": int(row["households"]),
                    "grid_name": grid_names.get(coverage.building_grid[position], ""),
                    "workers": "、".join(str(names.get(w, w)) for w in who), "state": state,
                    "state_label": STATE_LABELS[state], "last_visited": seen or None,
                    "days_since": (day - date.fromisoformat(seen)).days if seen else None})
        geoms.append(coverage.buildings.geometry.iat[position])
    data = pd.DataFrame(out, columns=COVERAGE_COLUMNS, dtype=object)
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)


def layer_frame(layer: str, store: Store, coverage: Any, actor: Actor, *, day: date | None = None
                ) -> gpd.GeoDataFrame:
    """One co-governance layer for the actor (what its tiles hold)."""
    if layer == "needs":
        return needs_frame(store, coverage, actor)
    if layer == "resources":
        return resources_frame(store, coverage, actor, day=day)
    if layer == "projects":
        return projects_frame(store, coverage, actor)
    if layer == "patrol_coverage":
        return patrol_coverage_frame(store, coverage, actor, day=day)
    raise NotFound(f"未知图层 {layer!r}")
