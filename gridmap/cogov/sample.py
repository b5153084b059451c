"""The sample county's year of co-governance (``geodata/linyi/cogov.json``, built by
``geodata/build_cogov.py``) put into a store, the way the services would have stored it.

Records refer to each other by number (a project names its needs, a need its project, a meeting item
its need), so they are loaded into a store that holds none of these kinds yet, in the file's order:
numbers are then the file's positions. Records whose counting day is the day they were recorded
(needs, projects, teams, meetings, activities) are written one by one with their own time; members,
unit registrations and patrols carry their day in a field and go in one transaction per kind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from gridmap.errors import Conflict
from gridmap.store.base import EntityQuery, Store

ORDER: Final = ("unit_registration", "member", "team", "need", "project", "activity", "meeting", "patrol")
BATCHED: Final = frozenset({"unit_registration", "member", "patrol"})
ACTOR: Final = "sample"


def load_cogov_sample(store: Store, path: Path) -> dict[str, int]:
    """Load the file's records; how many of each kind. Refuses (409) a store that already holds any."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    records: dict[str, list[dict[str, Any]]] = data["records"]
    taken = [kind for kind in ORDER if store.query_entities(EntityQuery(kind=kind), limit=1)[1]]
    if taken:
        raise Conflict(f"存储中已有共建共治记录（{'、'.join(taken)}），示例数据只能载入空的存储")
    counts = {}
    for kind in ORDER:
        rows = records.get(kind, [])
        if kind in BATCHED and rows:
            store.insert_entities(kind, [r["record"] for r in rows], actor=ACTOR, at=min(r["at"] for r in rows))
        else:
            for row in rows:
                store.insert_entities(kind, [row["record"]], actor=ACTOR, at=row["at"])
        counts[kind] = len(rows)
    return counts
