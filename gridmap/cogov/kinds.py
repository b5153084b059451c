"""The names the co-governance records share: store kinds, statuses and field names.

Published as constants so that every module built on these records (registrations, the three lists,
activities, meetings, patrols, the county's report) spells them one way; a renamed kind or status
would otherwise silently split the data.
"""

from __future__ import annotations

from typing import Final

# Store kinds (``store.insert_entities(kind, ...)``).
UNIT_REGISTRATION: Final = "unit_registration"
MEMBER: Final = "member"
TEAM: Final = "team"
NEED: Final = "need"
RESOURCE: Final = "resource"
PROJECT: Final = "project"

KINDS: Final = (UNIT_REGISTRATION, MEMBER, TEAM, NEED, RESOURCE, PROJECT)


def member_code(n: int) -> str:
    """A member's code from its per-kind number: ``M00001`` (stored in ``key``, shown as ``code``)."""
    return f"M{n:05d}"


MEMBER_CODE_PREFIX: Final = "M"

# Need statuses (需求清单).
NEED_COLLECTED: Final = "collected"
NEED_ACCEPTED: Final = "accepted"
NEED_IN_PROJECT: Final = "in_project"
NEED_DONE: Final = "done"
NEED_REJECTED: Final = "rejected"
NEED_STATUSES: Final = (NEED_COLLECTED, NEED_ACCEPTED, NEED_IN_PROJECT, NEED_DONE, NEED_REJECTED)
NEED_OPEN_STATUSES: Final = (NEED_COLLECTED, NEED_ACCEPTED, NEED_IN_PROJECT)

# Project statuses (项目清单).
PROJECT_PLANNED: Final = "planned"
PROJECT_IN_PROGRESS: Final = "in_progress"
PROJECT_COMPLETED: Final = "completed"
PROJECT_EVALUATED: Final = "evaluated"
PROJECT_CANCELLED: Final = "cancelled"
PROJECT_STATUSES: Final = (PROJECT_PLANNED, PROJECT_IN_PROGRESS, PROJECT_COMPLETED, PROJECT_EVALUATED,
                           PROJECT_CANCELLED)

# Field names shared across kinds.
COMMUNITY_CODE: Final = "community_code"
GRID_CODE: Final = "grid_code"
CATEGORY: Final = "category"
HOUSEHOLDS: Final = "households"
"""A need's households affected (int)."""
HOUSEHOLDS_BENEFITED: Final = "households_benefited"
"""A project's households benefited (int), recorded when it is completed."""


def team_code(n: int) -> str:
    """A service team's code from its per-kind number: ``T0001`` (stored in ``key``, shown as ``code``)."""
    return f"T{n:04d}"


def code_number(code: str, prefix: str) -> int | None:
    """The per-kind number in a member's or team's code (``M00012`` → 12); None when it is not one."""
    digits = code[len(prefix):] if code.startswith(prefix) else ""
    return int(digits) if digits.isdigit() and int(digits) > 0 else None


TEAM_CODE_PREFIX: Final = "T"
