"""Matching a free-typed address to a building of the standard address library.

Strategy, cheapest first:

1. **Exact.** The text is normalised and parsed with the library's own names as gazetteer (one
   Aho-Corasick pass finds every known community, road, compound and alias). Compound + building number
   and road + doorplate are then dictionary lookups.
2. **Fuzzy.** Parts that are not known names (typos, a dropped or extra character, a wrong road suffix)
   are looked up in an inverted index by character and pinyin syllable, which narrows ~all names to a
   few dozen, and only those are scored with ``rapidfuzz`` on characters, stems (丰林 for 丰林小区) and
   pinyin (so homophone typos — 风林 for 丰林 — score high).
3. **Pinyin.** Latin letters are read as pinyin (full spelling or initials: ``fenglin xiaoqu 3 hao lou``,
   ``flxq 3#``) against a dictionary of the library's names, then matched as above.

**Ambiguity.** When the two best candidates name different buildings (or compounds) and score within
``AMBIGUITY_MARGIN`` of each other — the same compound name in two communities with no community given,
a building number with no compound — the result is flagged ``ambiguous=True``. Our choice: the result
still carries the best candidate (level, building, address) so that a caller can show it first, but it is
never to be taken silently: the flag is set and the alternatives are in ``candidates``. A building number
alone (``3号楼``) is answered at the area's level (community, town, county) with no building at all.

Unit, floor and room never change which building is matched; they are parsed and echoed in ``parsed``.
Text outside the library's county gives level ``none`` (or the administrative level it did match); only
invalid input (see :func:`check_address`) raises.
"""

from __future__ import annotations

import heapq
import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field
from rapidfuzz import fuzz, process

from gridmap.address import house_numbers
from gridmap.address.admin import admin_table
from gridmap.address.library import AddressLibrary, initials_of, pinyin_of, stem
from gridmap.address.normalize import normalize
from gridmap.address.parse import COMPOUND_SUFFIXES, ParsedAddress, ParseDetail, parse_detail
from gridmap.address.scoring import (
    ALIAS_WEIGHT,
    AMBIGUITY_MARGIN,
    AREA_SCORE,
    BARE_DOORPLATE_PENALTY,
    BARE_ROAD_PENALTY,
    DOORPLATE_AGREES_BONUS,
    DOORPLATE_DISAGREES_PENALTY,
    DOUBLED_FLOOR,
    DROPPED_ENDING_SIM,
    DROPPED_XIAOQU_SIM,
    FIX_BRIDGE_FLOOR,
    FIX_FLOOR,
    FIX_KEEP_MARGIN,
    FUZZY_FLOOR,
    LABEL_ONLY_SCORE,
    LABEL_SHARED_SCORE,
    LONE_BUILDING_PENALTY,
    LOW_CONFIDENCE,
    NEAREST_DOOR_WEIGHT,
    OTHER_PLACE_PENALTY,
    PINYIN_SCORE_CAP,
    REGION_FUZZY_FLOOR,
    ROAD_ALIAS_SIM,
    SOUND_WEIGHT,
    STATED_PLACE_BONUS,
    STEM_WEIGHT,
    SUBSTITUTED_NAME_CAP,
    SWAPPED_NAME_SIM,
    TYPED_AT_DOORPLATE_BONUS,
    UNKNOWN_NUMBER_PENALTY,
)
from gridmap.errors import InvalidInput

__all__ = [
    "AddressMatcher",
    "MatchResult",
    "Location",
    "Candidate",
    "BuildingRef",
    "check_address",
    "MAX_ADDRESS_LENGTH",
    "AMBIGUITY_MARGIN",
]

MAX_ADDRESS_LENGTH = 200
RESULT_CANDIDATES = 8
"""Candidates kept after ranking: five are shown, and the ambiguity test never looks further."""

Level = Literal["building", "compound", "road", "community", "town", "county", "none"]


class BuildingRef(BaseModel):
    code: str
    name: str


class Candidate(BaseModel):
    level: Level
    score: float
    address: str | None = None
    building: BuildingRef | None = None
    community_code: str | None = None


class Location(BaseModel):
    lon: float
    lat: float


class MatchResult(BaseModel):
    level: Level
    score: float = Field(ge=0.0, le=1.0)
    address: str | None = None
    building: BuildingRef | None = Field(
        default=None,
        description="the building matched (building, compound: a representative building); never at road "
        "level: a doorplate the library does not hold is no building",
    )
    code: str | None = Field(
        default=None,
        description="target code: the building (building, compound: a representative building), the road "
        "(road level, when the roads layer has it) or the region (community, town, county)",
    )
    location: Location | None = Field(
        default=None,
        description="road level: where the doorplate typed should be, interpolated between the two known "
        "doorplates of the same side (odd or even) that bracket it (see gridmap.address.house_numbers); None "
        "for a road without a number, or a number outside the known range of its side",
    )
    interpolated: bool = Field(
        default=False,
        description="true when ``location`` is an estimate from neighbouring doorplates, not a building of "
        "the library",
    )
    buildings: list[str] = Field(default_factory=list, description="compound level: all its buildings")
    community_code: str | None = None
    grid_code: str | None = None
    parsed: dict[str, str | None] = Field(default_factory=dict)
    candidates: list[Candidate] = Field(default_factory=list)
    ambiguous: bool = False
    method: Literal["exact", "fuzzy", "pinyin", "none"] = "none"
    unmatched: list[str] = Field(
        default_factory=list,
        description="parts of the text not found in the library (e.g. a compound it does not hold and its "
        "building number): the answer is then the most precise level that is known, with the places the "
        "text resembles as candidates",
    )


def check_address(text: Any) -> str:
    """Reject input no address can be read from; return the text unchanged otherwise."""
    if not isinstance(text, str):
        raise InvalidInput("地址必须是文本")
    if not text.strip():
        raise InvalidInput("地址不能为空")
    if len(text) > MAX_ADDRESS_LENGTH:
        raise InvalidInput(f"地址过长：最多 {MAX_ADDRESS_LENGTH} 个字符，收到 {len(text)} 个")
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Co", "Cn") and ch not in "\t\n\r":
            raise InvalidInput("地址含有控制字符或二进制内容，请输入文字地址")
        if ch == "\ufffd":
            raise InvalidInput("地址含有无法识别的字符（可能是编码错误），请重新输入")
    if not normalize(text):
        raise InvalidInput("地址只含空格或标点，请输入文字地址")
    return text


_PY_MARKS = (
    ("haolou", "号楼"), ("danyuan", "单元"), ("hao", "号"), ("dong", "栋"), ("zhuang", "幢"), ("zuo", "座"),
    ("ceng", "层"), ("lou", "楼"), ("shi", "室"), ("hu", "户"), ("hl", "号楼"), ("dy", "单元"),
)  # fmt: skip


@dataclass(slots=True)
class _Cand:
    level: str
    score: float
    idx: int | None = None  # building record
    compound: int | None = None
    road: str | None = None
    region: str | None = None
    buildings: tuple[int, ...] = ()
    method: str = "exact"
    unmatched: tuple[str, ...] = ()
    """The parts of the text this candidate does not really match (a compound name it only resembles)."""
    spot: house_numbers.HousePosition | None = None
    """Road level, a doorplate the library does not hold: where it should be (None: outside the known range)."""

    def target(self) -> tuple:
        if self.level == "building":
            return ("b", self.idx)
        if self.level == "compound":
            return ("c", self.compound)
        if self.level == "road":
            return ("r", self.road, self.idx, self.region)
        return (self.level, self.region)


_ADMIN_RANK = ("none", "province", "city", "county")
COMPOUND_ENDINGS = tuple(sorted(COMPOUND_SUFFIXES, key=len, reverse=True))
"""Generic endings of compound names, longest first: every ending the parser knows, also those that are not
cut off to make a stem (里, 城, 府, 湾, 楼: 丁香里 keeps its 里 in the stem index). Whether one stands right
after a known name decides whether the text names that compound or a sibling (丁香里 is not 丁香小区)."""
@dataclass(slots=True)
class _Scope:
    """Where the text places the address: the store's counties its province / city / county allow (None:
    nothing stated), and the towns and communities it names inside them (several when a name recurs in
    a city and nothing above it tells them apart)."""

    lib: AddressLibrary
    counties: frozenset[str] | None
    deepest: str
    towns: tuple[str, ...] = ()
    communities: tuple[str, ...] = ()
    unknown_town: bool = False
    """The text names a town the store does not hold: nothing below the county can be answered."""
    unplaced_community: bool = False
    """The text names a community that is not in the towns it states (or anywhere)."""

    def adjust(self, community: str | None, town: str | None) -> float:
        """Score adjustment for a place in ``community`` / ``town`` (see the two constants above)."""
        if self.communities:
            return STATED_PLACE_BONUS if community in self.communities else -OTHER_PLACE_PENALTY
        if self.towns:
            return -OTHER_PLACE_PENALTY if town and town not in self.towns else 0.0
        if self.counties is not None and (town or community):
            return 0.0 if self.lib.county_of(town or community) in self.counties else -OTHER_PLACE_PENALTY
        return 0.0

    def admits_town(self, town: str | None) -> bool:
        if self.towns:
            return town in self.towns
        if self.counties is not None:
            return town is None or self.lib.county_of(town) in self.counties
        return True

    def admitted_towns(self) -> tuple[str, ...] | None:
        """The towns the text allows (every town of the stated counties); None when it states none."""
        if self.towns:
            return self.towns
        if self.counties is not None:
            return self.lib.towns_of(self.counties)
        return None

    def areas(self) -> list[_Cand]:
        """The most precise places the text names, as answers when nothing below them is found."""
        if self.communities:
            return [_Cand("community", AREA_SCORE, region=c) for c in self.communities]
        if self.towns:
            return [_Cand("town", AREA_SCORE, region=t) for t in self.towns]
        if self.deepest == "county" and self.counties:
            return [_Cand("county", AREA_SCORE, region=c) for c in sorted(self.counties)]
        return [_Cand("none", 0.0)]


def _sound_alike(typed: str, typed_stem: str, typed_pinyin: str, known: str, known_stem: str,
                 known_pinyin: str) -> float:
    """How alike two names sound, 0–1: their distinctive parts compared when the generic ends agree (or the
    text has none), so that a shared 小区 adds nothing; the whole names when the ends differ (明株小区 is
    明珠小区 rather than 明珠花园)."""
    stems = fuzz.ratio(pinyin_of(typed_stem), pinyin_of(known_stem)) / 100
    typed_end, known_end = typed[len(typed_stem):], known[len(known_stem):]
    if not typed_end or typed_end == known_end:
        return stems
    return min(stems, fuzz.ratio(typed_pinyin, known_pinyin) / 100)


def _ending_after(text: str, alias: str) -> str:
    """The generic compound ending (花园, 家园, 小区 …) typed right after ``alias`` in ``text``, or ""."""
    at = text.find(alias)
    rest = text[at + len(alias):] if at >= 0 else ""
    return next((suffix for suffix in COMPOUND_ENDINGS if rest.startswith(suffix)), "")


def _han(text: str) -> set[str]:
    """The Chinese characters of ``text``."""
    return {ch for ch in text if "\u4e00" <= ch <= "\u9fff"}


def _another_name(typed: str, typed_stem: str, known: str, known_stem: str) -> bool:
    """Whether ``typed`` may well name another place than ``known`` (issue #12): when

    - both end in a generic word and the words differ (万和家园 / 万和公寓: sibling compounds often share a stem);
    - their distinctive parts have no Chinese character in common (子京 / 紫荆, 铜欣 / 同心): a likeness of sound
      or shape alone is as likely another place as a slip, for a typo changes a character of a name, rarely
      every one;
    - the text's distinctive part is the known one with two or more characters glued after it that are not
      its ending misspelt (长青门第 / 长青小区, but 丰林小去 is 丰林小区): a longer name the library does not hold,
      as ``AddressMatcher._unknown_tail`` says of an alias;
    - the distinctive parts have the same length but characters that do not sound alike (建设新村 / 建业新村).
    """
    typed_end, known_end = typed[len(typed_stem):], known[len(known_stem):]
    if typed_end and known_end and typed_end != known_end:
        return True
    typed_chars = _han(typed_stem)
    if typed_chars and not typed_chars & _han(known_stem):
        return True
    extra = typed_stem[len(known_stem):] if typed_stem.startswith(known_stem) else ""
    if len(extra) >= 2 and len(_han(extra)) == len(extra) and not _han(extra) & _han(known_end) \
            and pinyin_of(extra) != pinyin_of(known_end):
        return True
    if len(typed_stem) != len(known_stem) or typed_stem == known_stem or sorted(typed_stem) == sorted(known_stem):
        return False
    return any(a != b and pinyin_of(a) != pinyin_of(b) for a, b in zip(typed_stem, known_stem))


def _reversed_stem(typed: str, typed_stem: str, known: str, known_stem: str) -> bool:
    """Whether ``typed`` is ``known`` with its two-character distinctive part read backwards and the same
    ending (荣光小区 / 光荣小区, 兴华 / 华兴). Two-character words read both ways are common in names, and
    sibling compounds are named so; a swap inside a longer name (水局利 for 水利局) or across the ending
    (蔷薇区小) garbles it instead, and is a slip."""
    return (len(typed_stem) == len(known_stem) == 2 and typed_stem == known_stem[::-1]
            and typed[len(typed_stem):] == known[len(known_stem):])


def _corrected(name: str, known: tuple[str, Any] | None, corrections: dict[str, float]) -> float:
    """How sure a spelling correction made us of ``name``: the correction's own similarity, also when the
    corrected word reached ``name`` through an alias (福泽家园 → the stem 福泽 → 福泽苑)."""
    if name in corrections:
        return corrections[name]
    raw = known[0] if known else ""
    through = [v for word, v in corrections.items() if raw and (raw in word or word in raw)]
    return min(through, default=1.0)


def _top(cands: list[_Cand]) -> float:
    """The best score among ``cands`` (-1 for none, so that any candidate beats none)."""
    return max((c.score for c in cands), default=-1.0)


def _merge(first: list[tuple[str, float]], then: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Names of both lists, each once with its best score, in order of first appearance."""
    best: dict[str, float] = {}
    for name, score in first + then:
        best[name] = max(score, best.get(name, 0.0))
    return list(best.items())


class AddressMatcher:
    def __init__(self, library: AddressLibrary) -> None:
        self.lib = library
        self.names = library.names
        self._py_extra: dict[str, list[str]] = {}
        chain_names = {name for chain in library.counties.values() for name in chain.names().values()}
        for name in sorted(chain_names):
            if not name:
                continue
            n = normalize(name)
            for form in {n, stem(n, "town"), re.sub(r"(省|市|县|区)$", "", n)}:
                if len(form) >= 2:
                    for key in {pinyin_of(form), initials_of(form)}:
                        if form not in self._py_extra.get(key, []):
                            self._py_extra.setdefault(key, []).append(form)
        self._py_keys = list(self.names.by_pinyin) + list(self._py_extra)
        self._town_codes = [c for c, r in library.regions.items() if r["level"] == "town"]
        self._community_codes = [c for c, r in library.regions.items() if r["level"] == "community"]

    @classmethod
    def from_layers(cls, layers: Mapping[str, Any]) -> AddressMatcher:
        return cls(AddressLibrary.from_layers(layers))

    # ------------------------------------------------------------------ public
    @property
    def edit_lock(self) -> threading.Lock:
        """Held while a staff edit changes the library and while a text is matched: no match sees half
        an edit. (Uncontended it costs well under a microsecond a match.)"""
        lock = self.__dict__.get("_edit_lock")
        if lock is None:
            lock = self.__dict__.setdefault("_edit_lock", threading.Lock())
        return lock

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_edit_lock"}

    def refresh(self) -> None:
        """After staff edits: the pinyin keys of names are listed again."""
        self._py_keys = list(self.names.by_pinyin) + list(self._py_extra)

    def match(self, text: str) -> MatchResult:
        with self.edit_lock:
            return self._match(text)

    def _match(self, text: str) -> MatchResult:
        check_address(text)
        s = normalize(text)
        if re.search(r"[A-Z]{2,}", s):
            texts = self._depinyin(s)
            method = "pinyin"
        else:
            texts = [s]
            method = "exact"
        best: tuple[list[_Cand], ParsedAddress, ParseDetail, list[_Cand]] | None = None
        merged: dict[tuple, _Cand] = {}
        for t in texts:
            cands, p, d, areas = self._analyse(t)
            if best is None or _top(cands) > _top(best[0]):
                best = (cands, p, d, areas)
            for c in cands:
                if method == "pinyin":
                    c.method = "pinyin"
                    c.score = min(c.score, PINYIN_SCORE_CAP)
                key = c.target()
                if key not in merged or merged[key].score < c.score:
                    merged[key] = c
        assert best is not None
        _, p, d, areas = best
        # only the best few are shown or decide ambiguity: a name held by a hundred towns needs no full sort
        cands = heapq.nsmallest(RESULT_CANDIDATES, merged.values(), key=self._order)
        return self._result(cands, p, areas)

    def match_many(self, texts: list[str]) -> list[MatchResult]:
        """Match a batch; invalid rows give level none. Repeated texts are matched once."""
        seen: dict[str, MatchResult] = {}
        out = []
        for t in texts:
            r = seen.get(t) if isinstance(t, str) else None
            if r is None:
                try:
                    r = self.match(t)
                except InvalidInput:
                    r = MatchResult(level="none", score=0.0, parsed={}, method="none")
                if isinstance(t, str):
                    seen[t] = r
            out.append(r)
        return out

    # ------------------------------------------------------------------ pinyin
    def _depinyin(self, s: str) -> list[str]:
        parts = re.split(r"([A-Z]{2,})", s)
        variants = [""]
        for i, part in enumerate(parts):
            if not (part and part.isascii() and part.isalpha() and len(part) >= 2):
                variants = [v + part for v in variants]
                continue
            low = part.lower()
            prefix = ""
            if i > 0 and parts[i - 1][-1:].isdigit():
                for mk, zh in _PY_MARKS:
                    if low.startswith(mk):
                        prefix, low = zh, low[len(mk) :]
                        break
            alternatives = self._segment_pinyin(low) if low else [""]
            variants = [v + prefix + a for v in variants for a in alternatives][:4]
        return variants

    def _py_lookup(self, key: str) -> list[str]:
        return self.names.by_pinyin.get(key, []) + self._py_extra.get(key, [])

    def _segment_pinyin(self, low: str) -> list[str]:
        outs = [""]
        i = 0
        maxlen = max(self.names.pinyin_max, 2)
        while i < len(low):
            hit = None
            for j in range(min(len(low), i + maxlen), i + 1, -1):
                names = self._py_lookup(low[i:j])
                if names:
                    hit = (j, names)
                    break
            if hit is None:
                m = process.extractOne(low[i:], self._py_keys, scorer=fuzz.ratio, score_cutoff=80)
                if m is None:
                    outs = [o + low[i:] for o in outs]
                    break
                hit = (len(low), self._py_lookup(m[0]))
            j, names = hit
            outs = [o + n for o in outs for n in names[:3]][:4]
            i = j
        return outs

    # ------------------------------------------------------------------ analysis
    def _similar(self, query: str, kinds: tuple[str, ...], floor: float = FUZZY_FLOOR,
                 allowed: frozenset[str] | None = None) -> list[tuple[str, str, float]]:
        """(kind, canonical, similarity) of known names like ``query``, best first; only names in
        ``allowed`` when given (the names of the places the text states)."""
        best: dict[tuple[str, str], float] = {}
        qp = pinyin_of(query)
        query_stems = {kind: stem(query, kind) for kind in kinds}
        for name in self.names.candidates(query, kinds, allowed=allowed):
            for kind, canonical in self.names.entries[name]:
                if kind not in kinds or (allowed is not None and canonical not in allowed):
                    continue
                r = fuzz.ratio(query, name) / 100
                swapped = query != name and len(query) == len(name) and sorted(query) == sorted(name)
                reversed_stem = swapped and _reversed_stem(query, query_stems[kind], name, self.names.stems[(name, kind)])
                rs = fuzz.ratio(query_stems[kind], self.names.stems[(name, kind)]) / 100 * STEM_WEIGHT
                # sounds compared on the distinctive part: a shared 小区/家园 must not make 和平小区 sound
                # like 河畔小区 (issue #12); a homophone typo in the stem (风林 for 丰林) still sounds alike
                rp = _sound_alike(query, query_stems[kind], qp, name, self.names.stems[(name, kind)],
                                  self.names.pinyin[name]) * SOUND_WEIGHT
                sim = max(r, rs, rp)
                if reversed_stem:  # 荣光小区 for 光荣小区: a sibling's name as often as a slip
                    sim = SWAPPED_NAME_SIM
                elif swapped:  # 水局利家属院, 蔷薇区小: a garbled name, a slip
                    sim = max(sim, SWAPPED_NAME_SIM)
                # the canonical name's ending: an alias (万和) stands for 万和花园, not for 万和家园
                if _another_name(query, query_stems[kind], canonical, self.names.stems.get((canonical, kind))
                                 or stem(canonical, kind)):
                    sim = min(sim, SUBSTITUTED_NAME_CAP)
                if name != canonical:
                    sim *= ALIAS_WEIGHT
                if sim >= floor and sim > best.get((kind, canonical), 0):
                    best[(kind, canonical)] = sim
        return sorted(((k, c, v) for (k, c), v in best.items()), key=lambda t: -t[2])

    def _regions(self, level: str, p: ParsedAddress, d: ParseDetail, admits) -> tuple[tuple[str, ...], bool]:
        """(codes, stated): the towns or communities called by the stated name that ``admits`` lets in
        (a name may recur in other towns or counties of a city), and whether one was stated at all."""
        raw = getattr(p, level)
        if not raw:
            return (), False
        known = d.known.get(level)
        names = list(known[1]) if known else []
        if not names:
            sims = self._similar(normalize(raw), (level,), floor=REGION_FUZZY_FLOOR)
            names = [c for _, c, v in sims[:1]]
        for n in names:
            codes = tuple(c for c in self.lib.region_code(level, n) if admits(c))
            if codes:
                return codes, True
        return (), True

    def _admin_scope(self, p: ParsedAddress) -> tuple[frozenset[str] | None, str] | None:
        """(counties, deepest): the store's counties whose province / city / county names agree with
        those stated (None when none is stated), and the deepest level stated; None when the text names a
        place outside every county of the store."""
        stated = [(level, normalize(got)) for level in ("province", "city", "county") if (got := getattr(p, level))]
        if not stated or not self.lib.counties:
            return None, "none"
        counties, deepest = set(), "none"
        for code, chain in self.lib.counties.items():
            names, deep = chain.names(), "none"
            for level, got in stated:
                want = names.get(level)
                if not want:
                    continue
                if got != normalize(want):
                    break
                deep = level
            else:
                counties.add(code)
                deepest = max(deepest, deep, key=_ADMIN_RANK.index)
        return (frozenset(counties), deepest) if counties else None

    def _scope(self, p: ParsedAddress, d: ParseDetail) -> _Scope | None:
        """Where the text places the address (see :class:`_Scope`); None when outside the store."""
        lib = self.lib
        admin = self._admin_scope(p)
        if admin is None:
            return None
        counties, deepest = admin
        in_counties = (lambda c: True) if counties is None else (lambda c: lib.county_of(c) in counties)
        towns, town_stated = self._regions("town", p, d, in_counties)
        in_towns = (lambda c: lib.regions[c]["parent_code"] in towns) if towns else in_counties
        communities, community_stated = self._regions("community", p, d, in_towns)
        if communities and not towns:
            towns = tuple(dict.fromkeys(str(lib.regions[c]["parent_code"]) for c in communities))
        if town_stated and not towns:
            # a town that is not the store's: outside our data below the county
            return _Scope(lib, counties, deepest if deepest == "county" else "none", unknown_town=True)
        return _Scope(lib, counties, deepest, towns, communities,
                      unplaced_community=community_stated and not communities)

    _RUN = re.compile(r"[^\d\-#A-Z]+")
    _MARKS = re.compile(r"^(号楼|号院|号|栋|幢|座|单元|层|楼|室|户|门|期|排|组|弄)")
    _KINDS = ("community", "town", "road", "compound", "poi")

    def _correct(self, s: str) -> list[tuple[str, dict[str, float]]]:
        """Spellings of ``s`` with misspelt names (typos, swapped, missing or doubled characters) replaced
        by known names they resemble, each with {name: similarity}; ``[(s, {})]`` when nothing is unknown.

        Only the characters covered by no known name are looked at, each stretch alone or joined to the
        short name (alias) next to it; a few alternatives are kept when they score alike, so that the
        doorplate or building number can tell them apart later."""
        start = admin_table().match_prefix(s, hint=self.lib.adcode_hint).end
        spans = [sp for sp in self.names.scan(s) if sp.start >= start]
        covered: dict[int, Any] = {}
        for sp in spans:
            for k in range(sp.start, sp.end):
                covered[k] = sp
        fixes: list[list[tuple[int, int, str, float]]] = []
        for m in self._RUN.finditer(s, start):
            a, b = m.start(), m.end()
            if a > 0 and s[a - 1].isdigit():
                mk = self._MARKS.match(s, a)
                if mk:
                    a = mk.end()
            i = a
            while i < b:
                if i in covered:
                    i += 1
                    continue
                j = i
                while j < b and j not in covered:
                    j += 1
                # a generic ending alone (家园 after the known 万和) is no misspelling: it names another place
                if not self._MARKS.fullmatch(s[i:j]) and s[i:j] not in COMPOUND_ENDINGS:
                    alts = self._fix_piece(s, i, j, covered)
                    if alts:
                        fixes.append(alts)
                i = j
        if not fixes:
            return [(s, {})]
        variants: list[tuple[list[tuple[int, int, str]], dict[str, float]]] = [([], {})]
        for alts in fixes:
            variants = [(edits + [(a, b, t)], {**sims, t: v}) for edits, sims in variants for a, b, t, v in alts][:4]
        out = []
        for edits, sims in variants:
            text, last = [], 0
            for a, b, t in sorted(edits):
                if a < last:
                    continue
                text.append(s[last:a])
                text.append(t)
                last = b
            text.append(s[last:])
            out.append(("".join(text), sims))
        return out

    def _fix_piece(self, s: str, i: int, j: int, covered: dict[int, Any]) -> list[tuple[int, int, str, float]]:
        before = covered.get(i - 1)
        after = covered.get(j)
        windows = [(i, j, FIX_FLOOR)]
        for sp in (before, after):
            if sp is not None and not any(c == s[sp.start : sp.end] for _, c in sp.entries):
                windows.append((min(i, sp.start), max(j, sp.end), FIX_FLOOR))  # an alias next to the stray part
        if before is not None and after is not None:
            windows.append((before.start, after.end, FIX_BRIDGE_FLOOR))
        found: dict[str, tuple[float, int, int]] = {}
        for a, b, need in windows:
            piece = s[a:b]
            if len(piece) < 2:
                continue
            for _, name, sim in self._similar(piece, self._KINDS, floor=need)[:4]:
                if sim > found.get(name, (0.0,))[0]:
                    found[name] = (sim, a, b)
        if not found and j - i == 1:
            # a doubled or stray character next to a known name: 临晋路路, 丰林小区区
            for sp in (before, after):
                if sp is None:
                    continue
                a, b = min(i, sp.start), max(j, sp.end)
                for _, name, sim in self._similar(s[a:b], self._KINDS, floor=DOUBLED_FLOOR)[:1]:
                    if name == s[sp.start : sp.end] or any(c == name for _, c in sp.entries):
                        found[name] = (sim, a, b)
        if not found:
            return []
        ranked = sorted(found.items(), key=lambda t: -t[1][0])
        top = ranked[0][1][0]
        return [(a, b, name, sim) for name, (sim, a, b) in ranked[:3] if sim >= top - FIX_KEEP_MARGIN]

    def _analyse(self, s: str) -> tuple[list[_Cand], ParsedAddress, ParseDetail, list[_Cand]]:
        best = None
        as_typed: tuple[ParsedAddress, ParseDetail] | None = None
        merged: dict[tuple, _Cand] = {}
        typed_doubts: dict[int, tuple[str, ...]] = {}
        for text, sims in self._correct(s):
            res = self._analyse_one(text, sims)
            if text == s:
                as_typed = (res[1], res[2])
                typed_doubts = {c.compound: c.unmatched for c in res[0] if c.unmatched and c.compound is not None}
            if best is None or _top(res[0]) > _top(best[0]):
                best = res
            for c in res[0]:
                key = c.target()
                if key not in merged or merged[key].score < c.score:
                    merged[key] = c
        assert best is not None
        for c in merged.values():
            # a compound the text as typed may not mean (万和家园 where 万和公寓 is known) stays doubted when a
            # spelling variant reads it more kindly: a correction cannot make another place's name the one typed
            if c.compound in typed_doubts and not c.unmatched:
                c.score = min(c.score, SUBSTITUTED_NAME_CAP)
                c.unmatched = typed_doubts[c.compound]
        doubted = [c for c in merged.values() if c.unmatched]
        if doubted:  # name the compound as typed, not as a spelling variant read it
            typed = self._typed_compound(s, as_typed)
            for c in doubted:
                c.unmatched = (typed or c.unmatched[0], *c.unmatched[1:])
        return list(merged.values()), best[1], best[2], best[3]

    def _typed_compound(self, s: str, parsed: tuple[ParsedAddress, ParseDetail] | None) -> str | None:
        """The compound name as the text has it: its generic ending and the characters before it back to the
        last place the text names (红旗小区 in 中城社区红旗小区2号楼). ``parsed``: the parse of ``s`` when at hand."""
        p, d = parsed or parse_detail(s, self.names, hint=self.lib.adcode_hint, normalized=True)
        if not p.compound:
            return None
        known = d.known.get("compound")
        name = p.compound if p.compound in s or not known else known[0]  # 供电 of 供电里, not 供电家属院
        at = s.rfind(name)
        if at < 0:
            return name
        # and the ending or longer name typed after it (供电里, 检察院门第)
        stop = at + len(name) + len(_ending_after(s[at:], name) or self._unknown_tail(s[at:], name))
        floor = d.admin_end
        for level in ("town", "community"):  # a road alias glued to 小区 is part of the name (红旗小区)
            known = d.known.get(level)
            if known and (end := s.find(known[0])) >= 0 and end + len(known[0]) <= at:
                floor = max(floor, end + len(known[0]))
        start = at
        while start > floor and "\u4e00" <= s[start - 1] <= "\u9fff":
            start -= 1
        return s[start:stop]

    def _analyse_one(
        self, s: str, corrections: dict[str, float]
    ) -> tuple[list[_Cand], ParsedAddress, ParseDetail, list[_Cand]]:
        """Candidates for one spelling: the place the text states, then its compound, road, point of
        interest or bare building number, each scored by how well it fits that place."""
        p, d = parse_detail(s, self.names, hint=self.lib.adcode_hint, normalized=True)
        scope = self._scope(p, d)
        if scope is None:
            return [], p, d, [_Cand("none", 0.0)]
        if scope.unknown_town:
            return [], p, d, scope.areas()
        if corrections and scope.unplaced_community:
            return [], p, d, scope.areas()  # a spelling correction that names a community not there
        method = "fuzzy" if corrections else "exact"
        door = None
        if p.doorplate:
            m = re.match(r"(\d+)", p.doorplate)
            door = int(m.group(1)) if m else None
        comp_names, road_names, method = self._named_parts(p, d, corrections, method, scope, door)
        cands = self._compound_cands(p, scope, comp_names, road_names, door, method)
        doubted = {n for n, v in comp_names if v <= SUBSTITUTED_NAME_CAP}
        if doubted and p.compound:
            known = d.known.get("compound")
            raw = known[0] if known else p.compound
            typed = raw + (_ending_after(d.normalized, raw) or self._unknown_tail(d.normalized, raw))
            parts = (typed, f"{p.building}号楼") if p.building else (typed,)
            for c in cands:
                if c.compound is not None and self.lib.compounds[c.compound].name in doubted:
                    c.unmatched = parts
        cands += self._road_cands(p, scope, comp_names, road_names, door, method)
        if not cands:
            cands = self._poi_cands(d, scope, method)
        if not cands and p.building and not p.compound and not p.road:
            cands = self._label_cands(p, scope, method)
        for c in cands:
            c.score = max(0.0, min(1.0, c.score))
        return cands, p, d, scope.areas()

    def _named_parts(self, p: ParsedAddress, d: ParseDetail, corrections: dict[str, float], method: str,
                     scope: _Scope, door: int | None) -> tuple[list[tuple[str, float]], list[tuple[str, float]], str]:
        """(compounds, roads, method): the known compound and road names the text may mean, each with how
        sure we are of it (1.0 for the name as typed).

        In a city a name may be known only in other towns than the one stated (a wrong road suffix that
        spells another town's road): names like it in the stated places are then looked for too, as for
        a name nobody knows."""
        allowed = self._names_in(scope)
        comp_names: list[tuple[str, float]] = []
        if p.compound:
            known = d.known.get("compound")
            if known and known[1]:
                raw = known[0]
                # an alias (a stem) naming several compounds: 小区 is the suffix most often dropped; but an alias
                # followed by another generic ending (和谐花园 where 和谐小区 is known) may be another place
                ending = _ending_after(d.normalized, raw) or self._unknown_tail(d.normalized, raw) \
                    if raw not in known[1] else ""
                comp_names = [(n, 1.0 if raw == n else SUBSTITUTED_NAME_CAP if ending and not n.endswith(ending)
                               else (DROPPED_XIAOQU_SIM if n.endswith("小区") else DROPPED_ENDING_SIM)) for n in known[1]]
            if not self._here(comp_names, allowed):
                sims = self._similar(normalize(p.compound), ("compound",), allowed=allowed)
                comp_names = _merge(comp_names, [(c, v) for _, c, v in sims[:6]])
                method = "fuzzy"
        road_names: list[tuple[str, float]] = []
        if p.road:
            known = d.known.get("road")
            if known and known[1]:
                road_names = [(n, 1.0 if known[0] == n else ROAD_ALIAS_SIM) for n in known[1]]
            if not self._here(road_names, allowed):
                sims = self._similar(normalize(p.road), ("road",), allowed=allowed)
                road_names = _merge(road_names, [(c, v) for _, c, v in sims[:4]])
                if not comp_names and p.building and not p.doorplate:
                    # a compound whose name ends like a road: 润田巷3号楼
                    sims = self._similar(normalize(p.road), ("compound",), allowed=allowed)
                    comp_names = [(c, v) for _, c, v in sims[:4]]
                method = "fuzzy"
            elif door is not None and not any(self._door_here(n, door, scope) for n, _ in road_names):
                # a doorplate the named road does not have, on a road of nearly the same name: 公园街85号
                # for 公园路85号 (the road typed exists, in another town or without that number)
                sims = self._similar(normalize(p.road), ("road",), allowed=allowed)
                road_names = _merge(road_names, [(c, v) for _, c, v in sims[:4] if self._door_here(c, door, scope)])
        if corrections:
            comp_names = [(n, min(v, _corrected(n, d.known.get("compound"), corrections))) for n, v in comp_names]
            road_names = [(n, min(v, _corrected(n, d.known.get("road"), corrections))) for n, v in road_names]
        return comp_names, road_names, method

    def _unknown_tail(self, text: str, alias: str) -> str:
        """The characters glued to a compound's alias that no known name or building mark explains
        (门第 in 书香门第 where 书香新村 is known): the text names a longer name the library does not hold.
        A mark counts only as the whole run (单元 after the name): a run that merely starts with a mark's
        character (门 of 门第) is no mark, for a mark follows a number, not a name."""
        at = text.find(alias)
        rest = text[at + len(alias):] if at >= 0 else ""
        run = re.match(r"[\u4e00-\u9fff]+", rest)
        if run is None or len(run.group(0)) < 2 or self._MARKS.fullmatch(run.group(0)) \
                or self.names.scan(rest[:len(run.group(0))]):
            return ""
        return run.group(0)

    def _door_here(self, road: str, door: int, scope: _Scope) -> bool:
        """Whether ``road`` has doorplate ``door`` in a town the text allows."""
        idxs = self.lib.road_door.get((road, door), ())
        return any(scope.admits_town(self.lib.records[i].town_code) for i in self.lib.first_per_town(idxs))

    def _names_in(self, scope: _Scope) -> frozenset[str] | None:
        """The road and compound names of the towns the text allows; None when it allows every town."""
        towns = scope.admitted_towns()
        return None if towns is None else self.lib.names_in(towns)

    def _here(self, names: list[tuple[str, float]], allowed: frozenset[str] | None) -> bool:
        """Whether a known name may be meant where the text places it (a name with no known town may)."""
        located = self.lib.located_names
        return bool(names) and (allowed is None or any(n in allowed or n not in located for n, _ in names))

    def _adj(self, scope: _Scope, idx: int, sim: float = 1.0) -> float:
        """How well building ``idx``'s place fits the text (``_Scope.adjust``). A compound name matched with
        less than ``LOW_CONFIDENCE`` (``sim``) gets no bonus for lying in the community stated: the bonus only
        ranks names that are sure by themselves and must not lift a doubtful one (荣光小区 for the 光荣小区 of
        the community named) over the flag; a building number says nothing either, for nearly every compound
        has a 2号楼. A road's doorplate does (the number exists on that road in that community), so answers
        at a doorplate keep the bonus."""
        rec = self.lib.records[idx]
        a = scope.adjust(rec.community_code, rec.town_code)
        return min(a, 0.0) if sim < LOW_CONFIDENCE else a

    def _compound_cands(self, p: ParsedAddress, scope: _Scope, comp_names: list[tuple[str, float]],
                        road_names: list[tuple[str, float]], door: int | None, method: str) -> list[_Cand]:
        """A building of each compound of that name (every town's), or the compound when its number is not
        known there."""
        lib, cands = self.lib, []
        towns = scope.admitted_towns()
        for cname, sim in comp_names:
            for key in lib.compounds_in(cname, towns):
                c = lib.compounds[key]
                rep = lib.representatives[key]
                a = self._adj(scope, rep, sim)
                if door is not None and road_names:
                    if any(c.road == rn for rn, _ in road_names) and c.door == door:
                        a += DOORPLATE_AGREES_BONUS
                    else:
                        a -= DOORPLATE_DISAGREES_PENALTY  # the doorplate typed is another compound's
                if p.building:
                    idx = c.buildings.get(p.building)
                    if idx is not None:
                        cands.append(_Cand("building", sim + a, idx=idx, compound=key, method=method))
                    else:
                        cands.append(_Cand("compound", sim + a - UNKNOWN_NUMBER_PENALTY, idx=rep, compound=key,
                                           buildings=tuple(c.members), method=method))  # fmt: skip
                elif len(c.members) == 1:
                    cands.append(_Cand("building", sim + a - LONE_BUILDING_PENALTY, idx=c.members[0], compound=key,
                                       method=method))
                else:
                    cands.append(_Cand("compound", sim + a, idx=rep, compound=key,
                                       buildings=tuple(c.members), method=method))  # fmt: skip
        return cands

    def _road_cands(self, p: ParsedAddress, scope: _Scope, comp_names: list[tuple[str, float]],
                    road_names: list[tuple[str, float]], door: int | None, method: str) -> list[_Cand]:
        """The building at the doorplate on each road of that name (one per town holding it); a road
        without a number answers at road level. A doorplate the library does not hold is no building: it
        answers at road level too, placed between the known numbers of its side (``house_numbers``) when
        it lies within their range, scored by how well the nearest known doorplate's place fits the text."""
        lib, cands = self.lib, []
        for rname, sim in road_names:
            towns = [t for t in lib.road_towns.get(rname, [None]) if scope.admits_town(t)]
            if door is None:
                if not comp_names:
                    several = len(lib.road_towns.get(rname, ())) > 1
                    cands += [_Cand("road", sim - BARE_ROAD_PENALTY, road=rname, region=t if several else None, method=method)
                              for t in towns or [None]]
                continue
            idxs = lib.road_door.get((rname, door))
            if idxs:
                firsts = lib.first_per_town(idxs)
                here = [i for i in firsts if scope.admits_town(lib.records[i].town_code)]
                cands += [self._at_doorplate(p, scope, comp_names, sim, idx, method) for idx in here or firsts]
                continue
            several = len(lib.road_towns.get(rname, ())) > 1
            for town in towns:
                # the nearest doorplate only tells how well this town fits the text; the answer is the road,
                # at the interpolated position of the number when it lies within its side's known range
                near = lib.nearest_door(rname, door, town)
                if near is not None:
                    cands.append(_Cand("road", sim * NEAREST_DOOR_WEIGHT + self._adj(scope, near), road=rname,
                                       region=town if several else None, method=method,
                                       spot=house_numbers.locate(lib, rname, door, town)))
        return cands

    def _at_doorplate(self, p: ParsedAddress, scope: _Scope, comp_names: list[tuple[str, float]], sim: float,
                      idx: int, method: str) -> _Cand:
        lib = self.lib
        rec = lib.records[idx]
        if not rec.compound:
            # a compound typed, and this doorplate is none
            fit = -DOORPLATE_DISAGREES_PENALTY if comp_names else 0.0
            return _Cand("building", sim + self._adj(scope, rec.idx) + fit, idx=rec.idx, method=method)
        key = next((k for k in lib.compounds_by_name.get(rec.compound, [])
                    if lib.compounds[k].community_code == rec.community_code), None)  # fmt: skip
        c = lib.compounds[key] if key is not None else None
        typed = any(n == rec.compound for n, _ in comp_names)
        # the compound typed is not the one at this doorplate
        other = -DOORPLATE_DISAGREES_PENALTY if comp_names and not typed else 0.0
        if c is not None and p.building and p.building in c.buildings:
            b = c.buildings[p.building]
            fit = -BARE_DOORPLATE_PENALTY if not comp_names else (TYPED_AT_DOORPLATE_BONUS if typed else other)
            return _Cand("building", sim + self._adj(scope, b) + fit, idx=b, compound=key, method=method)
        if c is not None and len(c.members) > 1:
            rep = lib.representatives[c.key]
            return _Cand("compound", sim + self._adj(scope, rep) - LONE_BUILDING_PENALTY + other, idx=rep,
                         compound=key, buildings=tuple(c.members), method=method)  # fmt: skip
        return _Cand("building", sim + self._adj(scope, rec.idx) - LONE_BUILDING_PENALTY + other, idx=rec.idx,
                     method=method)

    def _poi_cands(self, d: ParseDetail, scope: _Scope, method: str) -> list[_Cand]:
        """A station, unit or alias named in the text: its building, or its community."""
        poi = d.known.get("poi")
        if not (poi and poi[1]):
            return []
        cands = []
        for target in self.lib.poi.get(poi[1][0], []):
            if "building" in target:
                idx = int(target["building"])  # type: ignore[arg-type]
                cands.append(_Cand("building", AREA_SCORE + self._adj(scope, idx), idx=idx, method=method))
            elif "region" in target:
                region = str(target["region"])
                a = scope.adjust(region, self.lib.regions[region]["parent_code"])  # type: ignore[arg-type]
                cands.append(_Cand("community", AREA_SCORE + min(a, 0.0), region=region, method=method))
        return cands

    def _label_cands(self, p: ParsedAddress, scope: _Scope, method: str) -> list[_Cand]:
        """A building number alone: every building with that number in the area named, answered at the
        area's level when there are several."""
        lib = self.lib
        area = [
            i for i in lib.buildings_by_label.get(p.building or "", [])
            if (not scope.communities or lib.records[i].community_code in scope.communities)
            and scope.admits_town(lib.records[i].town_code)
        ]  # fmt: skip
        if not area:
            return []
        cands = [_Cand("building", LABEL_SHARED_SCORE if len(area) > 1 else LABEL_ONLY_SCORE, idx=i, method=method)
                 for i in area[:5]]
        places = [a for a in scope.areas() if a.level != "none"]
        if len(area) > 1 and len(places) <= 1:
            place = places[0] if places else _Cand("county", 0.0, region=lib.county_code)
            if place.region is not None:
                cands.insert(0, _Cand(place.level, LABEL_SHARED_SCORE + 1e-6, region=place.region, method=method))
        return cands

    def _order(self, c: _Cand) -> tuple:
        code = self.lib.records[c.idx].code if c.idx is not None else (c.region or c.road or "")
        return (-round(c.score, 6), {"building": 0, "compound": 1, "road": 2}.get(c.level, 3), code)

    # ------------------------------------------------------------------ result
    def _result(self, cands: list[_Cand], p: ParsedAddress, areas: list[_Cand]) -> MatchResult:
        lib = self.lib
        parsed = p.to_dict()
        if not cands and len(areas) > 1:
            cands = areas  # a place name several towns or counties hold: each is a candidate
        candidates = [self._candidate(c) for c in cands[:5]]
        if not cands:
            fb = areas[0] if areas else _Cand("none", 0.0)
            code = fb.region if fb.level != "none" else None
            return MatchResult(
                level=fb.level, score=fb.score if fb.level != "none" else 0.0, code=code,
                address=self._region_address(code) if code else None,
                community_code=code if fb.level == "community" else None,
                parsed=parsed, candidates=[], ambiguous=False, method="none" if fb.level == "none" else "exact",
            )  # fmt: skip
        top = cands[0]
        if top.unmatched:
            return self._fallback(cands, p, areas, list(top.unmatched))
        ambiguous = top.score < LOW_CONFIDENCE
        for other in cands[1:]:
            if other.score < top.score - AMBIGUITY_MARGIN:
                break
            if not self._same_target(top, other):
                ambiguous = True
                break
        if top.level not in ("building", "compound", "road") and len(cands) > 1:
            ambiguous = True
        building = code = address = community = grid = None
        members: list[str] = []
        if top.idx is not None and top.level in ("building", "compound", "road"):
            rec = lib.records[top.idx]
            building = BuildingRef(code=rec.code, name=rec.name)
            address, community, grid = rec.address, rec.community_code, rec.grid_code
            code = rec.code
            if top.level == "compound" and top.compound is not None:
                comp = lib.compounds[top.compound]
                members = [lib.records[i].code for i in comp.members]
                address = self._compound_address(rec)
                grids = {lib.records[i].grid_code for i in comp.members}
                grid = grid if len(grids) == 1 else None
        elif top.level == "road":
            town = lib.records[top.spot.below[1]].town_code if top.spot is not None else top.region
            code = lib.road_line(top.road or "", town)[0]
            address = self._road_address(top)
            if top.spot is not None:  # the community of both neighbours, when they share one
                sides = {lib.records[i].community_code for _, i in (top.spot.below, top.spot.above)}
                community = sides.pop() if len(sides) == 1 else None
        else:
            code = top.region
            address = self._region_address(code) if code else None
            community = code if top.level == "community" else None
        spot = top.spot if top.level == "road" else None
        return MatchResult(
            level=top.level, score=round(top.score, 4), address=address, building=building, code=code,
            location=Location(lon=spot.lon, lat=spot.lat) if spot else None, interpolated=spot is not None,
            buildings=members, community_code=community, grid_code=grid, parsed=parsed,
            candidates=candidates, ambiguous=ambiguous, method=top.method,
        )  # fmt: skip

    def _fallback(self, cands: list[_Cand], p: ParsedAddress, areas: list[_Cand], unmatched: list[str]
                  ) -> MatchResult:
        """The text names a compound the library does not hold (only one it resembles): the answer is the
        most precise place really known (the community, town or county the text states, else none), the
        look-alikes are candidates for staff to choose from, and ``unmatched`` says what was not found."""
        area = areas[0] if areas else _Cand("none", 0.0)
        code = area.region if area.level != "none" else None
        return MatchResult(
            level=area.level, score=area.score if code else 0.0, code=code,
            address=self._region_address(code) if code else None,
            community_code=code if area.level == "community" else None, parsed=p.to_dict(),
            candidates=[self._candidate(c) for c in cands[:5]], ambiguous=len(areas) > 1,
            method="exact" if code else "none", unmatched=unmatched,
        )  # fmt: skip

    def _same_target(self, a: _Cand, b: _Cand) -> bool:
        if a.idx is not None and a.idx == b.idx:
            return True
        if a.level == "compound" and b.level == "building" and b.compound == a.compound:
            return False
        return False

    def _candidate(self, c: _Cand) -> Candidate:
        if c.idx is not None and c.level in ("building", "compound", "road"):
            rec = self.lib.records[c.idx]
            address = rec.address if c.level != "compound" else self._compound_address(rec)
            return Candidate(level=c.level, score=round(c.score, 4), address=address,  # type: ignore[arg-type]
                             building=BuildingRef(code=rec.code, name=rec.name), community_code=rec.community_code)
        address = self._road_address(c) if c.level == "road" else self._region_address(c.region)
        return Candidate(level=c.level, score=round(c.score, 4), address=address,  # type: ignore[arg-type]
                         community_code=c.region if c.level == "community" else None)

    def _compound_address(self, rec) -> str:
        if rec.building_no and rec.address.endswith(rec.name[len(rec.compound):] if rec.compound else ""):
            tail = rec.name[len(rec.compound):] if rec.name.startswith(rec.compound) else ""
            if tail and rec.address.endswith(tail):
                return rec.address[: -len(tail)]
        return rec.address

    def _road_address(self, c: _Cand) -> str | None:
        """A road's name, after its town's address when the name recurs in other towns."""
        return (self._region_address(c.region) or "") + (c.road or "") if c.region else c.road

    def _region_address(self, code: str | None) -> str | None:
        if not code or code not in self.lib.regions:
            return None
        names = []
        cur: str | None = code
        while cur and cur in self.lib.regions:
            names.append(str(self.lib.regions[cur]["name"]))
            cur = self.lib.regions[cur]["parent_code"]  # type: ignore[assignment]
        chain = self.lib.chain_of(code)
        return (chain.prefix() if chain else "") + "".join(reversed(names))
