"""The incident state machine, written as one table.

Each action names the statuses it may start from, the status it leads to (None: unchanged),
the roles that may take it, and whether a note (reason) is required. A worker may take a
``worker`` action only on incidents of their own grid; that scope check lives in the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gridmap.errors import InvalidInput

STATUS_LABELS: Final = {
    "reported": "上报",
    "accepted": "受理",
    "dispatched": "派遣",
    "in_progress": "处置中",
    "resolved": "已处置",
    "verified": "核查",
    "closed": "结案",
    "returned": "退回",
    "cancelled": "作废",
}
FINAL: Final = frozenset({"closed", "cancelled"})
DONE: Final = frozenset({"resolved", "verified", "closed", "cancelled"})
"""Statuses in which the incident no longer runs against its time limit."""

def check_statuses(statuses: list[str] | tuple[str, ...] | None) -> None:
    """Filter values must be statuses of this table (422 naming the valid ones)."""
    for s in statuses or ():
        if s not in STATUS_LABELS:
            raise InvalidInput(f"未知状态 {s!r}（可选：{', '.join(STATUS_LABELS)}）")


STAFF: Final = frozenset({"admin", "dispatcher"})
HANDLERS: Final = frozenset({"admin", "dispatcher", "worker"})


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[str]
    target: str | None
    roles: frozenset[str]
    label: str
    needs_note: bool = False


TRANSITIONS: Final[dict[str, Transition]] = {
    t.action: t
    for t in (
        Transition("accept", frozenset({"reported", "returned"}), "accepted", STAFF, "受理"),
        Transition("dispatch", frozenset({"accepted", "returned"}), "dispatched", STAFF, "派遣"),
        Transition("start", frozenset({"dispatched"}), "in_progress", HANDLERS, "开始处置"),
        Transition("resolve", frozenset({"in_progress"}), "resolved", HANDLERS, "处置完成"),
        Transition("verify", frozenset({"resolved"}), "verified", STAFF, "核查通过"),
        Transition("close", frozenset({"verified"}), "closed", STAFF, "结案"),
        Transition("return", frozenset({"accepted", "dispatched", "in_progress"}), "returned", STAFF, "退回",
                   needs_note=True),
        Transition("cancel", frozenset({"reported", "accepted", "returned", "dispatched"}), "cancelled", STAFF,
                   "作废", needs_note=True),
        Transition("reopen", frozenset({"resolved", "verified"}), "dispatched", STAFF, "核查未通过，重新派遣",
                   needs_note=True),
        Transition("supervise", frozenset(STATUS_LABELS) - FINAL, None, STAFF, "督办"),
    )
}


def allowed_actions(status: str, role: str) -> list[Transition]:
    """The table's actions that ``role`` may take on an incident in ``status``, in the table's order (the
    buttons of the dispatch console and the worker's page). A worker's own scope is checked by the service."""
    return [t for t in TRANSITIONS.values() if status in t.sources and role in t.roles]
