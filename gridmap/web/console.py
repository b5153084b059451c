"""What the console pages show (issue #15 §1–2): the dispatch console of dispatchers and admins, and the grid
worker's phone page, both made from the services every other client uses.

- The queue is ``GET /v1/incidents``'s listing (``service.build_query`` and ``service.list_incidents``) under
  the same filters; each queue is a set of the workflow's statuses (``QUEUES``), so its count is the listing's
  total for those statuses, and the map beside it asks the incident tiles for the same filters
  (``tile_query``).
- An incident is ``service.get`` (cut for the actor by ``gridmap.access.shape_incident``) with its history
  (``service.history``) and photos (``gridmap.incidents.photos.list_photos``); its buttons are the workflow table's actions for its status and the actor's role
  (``workflow.allowed_actions``), labelled with the table's own labels.
- A worker's tasks are the listing of the open incidents in their scope (``access.scope_of``), theirs first.
- An action taken on a page is ``service.transition``; 开始处置 and 处置完成 carry the 处置前/后 photos of the
  form (``act``), checked before the transition is written and attached through ``photos.attach_photos``.

Nothing here decides who may see what (``gridmap.access``) or knows about HTTP
(``gridmap/api/routers/console.py`` serves these).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import quote, urlencode

import numpy as np

from gridmap import access
from gridmap.auth import Actor
from gridmap.coverage.service import Coverage
from gridmap.errors import Forbidden, GridmapError, InvalidInput, NotFound
from gridmap.geo import wgs84_to_gcj02
from gridmap.incidents import photos as photo_service
from gridmap.incidents import service
from gridmap.incidents.categories import CATEGORIES
from gridmap.incidents.models import TransitionRequest
from gridmap.incidents.workflow import DONE, STATUS_LABELS, TRANSITIONS, Transition, allowed_actions
from gridmap.store.base import Store


@dataclass(frozen=True)
class Queue:
    key: str
    label: str
    statuses: tuple[str, ...] = ()
    supervised: bool = False
    """The 超期/督办 queue: open incidents past due or under supervision (``supervised=true`` of the listing)."""
    hint: str = ""


QUEUES: Final = (
    Queue("intake", "待受理", ("reported",), hint="新上报，等待受理"),
    Queue("dispatch", "待派遣", ("accepted", "returned"), hint="已受理或被退回，等待派遣"),
    Queue("handling", "处置中", ("dispatched", "in_progress"), hint="已派遣、处置中"),
    Queue("verify", "待核查", ("resolved", "verified"), hint="已处置待核查，已核查待结案"),
    Queue("overdue", "超期/督办", supervised=True, hint="未办结且超期，或已督办"),
    Queue("all", "全部", hint="所有状态"),
)
"""The console's queues, as sets of the workflow's statuses (``gridmap.incidents.workflow.STATUS_LABELS``)."""
QUEUE_KEYS: Final = tuple(q.key for q in QUEUES)
PERIODS: Final = {"": ("全部时间", None), "1": ("近 24 小时", 1), "7": ("近 7 天", 7), "30": ("近 30 天", 30),
                  "90": ("近 90 天", 90)}
ORDER_LABELS: Final = {"newest": "最新上报在前", "urgent": "最紧急在前"}
PAGE_SIZE: Final = 20
OPEN_STATUSES: Final = tuple(s for s in STATUS_LABELS if s not in DONE)
MAX_TASKS: Final = 200
"""A worker's open incidents shown at once (a grid has a handful; a community-level worker a few dozen)."""
ACTION_LABELS: Final = {"report": "上报", "feedback": "居民评价", **{a: t.label for a, t in TRANSITIONS.items()}}
CONFLICT: Final = "已被他人处理，请刷新"
ACTION_PHOTO_STAGES: Final = {"start": "before", "resolve": "after"}
"""Actions whose form takes photos, and their stage: 处置前 with 开始处置, 处置后 with 处置完成."""


@dataclass(frozen=True)
class Filters:
    """The dispatch console's filters: the listing's parameters in the page's terms."""

    queue: str = "intake"
    category: str | None = None
    community: str | None = None
    grid: str | None = None
    period: str = ""
    overdue: bool = False
    order: str = "newest"
    offset: int = 0

    def since(self, now: datetime) -> str | None:
        days = PERIODS.get(self.period, ("", None))[1]
        return service.iso(now - timedelta(days=days)) if days else None

    def queue_of(self) -> Queue:
        return next((q for q in QUEUES if q.key == self.queue), QUEUES[0])

    def common(self, now: datetime) -> dict[str, Any]:
        """The filters every queue shares, as ``service.build_query`` takes them."""
        return {"category": [self.category] if self.category else None, "community": self.community,
                "grid": self.grid, "overdue": self.overdue, "since": self.since(now)}

    def listing(self, now: datetime) -> dict[str, Any]:
        """The same filters as ``GET /v1/incidents`` query parameters (for links and the tests)."""
        q = self.queue_of()
        params: dict[str, Any] = {"status": list(q.statuses)} if q.statuses else {}
        if q.supervised:
            params["supervised"] = "true"
        common = self.common(now)
        params.update({k: v for k, v in common.items() if k != "category" and v not in (None, False)})
        if self.overdue:
            params["overdue"] = "true"
        if self.category:
            params["category"] = self.category
        params["order"] = self.order
        return params

    def query_string(self, **changes: Any) -> str:
        """The console URL's query for these filters (with ``changes``), leaving out defaults."""
        values = asdict(replace(self, **changes))
        defaults = asdict(Filters())
        kept = {k: ("1" if v is True else v) for k, v in values.items() if v != defaults[k] and v not in (None, "")}
        return urlencode(kept)


def time_left(due_at: str | None, status: str, now: datetime) -> dict[str, Any]:
    """``{"text", "overdue", "minutes"}``: how long until the incident's time limit, or how long past it."""
    if status in DONE or not due_at:
        return {"text": "已办结" if status in DONE else "", "overdue": False, "minutes": None}
    due = datetime.fromisoformat(due_at.replace("Z", "+00:00"))
    minutes = math.floor((due - now).total_seconds() / 60)
    span = _span(abs(minutes))
    return {"text": f"剩余 {span}" if minutes >= 0 else f"已超期 {span}", "overdue": minutes < 0, "minutes": minutes}


def _span(minutes: int) -> str:
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} 天 {hours} 小时"
    if hours:
        return f"{hours} 小时 {mins} 分"
    return f"{mins} 分钟"


def _bounds(geoms: Any) -> list[list[float]] | None:
    if not len(geoms):
        return None
    minx, miny, maxx, maxy = geoms.total_bounds
    return [[float(miny), float(minx)], [float(maxy), float(maxx)]]


def categories() -> list[dict[str, Any]]:
    """Groups and their leaves, in the category table's order: for the filter and the report form."""
    groups: dict[str, dict[str, Any]] = {}
    for c in CATEGORIES.values():
        groups.setdefault(c.group, {"code": c.group, "name": c.group_name, "children": []})["children"].append(
            {"code": c.code, "name": c.name})
    return list(groups.values())


def communities(coverage: Coverage) -> list[dict[str, str]]:
    regions = coverage.regions[coverage.regions["level"] == "community"].sort_values("code")
    return [{"code": c, "name": n} for c, n in zip(regions["code"], regions["name"])]


def _item(view: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**view, "left": time_left(view.get("due_at"), view["status"], now)}


# the dispatch console -------------------------------------------------------------------------------

def queue(*, store: Store, coverage: Coverage, actor: Actor, filters: Filters, now: datetime | None = None
          ) -> dict[str, Any]:
    """The queues with their counts under the filters, the chosen queue's page, and what the map asks for."""
    now = now or service.utcnow()
    common = filters.common(now)
    counts = {}
    for q in QUEUES:
        query = service.build_query(coverage=coverage, actor=actor, status=list(q.statuses) or None,
                                    supervised=q.supervised, now=now, **common)
        counts[q.key] = service.list_incidents(store=store, coverage=coverage, actor=actor, query=query,
                                               limit=0)["total"]
    chosen = filters.queue_of()
    query = service.build_query(coverage=coverage, actor=actor, status=list(chosen.statuses) or None,
                                supervised=chosen.supervised, order=filters.order, now=now, **common)
    page = service.list_incidents(store=store, coverage=coverage, actor=actor, query=query, limit=PAGE_SIZE,
                                  offset=filters.offset)
    grids = coverage.grids
    shown_grids = grids if not filters.community else grids[grids["community_code"] == filters.community]
    focus = grids[grids["code"] == filters.grid] if filters.grid else shown_grids if filters.community else grids[:0]
    return {
        "filters": filters,
        "queues": [{"key": q.key, "label": q.label, "hint": q.hint, "count": counts[q.key]} for q in QUEUES],
        "queue": chosen,
        "items": [_item(v, now) for v in page["items"]],
        "total": page["total"],
        "offset": filters.offset,
        "page_size": PAGE_SIZE,
        "previous": filters.query_string(offset=max(0, filters.offset - PAGE_SIZE)) if filters.offset else None,
        "next": filters.query_string(offset=filters.offset + PAGE_SIZE)
        if filters.offset + PAGE_SIZE < page["total"] else None,
        "query": filters.query_string(),
        "listing": filters.listing(now),
        "tiles": tile_query(filters, now),
        "focus": _bounds(focus.geometry) if len(focus) else None,
        "categories": categories(),
        "communities": communities(coverage),
        "grids": [{"code": c, "name": n} for c, n in zip(shown_grids["code"], shown_grids["name"])],
        "periods": PERIODS,
        "orders": ORDER_LABELS,
    }


def tile_query(filters: Filters, now: datetime) -> dict[str, Any]:
    """The incident tiles' parameters for the same incidents the queue lists (``/tiles/incidents``)."""
    chosen = filters.queue_of()
    common = filters.common(now)
    out: dict[str, Any] = {"status": list(chosen.statuses)}
    if chosen.supervised:
        out["supervised"] = "true"
    if filters.overdue:
        out["overdue"] = "true"
    for key in ("community", "grid", "since"):
        if common[key]:
            out[key] = common[key]
    if filters.category:
        out["category"] = filters.category
    return out


def assignee_choices(coverage: Coverage, grid_code: str | None, community_code: str | None
                     ) -> list[dict[str, Any]]:
    """Who a dispatch may go to, the covering grid's workers first (grid staff, then the community's 网格长
    and 社区民警, as lookups list them), then the community's other workers, then everyone else by community."""
    seen: set[str] = set()
    groups: list[dict[str, Any]] = []

    def add(label: str, workers: list[dict[str, Any]]) -> None:
        fresh = [w for w in workers if w["code"] not in seen]
        seen.update(w["code"] for w in fresh)
        if fresh:
            groups.append({"label": label, "workers": fresh})

    if grid_code:
        with contextlib.suppress(NotFound):  # a grid no longer in the package: no covering workers
            add("本网格", [dict(w) for w in coverage.grid_workers(grid_code)])
    workers = coverage.workers.sort_values(["community_code", "grid_code", "code"])
    rows = [{"code": c, "name": n, "role": r, "phone": p, "community_code": k}
            for c, n, r, p, k in zip(workers["code"], workers["name"], workers["role"], workers["phone"],
                                     workers["community_code"])]
    if community_code:
        add("本社区", [w for w in rows if w["community_code"] == community_code])
    for code in dict.fromkeys(w["community_code"] for w in rows):
        add(coverage.region_name(code) or code or "其他", [w for w in rows if w["community_code"] == code])
    return groups


def incident(*, store: Store, coverage: Coverage, actor: Actor, incident_id: int, now: datetime | None = None
             ) -> dict[str, Any]:
    """An incident as the actor may read it, its history, covering workers and the actions the table allows."""
    now = now or service.utcnow()
    view = service.get(store=store, coverage=coverage, incident_id=incident_id, actor=actor)
    events = service.history(store=store, coverage=coverage, incident_id=incident_id, actor=actor)
    grid_code = view["grid"]["code"] if view.get("grid") else None
    community_code = view["community"]["code"] if view.get("community") else None
    try:
        covering = coverage.grid_workers(grid_code) if grid_code else []
    except NotFound:  # a grid no longer in the package
        covering = []
    actions = allowed_actions(view["status"], actor.role)
    try:  # the incident's photos as this reader may see them (gridmap.incidents.photos, gridmap.access)
        shown = photo_service.list_photos(store=store, coverage=coverage, incident_id=incident_id, actor=actor)
    except Forbidden:
        shown = []
    return {
        "photos": [{"stage": key, "label": label, "photos": [p for p in shown if p["stage"] == key]}
                   for key, label in photo_service.STAGES.items() if any(p["stage"] == key for p in shown)],
        "incident": _item(view, now),
        "history": [{**e, "label": ACTION_LABELS.get(e["action"], e["action"]),
                     "from_label": STATUS_LABELS.get(e["from_status"] or "", ""),
                     "to_label": STATUS_LABELS.get(e["to_status"] or "", "")} for e in events],
        "covering": covering,
        "actions": [action_view(t) for t in actions],
        "assignees": assignee_choices(coverage, grid_code, community_code)
        if any(t.action == "dispatch" for t in actions) else [],
        "navigation": navigation(view["location"]["lon"], view["location"]["lat"], view["category"]["name"] or ""),
    }


def action_view(t: Transition) -> dict[str, Any]:
    stage = ACTION_PHOTO_STAGES.get(t.action)
    return {"action": t.action, "label": t.label, "needs_note": t.needs_note, "target": t.target,
            "danger": t.action in ("return", "cancel", "reopen"), "photo_stage": stage,
            "photo_label": photo_service.STAGES[stage] if stage else None,
            "max_photos": photo_service.MAX_PHOTOS_PER_STAGE}


def added_text(action: str | None, count: str | None) -> str | None:
    """What the page says of the photos an action just stored (``photos=N`` of the redirect), or None."""
    stage = ACTION_PHOTO_STAGES.get(action or "")
    if stage is None or not count or not count.isdigit() or not 0 < int(count) <= photo_service.MAX_PHOTOS_PER_STAGE:
        return None
    return f"{photo_service.STAGES[stage]}照片 {int(count)} 张已保存"


@dataclass(frozen=True)
class Acted:
    """What ``act`` did: the incident as the actor now reads it, the photos added, and why photos that came
    with the form were not kept after all (only when another upload filled the stage in between)."""

    incident: dict[str, Any]
    photos: list[dict[str, Any]]
    photo_error: str | None = None


def act(*, store: Store, coverage: Coverage, incident_id: int, actor: Actor, request: TransitionRequest,
        if_match: int, files: Sequence[photo_service.Upload] = (), now: datetime | None = None) -> Acted:
    """An action from a console form, with the photos of its stage (``ACTION_PHOTO_STAGES``).

    Photos are checked before the transition is written, so a refused photo leaves the incident as it was:
    who may add them (``access.check_photo_add``), every file (``photos.prepare_photos``: JPEG, PNG or HEIC,
    size, pixels, at most 4) and the room left at the stage. Then ``service.transition`` (role, scope, the
    page's version, status), then ``photos.attach_photos``: the API's own checks and cleaning, in the new
    status (which takes these stages: ``photos.STAGE_STATUSES``). Errors are ``gridmap.errors`` (Chinese);
    once the transition is written, a refusal of the photos (another upload filled the stage meanwhile)
    is returned in ``photo_error``, not raised, since the action itself was done."""
    stage = ACTION_PHOTO_STAGES.get(request.action)
    if files:
        if stage is None:
            label = TRANSITIONS[request.action].label if request.action in TRANSITIONS else request.action
            raise InvalidInput(f"“{label}”不能附带照片（照片随开始处置、处置完成上传）")
        record = store.get_incident(incident_id)
        if record is None:
            raise NotFound(f"事件 {incident_id} 不存在")
        access.check_photo_add(actor, coverage, record, stage, as_reporter=False, reported_by_actor=False,
                               within_window=False)
        prepared = photo_service.prepare_photos(files, stage)
        kept = sum(1 for p in store.incident_photos([incident_id]) if p["stage"] == stage)
        room = photo_service.MAX_PHOTOS_PER_STAGE - kept
        if len(prepared.photos) > room:
            raise InvalidInput(f"{photo_service.STAGES[stage]}照片最多 {photo_service.MAX_PHOTOS_PER_STAGE} 张："
                               f"已有 {kept} 张，还可上传 {max(0, room)} 张")
    view = service.transition(store=store, coverage=coverage, incident_id=incident_id, actor=actor,
                              request=request, if_match=if_match, now=now)
    if not files or stage is None:
        return Acted(view, [])
    try:
        added = photo_service.attach_photos(store=store, coverage=coverage, incident_id=incident_id, files=files,
                                            stage=stage, actor=actor, now=now)
    except GridmapError as exc:
        return Acted(view, [], exc.message)
    return Acted(view, added)


def navigation(lon: float, lat: float, label: str) -> dict[str, str]:
    """Links that open the phone's map app at the place: ``geo:`` (RFC 5870, WGS84, Android's map apps) and
    高德's URI API with the position shifted to GCJ-02, the datum 高德 expects."""
    glon, glat = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    name = quote(label or "事件位置")
    return {
        "geo": f"geo:{lat:.6f},{lon:.6f}?q={lat:.6f},{lon:.6f}({name})",
        "amap": f"https://uri.amap.com/marker?position={float(glon[0]):.6f},{float(glat[0]):.6f}"
                f"&name={name}&coordinate=gaode&callnative=1",
    }


# the grid worker's page ------------------------------------------------------------------------------

def worker_page(*, store: Store, coverage: Coverage, actor: Actor, now: datetime | None = None) -> dict[str, Any]:
    """我的任务: the open incidents of the worker's grid (a community-level worker's: their community's), those
    assigned to them first, then by time limit; their coverage and whom to call."""
    now = now or service.utcnow()
    workers = coverage.workers
    row = workers[workers["code"] == actor.worker_code].iloc[0]
    query = service.build_query(coverage=coverage, actor=actor, status=list(OPEN_STATUSES), order="urgent", now=now)
    listing = service.list_incidents(store=store, coverage=coverage, actor=actor, query=query, limit=MAX_TASKS)
    mine = actor.worker_code
    tasks = sorted(listing["items"], key=lambda v: (not (v.get("assignee") and v["assignee"]["code"] == mine),))
    grid_codes = sorted(access.worker_grids(actor, coverage))
    inside = np.isin(coverage.building_grid, grid_codes)
    buildings = coverage.buildings[inside]
    grids = coverage.grids[coverage.grids["code"].isin(grid_codes)]
    if row["grid_code"]:
        contacts = [dict(w) for w in coverage.grid_workers(row["grid_code"]) if w["code"] != mine]
    else:
        contacts = [{"code": c, "name": n, "role": r, "phone": p} for c, n, r, p, k, g in
                    zip(workers["code"], workers["name"], workers["role"], workers["phone"], workers["community_code"],
                        workers["grid_code"]) if k == row["community_code"] and not g and c != mine]
    return {
        "worker": {"code": row["code"], "name": row["name"], "role": row["role"], "phone": row["phone"],
                   "community": coverage.region_name(row["community_code"]), "community_code": row["community_code"]},
        "tasks": [{**_item(v, now), "mine": bool(v.get("assignee") and v["assignee"]["code"] == mine),
                   "actions": [action_view(t) for t in allowed_actions(v["status"], actor.role)],
                   "navigation": navigation(v["location"]["lon"], v["location"]["lat"], v["category"]["name"] or "")}
                  for v in tasks],
        "total": listing["total"],
        "grids": [{"code": c, "name": n} for c, n in zip(grids["code"], grids["name"])],
        "focus": _bounds(grids.geometry),
        "totals": {"buildings": len(buildings), "households": int(buildings["households"].sum()),
                   "population": int(buildings["population"].sum())},
        "contacts": contacts,
        "categories": categories(),
        "finding_photos": {"photo_label": "现场", "max_photos": photo_service.MAX_PHOTOS_PER_STAGE},
    }
