"""包楼院: which buildings each worker looks after (issue #13 §4).

Until someone assigns buildings, a worker is responsible for the buildings of their grid (a
community-level worker, with no grid, for those of every grid of their community), so patrol coverage
means something from the first day; an assignment, once set, replaces that default. One record per
worker (kind ``building_assignment``, keyed by the worker's code), changed with ``If-Match`` like
every staff record; version 0 stands for "never assigned" so that even the first assignment names
the state it replaces and two staff cannot both set it unknowingly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gridmap import records
from gridmap.access import check_record_read, check_record_write
from gridmap.auth import Actor
from gridmap.cogov.service_models import BUILDING_ASSIGNMENT, AssignmentSet
from gridmap.errors import Conflict, InvalidInput, NotFound, PreconditionFailed, PreconditionRequired
from gridmap.store.base import EntityQuery, Store

LABEL = "包楼院分配"


def worker_row(coverage: Any, code: str) -> dict[str, Any]:
    match = coverage.workers[coverage.workers["code"] == code]
    if not len(match):
        raise NotFound(f"网格员 {code} 不存在")
    return match.iloc[0].to_dict()


def worker_grids(coverage: Any, worker: dict[str, Any]) -> list[str]:
    """A grid worker's grid; a community-level worker's community's grids."""
    if worker.get("grid_code"):
        return [worker["grid_code"]]
    grids = coverage.grids
    return sorted(grids.loc[grids["community_code"] == worker.get("community_code"), "code"])


def default_buildings(coverage: Any, worker: dict[str, Any]) -> list[str]:
    inside = np.isin(coverage.building_grid, np.array(worker_grids(coverage, worker), dtype=object))
    return sorted(coverage.buildings["code"].to_numpy()[inside].tolist())


def assigned_buildings(store: Store, coverage: Any, worker: dict[str, Any]) -> tuple[list[str], dict | None]:
    """(building codes, the assignment record or None when the default applies)."""
    record = store.find_entity(BUILDING_ASSIGNMENT, worker["code"])
    if record is None:
        return default_buildings(coverage, worker), None
    return list(record["buildings"]), record


def assignments(store: Store, coverage: Any, community: str | None = None) -> dict[str, list[str]]:
    """Every worker's buildings (of one community, or all), assigned or by default: for the report."""
    rows, _ = store.query_entities(EntityQuery(kind=BUILDING_ASSIGNMENT))
    stored = {r["worker_code"]: list(r["buildings"]) for r in rows}
    workers = coverage.workers
    if community is not None:
        workers = workers[workers["community_code"] == community]
    return {w["code"]: stored[w["code"]] if w["code"] in stored else default_buildings(coverage, w)
            for w in workers.to_dict("records")}


def _building_refs(coverage: Any, codes: list[str]) -> list[dict[str, Any]]:
    out = []
    for code in codes:
        position = coverage.building_position.get(code)
        if position is None:
            out.append({"code": code, "name": None, "households": None, "grid_code": None})
            continue
        row = coverage.buildings.iloc[position]
        out.append({"code": code, "name": row["name"], "households": int(row["households"]),
                    "grid_code": coverage.building_grid[position]})
    return out


def view(*, store: Store, coverage: Any, actor: Actor, code: str) -> dict[str, Any]:
    worker = worker_row(coverage, code)
    check_record_read(actor, coverage, worker.get("community_code"))
    codes, record = assigned_buildings(store, coverage, worker)
    buildings = _building_refs(coverage, codes)
    return {
        "worker": {k: worker[k] for k in ("code", "name", "role")},
        "community_code": worker.get("community_code"),
        "grid_code": worker.get("grid_code") or None,
        "source": "assigned" if record is not None else "default",
        "buildings": buildings,
        "total": len(buildings),
        "households": sum(b["households"] or 0 for b in buildings),
        "version": record["version"] if record is not None else 0,
    }


def assign(*, store: Store, coverage: Any, actor: Actor, code: str, body: AssignmentSet, if_match: int | None
           ) -> dict[str, Any]:
    """Set a worker's buildings (buildings of the worker's own community only: a worker does not look
    after another community's buildings); staff of that community, dispatchers and admins may."""
    worker = worker_row(coverage, code)
    community = worker.get("community_code")
    check_record_write(actor, coverage, community)
    grid_community = dict(zip(coverage.grids["code"], coverage.grids["community_code"]))
    unknown, elsewhere = [], []
    for building in body.buildings:
        position = coverage.building_position.get(building)
        if position is None:
            unknown.append(building)
        elif grid_community.get(coverage.building_grid[position]) != community:
            elsewhere.append(building)
    if unknown:
        raise InvalidInput(f"楼栋 {'、'.join(unknown[:10])} 不存在")
    if elsewhere:
        raise InvalidInput(f"楼栋 {'、'.join(elsewhere[:10])} 不在网格员 {code} 所在社区")
    record = store.find_entity(BUILDING_ASSIGNMENT, code)
    if if_match is None:
        raise PreconditionRequired("修改需要 If-Match 请求头（记录的 ETag 版本号；从未分配过时为 0），以免覆盖他人的修改")
    fields = {"buildings": body.buildings, "grid_code": worker.get("grid_code") or None}
    if record is None:
        if if_match != 0:
            raise PreconditionFailed(f"版本不一致：当前为 0（尚未分配），请求基于 {if_match}；请刷新后重试")
        new = {"key": code, "worker_code": code, "community_code": community, **fields}
        try:
            records.create(store, coverage, actor, BUILDING_ASSIGNMENT, [new])
        except Conflict:
            raise PreconditionFailed("记录已被他人修改，请刷新后重试") from None
    else:
        records.update(store, coverage, actor, BUILDING_ASSIGNMENT, record["n"], fields, if_match=if_match,
                       label=LABEL)
    return view(store=store, coverage=coverage, actor=actor, code=code)
