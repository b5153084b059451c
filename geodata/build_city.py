#!/usr/bin/env python3
"""Tile the sample town (``geodata/linyi/``, 猗氏镇) into a city of N towns over several counties.

For benchmarks and tests at city scale (issue #10): 10 towns are a county, 100 towns a city. Each copy
of the town is shifted on a lattice so that no two copies overlap, and gets its own codes, names and
addresses: a real town of a real county of 运城市 (``sources/yuncheng_1408_divisions.csv``), its own
community, road and compound names (drawn from pools of plausible names), its own workers' names and
phones, station, unit and precinct names, and the incident history of the sample moved with it.

Copy 0 is the sample town itself, unchanged (临猗县猗氏镇, the same codes and names); only the county
outline differs (see below). Copy ``k`` depends on ``k`` and the seed alone, so the 10-town city is the
first tenth of the 100-town city, and two runs write identical files.

What is real: the county and town codes and names. What is not: everything else, including where the
towns lie — counties are boxes around their ten lattice slots, towns are copies of the sample town's
synthetic outline; the map looks nothing like 运城. Counties with fewer than ten town-level divisions
(稷山县 has seven) are topped up with synthetic towns (names like 城关镇, codes after the county's last
real town code); ``Town.real`` says which.

Usage::

    python geodata/build_city.py --towns 10 --out bench/results/city-10   # writes a package folder
    gridmap check bench/results/city-10                                    # 0 errors

From Python (tests, benches): ``build_city(towns, out)`` returns a :class:`City` with the towns and
the feature counts. Never commit generated cities (``bench/results/`` is ignored).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "linyi"
DIVISIONS = HERE / "sources" / "yuncheng_1408_divisions.csv"
SEED = 140800
PROVINCE, CITY = "山西省", "运城市"
SAMPLE_COUNTY, SAMPLE_TOWN = "临猗县", "猗氏镇"
FIRST_COUNTY = "140821"
"""The sample's own county comes first, so copy 0 (the sample town) keeps its real place and codes."""
TOWNS_PER_COUNTY = 10
DX, DY = 0.135, 0.09
"""Lattice step in degrees; the sample town's outline is 0.127° × 0.0835°, so copies keep ~700 m apart."""
COUNTY_BLOCK = (5, 2)
"""A county is a block of 5 × 2 town slots; counties sit two blocks wide, rows alternating north and south
of the sample so that the city stays around 运城's latitudes."""
COUNTY_COLUMNS = 2
ROW_BASE = (0, -2, 2, -4, 4, -6, 6, -8, 8)
FILLER_TOWNS = ("城关镇", "新城镇", "东城镇", "西城镇", "南关镇", "北关镇", "新华镇", "兴华镇", "永安镇", "长乐镇")
LAYER_ORDER = ("regions", "grids", "buildings", "stations", "precincts", "units", "roads")
ROAD_SUFFIXES = ("大道", "大街", "路", "街", "巷")

COMMUNITY_STEMS = (
    "城关 东关 西关 南关 北关 东街 西街 南街 北街 新华 建设 和平 解放 胜利 朝阳 向阳 光明 幸福 团结 文化 育才 "
    "康乐 安居 富民 振兴 兴隆 迎宾 滨河 站前 府前 鼓楼 钟楼 文庙 书院 桃园 杏园 梨园 枣园 果园 槐荫 柳林 龙泉 "
    "凤鸣 永安 长乐 永宁 丰乐 太平 吉祥 如意 和顺 康宁 惠民 利民 新民 阳光 明珠 金水 银湖 东城 西城 南城 北城 "
    "中心 新城 古城 城北 城南 城东 城西 学苑 红旗 前进 工农 青年 复兴 兴华 民主 东风 晨光 曙光"
).split()
ROAD_STEMS_EXTRA = (
    "团结 建国 中山 新华 人民 胜利 文昌 兴华 永兴 长兴 康乐 学院 站前 车站 工业 商业 广场 公园 迎春 春风 钟楼 城隍 "
    "府东 府西 县前 槐荫 柳园 杏园 桃花 梨花 菊花 桂花 荷花 牡丹 紫荆 玉兰 凤凰 龙泉 青龙 白马 金星 银河 红星 曙光 "
    "黎明 晨光 东升 旭日 光华 振华 兴业 建业 安康 康泰 泰安 吉庆 庆丰 丰乐 乐民 惠丰 裕民 福民 兴民 安民 民生 民安 "
    "育英 育红 实验 书香 孔庙 观音 魁星 状元 翰林 宝泉 清泉 甘泉 井泉 古井 石桥 拱桥 东门 西门 南门 北门 盐池 "
    "中条 舜帝 关公 河东 凤鸣 龙兴 文峰 鸣条 太和 永乐 长春 常乐 安泰 永安 新村 新建 新兴 新生 跃进 红卫 五一 "
    "八一 南湖 北湖 西湖 东湖 滨湖 滨河 沿河 河堤 西环 北环 中环 环城 城北 城南 城东 城西 丰收 果园 苗圃 药王"
).split()
COMPOUND_PREFIXES = (
    "阳光 锦绣 康馨 盛世 御景 怡和 金色 华庭 翠柏 碧水 紫荆 丹桂 玉兰 海棠 银杏 梧桐 青松 柳岸 杏林 桃源 "
    "梨香 果香 丰泽 丰源 润泽 嘉禾 鑫源 祥和 和谐 安康 永安 长乐 长青 福馨 福泽 瑞丰 泰和 泰安 兴盛 兴华 "
    "建业 富康 宏达 东方 西城 南城 北城 东城 中兴 明珠 星河 文苑 学府 书香 鼓楼 汇丰 惠民 康乐 晨曦 朝阳 "
    "旭日 温馨 天润 金苑 银河 龙城 凤凰 开元 同心 聚福 锦华 华都 金桂 丰华 富贵 荣华 万和 万家 百合 兰亭 "
    "芳华 春晖 秋实 华兴 康泰 安居 乐居 宜居 翡翠 金鼎 金泰 新城 世纪 时代 振华 恒泰 恒安 德馨 德润 博雅 "
    "水岸 湖畔 滨河 河畔 果都 桃李 芙蓉 牡丹 蔷薇 丁香 紫薇 香樟 绿洲 绿城 山水 清泉 "
    "盛景 欣悦 悦华 景泰 怡景 瑞景 和美 美景 幸福 如意 吉祥 鸿福 鸿运 福源 源盛 盛华 名都 帝景 龙泉 凤鸣 "
    "鸣条 中条 盐湖 河东 舜都 关帝 文昌 魁星 育才 青年 阳春 春华 秋月 夏荷 冬梅 四季 常青 永乐 长安 安泰 "
    "泰丰 丰裕 裕华 华府 锦城 金城 银城 玉城 玉泉 清华 润华"
).split()
COMPOUND_SUFFIXES = {"小区": 6, "花园": 3, "苑": 3, "家园": 2, "新村": 1.5, "公寓": 1, "雅居": 0.7}


@dataclass(frozen=True)
class Town:
    index: int
    county_code: str
    county_name: str
    code: str
    name: str
    real: bool
    """False for a synthetic town that tops up a county with fewer than ten real ones."""
    col: int
    row: int

    @property
    def shift(self) -> tuple[float, float]:
        return (self.col * DX, self.row * DY)

    @property
    def short(self) -> str:
        """The name without 镇/乡/街道, as local names use it (解州镇 → 解州)."""
        return re.sub(r"(街道|镇|乡)$", "", self.name) or self.name


@dataclass
class City:
    out: Path
    towns: list[Town]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def counties(self) -> list[str]:
        return list(dict.fromkeys(t.county_code for t in self.towns))


# ---------------------------------------------------------------------------------------------- plan
def read_divisions(path: Path = DIVISIONS) -> tuple[list[tuple[str, str]], dict[str, list[tuple[str, str]]]]:
    """Counties (code, name) in the city's order and each county's town-level divisions in use order:
    towns (镇, codes 1xx) and townships (乡, 2xx) first, then sub-districts (街道, 0xx)."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    counties = [(r["code"], r["name"]) for r in rows if r["level"] == "county"]
    counties.sort(key=lambda c: (c[0] != FIRST_COUNTY, c[0]))
    towns: dict[str, list[tuple[str, str]]] = {c: [] for c, _ in counties}
    for r in rows:
        if r["level"] == "town":
            towns[r["parent_code"]].append((r["code"], r["name"]))
    for code in towns:
        towns[code].sort(key=lambda t: (t[0][6:] < "100", t[0]))
    return counties, towns


def plan_towns(n: int, per_county: int = TOWNS_PER_COUNTY) -> list[Town]:
    """The first ``n`` towns of the city, ``per_county`` per county (ten: a real county's size; fewer gives
    a small city over several counties, for tests); copy 0 is 临猗县猗氏镇 at its own place."""
    counties, towns = read_divisions()
    if not 1 <= per_county <= TOWNS_PER_COUNTY:
        raise ValueError(f"per_county must be between 1 and {TOWNS_PER_COUNTY}")
    if not 1 <= n <= per_county * len(counties):
        raise ValueError(f"towns must be between 1 and {per_county * len(counties)} (运城市 has "
                         f"{len(counties)} counties, {per_county} towns each)")
    plan = []
    for k in range(n):
        c, t = divmod(k, per_county)
        county_code, county_name = counties[c]
        code, name, real = _town_of(county_code, towns[county_code], t)
        bw, bh = COUNTY_BLOCK
        col = (c % COUNTY_COLUMNS) * bw + t % bw
        row = ROW_BASE[c // COUNTY_COLUMNS] + t // bw
        plan.append(Town(k, county_code, county_name, code, name, real, col, row))
    return plan


def _town_of(county: str, real: list[tuple[str, str]], t: int) -> tuple[str, str, bool]:
    if t < len(real):
        return real[t][0], real[t][1], True
    taken = {name for _, name in real}
    fillers = [f for f in FILLER_TOWNS if f not in taken]
    last = max((int(code[6:]) for code, _ in real if code[6] == "1"), default=99)
    extra = t - len(real)
    return f"{county}{last + 1 + extra:03d}", fillers[extra], False


def county_box(county_index: int, town_bounds: tuple[float, float, float, float]) -> shapely.Polygon:
    """The county's outline: the box around its ten lattice slots, half a gap beyond the town outlines,
    so that neighbouring counties share their edges."""
    minx, miny, maxx, maxy = town_bounds
    gx, gy = DX - (maxx - minx), DY - (maxy - miny)
    bw, bh = COUNTY_BLOCK
    col0 = (county_index % COUNTY_COLUMNS) * bw
    row0 = ROW_BASE[county_index // COUNTY_COLUMNS]
    return shapely.box(minx + col0 * DX - gx / 2, miny + row0 * DY - gy / 2,
                       maxx + (col0 + bw - 1) * DX + gx / 2, maxy + (row0 + bh - 1) * DY + gy / 2)


# ---------------------------------------------------------------------------------------------- sample
class Sample:
    """The sample package, read once, with the parts every copy re-names."""

    def __init__(self, folder: Path = SAMPLE) -> None:
        self.layers: dict[str, pd.DataFrame] = {}
        for name in LAYER_ORDER:
            self.layers[name] = gpd.read_file(folder / f"{name}.geojson")
        self.layers["workers"] = pd.read_csv(folder / "workers.csv", dtype=str, keep_default_na=False)
        path = folder / "incidents.csv"
        self.incidents = pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else None
        regions = self.layers["regions"]
        self.town = regions[regions["level"] == "town"].iloc[0]
        self.communities = regions[regions["level"] == "community"].reset_index(drop=True)
        self.town_bounds = tuple(float(v) for v in self.town.geometry.bounds)
        buildings = self.layers["buildings"]
        for column in ("compound", "building_no"):
            buildings[column] = buildings[column].fillna("")
        self.building_community = self._building_communities()
        self.road_names = list(self.layers["roads"]["name"])
        self.compound_names = sorted({c for c in buildings["compound"] if c})

    def _building_communities(self) -> pd.Series:
        """Each building's community name, read from its address (every address names it)."""
        names = sorted(self.communities["name"], key=len, reverse=True)
        pattern = re.compile("|".join(map(re.escape, names)))
        return self.layers["buildings"]["address"].map(lambda a: pattern.search(a).group(0))


# ---------------------------------------------------------------------------------------------- names
def road_parts(names: list[str]) -> dict[str, tuple[str, str]]:
    """Road name → (stem, rest): 双塔北路 → (双塔, 北路) when 双塔南路 exists too, 南环路 → (南环, 路)."""
    parts = {}
    for name in names:
        suffix = next(s for s in ROAD_SUFFIXES if name.endswith(s))
        parts[name] = (name[: -len(suffix)], suffix)
    stems = [s for s, _ in parts.values()]
    for name, (stem, suffix) in list(parts.items()):
        if stem[-1:] in "东西南北" and sum(s[:-1] == stem[:-1] for s in stems if s[-1:] in "东西南北") > 1:
            parts[name] = (stem[:-1], stem[-1] + suffix)
    return parts


@dataclass
class Names:
    """One copy's renaming: full original names → new names, and a substitution for free text."""

    community: dict[str, str]
    road: dict[str, str]
    compound: dict[str, str]
    prefix: tuple[str, str]
    """(original, new) county + town text, e.g. (临猗县猗氏镇, 盐湖区解州镇)."""

    def __post_init__(self) -> None:
        table = {**self.community, **self.road, **self.compound, self.prefix[0]: self.prefix[1]}
        self._table = table
        self._pattern = re.compile("|".join(map(re.escape, sorted(table, key=len, reverse=True))))

    def text(self, value: str) -> str:
        return self._pattern.sub(lambda m: self._table[m.group(0)], value)


def make_names(sample: Sample, town: Town, rng: np.random.Generator) -> Names:
    prefix = (SAMPLE_COUNTY + SAMPLE_TOWN, town.county_name + town.name)
    if town.index == 0:  # the sample town keeps its names
        return Names({n: n for n in sample.communities["name"]}, {n: n for n in sample.road_names},
                     {n: n for n in sample.compound_names}, prefix)
    stems = [COMMUNITY_STEMS[i] for i in rng.permutation(len(COMMUNITY_STEMS))[: len(sample.communities)]]
    community = {old: stem + "社区" for old, stem in zip(sample.communities["name"], stems)}
    road = _road_names(sample.road_names, rng)
    compound = _compound_names(sample.compound_names, road, rng)
    return Names(community, road, compound, prefix)


def _road_names(names: list[str], rng: np.random.Generator) -> dict[str, str]:
    parts = road_parts(names)
    old_stems = list(dict.fromkeys(stem for stem, _ in parts.values()))
    pool = list(dict.fromkeys(old_stems + ROAD_STEMS_EXTRA))
    new_stems = [pool[i] for i in rng.permutation(len(pool))[: len(old_stems)]]
    stem_map = dict(zip(old_stems, new_stems))
    return {name: stem_map[stem] + rest for name, (stem, rest) in parts.items()}


def _compound_names(names: list[str], road: dict[str, str], rng: np.random.Generator) -> dict[str, str]:
    """Compounds named after a road keep that link (八家巷小区 → the new lane's name + 小区); staff
    compounds (家属院) are shuffled among themselves; the others get names from the pool."""
    roads_long_first = sorted(road, key=len, reverse=True)
    out: dict[str, str] = {}
    staff = [n for n in names if n.endswith("家属院")]
    for old, new in zip(staff, (staff[i] for i in rng.permutation(len(staff)))):
        out[old] = new
    pool = [p + s for p in dict.fromkeys(COMPOUND_PREFIXES) for s in COMPOUND_SUFFIXES if not p.endswith(s)]
    pool_w = np.array([COMPOUND_SUFFIXES[next(s for s in COMPOUND_SUFFIXES if n.endswith(s))] for n in pool])
    order = rng.choice(len(pool), len(pool), replace=False, p=pool_w / pool_w.sum())
    fresh = iter(pool[i] for i in order)
    used = set(out.values())
    for old in names:
        if old in out:
            continue
        on_road = next((r for r in roads_long_first if old.startswith(r)), None)
        new = road[on_road] + old[len(on_road):] if on_road else next(n for n in fresh if n not in used)
        out[old] = new
        used.add(new)
    return out


# ---------------------------------------------------------------------------------------------- copies
def _shift(geoms: np.ndarray, town: Town) -> np.ndarray:
    dx, dy = town.shift
    if town.index == 0:
        return geoms
    offset = np.array([dx, dy])
    return shapely.transform(geoms, lambda c: np.round(c + offset, 7))


def _code(prefix: str, code: str, town: Town) -> str:
    """W0001 → W0010001 in copy 1: the letter, three digits of the copy, the sample's digits."""
    return code if town.index == 0 else f"{prefix}{town.index:03d}{code[len(prefix):]}"


def _codes(series: pd.Series, prefix: str, town: Town) -> pd.Series:
    return series if town.index == 0 else prefix + f"{town.index:03d}" + series.str[len(prefix):]


def copy_town(sample: Sample, town: Town, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    names = make_names(sample, town, rng)
    comm_code = {c: town.code + c[-3:] for c in sample.communities["code"]}
    comm_name = dict(zip(sample.communities["code"], sample.communities["name"].map(names.community)))
    layers = {
        "regions": _regions(sample, town, names, comm_code),
        "grids": _grids(sample, town, comm_code, comm_name),
        "buildings": _buildings(sample, town, names),
        "workers": _workers(sample, town, comm_code, rng),
        "stations": _stations(sample, town, names, comm_code),
        "precincts": _precincts(sample, town, rng),
        "units": _units(sample, town, comm_code),
        "roads": _roads(sample, town, names),
    }
    if sample.incidents is not None:
        layers["incidents"] = _incidents(sample, town, names)
    return layers


def _frame(columns: dict, geoms: np.ndarray) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")


def _regions(sample: Sample, town: Town, names: Names, comm_code: dict[str, str]) -> gpd.GeoDataFrame:
    comm = sample.communities
    codes = [town.code] + [comm_code[c] for c in comm["code"]]
    labels = [town.name] + [names.community[n] for n in comm["name"]]
    geoms = np.concatenate([[sample.town.geometry], comm.geometry.values])
    return _frame({"code": codes, "name": labels, "level": ["town"] + ["community"] * len(comm),
                   "parent_code": [town.county_code] + [town.code] * len(comm)}, _shift(geoms, town))


def _grids(sample: Sample, town: Town, comm_code: dict[str, str], comm_name: dict[str, str]) -> gpd.GeoDataFrame:
    g = sample.layers["grids"]
    number = g["code"].str.rsplit("-", n=1).str[1]
    return _frame({"code": g["community_code"].map(comm_code) + "-" + number,
                   "name": g["community_code"].map(comm_name) + "第" + number.astype(int).astype(str) + "网格",
                   "community_code": g["community_code"].map(comm_code)}, _shift(g.geometry.values, town))


def _buildings(sample: Sample, town: Town, names: Names) -> gpd.GeoDataFrame:
    b = sample.layers["buildings"]
    road = b["road"].map(names.road)
    compound = b["compound"].map(lambda c: names.compound[c] if c else "")
    number = b["building_no"].where(b["building_no"] == "", b["building_no"] + "号楼")
    community = sample.building_community.map(names.community)
    prefix = PROVINCE + CITY + town.county_name + town.name
    name = (compound + number).where(compound != "", road + b["doorplate"])
    return _frame({"code": _codes(b["code"], "B", town), "name": name,
                   "address": prefix + community + road + b["doorplate"] + compound + number,
                   "road": road, "doorplate": b["doorplate"], "compound": compound,
                   "building_no": b["building_no"], "households": b["households"].astype(int),
                   "population": b["population"].astype(int)}, _shift(b.geometry.values, town))


def _workers(sample: Sample, town: Town, comm_code: dict[str, str], rng: np.random.Generator) -> pd.DataFrame:
    w = sample.layers["workers"].copy()
    if town.index == 0:
        return w
    surnames, given = w["name"].str[0].to_numpy(), w["name"].str[1:].to_numpy()
    w["name"] = surnames[rng.permutation(len(w))] + given[rng.permutation(len(w))]
    w["phone"] = w["phone"].str[:3] + pd.Series([f"{v:08d}" for v in rng.integers(0, 10**8, len(w))])
    w["code"] = _codes(w["code"], "W", town)
    grid_comm = w["grid_code"].str.split("-").str[0]
    w["grid_code"] = (grid_comm.map(comm_code) + "-" + w["grid_code"].str.split("-").str[1]).fillna("")
    w["community_code"] = w["community_code"].map(comm_code)
    return w


def _stations(sample: Sample, town: Town, names: Names, comm_code: dict[str, str]) -> gpd.GeoDataFrame:
    s = sample.layers["stations"]
    return _frame({"code": _codes(s["code"], "S", town), "name": s["name"].map(names.text), "kind": s["kind"],
                   "community_code": s["community_code"].map(comm_code), "address": s["address"].map(names.text)},
                  _shift(s.geometry.values, town))


def _precincts(sample: Sample, town: Town, rng: np.random.Generator) -> gpd.GeoDataFrame:
    p = sample.layers["precincts"]
    if town.index == 0:
        return p.copy()
    label = p["name"].map(lambda n: town.short + ("派出所" if n.startswith(SAMPLE_TOWN[:2]) else n))
    phones = [f"0359-{v:07d}" for v in rng.choice(np.arange(2000000, 9999999), len(p), replace=False)]
    return _frame({"code": _codes(p["code"], "P", town), "name": label, "phone": phones},
                  _shift(p.geometry.values, town))


def _unit_name(name: str, town: Town) -> str:
    if town.index == 0:
        return name
    if name == "团县委":
        return f"{town.short}团委"
    for old, new in (("临猗", town.short), (SAMPLE_TOWN, town.name)):
        if old in name:
            return name.replace(old, new)
    return town.short + (name[1:] if name.startswith("县") else name)


def _units(sample: Sample, town: Town, comm_code: dict[str, str]) -> gpd.GeoDataFrame:
    u = sample.layers["units"]
    return _frame({"code": _codes(u["code"], "U", town), "name": u["name"].map(lambda n: _unit_name(n, town)),
                   "category": u["category"], "resources": u["resources"].fillna(""),
                   "community_code": u["community_code"].map(comm_code)}, _shift(u.geometry.values, town))


def _roads(sample: Sample, town: Town, names: Names) -> gpd.GeoDataFrame:
    r = sample.layers["roads"]
    return _frame({"code": _codes(r["code"], "R", town), "name": r["name"].map(names.road)},
                  _shift(r.geometry.values, town))


def _incidents(sample: Sample, town: Town, names: Names) -> pd.DataFrame:
    frame = sample.incidents.copy()
    if town.index == 0:
        return frame
    dx, dy = town.shift
    frame["lon"] = (frame["lon"].astype(float) + dx).round(7).map(_decimal)
    frame["lat"] = (frame["lat"].astype(float) + dy).round(7).map(_decimal)
    frame["description"] = frame["description"].map(names.text)
    return frame


def _decimal(value: float) -> str:
    return f"{value:.7f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------------------------------------- build
def build_city(towns: int, out: Path | str, *, fmt: str = "geojson", sample: Sample | None = None,
               seed: int = SEED, per_county: int = TOWNS_PER_COUNTY) -> City:
    """Write a city of ``towns`` copies of the sample town as a data package folder at ``out``.

    ``fmt``: ``geojson`` (readable, like the sample) or ``gpkg`` (one GeoPackage per layer: much faster to
    read back at 100 towns). Incidents go to ``incidents.csv`` beside the layers.
    """
    if fmt not in ("geojson", "gpkg"):
        raise ValueError("fmt must be geojson or gpkg")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sample = sample or Sample()
    plan = plan_towns(towns, per_county)
    parts: dict[str, list[pd.DataFrame]] = {}
    for town in plan:
        rng = np.random.default_rng([seed, town.index])
        for name, frame in copy_town(sample, town, rng).items():
            parts.setdefault(name, []).append(frame)
    counties = _counties(plan, sample)
    parts["regions"].insert(0, counties)
    city = City(out, plan)
    for name, frames in parts.items():
        frame = pd.concat(frames, ignore_index=True)
        city.counts[name] = len(frame)
        _write(out, name, frame, fmt)
    return city


def _counties(plan: list[Town], sample: Sample) -> gpd.GeoDataFrame:
    counties = list(dict.fromkeys((t.county_code, t.county_name) for t in plan))
    geoms = [county_box(i, sample.town_bounds) for i in range(len(counties))]
    return _frame({"code": [c for c, _ in counties], "name": [n for _, n in counties],
                   "level": ["county"] * len(counties), "parent_code": [""] * len(counties)},
                  np.array(geoms, dtype=object))


def _write(out: Path, name: str, frame: pd.DataFrame, fmt: str) -> None:
    for suffix in (".geojson", ".gpkg", ".csv"):
        (out / f"{name}{suffix}").unlink(missing_ok=True)
    if not isinstance(frame, gpd.GeoDataFrame):
        frame.to_csv(out / f"{name}.csv", index=False, lineterminator="\n")
        return
    frame = frame.set_geometry(shapely.orient_polygons(frame.geometry.values)) if name != "roads" else frame
    if fmt == "gpkg":
        pyogrio.write_dataframe(frame, out / f"{name}.gpkg", layer=name, driver="GPKG")
    else:
        pyogrio.write_dataframe(frame, out / f"{name}.geojson", driver="GeoJSON",
                                layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": 7, "WRITE_NAME": "NO"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--towns", type=int, default=10, help="number of towns (ten per county; at most 130)")
    parser.add_argument("--out", type=Path, required=True, help="package folder to write (created)")
    parser.add_argument("--format", choices=("geojson", "gpkg"), default="geojson")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--per-county", type=int, default=TOWNS_PER_COUNTY,
                        help="towns per county (default ten; fewer makes a small city over several counties)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    city = build_city(args.towns, args.out, fmt=args.format, seed=args.seed, per_county=args.per_county)
    counts = ", ".join(f"{k} {v:,}" for k, v in city.counts.items())
    print(f"{len(city.towns)} towns in {len(city.counties)} counties → {city.out} ({counts}) "
          f"in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
