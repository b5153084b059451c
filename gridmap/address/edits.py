"""Staff edits of the address library, applied to a built library in place: one alias or one standard
address at a time, each returning how to take it back (a correction takes the old version back and
applies the new one). Nothing else of the library is built again: the name index gains or loses a
few rows and makes its automaton again; doorplates and compounds gain or lose one entry.

Callers hold the coverage's edit lock: a lookup never sees half an edit.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from gridmap.address.library import AddressLibrary, Compound, _building_label, _doorplate_number, stem
from gridmap.address.normalize import normalize
from gridmap.errors import InvalidInput

Undo = list[Callable[[], None]]

ALIAS_LENGTH = (2, 50)
"""Shortest and longest alias accepted (characters after normalising): a one-character alias would
match inside every address."""


def apply_alias(lib: AddressLibrary, alias: str, target: str, *, refresh: bool = True) -> Undo:
    """Make ``alias`` another name of ``target`` (see ``AddressLibrary.alias_entry``)."""
    name = normalize(alias)
    if not ALIAS_LENGTH[0] <= len(name) <= ALIAS_LENGTH[1]:
        raise InvalidInput(f"别名应为 {ALIAS_LENGTH[0]}–{ALIAS_LENGTH[1]} 个字，收到“{alias}”")
    entry = lib.alias_entry(name, target)
    if entry is None:
        raise InvalidInput(f"别名指向的“{target}”不在地址库中（应为楼栋、单位、服务站、道路或社区编码，或小区名称）")
    kind, canonical, poi = entry
    undo: Undo = []
    if poi is not None:
        places = lib.poi.setdefault(name, [])
        places.append(poi)
        undo.append(lambda: places.remove(poi))
    lib.names.extend([(name, kind, canonical, True)])
    undo.append(lambda: lib.names.withdraw(name, kind, canonical))
    if refresh:
        lib.forget_caches()
    return undo


def apply_address(lib: AddressLibrary, *, road: str, doorplate: str, building_code: str, compound: str = "",
                  building_no: str = "", refresh: bool = True) -> Undo:
    """A standard address (road and doorplate, optionally the compound and building number it names)
    leading to a known building: its doorplate is found on that road from now on."""
    idx = lib.by_code.get(building_code)
    if idx is None:
        raise InvalidInput(f"楼栋编码 {building_code} 不存在")
    door = _doorplate_number(doorplate)
    road = normalize(road)
    if door is None or not road:
        raise InvalidInput(f"门牌应为“道路 + 号数”，如 府前街224号；收到“{road}{doorplate}”")
    undo: Undo = []
    undo += _add_doorplate(lib, road, door, idx)
    if compound and building_no:
        undo += _add_compound_building(lib, normalize(compound), _building_label(building_no), idx)
    if refresh:
        lib.forget_caches()
    return undo


def _add_doorplate(lib: AddressLibrary, road: str, door: int, idx: int) -> Undo:
    undo: Undo = []
    town = lib.records[idx].town_code
    at_door = lib.road_door[(road, door)]
    if idx not in at_door:
        at_door.append(idx)
        undo.append(lambda: at_door.remove(idx))
    doors = lib.road_doors[(road, town)]
    if not any(d == door for d, _ in doors):
        bisect.insort(doors, (door, idx))
        undo.append(lambda: doors.remove((door, idx)))
    towns = lib.road_towns.setdefault(road, [])
    if town not in towns:
        towns.append(town)
        towns.sort(key=lambda v: v or "")
        undo.append(lambda: towns.remove(town))
    if road not in lib.town_names[town]:
        lib.town_names[town].add(road)
        undo.append(lambda: lib.town_names[town].discard(road))
    if ("road", road) not in lib.names.entries.get(road, []):
        items = [(road, "road", road, False)]
        if stem(road, "road") != road:
            items.append((stem(road, "road"), "road", road, True))
        lib.names.extend(items)
        undo += [lambda n=n, k=k, c=c: lib.names.withdraw(n, k, c) for n, k, c, _ in items]
    return undo


def _add_compound_building(lib: AddressLibrary, name: str, number: str, idx: int) -> Undo:
    """Number ``number`` of compound ``name`` (of the building's community) is this building; a compound
    the library did not know is created with it."""
    rec = lib.records[idx]
    key = next((k for k in lib.compounds_by_name.get(name, []) if lib.compounds[k].community_code == rec.community_code),
               None)
    undo: Undo = []
    if key is None:
        key = len(lib.compounds)
        comp = Compound(key, name, rec.community_code, rec.road, rec.door)
        comp.members.append(idx)
        lib.compounds.append(comp)
        lib.representatives.append(idx)
        town = lib.regions.get(rec.community_code or "", {}).get("parent_code")
        by_name = lib.compounds_by_name[name]
        by_name.append(key)
        by_town = lib.compounds_by_town.setdefault(name, {}).setdefault(town, [])
        by_town.append(key)
        lib.town_names[town].add(name)
        items = [(name, "compound", name, False)]
        if stem(name, "compound") != name:
            items.append((stem(name, "compound"), "compound", name, True))
        lib.names.extend(items)
        undo += [lambda: by_name.remove(key), lambda: by_town.remove(key), lambda: lib.town_names[town].discard(name)]
        undo += [lambda n=n, k=k, c=c: lib.names.withdraw(n, k, c) for n, k, c, _ in items]
    comp = lib.compounds[key]
    if number and number not in comp.buildings:
        comp.buildings[number] = idx
        undo.append(lambda: comp.buildings.pop(number, None))
    if idx not in comp.members:
        comp.members.append(idx)
        undo.append(lambda: comp.members.remove(idx))
    return undo


def take_back(undo: Undo) -> None:
    """Undo an edit's effects, newest first."""
    for step in reversed(undo):
        step()
