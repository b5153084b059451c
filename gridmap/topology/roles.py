"""Who may read the topology report and its map (docs/security.md, "Topology report").

The report names grids, communities and buildings and draws their outlines; nothing in it is personal.
It is a tool for those who keep the boundaries (admins import them, the command centre routes by them) and
for planners, who redraw grids and already see every building on their map. Workers are refused (403): their
map shows their own grid, and the county's boundary problems are not theirs to fix. The public gets 401.
"""

from __future__ import annotations

from typing import Final

from gridmap.auth import PUBLIC, Actor
from gridmap.errors import Forbidden, Unauthorized

TOPOLOGY_ROLES: Final = frozenset({"admin", "dispatcher", "planner"})


def check_topology_actor(actor: Actor) -> None:
    if actor.role == PUBLIC:
        raise Unauthorized("拓扑检查需要登录：请在 /login 登录，或发送 Authorization: Bearer <token>")
    if actor.role not in TOPOLOGY_ROLES:
        raise Forbidden("只有管理员、指挥调度和规划人员可以查看边界拓扑检查")
