"""Splitting a Chinese address into its parts.

``parse("山西省运城市临猗县猗氏镇双塔社区双塔北路12号丰林小区3号楼2单元501")`` gives province 山西省,
city 运城市, county 临猗县, town 猗氏镇, community 双塔社区, road 双塔北路, doorplate 12号, compound 丰林小区,
building 3, unit 2, room 501. Province, city and county come from China's division table (any place in
China, short names too, missing higher levels filled in); the lower parts are recognised by their
suffixes, or, when a :class:`Gazetteer` of known names is given (the matcher passes its own), by name.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Protocol

from gridmap.address.admin import admin_table
from gridmap.address.normalize import normalize

__all__ = ["ParsedAddress", "ParseDetail", "Span", "Gazetteer", "parse", "parse_detail", "FIELDS"]

FIELDS = (
    "province", "city", "county", "town", "community", "road", "doorplate",
    "compound", "building", "unit", "floor", "room",
)  # fmt: skip


@dataclass(slots=True)
class ParsedAddress:
    province: str | None = None
    city: str | None = None
    county: str | None = None
    town: str | None = None
    community: str | None = None
    road: str | None = None
    doorplate: str | None = None
    compound: str | None = None
    building: str | None = None
    unit: str | None = None
    floor: str | None = None
    room: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in FIELDS}  # asdict deep-copies: 10× slower


@dataclass(frozen=True, slots=True)
class Span:
    """A known name found in the text: ``entries`` are (kind, canonical name) pairs, kind one of
    town, community, road, compound, poi."""

    start: int
    end: int
    entries: tuple[tuple[str, str], ...]

    def kinds(self) -> set[str]:
        return {k for k, _ in self.entries}

    def names(self, kind: str) -> list[str]:
        return [n for k, n in self.entries if k == kind]


class Gazetteer(Protocol):
    def scan(self, text: str) -> list[Span]: ...


@dataclass(slots=True)
class ParseDetail:
    """What the matcher needs beyond the parsed fields."""

    normalized: str
    admin_end: int = 0
    province_code: str | None = None
    city_code: str | None = None
    county_code: str | None = None
    county_ambiguous: bool = False
    # the known names found, by field: field → (raw text, canonical names or ())
    known: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    extra_words: list[str] = field(default_factory=list)
    # a doorplate read as a building number, or vice versa, is a guess the matcher may revisit
    bare_number: str | None = None


ROAD_SUFFIXES = ("大街", "大道", "胡同", "路", "街", "巷", "弄", "道")
COMPOUND_SUFFIXES = (
    "小区", "花园", "新村", "家属院", "家属楼", "家园", "公寓", "大厦", "广场", "庄园", "山庄", "苑", "园",
    "府", "城", "湾", "院", "里", "公馆", "名苑", "华庭", "嘉园", "佳苑", "别墅", "楼",
)  # fmt: skip
_BARE_SUFFIXES = set(COMPOUND_SUFFIXES) | {"小区东区", "小区西区", "东区", "西区", "南区", "北区"}

_TOWN_RE = re.compile(r"^([^\d]{1,8}?(?:街道办事处|街道办|街道|镇|乡|苏木))")
_COMMUNITY_RE = re.compile(r"^([^\d]{1,10}?(?:社区居民委员会|社区居委会|社区|居委会|村民委员会|村委会|村))")
_ROAD_RE = re.compile(r"^([^\d]{1,12}?(?:大街|大道|胡同|路|街|巷|弄))")

_BUILDING_MARKS = {"号楼", "栋", "幢", "座", "#"}
_TOKEN = re.compile(
    r"""
     (?P<dash>\d+(?:-\d+)+)(?P<dmark>号楼|号|室|户|栋|幢)?
    |(?P<label>[A-Z])(?P<lmark>号楼|座|栋|幢|号|单元|\#)
    |(?P<num>\d+)(?P<mark>号楼|号院|号|栋|幢|座|\#|单元|层|楼|室|户|门|期|排|组|弄)?
    |(?P<word>[^\d\-\#]+?)(?=\d|-|\#|[A-Z](?:号楼|座|栋|幢|号|单元|\#)|$)
    |(?P<other>[-\#])
    """,
    re.X,
)


@dataclass(slots=True)
class _Word:
    text: str
    kinds: set[str]  # from the gazetteer; empty for generic words
    names: dict[str, list[str]]  # kind → canonical names

    @property
    def known(self) -> bool:
        return bool(self.kinds)

    def generic_kind(self) -> str:
        if self.kinds:
            for k in ("compound", "road", "community", "town", "poi"):
                if k in self.kinds:
                    return k
        if self.text.endswith(ROAD_SUFFIXES) and len(self.text) >= 2:
            return "road"
        return "compound"


def _split_generic(word: str, allow_admin: bool) -> list[tuple[str, str]]:
    """Split an unknown run of characters into (kind, text) parts by suffix."""
    out: list[tuple[str, str]] = []
    rest = word
    if allow_admin:
        m = _TOWN_RE.match(rest)
        if m and rest[m.end() :] not in _BARE_SUFFIXES and not rest[m.end() :].startswith("路"):
            out.append(("town", m.group(1)))
            rest = rest[m.end() :]
        m = _COMMUNITY_RE.match(rest)
        if m:
            after = rest[m.end() :]
            name = m.group(1)
            if not (after.startswith(("新村", "小区", "花园")) or after in _BARE_SUFFIXES or name.endswith("新村")):
                out.append(("community", name))
                rest = after
    m = _ROAD_RE.match(rest)
    if m:
        after = rest[m.end() :]
        if after and after not in _BARE_SUFFIXES and len(after) >= 2:
            out.append(("road", m.group(1)))
            rest = after
    if rest:
        out.append(("word", rest))
    return out


def parse(text: str, gazetteer: Gazetteer | None = None, *, hint: str | None = None) -> ParsedAddress:
    """Parse an address typed any way; fields not present are None."""
    return parse_detail(text, gazetteer, hint=hint)[0]


def parse_detail(
    text: str, gazetteer: Gazetteer | None = None, *, hint: str | None = None, normalized: bool = False
) -> tuple[ParsedAddress, ParseDetail]:
    s = text if normalized else normalize(text)
    p = ParsedAddress()
    d = ParseDetail(normalized=s)
    spans = gazetteer.scan(s) if gazetteer is not None else []

    # 1. province / city / county from the national table
    table = admin_table()
    am = table.match_prefix(s, hint=hint)
    end = am.end
    if end and spans:
        # a known local name (a community called 双塔 when 双塔区 is a county in Liaoning) beats a short name
        first = next((sp for sp in spans if sp.start == 0), None)
        if first is not None and first.end >= end and not s[:end].endswith(("省", "市", "县", "区", "旗")):
            am = table.match_prefix("", hint=hint)
            end = 0
    if am.province is not None:
        p.province, d.province_code = am.province.name, am.province.code
    if am.city is not None:
        p.city, d.city_code = am.city.name, am.city.code
    if am.county is not None:
        p.county, d.county_code = am.county.name, am.county.code
        d.county_ambiguous = am.province is None
    d.admin_end = end

    # 2. tokens of the rest: known names first, generic tokens between them
    tokens: list[tuple[str, Any]] = []
    pos = end
    for sp in spans:
        if sp.end <= pos:
            continue
        if sp.start < pos:
            continue
        if sp.start > pos:
            _tokenize(s[pos : sp.start], tokens, allow_admin=not tokens or _only_admin(tokens))
        names: dict[str, list[str]] = {}
        for k, n in sp.entries:
            names.setdefault(k, []).append(n)
        tokens.append(("word", _Word(s[sp.start : sp.end], set(names), names)))
        pos = sp.end
    if pos < len(s):
        _tokenize(s[pos:], tokens, allow_admin=not tokens or _only_admin(tokens))

    _interpret(tokens, p, d)
    return p, d


def _only_admin(tokens: list[tuple[str, Any]]) -> bool:
    return all(kind == "word" and (val.kinds & {"town", "community"}) for kind, val in tokens)


def _tokenize(segment: str, tokens: list[tuple[str, Any]], *, allow_admin: bool) -> None:
    for m in _TOKEN.finditer(segment):
        if m.group("word") is not None:
            for kind, part in _split_generic(m.group("word"), allow_admin):
                if kind == "word":
                    tokens.append(("word", _Word(part, set(), {})))
                else:
                    tokens.append(("generic", (kind, part)))
            allow_admin = False
        elif m.group("dash") is not None:
            tokens.append(("dash", ([int(x) for x in m.group("dash").split("-")], m.group("dmark"))))
            allow_admin = False
        elif m.group("label") is not None:
            tokens.append(("label", (m.group("label"), m.group("lmark"))))
            allow_admin = False
        elif m.group("num") is not None:
            tokens.append(("num", (str(int(m.group("num"))), m.group("mark"))))
            allow_admin = False


def _interpret(tokens: list[tuple[str, Any]], p: ParsedAddress, d: ParseDetail) -> None:
    """Fill ``p`` from the tokens, left to right (see ``_Interpreter``)."""
    _Interpreter(p, d).run(tokens)


class _Interpreter:
    """Reads tokens left to right into the parsed fields. A word is held back (``pending``) until what
    follows tells what it is: a number with 号 after a road-like word is a doorplate, after anything else
    a building; 单元, 层 or 室 after a word make it the compound the building belongs to. One method per
    kind of token, one per numbered mark."""

    def __init__(self, p: ParsedAddress, d: ParseDetail) -> None:
        self.p, self.d = p, d
        self.pending: _Word | None = None

    def run(self, tokens: list[tuple[str, Any]]) -> None:
        for ti, (kind, val) in enumerate(tokens):
            if kind == "word":
                self.word(self._place_first(val, tokens[ti + 1][0] if ti + 1 < len(tokens) else None))
            elif kind == "generic":
                self.generic(*val)
            elif kind == "label":
                self.label(*val)
            elif kind == "dash":
                self.dash(*val)
            elif kind == "num":
                self.number(*val)
        self.resolve()

    # held-back words ------------------------------------------------------------------------------
    def set_known(self, fieldname: str, w: _Word, kind: str) -> None:
        self.d.known[fieldname] = (w.text, tuple(w.names.get(kind, ())))

    def resolve(self, as_kind: str | None = None) -> None:
        """Settle the held-back word: as ``as_kind``, else as what its generic ending says."""
        p, d = self.p, self.d
        if self.pending is None:
            return
        w, self.pending = self.pending, None
        kind = as_kind or w.generic_kind()
        if kind == "road" and p.road is None:
            p.road = w.names["road"][0] if "road" in w.names and len(w.names["road"]) == 1 else w.text
            self.set_known("road", w, "road")
        elif kind in ("town", "community") and getattr(p, kind) is None:
            setattr(p, kind, w.names[kind][0] if len(w.names.get(kind, ())) == 1 else w.text)
            self.set_known(kind, w, kind)
        elif kind == "poi" and "poi" not in d.known:
            self.set_known("poi", w, "poi")
        elif p.compound is None:
            names = w.names.get("compound", [])
            p.compound = names[0] if len(names) == 1 else w.text
            self.set_known("compound", w, "compound")
        else:
            d.extra_words.append(w.text)

    def building_owner(self) -> None:
        """A building number follows: the word before it is the compound it belongs to (or a road)."""
        pending = self.pending
        if pending is None:
            return
        self.resolve("road" if pending.known and "road" in pending.kinds and "compound" not in pending.kinds
                     else "compound")

    # tokens ---------------------------------------------------------------------------------------
    def _place_first(self, val: _Word, following: str | None) -> _Word:
        """A known name that is also a town or community, followed by more words, before any road or
        compound: the place (双塔 in 双塔丰林小区)."""
        p = self.p
        if val.known and val.kinds & {"town", "community"} and not (val.kinds <= {"town", "community"}):
            k = "community" if "community" in val.kinds else "town"
            if following in ("word", "generic") and getattr(p, k) is None and p.road is None and p.compound is None:
                return _Word(val.text, {k}, {k: val.names[k]})
        return val

    def generic(self, gkind: str, text: str) -> None:
        """A word with a generic ending and nothing known in it: a town, community or road by its ending."""
        p, d = self.p, self.d
        self.resolve()
        field_name = gkind if gkind in ("town", "community") else "road"
        if getattr(p, field_name) is None:
            setattr(p, field_name, text)
        else:
            d.extra_words.append(text)

    def word(self, w: _Word) -> None:
        p = self.p
        if w.known and w.kinds <= {"town", "community"}:
            k = "community" if "community" in w.kinds else "town"
            if getattr(p, k) is None:
                self.resolve()
                setattr(p, k, w.names[k][0] if len(w.names[k]) == 1 else w.text)
                self.set_known(k, w, k)
                return
        self.resolve()
        self.pending = w

    def label(self, label: str, mark: str) -> None:
        self.building_owner()
        if mark == "单元":
            self.p.unit = label
        elif self.p.building is None:
            self.p.building = label

    def dash(self, parts: list[Any], mark: str) -> None:
        """1-2-301: building, unit and room (or a doorplate 12-3号 after a road)."""
        p, pending = self.p, self.pending
        if pending is not None and mark == "号" and len(parts) == 2 and pending.generic_kind() == "road":
            self.resolve("road")
            p.doorplate = f"{parts[0]}-{parts[1]}号"
            return
        if p.building is None:
            self.building_owner()
            b, *rest = parts
            p.building = str(b)
        else:
            rest = parts
        if len(rest) == 1:
            p.room = str(rest[0])
        elif len(rest) == 2:
            p.unit, p.room = str(rest[0]), str(rest[1])
        elif len(rest) >= 3:
            p.unit, p.floor, p.room = str(rest[0]), str(rest[1]), str(rest[-1])

    def number(self, n: str, mark: str | None) -> None:
        if mark in _BUILDING_MARKS:
            self.building_owner()
            if self.p.building is None:
                self.p.building = n
            return
        handler = self._MARKED.get(mark or "")
        if handler is not None:
            handler(self, n)
        elif mark not in ("排", "组"):
            self.bare(n)

    # numbers by their mark ------------------------------------------------------------------------
    def courtyard(self, n: str) -> None:  # 号院
        pending = self.pending
        if pending is not None:
            self.resolve("road" if pending.generic_kind() == "road" or "road" in pending.kinds else None)
        if self.p.doorplate is None:
            self.p.doorplate = f"{n}号"

    def hao(self, n: str) -> None:  # 号: a doorplate after a road, else a building
        p, d, pending = self.p, self.d, self.pending
        if pending is not None:
            roadish = ("road" in pending.kinds) if pending.known else pending.generic_kind() == "road"
            if roadish and p.doorplate is None:
                self.resolve("road")
                p.doorplate = f"{n}号"
            else:
                self.resolve("compound")
                if p.building is None:
                    p.building = n
                    d.bare_number = n
            return
        if p.compound is not None and p.building is None:
            p.building = n
            d.bare_number = n
        elif p.road is not None and p.doorplate is None:
            p.doorplate = f"{n}号"
        elif p.doorplate is not None and p.doorplate.endswith("弄") and p.compound is None:
            p.doorplate += f"{n}号"
        elif p.building is not None and p.room is None:
            p.room = n
        elif p.doorplate is None:
            p.doorplate = f"{n}号"
            d.bare_number = n

    def unit(self, n: str) -> None:  # 单元, 门
        self.building_owner()
        self.p.unit = n

    def floor(self, n: str) -> None:  # 层
        self.building_owner()
        self.p.floor = n

    def lou(self, n: str) -> None:  # 楼: a building after a compound, else a floor
        p = self.p
        if p.building is None and p.unit is None and (self.pending is not None or p.compound is not None):
            self.building_owner()
            p.building = n
        else:
            p.floor = n

    def room(self, n: str) -> None:  # 室, 户
        self.building_owner()
        self.p.room = n

    def phase(self, n: str) -> None:  # 期: part of the compound's name
        if self.pending is not None:
            self.pending = _Word(self.pending.text + f"{n}期", set(), {})
        elif self.p.compound is not None:
            self.p.compound += f"{n}期"

    def lane(self, n: str) -> None:  # 弄
        if self.pending is not None:
            self.resolve("road")
        if self.p.doorplate is None:
            self.p.doorplate = f"{n}弄"

    def bare(self, n: str) -> None:
        """A number without a mark: a doorplate after a road, a building after a compound, else a room."""
        p, pending = self.p, self.pending
        if pending is not None:
            if pending.generic_kind() == "road" and not (pending.known and "compound" in pending.kinds):
                self.resolve("road")
                p.doorplate = f"{n}号"
            else:
                self.resolve("compound")
                p.building = n
            return
        if p.building is not None or p.unit is not None:
            if p.room is None:
                p.room = n
        elif p.compound is not None:
            p.building = n
        elif p.road is not None and p.doorplate is None:
            p.doorplate = f"{n}号"
        else:
            p.room = n

    _MARKED: Final = {"号院": courtyard, "号": hao, "单元": unit, "门": unit, "层": floor, "楼": lou, "室": room,
                      "户": room, "期": phase, "弄": lane}
