"""China's province / city / county division table, read from the ``cpca`` package's adcode table.

Recognises full names (山西省, 运城市, 盐湖区) and common short forms (山西, 运城, 盐湖) at the start of an
address, resolves names shared by several places from the levels given around them, and fills the
missing higher levels from a lower one (盐湖区 → 运城市, 山西省).
"""

from __future__ import annotations

import csv
import importlib.resources
import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Division", "AdminTable", "admin_table", "AdminMatch"]


@dataclass(frozen=True, slots=True)
class Division:
    code: str  # six-digit adcode
    name: str
    level: str  # province | city | county
    parent: str | None  # adcode of the enclosing division (a pseudo-city such as 市辖区 is skipped)

    @property
    def province_code(self) -> str:
        return self.code[:2] + "0000"


@dataclass(frozen=True, slots=True)
class AdminMatch:
    province: Division | None
    city: Division | None
    county: Division | None
    end: int  # characters of the text consumed


_PROVINCE_SUFFIX = re.compile(r"(壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区|省|市)$")
_CITY_SUFFIX = re.compile(r"(自治州|地区|盟|市)$")
_COUNTY_SUFFIX = re.compile(r"(自治县|自治旗|林区|特区|新区|县|区|市|旗)$")
# characters that start a road, compound or lower division name: a short form followed by one of these
# is a street or estate named after a place (山西路, 长安花园), not the place itself
_NAME_FOLLOWERS = (
    "路", "街", "大街", "大道", "道", "巷", "胡同", "弄", "里", "小区", "花园", "苑", "园", "新村", "村",
    "社区", "公寓", "大厦", "广场", "家园", "府", "城", "号", "中学", "小学", "大学", "医院", "公园",
)
_DIRECTIONS = ("北", "南", "东", "西")
_TOWN_AFTER = re.compile(r"^[^\d]{1,5}?(镇|乡|街道)")
_PSEUDO_CITIES = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}


def _load_rows() -> list[tuple[str, str]]:
    path = importlib.resources.files("cpca") / "resources" / "adcodes.csv"
    with path.open("r", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return [(row["adcode"][:6], row["name"]) for row in reader]


def _load_nations() -> list[str]:
    try:
        text = (importlib.resources.files("cpca") / "resources" / "56_nations.csv").read_text("utf-8")
    except (FileNotFoundError, OSError):  # pragma: no cover
        return []
    names = [w.strip() for w in re.split(r"[\s,]+", text) if w.strip()]
    out = []
    for n in names:
        out.append(n)
        if n.endswith("族"):
            out.append(n[:-1])
    return sorted(set(out), key=len, reverse=True)


class AdminTable:
    def __init__(self, rows: list[tuple[str, str]]) -> None:
        self.by_code: dict[str, Division] = {}
        pseudo: set[str] = set()
        for code, name in rows:
            if code.endswith("0000"):
                level, parent = "province", None
            elif code.endswith("00"):
                level, parent = "city", code[:2] + "0000"
            else:
                level, parent = "county", code[:4] + "00"
            if level == "city" and name in _PSEUDO_CITIES:
                pseudo.add(code)
            self.by_code[code] = Division(code, name, level, parent)
        for code in pseudo:
            del self.by_code[code]
        # counties under a pseudo-city hang directly from the province
        for code, div in list(self.by_code.items()):
            if div.level == "county" and div.parent not in self.by_code:
                self.by_code[code] = Division(code, div.name, "county", code[:2] + "0000")
        nations = _load_nations()
        self.names: dict[str, list[tuple[Division, bool]]] = {}  # name → [(division, is_full_name)]
        for div in self.by_code.values():
            self._add(div.name, div, True)
            for short in self._short_names(div, nations):
                if short != div.name and len(short) >= 2:
                    self._add(short, div, False)
        self.max_len = max(len(n) for n in self.names)

    def _add(self, name: str, div: Division, full: bool) -> None:
        entries = self.names.setdefault(name, [])
        if all(d.code != div.code for d, _ in entries):
            entries.append((div, full))

    @staticmethod
    def _short_names(div: Division, nations: list[str]) -> list[str]:
        name = div.name
        suffix = {"province": _PROVINCE_SUFFIX, "city": _CITY_SUFFIX, "county": _COUNTY_SUFFIX}[div.level]
        out = []
        stem = suffix.sub("", name)
        if stem != name:
            out.append(stem)
        if "自治" in name:
            stem = re.sub(r"自治(州|县|旗|区)$", "", name)
            changed = True
            while changed:
                changed = False
                for nation in nations:
                    if stem.endswith(nation) and len(stem) - len(nation) >= 2:
                        stem = stem[: -len(nation)]
                        changed = True
                        break
            out.append(stem)
        return out

    def parent(self, div: Division | None) -> Division | None:
        if div is None or div.parent is None:
            return None
        return self.by_code.get(div.parent)

    def chain(self, div: Division) -> tuple[Division | None, Division | None, Division | None]:
        """(province, city, county) of a division; a municipality's city is itself."""
        province = city = county = None
        if div.level == "county":
            county = div
            up = self.parent(div)
            if up is not None and up.level == "city":
                city, province = up, self.parent(up)
            else:
                province = up
        elif div.level == "city":
            city, province = div, self.parent(div)
        else:
            province = div
        if city is None and province is not None and province.name.endswith("市"):
            city = province  # 北京市, 上海市, 天津市, 重庆市
        return province, city, county

    def _candidates(self, text: str, pos: int) -> list[tuple[int, Division, bool]]:
        """Divisions whose name starts at text[pos], longest first."""
        out = []
        for length in range(min(self.max_len, len(text) - pos), 1, -1):
            entries = self.names.get(text[pos : pos + length])
            if entries:
                out.extend((length, div, full) for div, full in entries)
        return out

    def match_prefix(self, text: str, hint: str | None = None) -> AdminMatch:
        """Read province, city and county names from the start of ``text`` (each optional, in order).

        ``hint`` is an adcode used to choose between places sharing a name when the text does not.
        """
        pos = 0
        found: dict[str, Division] = {}
        for _ in range(3):
            if pos >= len(text):
                break
            best = None
            for length, div, full in self._candidates(text, pos):
                if div.level in found:
                    continue
                if any(_rank(lv) >= _rank(div.level) for lv in found):
                    continue  # order is province → city → county
                rest = text[pos + length :]
                if not full and rest.startswith(_NAME_FOLLOWERS + ("市", "县", "区") + _DIRECTIONS) \
                        and not _TOWN_AFTER.match(rest):
                    continue  # 临猗东路 is a road; 临猗东张镇 and 新绛城关镇 are towns of 临猗县 and 新绛县
                if not full and not found:
                    # a bare short name needs another division, or a town, after it to count
                    if not self._followed_by_division(rest) and div.level != "province":
                        continue
                score = self._consistency(div, found, hint)
                if score < 0:
                    continue
                key = (score, length, full)
                if best is None or key > best[0]:
                    best = (key, length, div)
            if best is None:
                break
            _, length, div = best
            # several places may share the name: pick the one consistent with what is known
            found[div.level] = div
            pos += length
            # tolerate a repeated suffix ("运城市市")
        province, city, county = found.get("province"), found.get("city"), found.get("county")
        county, city, province = self._resolve(county, city, province, text, hint)
        return AdminMatch(province, city, county, pos)

    def _followed_by_division(self, rest: str) -> bool:
        if not rest:
            return False
        if re.match(r"^[^\d]{1,6}?(镇|乡|街道)", rest):
            return True
        return bool(self._candidates(rest, 0))

    def _consistency(self, div: Division, found: dict[str, Division], hint: str | None) -> int:
        score = 0
        for above in found.values():
            if not div.code.startswith(above.code[: 2 if above.level == "province" else 4]):
                return -1
            score += 2
        if hint and div.code[:2] == hint[:2]:
            score += 1
            if div.code[:4] == hint[:4]:
                score += 1
        return score

    def _resolve(self, county, city, province, text, hint):
        # the same name can denote several divisions: choose the one consistent with the others
        if county is not None:
            same = [d for d, _ in self.names.get(county.name, []) if d.level == "county"]
            ok = [d for d in same if self._compatible(d, city, province)]
            if len(ok) > 1 and hint:
                pref = [d for d in ok if d.code[:4] == hint[:4]] or [d for d in ok if d.code[:2] == hint[:2]]
                ok = pref or ok
            if len(ok) == 1:
                county = ok[0]
                p, c, _ = self.chain(county)
                province, city = province or p, city or c
            elif city is None and province is None:
                # ambiguous county name with nothing above it: keep the name, leave higher levels empty
                pass
        if city is not None and province is None:
            province = self.chain(city)[0]
        return county, city, province

    def _compatible(self, div: Division, city: Division | None, province: Division | None) -> bool:
        if city is not None and not div.code.startswith(city.code[:4]) and city.level == "city":
            return False
        if province is not None and not div.code.startswith(province.code[:2]):
            return False
        return True

    def lookup(self, name: str, level: str | None = None) -> list[Division]:
        return [d for d, _ in self.names.get(name, []) if level is None or d.level == level]


def _rank(level: str) -> int:
    return {"province": 0, "city": 1, "county": 2}[level]


@lru_cache(maxsize=1)
def admin_table() -> AdminTable:
    return AdminTable(_load_rows())
