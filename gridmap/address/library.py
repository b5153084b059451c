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

__all__ = ["AddressLibrary", "BuildingRecord", "Compound", "CountyChain", "NameIndex", "stem", "pinyin_of",
           "initials_of"]

_COMPOUND_STEM_SUFFIXES = tuple(sorted(set(COMPOUND_SUFFIXES) - {"楼", "城", "府", "里", "湾"}, key=len, reverse=True))
_ROAD_STEM_SUFFIXES = tuple(sorted(ROAD_SUFFIXES, key=len, reverse=True))
_REGION_SUFFIXES = ("社区居委会", "社区", "居委会", "街道办事处", "街道", "镇", "乡", "村委会", "村")
_ROAD_ALIAS_SUFFIXES = ("路", "街", "巷", "大街", "大道", "道")
SYLLABLE_WEIGHT = 0.8
"""A shared pinyin syllable counts for less than a shared character (homophones are weaker evidence)."""
ALLOWED_MASKS_KEPT = 256
"""How many (kinds, allowed names) masks the fuzzy lookup remembers (a few KB each)."""
NAMES_OF_TOWNS_KEPT = 1024
"""How many sets of towns' names are remembered (each set a few thousand names)."""


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


def _single_line(geoms: list) -> shapely.LineString | None:
    """The rows of one road (in one town) as one line, when their pieces join end to end; else None."""
    parts = [g for g in geoms if g is not None and not g.is_empty]
    if not parts:
        return None
    merged = shapely.line_merge(shapely.union_all(parts)) if len(parts) > 1 else shapely.line_merge(parts[0])
    return merged if merged.geom_type == "LineString" else None


@dataclass(frozen=True, slots=True)
class CountyChain:
    """A county of the store with the names above it (from the national division table when its code or
    name is found there): what an address may state before the town."""

    code: str  # the region code in the store
    adcode: str | None  # six-digit national code, when known
    province: str
    city: str
    county: str

    def names(self) -> dict[str, str]:
        return {"province": self.province, "city": self.city, "county": self.county}

    def prefix(self) -> str:
        """Province and city as an address writes them (a municipality once: 北京市, not 北京市北京市)."""
        return self.province if self.city == self.province else self.province + self.city


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

    defer_automaton = False
    """Set while many edits are applied at once (a layer of addresses): the automaton is made once after."""

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
        self._make_automaton()  # none without words: an empty store cannot be searched
        # fuzzy lookups: a sparse matrix of names × features (their characters and pinyin syllables),
        # so that the names sharing most of a query's rarer features are found by one product
        self.fuzzy_names: dict[str, list[str]] = defaultdict(list)  # kind → names (canonical + aliases)
        self.pinyin: dict[str, str] = {}
        self.name_list: list[str] = list(self.entries)
        features: dict[tuple[str, str], int] = {}
        rows, cols = [], []
        for row, (name, entries) in enumerate(self.entries.items()):
            for kind in {k for k, _ in entries}:
                self.fuzzy_names[kind].append(name)
            for key in [("c", ch) for ch in set(name)] + [("s", syl) for syl in set(lazy_pinyin(name))]:
                rows.append(row)
                cols.append(features.setdefault(key, len(features)))
            self.pinyin[name] = pinyin_of(name)
        self.stems = {(name, kind): stem(name, kind) for name, entries in self.entries.items() for kind, _ in entries}
        self.rows_of: dict[tuple[str, str], list[int]] = defaultdict(list)  # (kind, canonical) → name rows
        for row, entries in enumerate(self.entries.values()):
            for kind, canonical in entries:
                self.rows_of[(kind, canonical)].append(row)
        self.rows_of = dict(self.rows_of)
        n = max(1, len(self.name_list))
        self.features = features
        order = np.argsort(np.asarray(cols, dtype=np.int64), kind="stable")
        by_feature = np.asarray(rows, dtype=np.int64)[order]
        bounds = np.searchsorted(np.asarray(cols, dtype=np.int64)[order], np.arange(len(features) + 1))
        self.feature_rows = [by_feature[bounds[i]:bounds[i + 1]] for i in range(len(features))]
        df = np.diff(bounds)
        factor = np.array([1.0 if kind == "c" else SYLLABLE_WEIGHT for kind, _ in features])
        self.feature_weight = factor * (np.log(n / np.maximum(df, 1)) + 0.1)
        self.kind_mask = {kind: np.isin(np.arange(len(self.name_list)), [self._row(m) for m in names])
                          for kind, names in self.fuzzy_names.items()}
        self._allowed_masks: dict[tuple[tuple[str, ...], frozenset[str]], np.ndarray] = {}
        self.n_names = max(1, len(self.entries))
        # pinyin dictionary: full spelling and initials → names
        self.by_pinyin: dict[str, list[str]] = defaultdict(list)
        for name in self.entries:
            for key in {pinyin_of(name), initials_of(name)}:
                if len(key) >= 2 and name not in self.by_pinyin[key]:
                    self.by_pinyin[key].append(name)
        self.pinyin_max = max((len(k) for k in self.by_pinyin), default=0)

    # staff edits: names added or withdrawn one at a time, without building the index again ---------
    def extend(self, items: list[tuple[str, str, str, bool]]) -> None:
        """Add (name, kind, canonical, alias) entries to a finished index: new names get their row in
        the fuzzy index (their features' weights are those of the finished index: a few names more or
        less do not change them much) and the automaton is made again (C code; tens of ms for a city)."""
        for name, kind, canonical, alias in items:
            name = normalize(name)
            if len(name) < 2:
                continue
            if not alias:
                self.canonical[kind].add(canonical)
            entries = self.entries.setdefault(name, [])
            if (kind, canonical) in entries:
                continue
            entries.insert(0, (kind, canonical)) if canonical == name else entries.append((kind, canonical))
            row = self._rows_by_name().get(name)
            if row is None:
                row = self._new_row(name)
            self.kind_mask.setdefault(kind, np.zeros(len(self.name_list), dtype=bool))[row] = True
            self.rows_of.setdefault((kind, canonical), []).append(row)
            self.stems[(name, kind)] = stem(name, kind)
            if name not in self.fuzzy_names[kind]:
                self.fuzzy_names[kind].append(name)
        self._allowed_masks = {}
        if not self.defer_automaton:
            self._make_automaton()

    def withdraw(self, name: str, kind: str, canonical: str) -> None:
        """Take one (kind, canonical) entry of ``name`` out of the index (a corrected or retired alias)."""
        name = normalize(name)
        entries = self.entries.get(name)
        if not entries or (kind, canonical) not in entries:
            return
        entries.remove((kind, canonical))
        row = self._rows_by_name()[name]
        rows = self.rows_of.get((kind, canonical), [])
        if row in rows:
            rows.remove(row)
        if not any(k == kind for k, _ in entries):
            self.kind_mask[kind][row] = False
            if name in self.fuzzy_names[kind]:
                self.fuzzy_names[kind].remove(name)
        if not entries:
            del self.entries[name]
            for key in {pinyin_of(name), initials_of(name)}:
                if name in self.by_pinyin.get(key, []):
                    self.by_pinyin[key].remove(name)
        self._allowed_masks = {}
        if not self.defer_automaton:
            self._make_automaton()

    def _rows_by_name(self) -> dict[str, int]:
        if not hasattr(self, "_rows"):
            self._rows = {m: i for i, m in enumerate(self.name_list)}
        return self._rows

    def _new_row(self, name: str) -> int:
        """A row for a name the finished index did not have: its features, pinyin and masks."""
        row = len(self.name_list)
        self.name_list.append(name)
        self._rows_by_name()[name] = row
        for key in [("c", ch) for ch in set(name)] + [("s", syl) for syl in set(lazy_pinyin(name))]:
            col = self.features.get(key)
            if col is None:
                col = self.features[key] = len(self.features)
                self.feature_rows.append(np.zeros(0, dtype=np.int64))
                weight = (1.0 if key[0] == "c" else SYLLABLE_WEIGHT) * (math.log(self.n_names) + 0.1)
                self.feature_weight = np.append(self.feature_weight, weight)
            self.feature_rows[col] = np.append(self.feature_rows[col], row)
        self.kind_mask = {k: np.append(m, False) for k, m in self.kind_mask.items()}
        self.pinyin[name] = pinyin_of(name)
        for key in {pinyin_of(name), initials_of(name)}:
            if len(key) >= 2 and name not in self.by_pinyin[key]:
                self.by_pinyin[key].append(name)
                self.pinyin_max = max(self.pinyin_max, len(key))
        return row

    def _make_automaton(self) -> None:
        auto = ahocorasick.Automaton()
        for name, entries in self.entries.items():
            auto.add_word(name, (len(name), tuple(entries)))
        if self.entries:
            auto.make_automaton()
        self._automaton = auto if self.entries else None

    def _row(self, name: str) -> int:
        if not hasattr(self, "_rows"):
            self._rows = {m: i for i, m in enumerate(self.name_list)}
        return self._rows[name]

    def scan(self, text: str) -> list[Span]:
        if self._automaton is None or not text:
            return []
        spans = []
        for end, (length, entries) in self._automaton.iter_long(text):
            spans.append(Span(end - length + 1, end + 1, entries))
        return spans

    def candidates(self, query: str, kinds: tuple[str, ...], limit: int = 40,
                   allowed: frozenset[str] | None = None) -> list[str]:
        """Names of the given kinds sharing characters or pinyin syllables with ``query``, best first;
        only names of something in ``allowed`` (canonical names) when it is given."""
        keys = [("c", ch) for ch in set(query)] + [("s", syl) for syl in set(lazy_pinyin(query))]
        cols = [c for key in keys if (c := self.features.get(key)) is not None]
        if not cols:
            return []
        hits = np.concatenate([self.feature_rows[c] for c in cols])
        weights = np.repeat(self.feature_weight[cols], [len(self.feature_rows[c]) for c in cols])
        scores = np.bincount(hits, weights=weights, minlength=len(self.name_list))
        mask = self._mask(kinds, allowed) & (scores > 0)
        rows = np.flatnonzero(mask)
        best = rows[np.argsort(-scores[rows], kind="stable")[:limit]]
        return [self.name_list[i] for i in best]

    def _mask(self, kinds: tuple[str, ...], allowed: frozenset[str] | None) -> np.ndarray:
        """Names of ``kinds`` (and of something in ``allowed``), as a boolean row mask; remembered, since
        the same sets of allowed names come back for every address of a county."""
        key = (kinds, allowed if allowed is not None else frozenset())
        mask = self._allowed_masks.get(key)
        if mask is None:
            mask = np.zeros(len(self.name_list), dtype=bool)
            for kind in kinds:
                mask |= self.kind_mask.get(kind, False)
            if allowed is not None:
                inside = np.zeros(len(self.name_list), dtype=bool)
                for kind in kinds:
                    rows = [r for c in allowed for r in self.rows_of.get((kind, c), ())]
                    inside[rows] = True
                mask &= inside
            if len(self._allowed_masks) >= ALLOWED_MASKS_KEPT:
                self._allowed_masks.clear()
            self._allowed_masks[key] = mask
        return mask


class AddressLibrary:
    """Buildings, compounds, roads and regions of one data package, indexed for matching."""

    def __init__(self) -> None:
        self.records: list[BuildingRecord] = []
        self.by_code: dict[str, int] = {}
        self.compounds: list[Compound] = []
        self.compounds_by_name: dict[str, list[int]] = defaultdict(list)
        self.compounds_by_town: dict[str, dict[str | None, list[int]]] = {}  # name → town → compound keys
        self.representatives: list[int] = []  # compound key → the building that stands for it
        self.road_door: dict[tuple[str, int], list[int]] = defaultdict(list)  # → record idx
        self.road_doors: dict[tuple[str, str | None], list[tuple[int, int]]] = defaultdict(list)
        """(road, town) → sorted (door, idx): a road name may recur in other towns of a city."""
        self.road_codes: dict[str, str] = {}
        self.road_lines: dict[tuple[str, str | None], tuple[str, shapely.LineString | None]] = {}
        """(road, town) → (code, line) from the roads layer (town None: every row of that name); see road_line."""
        self.regions: dict[str, dict[str, str | None]] = {}  # code → {name, level, parent_code}
        self.region_by_name: dict[tuple[str, str], list[str]] = defaultdict(list)  # (level, norm name) → codes
        self.buildings_by_label: dict[str, list[int]] = defaultdict(list)
        self.poi: dict[str, list[dict[str, object]]] = {}  # poi name → [{building idx | region code}]
        self.counties: dict[str, CountyChain] = {}  # every county of the store, in the regions' order
        self.region_county: dict[str, str] = {}  # town or community code → its county's code
        self.county_towns: dict[str, tuple[str, ...]] = {}  # county code → its towns' codes
        self.road_towns: dict[str, list[str | None]] = {}  # road → towns holding its doorplates
        self.town_names: dict[str | None, set[str]] = defaultdict(set)  # town → its roads' and compounds' names
        self._located: frozenset[str] | None = None
        self._names_of_towns: dict[tuple[str, ...], frozenset[str]] = {}
        self.names = NameIndex()
        self._building_tree: tuple[cKDTree, np.ndarray, np.ndarray] | None = None  # built for POIs, then dropped

    # ------------------------------------------------------------------ building
    @classmethod
    def from_layers(cls, layers: Mapping[str, pd.DataFrame]) -> AddressLibrary:
        lib = cls()
        lib._load_regions(layers.get("regions"))
        lib._load_buildings(layers.get("buildings"), layers.get("regions"), layers.get("grids"))
        lib._load_roads(layers.get("roads"), layers.get("regions"))
        lib._load_pois(layers.get("units"), layers.get("stations"))
        lib._building_tree = None
        lib._load_aliases(layers.get("aliases"))
        lib._index_names()
        _load_addresses(lib, layers.get("addresses"))
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
        for code, region in self.regions.items():
            if region["level"] == "county":
                self.counties[code] = _county_chain(code, str(region["name"]))
        for code in self.regions:
            county = self._county_above(code)
            if county is not None:
                self.region_county[code] = county
        towns: dict[str, list[str]] = defaultdict(list)
        for code, region in self.regions.items():
            if region["level"] == "town" and code in self.region_county:
                towns[self.region_county[code]].append(code)
        self.county_towns = {county: tuple(sorted(codes)) for county, codes in towns.items()}

    def _county_above(self, code: str) -> str | None:
        seen: set[str] = set()
        cur: str | None = code
        while cur is not None and cur in self.regions and cur not in seen:
            if self.regions[cur]["level"] == "county":
                return cur
            seen.add(cur)
            cur = self.regions[cur]["parent_code"]  # type: ignore[assignment]
        return None

    # ------------------------------------------------------------------ counties
    @property
    def county_code(self) -> str | None:
        """The store's county when it holds exactly one (a county's pilot); None for a city."""
        return next(iter(self.counties)) if len(self.counties) == 1 else None

    @property
    def adcode_hint(self) -> str | None:
        """A national code that settles place names shared by several provinces or cities (the first
        county's: the counties of one deployment share their city)."""
        return next((c.adcode for c in self.counties.values() if c.adcode), None)

    def county_of(self, code: str | None) -> str | None:
        """The county of a town or community code (the code itself for a county)."""
        if code is None:
            return None
        return code if code in self.counties else self.region_county.get(code)

    @property
    def located_names(self) -> frozenset[str]:
        """Road and compound names whose towns are known."""
        if self._located is None:
            self._located = frozenset().union(*self.town_names.values())
        return self._located

    def names_in(self, towns: tuple[str, ...]) -> frozenset[str]:
        """The road and compound names of ``towns`` (what a text placed there can mean), remembered: a
        county's ten towns are asked for again and again."""
        found = self._names_of_towns.get(towns)
        if found is None:
            if len(self._names_of_towns) >= NAMES_OF_TOWNS_KEPT:
                self._names_of_towns.clear()
            found = self._names_of_towns[towns] = frozenset().union(*(self.town_names.get(t, ()) for t in towns))
        return found

    def towns_of(self, counties: frozenset[str]) -> tuple[str, ...]:
        """The towns of ``counties``, in code order."""
        return tuple(t for county in sorted(counties) for t in self.county_towns.get(county, ()))

    def chain_of(self, code: str | None) -> CountyChain | None:
        county = self.county_of(code)
        return self.counties.get(county) if county else None

    def _community_finder(self, communities: list[tuple[str, str]]):
        """``(address, spatial code) → code`` of the community named in the address.

        One Aho-Corasick pass per address finds every name in it; the earliest name of ``communities``
        (longest first) wins. A name held by several communities (和平社区 in two towns of a city) is
        settled by where the building lies: the community it lies in, else one of the same town, else of
        the same county, else the first.
        """
        rank: dict[str, tuple[int, str]] = {}
        codes: dict[str, list[str]] = defaultdict(list)
        for position, (norm_name, code) in enumerate(communities):
            rank.setdefault(norm_name, (position, norm_name))
            codes[norm_name].append(code)
        if not rank:
            return lambda address, spatial: None
        auto = ahocorasick.Automaton()
        for norm_name, value in rank.items():
            auto.add_word(norm_name, value)
        auto.make_automaton()

        def community_of(address: str, spatial: str | None) -> str | None:
            found = min((value for _, value in auto.iter(address)), default=None)
            return self._settle(codes[found[1]], spatial) if found else None

        return community_of

    def _settle(self, codes: list[str], spatial: str | None) -> str:
        if len(codes) == 1 or spatial is None:
            return codes[0]
        if spatial in codes:
            return spatial
        town = self.regions.get(spatial, {}).get("parent_code")
        county = self.county_of(spatial)
        return (next((c for c in codes if self.regions[c]["parent_code"] == town), None)
                or next((c for c in codes if self.county_of(c) == county), None) or codes[0])

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
            community = community_of(naddr, comm_spatial[i]) or comm_spatial[i]
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
        for rec in self.records:
            if rec.road:
                self.town_names[rec.town_code].add(rec.road)
        for c in self.compounds:
            town = self.regions.get(c.community_code or "", {}).get("parent_code")
            self.town_names[town].add(c.name)
            self.compounds_by_town.setdefault(c.name, {}).setdefault(town, []).append(c.key)
            self.representatives.append(c.representative())
        for (road, door), idxs in self.road_door.items():
            for idx in self.first_per_town(idxs):
                self.road_doors[(road, self.records[idx].town_code)].append((door, idx))
        towns: dict[str, set[str | None]] = defaultdict(set)
        for road, town in self.road_doors:
            self.road_doors[(road, town)].sort()
            towns[road].add(town)
        self.road_towns = {road: sorted(t, key=lambda v: v or "") for road, t in towns.items()}

    def compounds_in(self, name: str, towns: tuple[str, ...] | None) -> list[int]:
        """Keys of the compounds called ``name`` in ``towns`` (and those whose town is unknown); every one
        when ``towns`` is None or none lies there (the text may state the wrong place)."""
        by_town = self.compounds_by_town.get(name)
        if not by_town:
            return []
        if towns is not None:
            found = [k for t in (*towns, None) for k in by_town.get(t, ())]
            if found:
                return found
        return [k for keys in by_town.values() for k in keys]

    def first_per_town(self, idxs: list[int]) -> list[int]:
        """The first building of each town among ``idxs`` (a doorplate recurs in other towns of a city)."""
        seen: dict[str | None, int] = {}
        for idx in idxs:
            seen.setdefault(self.records[idx].town_code, idx)
        return list(seen.values())

    def _load_roads(self, roads, regions) -> None:
        if roads is None or len(roads) == 0:
            return
        names = [normalize(str(n)) for n in roads["name"]]
        road_codes = roads["code"].astype(str).tolist()
        for name, code in zip(names, road_codes, strict=True):
            self.road_codes.setdefault(name, code)
        if not hasattr(roads, "geometry"):
            return
        geoms = roads.geometry.values
        rows: dict[tuple[str, str | None], list[int]] = defaultdict(list)
        for r, name in enumerate(names):
            rows[(name, None)].append(r)  # a building whose town is unknown may stand on any of them
        towns = regions[regions["level"].astype(str) == "town"] if regions is not None and len(regions) else None
        if towns is not None and len(towns):
            # the towns a road of the roads layer runs through: a name known there may be meant there
            ri, ti = shapely.STRtree(towns.geometry.values).query(geoms, predicate="intersects")
            codes = towns["code"].astype(str).to_numpy()
            for r, t in zip(ri.tolist(), ti.tolist(), strict=True):
                self.town_names[str(codes[t])].add(names[r])
                rows[(names[r], str(codes[t]))].append(r)
        for key, found in rows.items():
            self.road_lines[key] = (road_codes[found[0]], _single_line([geoms[r] for r in found]))

    def road_line(self, road: str, town: str | None) -> tuple[str | None, shapely.LineString | None]:
        """(code, line) of ``road`` in ``town`` from the roads layer: the code of its first row there, and
        its geometry when the rows of that name there join into one line (None when absent, or in several
        separate parts: a number cannot be placed along a road whose pieces it cannot tell apart)."""
        found = self.road_lines.get((road, town)) or self.road_lines.get((road, None))
        return found if found is not None else (self.road_codes.get(road), None)

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
                    self.poi.setdefault(name, []).append(target)

    def alias_entry(self, alias: str, target: str) -> tuple[str, str, dict[str, object] | None] | None:
        """What an alias names: (kind, canonical name, the POI target a building or unit alias adds),
        or None when the target is not in the library. Targets: a building code, a unit's or
        station's code or name, a town or community code, a road code, or a compound's name."""
        if target in self.by_code:
            return "poi", alias, {"code": target, "building": self.by_code[target]}
        if target in self.regions and self.regions[target]["level"] in ("town", "community"):
            return str(self.regions[target]["level"]), normalize(str(self.regions[target]["name"])), None
        road = next((r for r, c in self.road_codes.items() if c == target), None)
        if road is not None:
            return "road", road, None
        name = normalize(target)
        if name in self.compounds_by_name:
            return "compound", name, None
        for places in self.poi.values():
            for place in places:
                if place.get("code") == target and place is not None:
                    return "poi", alias, place
        return None

    def forget_caches(self) -> None:
        """After an edit: the name sets per town are computed again when next asked for."""
        self._located = None
        self._names_of_towns = {}

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
        for alias, target in getattr(self, "aliases", []):
            entry = self.alias_entry(alias, target)
            if entry is not None:
                kind, canonical, poi = entry
                if poi is not None:
                    self.poi.setdefault(alias, [poi])
                names.add(alias, kind, canonical, alias=True)
        names.finish()

    # ------------------------------------------------------------------ helpers
    def region_code(self, level: str, name: str) -> list[str]:
        return self.region_by_name.get((level, normalize(name)), [])

    def nearest_door(self, road: str, door: int, town: str | None) -> int | None:
        """The building of ``road`` in ``town`` whose doorplate is nearest to ``door`` (same side first)."""
        doors = self.road_doors.get((road, town))
        if not doors:
            return None
        return min(doors, key=lambda t: (abs(t[0] - door), (t[0] - door) % 2, t[0]))[1]


def _load_addresses(lib: AddressLibrary, addresses: pd.DataFrame | None) -> None:
    """The standard addresses layer: each doorplate leads to its building (a shop front or a back gate
    on another road than the building's own); applied as staff edits are, after the index is built."""
    if addresses is None or len(addresses) == 0:
        return
    from gridmap.address.edits import apply_address  # edits build on the library: imported when used

    lib.names.defer_automaton = True
    try:
        for row in addresses.itertuples(index=False):
            if str(row.building_code) in lib.by_code and _doorplate_number(row.doorplate) is not None:
                apply_address(lib, road=str(row.road), doorplate=str(row.doorplate), compound=str(row.compound or ""),
                              building_no=str(row.building_no or ""), building_code=str(row.building_code),
                              refresh=False)
    finally:
        lib.names.defer_automaton = False
    lib.names._make_automaton()
    lib.forget_caches()


def _county_chain(code: str, name: str) -> CountyChain:
    """The county's province and city from the national table: by its code's first six digits, else by
    its name when only one county has it."""
    table = admin_table()
    div = table.by_code.get(code[:6])
    if div is None or div.level != "county":
        found = table.lookup(normalize(name), "county")
        div = found[0] if len(found) == 1 else None
    if div is None:
        return CountyChain(code, None, "", "", name)
    province, city, _ = table.chain(div)
    return CountyChain(code, div.code, province.name if province else "", city.name if city else "", name)
