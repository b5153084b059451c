"""The standard address library: every building of the data package, reachable by its parts.

Built once from the layers (buildings, regions, grids, roads, stations, units and an optional aliases
layer) and read-only afterwards. It holds

* the building records with their community, town and grid;
* compounds (a compound name inside one community), their buildings by number, their doorplate;
* roads with their doorplates;
* a :class:`NameIndex` — one Aho-Corasick automaton over every known name and alias (the gazetteer the
  parser uses), plus an inverted index by character and pinyin syllable that narrows fuzzy lookups to a
  few dozen names before any string is scored, and a pinyin dictionary (full spelling and initials).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import ahocorasick
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree
from pypinyin import Style, lazy_pinyin

from gridmap.address.admin import admin_table
from gridmap.address.normalize import normalize
from gridmap.address.parse import COMPOUND_SUFFIXES, ROAD_SUFFIXES, Span

__all__ = ["AddressLibrary", "BuildingRecord", "Compound", "NameIndex", "stem", "pinyin_of", "initials_of"]

_COMPOUND_STEM_SUFFIXES = tuple(sorted(set(COMPOUND_SUFFIXES) - {"楼", "城", "府", "里", "湾"}, key=len, reverse=True))
_ROAD_STEM_SUFFIXES = tuple(sorted(ROAD_SUFFIXES, key=len, reverse=True))
_REGION_SUFFIXES = ("社区居委会", "社区", "居委会", "街道办事处", "街道", "镇", "乡", "村委会", "村")
_ROAD_ALIAS_SUFFIXES = ("路", "街", "巷", "大街", "大道", "道")


def stem(name: str, kind: str) -> str:
    suffixes = {
        "compound": _COMPOUND_STEM_SUFFIXES,
        "road": _ROAD_STEM_SUFFIXES,
        "community": _REGION_SUFFIXES,
        "town": _REGION_SUFFIXES,
    }.get(kind, ())
    for suf in suffixes:
        if name.endswith(suf) and len(name) - len(suf) >= 2:
            return name[: -len(suf)]
    return name


@lru_cache(maxsize=65536)
def pinyin_of(text: str) -> str:
    return "".join(lazy_pinyin(text, errors=lambda x: list(x.lower()))).lower()


@lru_cache(maxsize=65536)
def initials_of(text: str) -> str:
    return "".join(
        p[:1] for p in lazy_pinyin(text, style=Style.FIRST_LETTER, errors=lambda x: list(x.lower()))
    ).lower()


def _doorplate_number(doorplate: str) -> int | None:
    m = re.match(r"(\d+)", normalize(str(doorplate or "")))
    return int(m.group(1)) if m else None


def _building_label(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = normalize(str(value))
    text = re.sub(r"(号楼|号|栋|幢|座|#)$", "", text)
    if text.isdigit():
        return str(int(text))
    return text


@dataclass(slots=True)
class BuildingRecord:
    idx: int
    code: str
    name: str
    address: str
    road: str  # normalised
    door: int | None
    compound: str  # normalised, "" when none
    building_no: str  # normalised label, "" when none
    community_code: str | None
    town_code: str | None
    grid_code: str | None
    x: float
    y: float

    def __reduce__(self) -> tuple:
        """Pickled as a constructor call (the coverage cache holds one per building: 3× faster to load
        than slots restored one attribute at a time)."""
        return (BuildingRecord, tuple(getattr(self, name) for name in self.__slots__))


@dataclass(slots=True)
class Compound:
    key: int
    name: str
    community_code: str | None
    road: str
    door: int | None
    buildings: dict[str, int] = field(default_factory=dict)  # building label → record idx
    members: list[int] = field(default_factory=list)

    def __reduce__(self) -> tuple:
        return (Compound, tuple(getattr(self, name) for name in self.__slots__))

    def representative(self) -> int:
        def order(label: str) -> tuple[int, str]:
            return (int(label), "") if label.isdigit() else (10**9, label)

        if self.buildings:
            return self.buildings[min(self.buildings, key=order)]
        return self.members[0]


class NameIndex:
    """Every known name (normalised) → [(kind, canonical)], with the scanners the matcher needs."""

    def __init__(self) -> None:
        self.entries: dict[str, list[tuple[str, str]]] = {}
        self.canonical: dict[str, set[str]] = defaultdict(set)  # kind → canonical names
        self._automaton: ahocorasick.Automaton | None = None

    def add(self, name: str, kind: str, canonical: str, *, alias: bool) -> None:
        name = normalize(name)
        if len(name) < 2:
            return
        if not alias:
            self.canonical[kind].add(canonical)
        entries = self.entries.setdefault(name, [])
        if (kind, canonical) not in entries:
            entries.append((kind, canonical))

    def finish(self) -> None:
        # an alias equal to the canonical name of something else is dropped: the real name wins
        # a name that is the real name of one thing and an alias of another keeps both, the real one first
        for name, entries in list(self.entries.items()):
            real = [(k, c) for k, c in entries if c == name]
            self.entries[name] = real + [e for e in entries if e not in real]
        auto = ahocorasick.Automaton()
        for name, entries in self.entries.items():
            auto.add_word(name, (len(name), tuple(entries)))
        if self.entries:  # an automaton without words cannot be searched (an empty store)
            auto.make_automaton()
            self._automaton = auto
        # inverted index for fuzzy lookups: character and pinyin syllable → names
        self.fuzzy_names: dict[str, list[str]] = defaultdict(list)  # kind → names (canonical + aliases)
        self.by_char: dict[str, set[str]] = defaultdict(set)
        self.by_syllable: dict[str, set[str]] = defaultdict(set)
        self.pinyin: dict[str, str] = {}
        for name, entries in self.entries.items():
            for kind in {k for k, _ in entries}:
                self.fuzzy_names[kind].append(name)
            for ch in set(name):
                self.by_char[ch].add(name)
            for syl in set(lazy_pinyin(name)):
                self.by_syllable[syl].add(name)
            self.pinyin[name] = pinyin_of(name)
        self.n_names = max(1, len(self.entries))
        # pinyin dictionary: full spelling and initials → names
        self.by_pinyin: dict[str, list[str]] = defaultdict(list)
        for name in self.entries:
            for key in {pinyin_of(name), initials_of(name)}:
                if len(key) >= 2 and name not in self.by_pinyin[key]:
                    self.by_pinyin[key].append(name)
        self.pinyin_max = max((len(k) for k in self.by_pinyin), default=0)

    def scan(self, text: str) -> list[Span]:
        if self._automaton is None or not text:
            return []
        spans = []
        for end, (length, entries) in self._automaton.iter_long(text):
            spans.append(Span(end - length + 1, end + 1, entries))
        return spans

    def candidates(self, query: str, kinds: tuple[str, ...], limit: int = 40) -> list[str]:
        """Names of the given kinds sharing characters or pinyin syllables with ``query``, best first."""
        weights: dict[str, float] = defaultdict(float)
        for ch in set(query):
            names = self.by_char.get(ch)
            if names:
                w = math.log(self.n_names / len(names)) + 0.1
                for n in names:
                    weights[n] += w
        for syl in set(lazy_pinyin(query)):
            names = self.by_syllable.get(syl)
            if names:
                w = 0.8 * (math.log(self.n_names / len(names)) + 0.1)
                for n in names:
                    weights[n] += w
        wanted = [n for n in weights if any(k in kinds for k, _ in self.entries[n])]
        wanted.sort(key=lambda n: -weights[n])
        return wanted[:limit]


class AddressLibrary:
    """Buildings, compounds, roads and regions of one data package, indexed for matching."""

    def __init__(self) -> None:
        self.records: list[BuildingRecord] = []
        self.by_code: dict[str, int] = {}
        self.compounds: list[Compound] = []
        self.compounds_by_name: dict[str, list[int]] = defaultdict(list)
        self.road_door: dict[tuple[str, int], list[int]] = defaultdict(list)  # → record idx
        self.road_doors: dict[str, list[tuple[int, int]]] = defaultdict(list)  # road → sorted (door, idx)
        self.road_codes: dict[str, str] = {}
        self.regions: dict[str, dict[str, str | None]] = {}  # code → {name, level, parent_code}
        self.region_by_name: dict[tuple[str, str], list[str]] = defaultdict(list)  # (level, norm name) → codes
        self.buildings_by_label: dict[str, list[int]] = defaultdict(list)
        self.poi: dict[str, dict[str, object]] = {}  # canonical poi name → {building idx | region code}
        self.county_code: str | None = None
        self.county_adcode: str | None = None
        self.chain_names: dict[str, str] = {}  # province/city/county → name for the package's county
        self.names = NameIndex()
        self._building_tree: tuple[cKDTree, np.ndarray, np.ndarray] | None = None  # built for POIs, then dropped

    # ------------------------------------------------------------------ building
    @classmethod
    def from_layers(cls, layers: Mapping[str, pd.DataFrame]) -> AddressLibrary:
        lib = cls()
        lib._load_regions(layers.get("regions"))
        lib._load_buildings(layers.get("buildings"), layers.get("regions"), layers.get("grids"))
        lib._load_roads(layers.get("roads"))
        lib._load_pois(layers.get("units"), layers.get("stations"))
        lib._building_tree = None
        lib._load_aliases(layers.get("aliases"))
        lib._index_names()
        return lib

    def _load_regions(self, regions: pd.DataFrame | None) -> None:
        if regions is None or len(regions) == 0:
            return
        for row in regions.itertuples(index=False):
            code, name, level = str(row.code), str(row.name), str(row.level)
            parent = getattr(row, "parent_code", None)
            parent = None if parent is None or (isinstance(parent, float) and math.isnan(parent)) else str(parent)
            self.regions[code] = {"name": name, "level": level, "parent_code": parent or None}
            self.region_by_name[(level, normalize(name))].append(code)
        counties = [c for c, r in self.regions.items() if r["level"] == "county"]
        if counties:
            self.county_code = counties[0]
            name = str(self.regions[counties[0]]["name"])
            table = admin_table()
            adcode = self.county_code[:6] if self.county_code[:6] in table.by_code else None
            div = table.by_code.get(adcode) if adcode else None
            if div is None:
                found = table.lookup(normalize(name), "county")
                div = found[0] if len(found) == 1 else None
            if div is not None:
                self.county_adcode = div.code
                province, city, county = table.chain(div)
                self.chain_names = {
                    "province": province.name if province else "",
                    "city": city.name if city else "",
                    "county": name,
                }
            else:
                self.chain_names = {"county": name}

    @staticmethod
    def _community_finder(communities: list[tuple[str, str]]):
        """``address → code`` of the first community of ``communities`` whose name occurs in the address.

        One Aho-Corasick pass per address finds every name in it; the earliest in ``communities`` wins
        (the same answer as testing each name in turn, without a loop over all communities per building).
        """
        rank: dict[str, tuple[int, str]] = {}
        for position, (norm_name, code) in enumerate(communities):
            rank.setdefault(norm_name, (position, code))
        if not rank:
            return lambda address: None
        auto = ahocorasick.Automaton()
        for norm_name, value in rank.items():
            auto.add_word(norm_name, value)
        auto.make_automaton()

        def community_of(address: str) -> str | None:
            found = min((value for _, value in auto.iter(address)), default=None)
            return found[1] if found else None

        return community_of

    def _load_buildings(self, buildings, regions, grids) -> None:
        if buildings is None or len(buildings) == 0:
            return
        communities = sorted(
            ((normalize(str(r["name"])), c) for c, r in self.regions.items() if r["level"] == "community"),
            key=lambda t: -len(t[0]),
        )
        geoms = buildings.geometry.values if hasattr(buildings, "geometry") else None
        points = shapely.point_on_surface(geoms) if geoms is not None else None
        grid_of: list[str | None] = [None] * len(buildings)
        comm_spatial: list[str | None] = [None] * len(buildings)
        if points is not None:
            if grids is not None and len(grids):
                tree = shapely.STRtree(grids.geometry.values)
                pi, gi = tree.query(points, predicate="intersects")
                codes = grids["code"].astype(str).to_numpy()
                for p_, g_ in sorted(zip(pi.tolist(), gi.tolist(), strict=True), key=lambda t: (t[0], codes[t[1]])):
                    if grid_of[p_] is None:
                        grid_of[p_] = str(codes[g_])
            if regions is not None and len(regions):
                comm = regions[regions["level"].astype(str) == "community"]
                if len(comm):
                    tree = shapely.STRtree(comm.geometry.values)
                    pi, ci = tree.query(points, predicate="intersects")
                    ccodes = comm["code"].astype(str).to_numpy()
                    for p_, c_ in zip(pi.tolist(), ci.tolist(), strict=True):
                        if comm_spatial[p_] is None:
                            comm_spatial[p_] = str(ccodes[c_])
        community_of = self._community_finder(communities)
        # vectorised and memoised: one shapely call for all points, each distinct doorplate or number once
        xs = shapely.get_x(points) if points is not None else None
        present = ~(shapely.is_missing(points) | shapely.is_empty(points)) if points is not None else None
        door_of, label_of = lru_cache(maxsize=None)(_doorplate_number), lru_cache(maxsize=None)(_building_label)
        ys = shapely.get_y(points) if points is not None else None
        compound_key: dict[tuple[str | None, str], int] = {}
        cols = {c: buildings[c].tolist() if c in buildings.columns else [""] * len(buildings) for c in
                ("code", "name", "address", "road", "doorplate", "compound", "building_no")}
        for i in range(len(buildings)):
            code = str(cols["code"][i])
            address = str(cols["address"][i] or "")
            naddr = normalize(address)
            community = community_of(naddr) or comm_spatial[i]
            town = self.regions.get(community, {}).get("parent_code") if community else None
            compound = cols["compound"][i]
            compound = "" if compound is None or (isinstance(compound, float) and math.isnan(compound)) else normalize(str(compound))
            x = y = float("nan")
            if present is not None and present[i]:
                x, y = xs[i], ys[i]
            rec = BuildingRecord(
                idx=i, code=code, name=str(cols["name"][i] or ""), address=address,
                road=normalize(str(cols["road"][i] or "")), door=door_of(cols["doorplate"][i]),
                compound=compound, building_no=label_of(cols["building_no"][i]),
                community_code=community, town_code=town, grid_code=grid_of[i], x=x, y=y,
            )  # fmt: skip
            self.records.append(rec)
            self.by_code[code] = i
            if rec.building_no:
                self.buildings_by_label[rec.building_no].append(i)
            if compound:
                key = compound_key.get((community, compound))
                if key is None:
                    key = len(self.compounds)
                    compound_key[(community, compound)] = key
                    self.compounds.append(Compound(key, compound, community, rec.road, rec.door))
                    self.compounds_by_name[compound].append(key)
                c = self.compounds[key]
                c.members.append(i)
                if rec.building_no and rec.building_no not in c.buildings:
                    c.buildings[rec.building_no] = i
            if rec.road and rec.door is not None:
                self.road_door[(rec.road, rec.door)].append(i)
        for (road, door), idxs in self.road_door.items():
            self.road_doors[road].append((door, idxs[0]))
        for road in self.road_doors:
            self.road_doors[road].sort()

    def _load_roads(self, roads) -> None:
        if roads is None or len(roads) == 0:
            return
        for row in roads.itertuples(index=False):
            self.road_codes.setdefault(normalize(str(row.name)), str(row.code))

    def _nearest_building(self, x: float, y: float, max_deg: float = 0.001) -> int | None:
        """The building whose point is nearest to (x, y), strictly within ``max_deg`` (lowest index on a tie).

        A KD-tree over the buildings' points finds the few within reach; the distances are then taken
        exactly as a scan over every building would take them, so the answer is the scan's.
        """
        if self._building_tree is None:
            xy = np.array([(r.x, r.y) for r in self.records], dtype=float).reshape(-1, 2)
            usable = np.flatnonzero(np.isfinite(xy).all(axis=1))
            self._building_tree = (cKDTree(xy[usable]), usable, xy)
        tree, usable, xy = self._building_tree
        if not len(usable):
            return None
        near = usable[tree.query_ball_point((x, y), r=max_deg * (1 + 1e-9))]
        if not len(near):
            return None
        near.sort()
        d = (xy[near, 0] - x) ** 2 + (xy[near, 1] - y) ** 2
        best = int(np.argmin(d))
        return int(self.records[near[best]].idx) if d[best] < max_deg**2 else None

    def _load_pois(self, units, stations) -> None:
        for layer in (units, stations):
            if layer is None or len(layer) == 0:
                continue
            has_geom = hasattr(layer, "geometry")
            for i, row in enumerate(layer.itertuples(index=False)):
                name = normalize(str(row.name))
                target: dict[str, object] = {"code": str(row.code), "name": str(row.name)}
                if has_geom:
                    g = layer.geometry.values[i]
                    if g is not None and not g.is_empty:
                        near = self._nearest_building(g.x, g.y)
                        if near is not None:
                            target["building"] = near
                comm = getattr(row, "community_code", None)
                if comm is not None and str(comm) in self.regions:
                    target["region"] = str(comm)
                if "building" in target or "region" in target:
                    self.poi[name] = target

    def _load_aliases(self, aliases) -> None:
        self.aliases: list[tuple[str, str]] = []
        if aliases is None or len(aliases) == 0:
            return
        for row in aliases.itertuples(index=False):
            alias, target = normalize(str(row.alias)), str(row.target_code)
            if alias:
                self.aliases.append((alias, target))

    def _index_names(self) -> None:
        names = self.names
        for code, r in self.regions.items():
            level = str(r["level"])
            if level not in ("town", "community"):
                continue
            n = normalize(str(r["name"]))
            names.add(n, level, n, alias=False)
            s = stem(n, level)
            if s != n:
                names.add(s, level, n, alias=True)
        road_names = {rec.road for rec in self.records if rec.road} | set(self.road_codes)
        for road in road_names:
            names.add(road, "road", road, alias=False)
        for road in road_names:
            s = stem(road, "road")
            if s != road:
                names.add(s, "road", road, alias=True)
                for suf in _ROAD_ALIAS_SUFFIXES:
                    if s + suf != road and s + suf not in road_names:
                        names.add(s + suf, "road", road, alias=True)
        for name in self.compounds_by_name:
            names.add(name, "compound", name, alias=False)
        for name in self.compounds_by_name:
            s = stem(name, "compound")
            if s != name:
                names.add(s, "compound", name, alias=True)
        for name in self.poi:
            names.add(name, "poi", name, alias=False)
        road_codes = set(self.road_codes.values())
        road_of_code: dict[str, str] = {}
        for road, code in self.road_codes.items():
            road_of_code.setdefault(code, road)
        for alias, target in getattr(self, "aliases", []):
            if target in self.by_code:
                self.poi.setdefault(alias, {"code": target, "building": self.by_code[target]})
                names.add(alias, "poi", alias, alias=True)
            elif target in self.regions and self.regions[target]["level"] in ("town", "community"):
                level = str(self.regions[target]["level"])
                names.add(alias, level, normalize(str(self.regions[target]["name"])), alias=True)
            elif target in road_codes:
                names.add(alias, "road", road_of_code[target], alias=True)
            else:
                # a compound named by one of its buildings' codes, or by its own name
                comp = normalize(target)
                if comp in self.compounds_by_name:
                    names.add(alias, "compound", comp, alias=True)
        names.finish()

    # ------------------------------------------------------------------ helpers
    def region_code(self, level: str, name: str) -> list[str]:
        return self.region_by_name.get((level, normalize(name)), [])

    def nearest_door(self, road: str, door: int) -> int | None:
        doors = self.road_doors.get(road)
        if not doors:
            return None
        return min(doors, key=lambda t: (abs(t[0] - door), (t[0] - door) % 2, t[0]))[1]
