"""议事协商 and mediation: residents' councils (居民议事会), quarterly joint meetings (季度共商会) and
mediation sittings (调解), each with the items it took up and what it decided (issue #13 §3).

An item may name the need or the incident it is about, so a decision can be followed back to what
residents asked for; a mediation item's outcome is ``resolved`` or ``unresolved``, which is what the
report's mediation rate counts (丰林小区: 12 disputes, all mediated).
"""

from __future__ import annotations

from typing import Any

from gridmap import records
from gridmap.access import check_record_write, shape_meeting
from gridmap.auth import Actor
from gridmap.cogov import projects
from gridmap.cogov.models import ProjectCreate, ProjectTransition
from gridmap.cogov.places import unit_row
from gridmap.cogov.service_models import (
    MEDIATION,
    MEDIATION_OUTCOMES,
    MEETING,
    MEETING_KINDS,
    MeetingChange,
    MeetingCreate,
    MeetingItem,
    check_community,
    check_need,
    in_period,
    page,
    parse_day,
    scoped_records,
)
from gridmap.errors import GridmapError, InvalidInput
from gridmap.store.base import EntityQuery, Store

LABEL = "会议"


def _check_items(store: Store, items: list[MeetingItem], community_code: str, kind: str) -> None:
    for i, item in enumerate(items, start=1):
        check_need(store, item.need_id, community_code, f"第 {i} 项")
        if item.incident_id is not None and store.get_incident(item.incident_id) is None:
            raise InvalidInput(f"第 {i} 项关联的事件 {item.incident_id} 不存在")
        if kind == MEDIATION and item.outcome not in MEDIATION_OUTCOMES:
            raise InvalidInput(f"调解第 {i} 项的结果 (outcome) 应为 resolved 或 unresolved")


KIND_FIELD = "meeting_kind"
"""Where a meeting's ``kind`` is stored: ``kind`` is the store's own column (the record's kind, "meeting")."""


def _shaped(view: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """The API's view: ``kind`` as the request said it (stored as ``meeting_kind``), then shaped."""
    view = {**view, "kind": view.get(KIND_FIELD)}
    view.pop(KIND_FIELD, None)
    return shape_meeting(view, actor=actor)


def _project_body(item: MeetingItem, community_code: str) -> ProjectCreate:
    assert item.project is not None and item.need_id is not None
    decided = item.project
    return ProjectCreate(title=decided.title, community_code=community_code, needs=[item.need_id],
                         resources=decided.resources, lead_unit_code=decided.lead_unit_code,
                         planned_start=decided.planned_start, planned_end=decided.planned_end)


def _check_projects(store: Store, coverage: Any, items: list[MeetingItem], community_code: str) -> None:
    """Everything a decided project needs, checked before anything is written: an accepted need of the
    community, a known lead unit, resources serving the community. The projects service's own checks are
    called, so that a project decided in a meeting obeys exactly the rules of one created directly."""
    for i, item in enumerate(items, start=1):
        if item.project is None:
            continue
        body = _project_body(item, community_code)
        try:
            unit_row(coverage, body.lead_unit_code)
            projects._needs_of(store, body)
            projects._resources_of(store, body)
        except InvalidInput as e:
            raise InvalidInput(f"第 {i} 项决定立项：{e.message}") from None


def _start_projects(store: Store, coverage: Any, actor: Actor, items: list[dict[str, Any]],
                    bodies: list[MeetingItem], community_code: str) -> None:
    """Create the decided projects (each puts its need ``in_project``) and note their ids in the items.
    A failure part way (a need changed meanwhile) cancels those already created and refuses the meeting."""
    made: list[dict[str, Any]] = []
    try:
        for item, body in zip(items, bodies):
            if body.project is not None:
                project = projects.create(store, coverage, actor, _project_body(body, community_code))
                item["project_id"] = project["id"]
                made.append(project)
    except GridmapError:
        for project in made:
            projects.transition(store, coverage, actor, project["id"],
                                ProjectTransition(action="cancel", note="会议记录未保存，撤销由会议决定的立项"),
                                if_match=project["version"])
        raise


def create(*, store: Store, coverage: Any, actor: Actor, body: MeetingCreate) -> dict[str, Any]:
    check_record_write(actor, coverage, body.community_code)
    check_community(coverage, body.community_code)
    _check_items(store, body.items, body.community_code, body.kind)
    _check_projects(store, coverage, body.items, body.community_code)
    record = body.model_dump(mode="json")
    record[KIND_FIELD] = record.pop("kind")
    _start_projects(store, coverage, actor, record["items"], body.items, body.community_code)
    return _shaped(records.create(store, coverage, actor, MEETING, [record])[0], actor)


def get(*, store: Store, coverage: Any, actor: Actor, meeting_id: int) -> dict[str, Any]:
    return _shaped(records.get(store, coverage, actor, MEETING, meeting_id, label=LABEL), actor)


def change(*, store: Store, coverage: Any, actor: Actor, meeting_id: int, body: MeetingChange,
           if_match: int | None) -> dict[str, Any]:
    """Correct a meeting's record (a mediation's later outcome, the attendees). Projects are decided when
    the meeting is recorded, not afterwards; an item about a need that got a project keeps its link."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    if not changes:
        raise InvalidInput("没有要修改的字段")
    current = records.fetch(store, MEETING, meeting_id, label=LABEL)
    check_record_write(actor, coverage, current.get("community_code"))
    if body.items is not None:
        _check_items(store, body.items, current["community_code"], current[KIND_FIELD])
        if any(item.project is not None for item in body.items):
            raise InvalidInput("立项只能在登记会议时决定；会议记录的修改不能再建立项目（请用 POST /v1/projects）")
        decided = {i.get("need_id"): i["project_id"] for i in current.get("items", []) if i.get("project_id")}
        for item in changes["items"]:
            item.pop("project", None)
            if item.get("need_id") in decided:
                item["project_id"] = decided[item["need_id"]]
    return _shaped(records.update(store, coverage, actor, MEETING, meeting_id, changes, if_match=if_match,
                                  label=LABEL), actor)


def history(*, store: Store, coverage: Any, actor: Actor, meeting_id: int) -> list[dict[str, Any]]:
    out = records.history(store, coverage, actor, MEETING, meeting_id, label=LABEL)
    for entry in out:
        for side in ("before", "after"):
            if entry[side] is not None:
                entry[side] = _shaped(entry[side], actor)
    return out


def period_meetings(store: Store, coverage: Any, actor: Actor | None, *, community: str | None = None,
                    kind: str | None = None, since: str | None = None, until: str | None = None
                    ) -> list[dict[str, Any]]:
    """Meetings held in [since, until) the actor may read (``actor`` None: all, for the report)."""
    if kind is not None and kind not in MEETING_KINDS:
        raise InvalidInput(f"未知的会议类型 {kind!r}（可选：{'、'.join(MEETING_KINDS)}）")
    query = EntityQuery(kind=MEETING, communities=(community,) if community else None,
                        fields=((KIND_FIELD, kind),) if kind else ())
    return [r for r in scoped_records(store, actor, coverage, query) if in_period(r.get("date"), since, until)]


def listing(*, store: Store, coverage: Any, actor: Actor, community: str | None = None, kind: str | None = None,
            since: str | None = None, until: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    rows = period_meetings(store, coverage, actor, community=community, kind=kind,
                           since=parse_day(since, "since"), until=parse_day(until, "until"))
    out = page(rows, actor=actor, coverage=coverage, limit=limit, offset=offset)
    out["items"] = [_shaped(v, actor) for v in out["items"]]
    return out


def mediation_counts(meetings: list[dict[str, Any]]) -> tuple[int, int]:
    """(cases, resolved): every item of a mediation sitting is one dispute."""
    items = [i for m in meetings if m.get(KIND_FIELD) == MEDIATION for i in m.get("items", [])]
    return len(items), sum(1 for i in items if i.get("outcome") == "resolved")
