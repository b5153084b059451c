"""一呼百应 made concrete: the resources that could meet a need, ranked, each with its reasons.

The score is a sum that staff can check by hand (the weights are in ``WEIGHTS``):

- category fit (40): the resource's category is one the need's category lists (``categories.py``);
- serves the community (30): the need's community is among the resource's communities;
- skills (20): the provider knows something the need's category asks for (a member's skills, the skills
  of a team's members, a unit's offers in the ``units`` layer);
- distance (up to 20): ``20 × (1 − d / 5000 m)``, from the need's place (its community's centre when it
  has none) to the provider's (a unit's site, a team's station or community, a member's grid or community);
- availability (10, or 5 when it ends within 14 days): an offer past its end date or of quantity 0 is
  not a candidate.

A resource with neither category fit nor skills is not a candidate. Ties go to the nearer provider,
then to the older resource.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from gridmap import records
from gridmap.access import check_record_read, shape_record
from gridmap.auth import Actor
from gridmap.cogov import kinds
from gridmap.cogov.categories import need_category
from gridmap.cogov.places import community_centre, grid_centre, metres, station_row, unit_row
from gridmap.cogov.registrations import find_member, find_team
from gridmap.coverage.service import Coverage
from gridmap.errors import InvalidInput, NotFound
from gridmap.store.base import EntityQuery, Store

WEIGHTS: Final = {"category": 40.0, "serves": 30.0, "skills": 20.0, "distance": 20.0, "available": 10.0,
                  "ending": 5.0}
DISTANCE_REACH_M: Final = 5000.0
ENDING_WITHIN: Final = timedelta(days=14)


@dataclass(frozen=True)
class ProviderFacts:
    position: tuple[float, float] | None
    skills: frozenset[str]


def provider_facts(store: Store, coverage: Coverage, kind: str, code: str) -> ProviderFacts:
    """Where a provider is and what it knows, read from the layers and registrations as they are now. A
    unit, grid or station that a newer data package no longer holds leaves the place unknown (no distance
    points) rather than failing the whole ranking."""
    if kind == "unit":
        try:
            unit = unit_row(coverage, code)
        except InvalidInput:
            return ProviderFacts(None, frozenset())
        return ProviderFacts((unit["lon"], unit["lat"]), frozenset(unit["resources"]))
    if kind == "member":
        member = find_member(store, code)
        if member is None:
            return ProviderFacts(None, frozenset())
        return ProviderFacts(_place(lambda: _member_position(coverage, member)), frozenset(member["skills"]))
    team = find_team(store, code)
    if team is None:
        return ProviderFacts(None, frozenset())
    skills: set[str] = set()
    for member_code in team["members"]:
        member = find_member(store, member_code)
        skills |= set(member["skills"]) if member else set()
    return ProviderFacts(_place(lambda: _team_position(coverage, team)), frozenset(skills))


def _place(where: Callable[[], tuple[float, float] | None]) -> tuple[float, float] | None:
    try:
        return where()
    except (InvalidInput, NotFound):
        return None


def _team_position(coverage: Coverage, team: dict[str, Any]) -> tuple[float, float] | None:
    if team.get("station_code"):
        station = station_row(coverage, team["station_code"])
        return station["lon"], station["lat"]
    return community_centre(coverage, team["community_code"])


def _member_position(coverage: Coverage, member: dict[str, Any]) -> tuple[float, float] | None:
    if member.get("grid_code"):
        return grid_centre(coverage, member["grid_code"])
    return community_centre(coverage, member["community_code"])


def need_position(coverage: Coverage, need: dict[str, Any]) -> tuple[float, float] | None:
    if need.get("lon") is not None and need.get("lat") is not None:
        return float(need["lon"]), float(need["lat"])
    return community_centre(coverage, need["community_code"])


def score(need: dict[str, Any], resource: dict[str, Any], facts: ProviderFacts, *, coverage: Coverage,
          today: date) -> dict[str, Any] | None:
    """One resource's score for one need with its factors and Chinese reasons; None when not a candidate."""
    category = need_category(need["category"])
    until = date.fromisoformat(resource["available_until"]) if resource.get("available_until") else None
    if (until is not None and until < today) or resource.get("quantity") == 0:
        return None
    fits = resource["category"] in category.resources
    skills = sorted(facts.skills & set(category.skills))
    if not fits and not skills:
        return None
    serves = need["community_code"] in resource["communities"]
    here = need_position(coverage, need)
    distance = metres(coverage, here, facts.position) if here and facts.position else None
    ending = until is not None and until - today <= ENDING_WITHIN
    parts = {
        "category": WEIGHTS["category"] if fits else 0.0,
        "serves": WEIGHTS["serves"] if serves else 0.0,
        "skills": WEIGHTS["skills"] if skills else 0.0,
        "distance": round(WEIGHTS["distance"] * max(0.0, 1 - distance / DISTANCE_REACH_M), 1) if distance is not None
        else 0.0,
        "available": WEIGHTS["ending"] if ending else WEIGHTS["available"],
    }
    reasons = []
    if fits:
        reasons.append(f"类别相符：{resource['category']}可用于{need['category']}")
    if skills:
        reasons.append(f"具备相关技能：{'、'.join(skills)}")
    reasons.append(f"服务本社区（{need.get('community_name') or need['community_code']}）" if serves
                   else "未登记服务该社区")
    if distance is not None:
        reasons.append(f"距需求地点约 {round(distance):d} 米")
    reasons.append(f"可用至 {until.isoformat()}（即将到期）" if ending else
                   f"可用至 {until.isoformat()}" if until else "长期可用")
    return {"score": round(sum(parts.values()), 1), "factors": {**parts, "distance_m": round(distance, 1)
                                                                 if distance is not None else None,
                                                                 "skills_matched": skills},
            "reasons": reasons}


def matches(store: Store, coverage: Coverage, actor: Actor, n: int, *, limit: int, today: date | None = None
            ) -> dict[str, Any]:
    """The ranked candidates for need ``n`` among every active resource (offers are not personal data)."""
    need = records.fetch(store, kinds.NEED, n, label="需求")
    check_record_read(actor, coverage, need.get("community_code"))
    today = today or datetime.now(UTC).date()
    resources, _ = store.query_entities(EntityQuery(kind=kinds.RESOURCE, statuses=("active",)))
    facts: dict[tuple[str, str], ProviderFacts] = {}
    ranked = []
    for resource in resources:
        key = (resource["provider_kind"], resource["provider_code"])
        if key not in facts:
            facts[key] = provider_facts(store, coverage, *key)
        found = score(need, resource, facts[key], coverage=coverage, today=today)
        if found is not None:
            distance = found["factors"]["distance_m"]
            ranked.append(((-found["score"], distance if distance is not None else float("inf"), resource["n"]),
                           {"resource": shape_record(records.view_of(resource), actor=actor, coverage=coverage),
                            **found}))
    ranked.sort(key=lambda pair: pair[0])
    return {"need_id": n, "items": [item for _, item in ranked[:limit]], "total": len(ranked)}
