"""资源清单: what co-building units, registered members and service teams offer (funds, venues, equipment,
supplies, expertise, volunteers) and to which communities.

A resource is kept by the first community it lists (that community's staff record and change it); every
community it lists finds it in ``GET /v1/resources?community=`` and in the matches of its needs.
"""

from __future__ import annotations

from typing import Any, Final

from gridmap import records
from gridmap.access import check_record_write
from gridmap.auth import Actor
from gridmap.cogov import kinds
from gridmap.cogov.categories import RESOURCE_CATEGORIES
from gridmap.cogov.models import ResourceCreate
from gridmap.cogov.places import community_name, unit_row
from gridmap.cogov.registrations import find_member, find_team
from gridmap.coverage.service import Coverage
from gridmap.errors import InvalidInput
from gridmap.store.base import EntityQuery, Store

LABEL: Final = "资源"
PROVIDER_KINDS: Final = {"unit": "共建单位", "member": "在职党员", "team": "党员服务团队"}


def provider_of(store: Store, coverage: Coverage, kind: str, code: str) -> dict[str, Any]:
    """The provider as a resource names it: kind, code and (for units and teams) name; 422 when unknown.
    A member is named by code only: their name belongs with their registration, not in every offer."""
    if kind == "unit":
        return {"kind": kind, "code": code, "name": unit_row(coverage, code)["name"]}
    if kind == "member":
        if find_member(store, code) is None:
            raise InvalidInput(f"党员 {code} 未报到（没有该编号）")
        return {"kind": kind, "code": code, "name": None}
    team = find_team(store, code)
    if team is None:
        raise InvalidInput(f"服务团队 {code} 不存在")
    return {"kind": kind, "code": code, "name": team["name"]}


def create(store: Store, coverage: Coverage, actor: Actor, body: ResourceCreate) -> dict[str, Any]:
    communities = list(dict.fromkeys(body.communities))
    check_record_write(actor, coverage, communities[0])
    if body.category not in RESOURCE_CATEGORIES:
        raise InvalidInput(f"资源类别“{body.category}”不存在；可用：{'、'.join(RESOURCE_CATEGORIES)}")
    names = [community_name(coverage, c) for c in communities]
    record = {
        "provider": provider_of(store, coverage, body.provider.kind, body.provider.code),
        "provider_kind": body.provider.kind, "provider_code": body.provider.code,
        "category": body.category, "description": body.description, "quantity": body.quantity,
        "communities": communities, "community_names": names, "community_code": communities[0],
        "available_until": body.available_until.isoformat() if body.available_until else None,
        "status": "active",
    }
    return records.create(store, coverage, actor, kinds.RESOURCE, [record])[0]


def query(*, community: str | None, category: str | None, provider_kind: str | None, provider_code: str | None
          ) -> EntityQuery:
    fields = tuple((k, v) for k, v in (("category", category), ("provider_kind", provider_kind),
                                       ("provider_code", provider_code)) if v)
    return EntityQuery(kind=kinds.RESOURCE, contains=(("communities", community),) if community else (),
                       fields=fields)
