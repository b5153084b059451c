"""Address suggestions as one types (``GET /v1/addresses?q=``): standard names that begin with what was
typed, then names that contain it, then names whose pinyin or initials begin with it (``flxq`` →
丰林小区), at most ``SUGGESTIONS``, each with the grids it lies in.

Keys are normalised names of compounds, buildings (丰林小区3号楼), doorplates (府前街224号), roads,
communities, towns and aliases, kept sorted so that a prefix is two binary searches; only the names
(not the buildings, which are most keys) are scanned for the contains and pinyin steps. Staff edits
add entries to a small list searched the same way, so the sorted keys are never built again.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from gridmap.address.library import AddressLibrary, initials_of, pinyin_of
from gridmap.address.normalize import normalize

SUGGESTIONS = 10
"""Suggestions answered (the issue: ten)."""
MIN_QUERY = 1
MAX_QUERY = 50
_LEVEL_ORDER = {"compound": 0, "building": 1, "road": 2, "community": 3, "town": 4}
_ASCII = re.compile(r"^[a-z]+$")


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    """Normalised text the query is compared with."""
    text: str
    """What is shown (the standard name; an alias as 二中（临猗二中）)."""
    level: str
    code: str | None
    buildings: tuple[int, ...] = ()
    """Record indexes whose grids the suggestion names."""
    community_code: str | None = None


@dataclass
class Typeahead:
    lib: AddressLibrary
    entries: list[Entry] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    names: list[Entry] = field(default_factory=list)
    """Entries other than single buildings: scanned for contains and pinyin matches."""
    extra: dict[int, list[Entry]] = field(default_factory=dict)
    """Entries of staff edits, by edit number."""

    @classmethod
    def build(cls, lib: AddressLibrary) -> Typeahead:
        entries = _library_entries(lib)
        entries.sort(key=lambda e: (e.key, _LEVEL_ORDER.get(e.level, 9), e.code or ""))
        return cls(lib, entries, [e.key for e in entries], [e for e in entries if e.level != "building"])

    def suggest(self, query: str, limit: int = SUGGESTIONS) -> list[Entry]:
        q = normalize(query).lower() if _ASCII.match(normalize(query).lower()) else normalize(query)
        if not q:
            return []
        extra = [e for entries in self.extra.values() for e in entries]
        found: dict[tuple[str, str | None, str], Entry] = {}

        def take(candidates: list[Entry]) -> bool:
            for e in candidates:
                found.setdefault((e.level, e.code, e.text), e)
                if len(found) >= limit:
                    return True
            return False

        lo = bisect.bisect_left(self.keys, q)
        hi = bisect.bisect_left(self.keys, q + "\U0010ffff")
        prefix = self.entries[lo:hi] + [e for e in extra if e.key.startswith(q)]
        prefix.sort(key=lambda e: (len(e.key), _LEVEL_ORDER.get(e.level, 9), e.key, e.code or ""))
        if take(prefix):
            return list(found.values())
        inside = [e for e in self.names + extra if q in e.key and not e.key.startswith(q)]
        inside.sort(key=lambda e: (e.key.index(q), len(e.key), e.key))
        if take(inside):
            return list(found.values())
        if _ASCII.match(q) and len(q) >= 2:
            sounds = [e for e in self.names + extra
                      if pinyin_of(e.key).startswith(q) or initials_of(e.key).startswith(q)]
            sounds.sort(key=lambda e: (len(e.key), e.key))
            take(sounds)
        return list(found.values())

    def grids_of(self, entry: Entry) -> list[str]:
        return sorted({g for i in entry.buildings if (g := self.lib.records[i].grid_code)})


def _library_entries(lib: AddressLibrary) -> list[Entry]:
    out: list[Entry] = []
    for rec in lib.records:
        if rec.compound and rec.name:
            out.append(Entry(normalize(rec.name), rec.name, "building", rec.code, (rec.idx,), rec.community_code))
        if rec.road and rec.door is not None:
            door = f"{rec.road}{rec.door}号"
            out.append(Entry(door, door, "building", rec.code, (rec.idx,), rec.community_code))
    for comp in lib.compounds:
        if comp.key < len(lib.representatives) and comp.members:
            rep = lib.records[lib.representatives[comp.key]]
            out.append(Entry(comp.name, comp.name, "compound", rep.code, tuple(comp.members), comp.community_code))
    for road in sorted(set(lib.road_towns) | set(lib.road_codes)):
        out.append(Entry(road, road, "road", lib.road_codes.get(road)))
    for code, region in lib.regions.items():
        if region["level"] in ("community", "town"):
            name = str(region["name"])
            out.append(Entry(normalize(name), name, str(region["level"]), code,
                             community_code=code if region["level"] == "community" else None))
    for alias, target in getattr(lib, "aliases", []):
        out += alias_entries(lib, alias, target)
    return out


def alias_entries(lib: AddressLibrary, alias: str, target: str) -> list[Entry]:
    """The suggestion an alias gives: the alias, with the standard name it stands for."""
    entry = lib.alias_entry(normalize(alias), target)
    if entry is None:
        return []
    kind, canonical, poi = entry
    if poi is not None and "building" in poi:
        rec = lib.records[int(poi["building"])]  # type: ignore[arg-type]
        return [Entry(normalize(alias), f"{alias}（{rec.name or rec.address}）", "building", rec.code, (rec.idx,),
                      rec.community_code)]
    if kind == "compound":
        keys = lib.compounds_by_name.get(canonical, [])
        members = tuple(i for k in keys for i in lib.compounds[k].members)
        code = lib.records[lib.representatives[keys[0]]].code if keys else None
        return [Entry(normalize(alias), f"{alias}（{canonical}）", "compound", code, members)]
    level = kind if kind in ("road", "community", "town") else "building"
    code = target if level in ("community", "town") else lib.road_codes.get(canonical)
    return [Entry(normalize(alias), f"{alias}（{canonical}）", level, code)]


def address_entries(lib: AddressLibrary, road: str, doorplate: str, building_code: str, compound: str,
                    building_no: str) -> list[Entry]:
    """The suggestions a standard address gives: its doorplate, and its compound building when named."""
    idx = lib.by_code[building_code]
    rec = lib.records[idx]
    door = f"{normalize(road)}{normalize(doorplate)}"
    out = [Entry(door, door, "building", rec.code, (idx,), rec.community_code)]
    if compound and building_no:
        name = f"{normalize(compound)}{normalize(building_no)}号楼"
        out.append(Entry(name, name, "building", rec.code, (idx,), rec.community_code))
    return out
