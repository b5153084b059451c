"""Who may open which map page, and the part of an actor's view that a cached page depends on.

What each page then draws for the actor is ``gridmap.access.incidents_for_map``; this module only
decides whether the page opens at all (docs/security.md, "Sign-in and sessions").
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Final

from gridmap.access import STAFF_ROLES, scope_of
from gridmap.auth import PUBLIC, Actor
from gridmap.errors import Forbidden, Unauthorized

MAP_ROLES: Final[dict[str, frozenset[str]]] = {
    "dispatcher": STAFF_ROLES,
    "planner": STAFF_ROLES | {"planner"},
    "worker": STAFF_ROLES | {"worker"},  # a worker: only their own map (see check_map_access)
}


def check_map_access(actor: Actor, kind: str, code: str | None = None) -> None:
    """Raise ``Unauthorized`` without sign-in, ``Forbidden`` for a map the role may not open.
    The public map is open to everyone."""
    if kind == "public":
        return
    if actor.role == PUBLIC:
        raise Unauthorized("地图需要登录：请在 /login 粘贴令牌登录，或发送 Authorization: Bearer <token>")
    if actor.role not in MAP_ROLES.get(kind, frozenset()):
        raise Forbidden("您的角色不能查看此地图")
    if kind == "worker" and actor.role == "worker" and code != actor.worker_code:
        raise Forbidden("网格员只能查看自己的网格地图")


def view_key(actor: Actor, coverage: Any) -> Hashable:
    """What a page's content depends on beyond the data: role, worker and the grids in scope.
    Part of the map cache key, so no actor is ever served a page built for another view."""
    if actor.role == PUBLIC:
        return (PUBLIC,)
    scope = scope_of(actor, coverage)
    grids = tuple(sorted(scope.grids)) if scope.grids is not None and actor.role == "worker" else None
    return (actor.role, scope.view, actor.worker_code, grids)
