"""Staff-maintained records through one set of rules: create, read, list, change (with ``If-Match``)
and read the change log, each checked by ``gridmap.access`` and shaped for the caller.

The co-governance records (needs, registrations, projects …) and the staff's address library edits
all go through here, so every one of them has the same conventions as incidents: ``{items, total}``
listings with ``limit``/``offset``, a ``version`` (the ETag) that a change must name, 428 without
it and 412 when it is stale, and an audit entry (who, when, before → after) for every change.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from gridmap.access import check_record_read, check_record_write, record_communities, shape_record
from gridmap.auth import Actor
from gridmap.errors import Conflict, NotFound, PreconditionFailed, PreconditionRequired
from gridmap.store.base import EntityQuery, Store

HIDDEN_COLUMNS = ("kind", "n", "key")
"""Store columns that are not part of a record's API view (``n`` is shown as ``id``)."""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def view_of(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record as the API shows it: ``id`` first, the store's bookkeeping columns dropped."""
    return {"id": record["n"], **{k: v for k, v in record.items() if k not in HIDDEN_COLUMNS}}


def create(store: Store, coverage: Any, actor: Actor, kind: str, records: list[dict[str, Any]],
           *, action: str = "create") -> list[dict[str, Any]]:
    """Store new records (all or none) after checking that the actor may write in each one's community."""
    for record in records:
        check_record_write(actor, coverage, record.get("community_code"))
    stored = store.insert_entities(kind, records, actor=actor.label, at=now_iso(), action=action)
    return [view_of(r) for r in stored]


def fetch(store: Store, kind: str, n: int, *, label: str) -> dict[str, Any]:
    """The stored record, unshaped (for services that read before they decide); 404 when missing."""
    record = store.get_entity(kind, n)
    if record is None:
        raise NotFound(f"{label} {n} 不存在")
    return record


def get(store: Store, coverage: Any, actor: Actor, kind: str, n: int, *, label: str) -> dict[str, Any]:
    record = fetch(store, kind, n, label=label)
    check_record_read(actor, coverage, record.get("community_code"))
    return shape_record(view_of(record), actor=actor, coverage=coverage)


def listing(store: Store, coverage: Any, actor: Actor, query: EntityQuery, *, limit: int, offset: int
            ) -> dict[str, Any]:
    """``{items, total}`` of the records the actor may read, narrowed to their communities."""
    allowed = record_communities(actor, coverage)
    if allowed is not None:
        wanted = allowed if query.communities is None else allowed & set(query.communities)
        query = replace(query, communities=tuple(sorted(wanted)))
    rows, total = store.query_entities(query, limit=limit, offset=offset)
    return {"items": [shape_record(view_of(r), actor=actor, coverage=coverage) for r in rows], "total": total}


def check_version(record: dict[str, Any], if_match: int | None) -> None:
    if if_match is None:
        raise PreconditionRequired("修改需要 If-Match 请求头（记录的 ETag 版本号），以免覆盖他人的修改")
    if if_match != record["version"]:
        raise PreconditionFailed(f"版本不一致：当前为 {record['version']}，请求基于 {if_match}；请刷新后重试")


def update(store: Store, coverage: Any, actor: Actor, kind: str, n: int, changes: dict[str, Any], *,
           if_match: int | None, label: str, action: str = "update") -> dict[str, Any]:
    """Apply ``changes`` to a record's fields; the actor must be allowed in its community before and after."""
    record = fetch(store, kind, n, label=label)
    check_record_write(actor, coverage, record.get("community_code"))
    check_version(record, if_match)
    new = {k: v for k, v in record.items() if k not in ("kind", "n", "version", "created_at", "updated_at")}
    new.update(changes)
    check_record_write(actor, coverage, new.get("community_code"))
    try:
        stored = store.update_entity(kind, n, version=record["version"], record=new, actor=actor.label,
                                     at=now_iso(), action=action)
    except Conflict:
        raise PreconditionFailed("记录已被他人修改，请刷新后重试") from None
    return shape_record(view_of(stored), actor=actor, coverage=coverage)


def history(store: Store, coverage: Any, actor: Actor, kind: str, n: int, *, label: str) -> list[dict[str, Any]]:
    """The change log of one record: who, when, what, and the record before and after (shaped)."""
    record = fetch(store, kind, n, label=label)
    check_record_read(actor, coverage, record.get("community_code"))
    out = []
    for change in store.entity_changes(kind, n):
        entry = {k: change[k] for k in ("seq", "version", "action", "actor", "at")}
        for side in ("before", "after"):
            body = change.get(side)
            entry[side] = shape_record(body, actor=actor, coverage=coverage) if body is not None else None
        out.append(entry)
    return out
