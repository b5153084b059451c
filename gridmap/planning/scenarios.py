"""Planning scenarios: every siting run through the API, kept in the store under a name.

A scenario is never changed after it is saved, and the planner map shows the one its link names
(``/maps/planner?scenario=ID``): planners can compare runs, and nobody replaces what another
planner is looking at. What is kept: who ran it (the actor's label: role and worker code or token
id, never a person's name), when, on which store revision, the parameters, the summary (coverage
before/after, per community, solver figures) and the proposed sites.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import geopandas as gpd

from gridmap.errors import InvalidInput, NotFound
from gridmap.geo import WGS84
from gridmap.planning.service import SitingRequest, SitingResult, _flat
from gridmap.store.base import Store

MAX_NAME_LENGTH: Final = 100
MAX_PAGE: Final = 200
OBJECTIVE_LABELS: Final = {"max_coverage": "最大覆盖", "set_cover": "集合覆盖", "p_median": "p-中位"}
_SUMMARY_KEYS: Final = ("objective", "k", "radius_m", "metric", "objective_value", "optimal", "gap")


def map_link(scenario_id: int) -> str:
    return f"/maps/planner?scenario={scenario_id}"


def check_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"方案名称 name 不能超过 {MAX_NAME_LENGTH} 个字符")
    return name or None


def default_name(answer: dict[str, Any]) -> str:
    """``最大覆盖 · 5 站 · 500 米 · 步行`` (then ``· 闻喜县`` for a scoped run): what a list of runs can be
    told apart by."""
    metric = "步行" if answer["metric"] == "network" else "直线"
    label = OBJECTIVE_LABELS.get(answer["objective"], answer["objective"])
    name = f"{label} · {answer['k']} 站 · {answer['radius_m']:g} 米 · {metric}"
    scope = answer.get("scope")
    if scope:
        name += f" · {scope['region']['name'] if scope.get('region') else '所选范围'}"
        name += " · 框选" if scope.get("region") and scope.get("bbox") else ""
    return name


def save(*, store: Store, result: SitingResult, created_by: str, name: str | None = None,
         now: datetime | None = None) -> dict[str, Any]:
    """Keep a siting run; returns the scenario as ``get`` answers it."""
    name = check_name(name) or default_name(result.answer)
    at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    parameters = {k: v for k, v in vars(result.request).items()}
    summary = {k: v for k, v in result.answer.items() if k != "proposals"}
    record = {"name": name, "created_by": created_by, "created_at": at,
              "revision": result.answer.get("revision"), "parameters": parameters, "summary": summary,
              "proposals": result.answer["proposals"]}
    scenario_id = store.insert_scenario(record)
    return _view({**record, "id": scenario_id})


def get(*, store: Store, scenario_id: int) -> dict[str, Any]:
    record = store.get_scenario(scenario_id)
    if record is None:
        raise NotFound(f"规划方案 {scenario_id} 不存在")
    return _view(record)


def listing(*, store: Store, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Scenarios newest first: who, when, parameters and the headline figures (no sites)."""
    if not (1 <= limit <= MAX_PAGE) or offset < 0:
        raise InvalidInput(f"分页参数有误：limit 应在 1 到 {MAX_PAGE} 之间，offset 不能为负")
    rows, total = store.list_scenarios(limit=limit, offset=offset)
    return {"items": [_list_item(r) for r in rows], "total": total}


_HEADER: Final = ("id", "name", "created_by", "created_at", "revision", "parameters")


def _view(record: dict[str, Any]) -> dict[str, Any]:
    return {**{k: record[k] for k in _HEADER}, "summary": record["summary"], "proposals": record["proposals"],
            "map": map_link(record["id"])}


def _list_item(record: dict[str, Any]) -> dict[str, Any]:
    summary = record["summary"]
    headline = {k: summary.get(k) for k in _SUMMARY_KEYS}
    headline["share_before"] = summary.get("before", {}).get("share")
    headline["share_after"] = summary.get("after", {}).get("share")
    before, after = summary.get("before", {}), summary.get("after", {})
    covered = (after.get("households_covered") or 0) - (before.get("households_covered") or 0)
    headline["households_new"] = covered
    return {**{k: record[k] for k in _HEADER}, "summary": headline, "map": map_link(record["id"])}


def as_result(scenario: dict[str, Any]) -> SitingResult:
    """The siting result a scenario was saved from (what the GeoJSON and CSV exports take)."""
    return SitingResult(SitingRequest(**scenario["parameters"]), {**scenario["summary"],
                                                                  "proposals": scenario["proposals"]},
                        proposals_frame(scenario))


def proposals_frame(scenario: dict[str, Any]) -> gpd.GeoDataFrame:
    """The scenario's proposed sites as points with flat columns (what the planner map draws)."""
    rows = scenario["proposals"]
    radius, metric = scenario["summary"].get("radius_m"), scenario["summary"].get("metric")
    return gpd.GeoDataFrame(
        [{**_flat(r), "radius_m": radius, "metric": metric} for r in rows] if rows else None,
        geometry=gpd.points_from_xy([r["lon"] for r in rows], [r["lat"] for r in rows]),
        crs=WGS84,
    )
