"""项目清单: practical projects (为民办实事) that meet accepted needs with registered resources, led by a
co-building unit: planned → in_progress → completed → evaluated (residents' rating), or cancelled.

A project and its needs move together: creating it puts its needs ``in_project``, completing it marks
them ``done`` and records the households benefited, cancelling it gives them back (``accepted``). The store
changes one record per transaction, so the project is written first and each need after it with its own
compare-and-set; a need that changed meanwhile undoes what was done (the needs already moved go back and
the project is cancelled, all in the audit log) and the request is refused with 409.
"""

from __future__ import annotations

from typing import Any, Final

from gridmap import records
from gridmap.access import check_record_write
from gridmap.auth import Actor
from gridmap.cogov import kinds
from gridmap.cogov.models import ProjectCreate, ProjectTransition
from gridmap.cogov.needs import STATUS_LABELS as NEED_LABELS
from gridmap.cogov.places import community_name, unit_row
from gridmap.coverage.service import Coverage
from gridmap.errors import Conflict, InvalidInput, PreconditionFailed
from gridmap.records import now_iso
from gridmap.store.base import EntityQuery, Store

LABEL: Final = "项目"
STATUS_LABELS: Final = {kinds.PROJECT_PLANNED: "计划中", kinds.PROJECT_IN_PROGRESS: "实施中",
                        kinds.PROJECT_COMPLETED: "已完成", kinds.PROJECT_EVALUATED: "已评价",
                        kinds.PROJECT_CANCELLED: "已取消"}
TRANSITIONS: Final = {
    "start": ((kinds.PROJECT_PLANNED,), kinds.PROJECT_IN_PROGRESS),
    "complete": ((kinds.PROJECT_IN_PROGRESS,), kinds.PROJECT_COMPLETED),
    "evaluate": ((kinds.PROJECT_COMPLETED,), kinds.PROJECT_EVALUATED),
    "cancel": ((kinds.PROJECT_PLANNED, kinds.PROJECT_IN_PROGRESS), kinds.PROJECT_CANCELLED),
}
ACTION_LABELS: Final = {"start": "开工", "complete": "完工", "evaluate": "评价", "cancel": "取消"}
STAMPS: Final = {"start": "started_at", "complete": "completed_at", "evaluate": "evaluated_at", "cancel": "cancelled_at"}


def _needs_of(store: Store, body: ProjectCreate) -> list[dict[str, Any]]:
    out = []
    for n in dict.fromkeys(body.needs):
        need = store.get_entity(kinds.NEED, n)
        if need is None:
            raise InvalidInput(f"需求 {n} 不存在")
        if need["community_code"] != body.community_code:
            raise InvalidInput(f"需求 {n} 属于社区 {need['community_code']}，不是本项目的社区")
        if need["status"] != kinds.NEED_ACCEPTED:
            raise InvalidInput(f"需求 {n} 当前为“{NEED_LABELS[need['status']]}”：只有已受理的需求可以立项")
        out.append(need)
    return out


def _resources_of(store: Store, body: ProjectCreate) -> list[dict[str, Any]]:
    out = []
    for n in dict.fromkeys(body.resources):
        resource = store.get_entity(kinds.RESOURCE, n)
        if resource is None:
            raise InvalidInput(f"资源 {n} 不存在")
        if body.community_code not in resource["communities"]:
            raise InvalidInput(f"资源 {n} 未登记服务社区 {body.community_code}")
        out.append(resource)
    return out


def create(store: Store, coverage: Coverage, actor: Actor, body: ProjectCreate) -> dict[str, Any]:
    check_record_write(actor, coverage, body.community_code)
    name = community_name(coverage, body.community_code)
    lead = unit_row(coverage, body.lead_unit_code)
    needs = _needs_of(store, body)
    resources = _resources_of(store, body)
    record = {
        "title": body.title.strip(), "community_code": body.community_code, "community_name": name,
        "needs": [need["n"] for need in needs], "resources": [r["n"] for r in resources],
        "lead_unit_code": lead["code"], "lead_unit_name": lead["name"],
        "planned_start": body.planned_start.isoformat() if body.planned_start else None,
        "planned_end": body.planned_end.isoformat() if body.planned_end else None,
        "households": sum(int(need["households"]) for need in needs), "households_benefited": None,
        "status": kinds.PROJECT_PLANNED, "status_label": STATUS_LABELS[kinds.PROJECT_PLANNED],
        "started_at": None, "completed_at": None, "evaluated_at": None, "cancelled_at": None,
        "rating": None, "note": None,
    }
    project = records.create(store, coverage, actor, kinds.PROJECT, [record])[0]
    moved: list[int] = []
    try:
        for need in needs:
            _move_need(store, coverage, actor, need, {"status": kinds.NEED_IN_PROJECT, "project_id": project["id"]},
                       version=need["version"])
            moved.append(need["n"])
    except PreconditionFailed:
        _undo(store, coverage, actor, project, moved)
        raise Conflict("立项期间需求已被他人修改，项目未成立，请刷新后重试") from None
    return project


def _move_need(store: Store, coverage: Coverage, actor: Actor, need: dict[str, Any], changes: dict[str, Any], *,
               version: int, action: str = "project") -> None:
    status = changes["status"]
    changes = {**changes, "status_label": NEED_LABELS[status]}
    if status == kinds.NEED_DONE:
        changes["done_at"] = now_iso()
    records.update(store, coverage, actor, kinds.NEED, need["n"], changes, if_match=version, label="需求",
                   action=action)


def _undo(store: Store, coverage: Coverage, actor: Actor, project: dict[str, Any], moved: list[int]) -> None:
    for n in moved:
        need = records.fetch(store, kinds.NEED, n, label="需求")
        _move_need(store, coverage, actor, need, {"status": kinds.NEED_ACCEPTED, "project_id": None},
                   version=need["version"], action="project_undo")
    records.update(store, coverage, actor, kinds.PROJECT, project["id"],
                   {"status": kinds.PROJECT_CANCELLED, "status_label": STATUS_LABELS[kinds.PROJECT_CANCELLED],
                    "cancelled_at": now_iso(), "note": "立项期间需求已被他人修改，自动取消"},
                   if_match=project["version"], label=LABEL, action="cancel")


def transition(store: Store, coverage: Coverage, actor: Actor, n: int, body: ProjectTransition, *,
               if_match: int | None) -> dict[str, Any]:
    project = records.fetch(store, kinds.PROJECT, n, label=LABEL)
    check_record_write(actor, coverage, project.get("community_code"))
    records.check_version(project, if_match)
    starts, target = TRANSITIONS[body.action]
    if project["status"] not in starts:
        raise Conflict(f"项目当前为“{STATUS_LABELS[project['status']]}”，不能{ACTION_LABELS[body.action]}")
    changes: dict[str, Any] = {"status": target, "status_label": STATUS_LABELS[target], "note": body.note,
                               STAMPS[body.action]: now_iso()}
    needs = [records.fetch(store, kinds.NEED, k, label="需求") for k in project["needs"]]
    ours = [need for need in needs if need.get("project_id") == n]
    if body.action == "evaluate":
        if body.rating is None:
            raise InvalidInput("评价须给出居民评分（rating，1–5）")
        changes["rating"] = body.rating
    elif body.action == "complete":
        benefited = body.households_benefited
        changes["households_benefited"] = benefited if benefited is not None else \
            sum(int(need["households"]) for need in ours)
    updated = records.update(store, coverage, actor, kinds.PROJECT, n, changes, if_match=if_match, label=LABEL,
                             action=body.action)
    if body.action in ("complete", "cancel"):
        for need in ours:
            fresh = records.fetch(store, kinds.NEED, need["n"], label="需求")
            if fresh["status"] != kinds.NEED_IN_PROJECT:
                continue
            done = body.action == "complete"
            _move_need(store, coverage, actor, fresh,
                       {"status": kinds.NEED_DONE if done else kinds.NEED_ACCEPTED,
                        "project_id": n if done else None},
                       version=fresh["version"])
    return updated


def query(*, community: str | None, status: list[str] | None, lead_unit: str | None) -> EntityQuery:
    for s in status or ():
        if s not in kinds.PROJECT_STATUSES:
            raise InvalidInput(f"项目状态“{s}”不存在；可用：{'、'.join(kinds.PROJECT_STATUSES)}")
    return EntityQuery(kind=kinds.PROJECT, communities=(community,) if community else None,
                       statuses=tuple(status) if status else None,
                       fields=(("lead_unit_code", lead_unit),) if lead_unit else ())
