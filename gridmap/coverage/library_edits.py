"""The standard address library as data staff maintain: aliases and standard addresses added and
corrected through the API, suggestions as one types, and the texts nothing was found for.

Edits are records of the store (kind ``address``: versioned, every change logged with who, when,
before and after). Each process applies them to its own library in place (``gridmap.address.edits``):
the process that took the edit at once, the others when they next match an address, at most
``EDIT_POLL_S`` after (they compare the store's newest change number with the last they applied). A
library built again (a new package) starts from number 0 and applies every edit: edits outlive
imports. An edit that no longer fits the package (its building is gone) is skipped and counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from gridmap import records
from gridmap.access import check_library_edit, coarse_address, redact_text
from gridmap.address.edits import Undo, apply_address, apply_alias, take_back
from gridmap.address.normalize import normalize
from gridmap.address.typeahead import SUGGESTIONS, Typeahead, address_entries, alias_entries
from gridmap.auth import Actor
from gridmap.errors import Conflict, GridmapError, InvalidInput
from gridmap.store.base import EntityQuery, Store

log = logging.getLogger(__name__)

KIND: Final = "address"
LABEL: Final = "标准地址"
EDIT_POLL_S: Final = 1.0
"""How stale another process's edits may be when a lookup starts (one cheap query per second)."""
UNMATCHED_FLUSH_S: Final = 10.0
UNMATCHED_FLUSH_TEXTS: Final = 500
"""Not-found texts are counted in memory and written at most this often or when this many are held."""
UNMATCHED_DAYS: Final = 30
"""``/v1/addresses/unmatched`` without ``since``: the last 30 days."""
AREA_LEVELS: Final = ("community", "town", "county", "none")
MAX_BUILDING_DIGITS: Final = 4
MAX_NOT_FOUND_TEXT: Final = 100
ENTRY_FIELDS: Final = {"alias": ("alias", "target_code", "note"),
                       "address": ("road", "doorplate", "compound", "building_no", "building_code", "note")}


@dataclass
class LibraryEdits:
    """The edits applied to one coverage's library (kept beside it, never in its cache file)."""

    applied_seq: int = 0
    checked_at: float = 0.0
    undo: dict[int, Undo] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    typeahead: Typeahead | None = None
    sync_lock: threading.Lock = field(default_factory=threading.Lock)


def edits_of(coverage: Any) -> LibraryEdits:
    edits = coverage.__dict__.get("library_edits")
    if edits is None:
        edits = coverage.__dict__.setdefault("library_edits", LibraryEdits())
    return edits


def sync(coverage: Any, store: Store, *, force: bool = False) -> LibraryEdits:
    """Apply the edits this library has not had yet (every ``EDIT_POLL_S`` unless ``force``)."""
    edits = edits_of(coverage)
    if coverage.matcher is None or (not force and time.monotonic() - edits.checked_at < EDIT_POLL_S):
        return edits
    with edits.sync_lock:
        edits.checked_at = time.monotonic()
        if store.entity_seq(KIND) <= edits.applied_seq:
            return edits
        changes = store.entity_changes(KIND, after_seq=edits.applied_seq)
        matcher = coverage.matcher
        with matcher.edit_lock:
            for change in changes:
                _apply_change(coverage, edits, int(change["n"]), change["after"])
                edits.applied_seq = int(change["seq"])
            matcher.lib.forget_caches()
            matcher.refresh()
    return edits


def _apply_change(coverage: Any, edits: LibraryEdits, n: int, entry: dict[str, Any]) -> None:
    lib = coverage.matcher.lib
    take_back(edits.undo.pop(n, []))
    edits.skipped.pop(n, None)
    if edits.typeahead is not None:
        edits.typeahead.extra.pop(n, None)
    if entry.get("retired"):
        return
    try:
        edits.undo[n] = _apply(lib, entry)
    except GridmapError as exc:  # the package changed under the edit: skipped, and shown on the record
        edits.skipped[n] = exc.message
        log.warning("address edit %d not applied: %s", n, exc.message)
        return
    if edits.typeahead is not None:
        edits.typeahead.extra[n] = _suggestions_of(lib, entry)


def _apply(lib: Any, entry: dict[str, Any]) -> Undo:
    if entry["type"] == "alias":
        return apply_alias(lib, entry["alias"], entry["target_code"], refresh=False)
    return apply_address(lib, road=entry["road"], doorplate=entry["doorplate"], building_code=entry["building_code"],
                         compound=entry.get("compound") or "", building_no=entry.get("building_no") or "",
                         refresh=False)


def _suggestions_of(lib: Any, entry: dict[str, Any]) -> list:
    if entry["type"] == "alias":
        return alias_entries(lib, entry["alias"], entry["target_code"])
    return address_entries(lib, entry["road"], entry["doorplate"], entry["building_code"],
                           entry.get("compound") or "", entry.get("building_no") or "")


# the API's services -------------------------------------------------------------------------------

def _entry(body: dict[str, Any]) -> dict[str, Any]:
    """The stored form of an alias or a standard address, with the key that keeps it unique."""
    kind = body.get("type")
    if kind not in ENTRY_FIELDS:
        raise InvalidInput("type 应为 alias（别名）或 address（标准地址）")
    entry = {"type": kind, **{k: (str(body[k]).strip() if body.get(k) is not None else None)
                              for k in ENTRY_FIELDS[kind]}, "retired": bool(body.get("retired", False))}
    required = ("alias", "target_code") if kind == "alias" else ("road", "doorplate", "building_code")
    missing = [k for k in required if not entry.get(k)]
    if missing:
        raise InvalidInput(f"缺少必填字段：{'、'.join(missing)}")
    if kind == "alias":
        entry["key"] = f"alias:{normalize(entry['alias'])}"
    else:
        entry["key"] = f"door:{normalize(entry['road'])}{normalize(entry['doorplate'])}"
    return entry


def _check_applies(coverage: Any, entry: dict[str, Any]) -> None:
    """Refuse (422) an edit the library cannot take, before anything is stored: tried, then taken back."""
    if coverage.matcher is None:
        raise InvalidInput("地址库尚未建立")
    if entry["retired"]:
        return
    with coverage.matcher.edit_lock:
        take_back(_apply(coverage.matcher.lib, entry))


def add_entry(store: Store, coverage: Any, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
    check_library_edit(actor)
    entry = _entry(body)
    sync(coverage, store, force=True)
    _check_applies(coverage, entry)
    try:
        (view,) = records.create(store, coverage, actor, KIND, [entry])
    except Conflict:
        raise Conflict(f"“{entry.get('alias') or entry['road'] + entry['doorplate']}”已在地址库中；"
                       "请用 PATCH 修改已有记录") from None
    sync(coverage, store, force=True)
    return _shown(coverage, view)


def correct_entry(store: Store, coverage: Any, actor: Actor, n: int, body: dict[str, Any], *,
                  if_match: int | None) -> dict[str, Any]:
    check_library_edit(actor)
    old = records.fetch(store, KIND, n, label=LABEL)
    records.check_version(old, if_match)
    merged = {**{k: old.get(k) for k in ("type", *ENTRY_FIELDS[old["type"]], "retired")},
              **{k: v for k, v in body.items() if k != "type"}}
    entry = _entry({**merged, "type": old["type"]})
    sync(coverage, store, force=True)
    _check_applies(coverage, entry)
    try:
        view = records.update(store, coverage, actor, KIND, n, entry, if_match=if_match, label=LABEL,
                              action="retire" if entry["retired"] and not old.get("retired") else "update")
    except Conflict:
        raise Conflict("修改后的别名或门牌与另一条记录重复") from None
    sync(coverage, store, force=True)
    return _shown(coverage, view)


def _shown(coverage: Any, view: dict[str, Any]) -> dict[str, Any]:
    skipped = edits_of(coverage).skipped.get(int(view["id"]))
    return {**view, "applied": skipped is None and not view.get("retired"), "problem": skipped}


def get_entry(store: Store, coverage: Any, actor: Actor, n: int) -> dict[str, Any]:
    check_library_edit(actor)
    return _shown(coverage, records.get(store, coverage, actor, KIND, n, label=LABEL))


def entry_history(store: Store, coverage: Any, actor: Actor, n: int) -> list[dict[str, Any]]:
    check_library_edit(actor)
    return records.history(store, coverage, actor, KIND, n, label=LABEL)


def list_entries(store: Store, coverage: Any, actor: Actor, *, type_: str | None, limit: int, offset: int
                 ) -> dict[str, Any]:
    check_library_edit(actor)
    fields = (("type", type_),) if type_ else ()
    page = records.listing(store, coverage, actor, EntityQuery(KIND, fields=fields), limit=limit, offset=offset)
    page["items"] = [_shown(coverage, v) for v in page["items"]]
    return page


def suggest(store: Store, coverage: Any, q: str, *, limit: int = SUGGESTIONS) -> dict[str, Any]:
    """Up to ``limit`` standard names for what was typed so far, each with its grids (public data)."""
    text = (q or "").strip()
    if not text:
        raise InvalidInput("请输入要查找的地址（q）")
    if len(text) > 50:
        raise InvalidInput(f"q 过长：最多 50 个字符，收到 {len(text)} 个")
    if coverage.matcher is None:
        raise InvalidInput("地址库尚未建立")
    edits = sync(coverage, store)
    with coverage.matcher.edit_lock:
        if edits.typeahead is None:
            lib = coverage.matcher.lib
            typeahead = Typeahead.build(lib)
            for n, undo in edits.undo.items():
                entry = store.get_entity(KIND, n)
                if entry is not None and undo:
                    typeahead.extra[n] = _suggestions_of(lib, entry)
            edits.typeahead = typeahead
        found = edits.typeahead.suggest(text, limit)
        items = [{"text": e.text, "level": e.level, "code": e.code, "community_code": e.community_code,
                  "grids": [coverage.grid_ref(g) for g in edits.typeahead.grids_of(e)]} for e in found]
    return {"items": items, "total": len(items)}


# what was not found -------------------------------------------------------------------------------

@dataclass
class UnmatchedLog:
    """Texts the library could not place, counted in memory and written to the store in batches (a
    lookup never waits for a write). The text kept is what was not found, with numbers masked."""

    counts: Counter = field(default_factory=Counter)
    flushed_at: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, answer: dict[str, Any], text: str, store: Store) -> None:
        shown = not_found_text(answer.get("match") or {}, text)
        if not shown:
            return
        community = (answer.get("community") or {}).get("code") or ""
        with self.lock:
            self.counts[(shown, community)] += 1
            due = (len(self.counts) >= UNMATCHED_FLUSH_TEXTS
                   or time.monotonic() - self.flushed_at >= UNMATCHED_FLUSH_S)
        if due:
            self.flush(store)

    def flush(self, store: Store) -> None:
        with self.lock:
            counts, self.counts = self.counts, Counter()
            self.flushed_at = time.monotonic()
        if counts:
            try:
                store.count_unmatched(dict(counts), at=records.now_iso())
            except GridmapError:  # the store is busy: keep the counts for the next flush
                with self.lock:
                    self.counts.update(counts)
                raise


def not_found_text(match: dict[str, Any], text: str) -> str | None:
    """What of a text was not found, or None when it was placed as precisely as it was written: the
    parts the matcher names as unmatched; else, for an answer above building level, the compound or
    road the text names (a name the parser did not take for one, e.g. 翠湖名邸); else for no answer at
    all the text itself. Phone, ID, unit and room numbers are masked; a long number is not a building."""
    level = match.get("level")
    parts = list(match.get("unmatched") or [])
    if not parts and level in AREA_LEVELS:
        parsed = match.get("parsed") or {}
        number = parsed.get("building") or ""
        named = [parsed.get(k) or "" for k in ("road", "doorplate", "compound")]
        parts = [*named, f"{number}号楼" if named[2] and 0 < len(number) <= MAX_BUILDING_DIGITS else ""]
    if not any(parts) and level == "none":
        parts = [text]
    shown = coarse_address(redact_text(normalize("".join(parts)))) or ""
    return shown[:MAX_NOT_FOUND_TEXT] or None


def unmatched(store: Store, log_: UnmatchedLog, actor: Actor, *, since: str | None, limit: int, offset: int
              ) -> dict[str, Any]:
    check_library_edit(actor)
    if since is None:
        since = (datetime.now(UTC) - timedelta(days=UNMATCHED_DAYS)).strftime("%Y-%m-%d")
    else:
        try:
            datetime.strptime(since[:10], "%Y-%m-%d")
        except ValueError:
            raise InvalidInput(f"since 应为日期 YYYY-MM-DD，收到 {since!r}") from None
    log_.flush(store)
    rows, total = store.unmatched_addresses(since=since, limit=limit, offset=offset)
    return {"items": rows, "total": total, "since": since[:10]}

