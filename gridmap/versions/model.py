"""What a boundary version is, and which one is in force on a day."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from gridmap.errors import InvalidInput

DAY_FORMAT = "YYYY-MM-DD"


@dataclass(frozen=True)
class Version:
    id: int
    effective_from: date
    label: str
    revision: str
    created_at: str
    actor: str
    counts: dict[str, int]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Version:
        return cls(id=int(row["id"]), effective_from=date.fromisoformat(row["effective_from"]), label=row["label"],
                   revision=row["revision"], created_at=row["created_at"], actor=row["actor"],
                   counts=json.loads(row["counts"]))

    def to_dict(self, *, today: date | None = None, live: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "effective_from": self.effective_from.isoformat(), "label": self.label,
                               "created_at": self.created_at, "counts": self.counts}
        if today is not None:
            out["scheduled"] = self.effective_from > today
            out["live"] = self.id == live
        return out


def parse_day(text: str | None, *, name: str = "at") -> date | None:
    """``YYYY-MM-DD`` as a date; None for an absent value; a 422 with a Chinese message otherwise."""
    if text is None or text == "":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} 应为日期 {DAY_FORMAT}，如 2026-03-01（收到：{text[:40]}）") from None


def in_force(versions: Sequence[Version], day: date) -> Version | None:
    """The version in force on ``day``: the latest ``effective_from`` on or before it; of two versions
    from the same day, the one imported last (a correction of the first)."""
    found = None
    for version in versions:
        if version.effective_from <= day and (found is None or (version.effective_from, version.id)
                                              >= (found.effective_from, found.id)):
            found = version
    return found
