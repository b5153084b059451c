#!/usr/bin/env python3
"""Build the sample county data package ``geodata/linyi/`` (临猗县猗氏镇, county seat of Linyi, Shanxi).

Real inputs (``geodata/sources/``): the county boundary (GCJ-02, converted to WGS84 here) and the
official division codes and names. Everything else — the town outline, the street network, the
grids, buildings, stations, units, workers and precincts — is synthetic but plausible, generated
from a seeded numpy RNG so that running the script twice gives byte-identical files.

How the geometry stays exact: the town is laid out on a street lattice of irregularly spaced
meridians and parallels (north-south / east-west streets). The lattice nodes are rounded to 7
decimals ONCE, and every block, grid and community polygon is assembled from those rounded nodes,
so neighbours share identical vertices and rounding cannot open gaps or overlaps. Buildings are laid
out in metres (UTM, ``metric_crs``), set back from the road centre lines (the block edges), and
therefore never cross a grid edge.

Usage: ``python geodata/build_linyi.py`` (writes ``geodata/linyi/``, then re-reads and checks it).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, shape

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from gridmap.geo import WGS84, gcj02_to_wgs84, gdf_gcj02_to_wgs84, metric_crs  # noqa: E402
from gridmap.schema import LAYERS  # noqa: E402

SOURCES = HERE / "sources"
OUT = HERE / "linyi"
SEED = 140821
PREFIX = "山西省运城市临猗县猗氏镇"
COUNTY_CODE, TOWN_CODE = "140821", "140821100"
CENTRE_GCJ = (110.77493, 35.141883)  # 猗氏镇 / county seat centre as published on Amap (GCJ-02)

rng = np.random.default_rng(SEED)

# ----------------------------------------------------------------------------------------------
# Coordinate frame: metres in the local UTM zone, origin at the town centre
# ----------------------------------------------------------------------------------------------
_clon, _clat = (float(v) for v in gcj02_to_wgs84(*CENTRE_GCJ))
MCRS = metric_crs(_clon, _clat)
_TO_M = pyproj.Transformer.from_crs(WGS84, MCRS, always_xy=True)
_TO_LL = pyproj.Transformer.from_crs(MCRS, WGS84, always_xy=True)
E0, N0 = _TO_M.transform(_clon, _clat)


def to_ll(xy: np.ndarray) -> np.ndarray:
    """Local metres (n, 2) -> WGS84 lon/lat rounded to 7 decimals."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    lon, lat = _TO_LL.transform(xy[:, 0] + E0, xy[:, 1] + N0)
    return np.round(np.column_stack([lon, lat]), 7)


def round7(geom):
    return shapely.transform(geom, lambda c: np.round(c, 7))


# ----------------------------------------------------------------------------------------------
# Real sources
# ----------------------------------------------------------------------------------------------
def read_sources():
    raw = json.loads((SOURCES / "cnmaps_amap_140821.geojson").read_text(encoding="utf-8"))
    assert raw["type"] == "MultiPolygon" and raw.get("properties", {}).get("adcode") == COUNTY_CODE
    gcj = gpd.GeoDataFrame(geometry=[shape({"type": raw["type"], "coordinates": raw["coordinates"]})])
    county = round7(gdf_gcj02_to_wgs84(gcj).geometry.iloc[0])
    if county.geom_type == "Polygon":
        county = MultiPolygon([county])
    assert county.is_valid
    with open(SOURCES / "linyi_140821_divisions.csv", encoding="utf-8", newline="") as fh:
        rows = [{k: v.strip() for k, v in r.items()} for r in csv.DictReader(fh)]
    names = {r["code"]: r["name"] for r in rows}
    communities = sorted(
        (r["code"], r["name"].removesuffix("居民委员会"))
        for r in rows
        if r["parent_code"] == TOWN_CODE and r["name"].endswith("社区居民委员会")
    )
    return county, names, communities


COUNTY_GEOM, DIV_NAMES, COMMUNITIES = read_sources()
assert DIV_NAMES[COUNTY_CODE] == "临猗县" and DIV_NAMES[TOWN_CODE] == "猗氏镇"
assert len(COMMUNITIES) == 13, COMMUNITIES
COMM_NAME = dict(COMMUNITIES)
COMM_BY_NAME = {n: c for c, n in COMMUNITIES}

# ----------------------------------------------------------------------------------------------
# Street lattice
# ----------------------------------------------------------------------------------------------
NX, NY = 20, 18  # blocks west-east, south-north


def _lines(n: int, span: float) -> np.ndarray:
    w = 180 + rng.uniform(-28, 28, n)
    w *= span / w.sum()
    return np.concatenate([[0.0], np.cumsum(w)]) - span / 2


XS, YS = _lines(NX, 3600.0), _lines(NY, 3240.0)
# The seat's streets run north-south and east-west, as in most county towns of the Fen-Wei plain:
# lattice lines are meridians and parallels in WGS84, so every block and grid edge is exactly
# horizontal or vertical in lon/lat (a point interpolated on a shared edge lies exactly on it).
LONS = to_ll(np.column_stack([XS, np.zeros_like(XS)]))[:, 0]
LATS = to_ll(np.column_stack([np.zeros_like(YS), YS]))[:, 1]
NODE_LL = np.zeros((NX + 1, NY + 1, 2))
for _i in range(NX + 1):
    for _j in range(NY + 1):
        NODE_LL[_i, _j] = (LONS[_i], LATS[_j])
_e, _n = _TO_M.transform(NODE_LL[..., 0].ravel(), NODE_LL[..., 1].ravel())
NODE = np.column_stack([np.asarray(_e) - E0, np.asarray(_n) - N0]).reshape(NX + 1, NY + 1, 2)


def base_centre(c):
    i, j = c
    return (XS[i] + XS[i + 1]) / 2, (YS[j] + YS[j + 1]) / 2


BUILT = np.zeros((NX, NY), dtype=bool)
for _i in range(NX):
    for _j in range(NY):
        cx, cy = base_centre((_i, _j))
        BUILT[_i, _j] = (abs(cx) / 1870) ** 3.2 + (abs(cy) / 1720) ** 3.2 <= 1.0 and not (
            (cx - 1550) ** 2 + (cy + 1150) ** 2 < 380**2  # the south-east orchards
        )
CELLS = [(i, j) for i in range(NX) for j in range(NY) if BUILT[i, j]]
CELLSET = set(CELLS)


def nbrs4(c):
    i, j = c
    return [(i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)]


def nbrs8(c):
    i, j = c
    return [(i + a, j + b) for a in (-1, 0, 1) for b in (-1, 0, 1) if (a, b) != (0, 0)]


def connected(cells) -> bool:
    cells = set(cells)
    if not cells:
        return False
    start = min(cells)
    seen, stack = {start}, [start]
    while stack:
        for n in nbrs4(stack.pop()):
            if n in cells and n not in seen:
                seen.add(n)
                stack.append(n)
    return len(seen) == len(cells)


assert connected(CELLS)


def cell_edges(c):
    i, j = c
    return {"S": ("h", i, j), "N": ("h", i, j + 1), "W": ("v", i, j), "E": ("v", i + 1, j)}


def edge_cells(e):
    kind, i, j = e
    cand = [(i - 1, j), (i, j)] if kind == "v" else [(i, j - 1), (i, j)]
    return [c for c in cand if c in CELLSET]


def edge_nodes(e):
    kind, i, j = e
    return ((i, j), (i, j + 1)) if kind == "v" else ((i, j), (i + 1, j))


# ----------------------------------------------------------------------------------------------
# Roads: main roads on fixed lattice lines, lanes on the others
# ----------------------------------------------------------------------------------------------
MAIN_V = {2: "西环路", 6: "果乡路", 10: None, 14: "解放路", 18: "东环路"}  # 10 = 双塔南路/双塔北路
MAIN_H = {2: "南环路", 5: "文化路", 9: None, 13: "府前街", 16: "猗顿大道"}  # 9 = 临晋路/涑水街
CROSS_H, CROSS_V = 9, 10


@dataclass
class Road:
    name: str
    kind: str  # main | lane
    axis: str  # v (north-south) | h (east-west)
    line: int
    edges: list[int]
    code: str = ""
    line_local: LineString | None = None

    def nodes(self):
        k0, k1 = self.edges[0], self.edges[-1] + 1
        if self.axis == "v":
            return [(self.line, k) for k in range(k0, k1 + 1)]
        return [(k, self.line) for k in range(k0, k1 + 1)]


def present_edges(axis, line):
    n = NY if axis == "v" else NX
    return [k for k in range(n) if edge_cells((axis, line, k) if axis == "v" else ("h", k, line))]


ROADS: list[Road] = []
for axis, mains, nlines in (("v", MAIN_V, NX + 1), ("h", MAIN_H, NY + 1)):
    splits = sorted(MAIN_H) if axis == "v" else sorted(MAIN_V)
    for line in range(nlines):
        ks = present_edges(axis, line)
        if not ks:
            continue
        if line in mains:
            full = list(range(ks[0], ks[-1] + 1))
            if mains[line] is not None:
                ROADS.append(Road(mains[line], "main", axis, line, full))
            elif axis == "v":
                ROADS.append(Road("双塔南路", "main", axis, line, [k for k in full if k < CROSS_H]))
                ROADS.append(Road("双塔北路", "main", axis, line, [k for k in full if k >= CROSS_H]))
            else:
                ROADS.append(Road("临晋路", "main", axis, line, [k for k in full if k < CROSS_V]))
                ROADS.append(Road("涑水街", "main", axis, line, [k for k in full if k >= CROSS_V]))
            continue
        # minor line: runs of consecutive present edges, cut at the main crossings
        segs: list[list[int]] = []
        for k in ks:
            if segs and segs[-1][-1] == k - 1 and k not in splits:
                segs[-1].append(k)
            else:
                segs.append([k])
        groups: list[list[int]] = []
        for s in segs:
            if groups and groups[-1][-1] == s[0] - 1 and rng.random() < 0.55:
                groups[-1].extend(s)
            else:
                groups.append(list(s))
        for g in groups:
            if rng.random() < 0.86:
                ROADS.append(Road("", "lane", axis, line, g))

EDGE_ROAD: dict[tuple, int] = {}
for ri, r in enumerate(ROADS):
    for k in r.edges:
        e = ("v", r.line, k) if r.axis == "v" else ("h", k, r.line)
        EDGE_ROAD[e] = ri
    r.line_local = LineString([NODE[n] for n in r.nodes()])

# ----------------------------------------------------------------------------------------------
# Communities: nearest seed (edges follow streets), then made contiguous
# ----------------------------------------------------------------------------------------------
SEEDS = {
    "崇相西社区": (-1350, 950), "兴教坊社区": (-480, 1080), "双塔社区": (380, 1000), "郇阳社区": (1300, 980),
    "西郊社区": (-1450, -120), "贵戚坊社区": (-650, 120), "中城社区": (150, 60), "神后堡社区": (920, 260),
    "涑水社区": (1560, -300), "临化社区": (-1150, -1150), "葫芦岛社区": (-330, -1000),
    "渠南社区": (470, -950), "合欢社区": (1200, -1150),
}
assert set(SEEDS) == set(COMM_BY_NAME)
SEED_ARR = [(COMM_BY_NAME[n], np.array(p, dtype=float)) for n, p in sorted(SEEDS.items())]
CELL_COMM: dict[tuple, str] = {}
for c in CELLS:
    p = np.array(base_centre(c))
    CELL_COMM[c] = min(SEED_ARR, key=lambda s: (float(np.sum((s[1] - p) ** 2)), s[0]))[0]
for _ in range(10):
    changed = False
    for code, _name in COMMUNITIES:
        cells = sorted(c for c in CELLS if CELL_COMM[c] == code)
        comps: list[list] = []
        todo = set(cells)
        for c in cells:
            if c not in todo:
                continue
            comp, stack = [c], [c]
            todo.discard(c)
            while stack:
                for n in nbrs4(stack.pop()):
                    if n in todo:
                        todo.discard(n)
                        comp.append(n)
                        stack.append(n)
            comps.append(sorted(comp))
        comps.sort(key=lambda cc: (-len(cc), cc[0]))
        for comp in comps[1:]:
            for c in comp:
                around = Counter(CELL_COMM[n] for n in nbrs4(c) if n in CELLSET and CELL_COMM[n] != code)
                if around:
                    CELL_COMM[c] = sorted(around.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
                    changed = True
    if not changed:
        break
COMM_CELLS = {code: sorted(c for c in CELLS if CELL_COMM[c] == code) for code, _ in COMMUNITIES}
assert all(connected(v) for v in COMM_CELLS.values())

# lane names: the lanes from local news sit in their communities
LANE_OLD = (
    "槐树 柳树 杏林 教场 仓房 马道 城隍 文庙 书院 鼓楼 南关 北关 东关 西关 牌坊 府君 关帝 太平 永安 吉祥 "
    "如意 丰收 桃园 梨园 枣园 石榴 油坊 染坊 磨坊 药王 学堂 官井 甜水 双井 古槐 榆树 椿树 菜园 果园 苗圃 "
    "福寿 和顺 仁和 尚德 郇阳 兴教 神后 贵戚 崇相 葫芦"
).split()
LANE_NEW = (
    "新华街 建设路 人民路 东风路 朝阳路 向阳街 迎宾路 体育路 商贸街 工农路 和平街 团结路 友谊街 光明路 民主街 "
    "胜利路 红旗街 前进路 振兴街 复兴路 利民街 惠民路 新民街 育才路 明德街 崇文街 兴隆街 平安街 康宁街 长寿路 "
    "银杏路 富民路 金融街 花园街 健康路 学府路"
).split()


def lane_majority(r: Road) -> str:
    cnt = Counter()
    for k in r.edges:
        e = ("v", r.line, k) if r.axis == "v" else ("h", k, r.line)
        for c in edge_cells(e):
            cnt[CELL_COMM[c]] += 1
    return sorted(cnt.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


_lanes = [ri for ri, r in enumerate(ROADS) if r.kind == "lane"]
_order = [_lanes[k] for k in rng.permutation(len(_lanes))]
for special, comm in (("八家巷", "葫芦岛社区"), ("润田巷", "渠南社区"), ("同济巷", "中城社区")):
    ri = next(ri for ri in _order if not ROADS[ri].name and lane_majority(ROADS[ri]) == COMM_BY_NAME[comm])
    ROADS[ri].name = special
_old = [n + "巷" for n in (LANE_OLD[k] for k in rng.permutation(len(LANE_OLD)))]
_new = [LANE_NEW[k] for k in rng.permutation(len(LANE_NEW))]
for ri in _order:
    r = ROADS[ri]
    if not r.name:
        r.name = (_new if len(r.edges) >= 4 and _new else _old).pop(0)
# a lane name may repeat on another line: make them unique (real towns avoid that too)
assert len({r.name for r in ROADS}) == len(ROADS), Counter(r.name for r in ROADS).most_common(3)
ROADS.sort(key=lambda r: (r.kind != "main", r.axis, r.line, r.edges[0]))
for ri, r in enumerate(ROADS):
    r.code = f"R{ri + 1:03d}"
EDGE_ROAD = {}
for ri, r in enumerate(ROADS):
    for k in r.edges:
        EDGE_ROAD[("v", r.line, k) if r.axis == "v" else ("h", k, r.line)] = ri

# ----------------------------------------------------------------------------------------------
# Grids: recursive bisection of each community's blocks, ~3 blocks per grid
# ----------------------------------------------------------------------------------------------
def bisect(cells: list, k: int) -> list[list]:
    if k == 1:
        return [sorted(cells)]
    k1 = k // 2
    n1 = round(len(cells) * k1 / k)
    span_i = max(c[0] for c in cells) - min(c[0] for c in cells)
    span_j = max(c[1] for c in cells) - min(c[1] for c in cells)
    axes = (0, 1) if span_i >= span_j else (1, 0)
    for ax in axes:
        for dn in (0, 1, -1, 2, -2, 3, -3):
            m = n1 + dn
            if m < 2 * k1 or len(cells) - m < 2 * (k - k1):
                continue
            s = sorted(cells, key=lambda c: (c[ax], c[1 - ax]))
            a, b = s[:m], s[m:]
            if connected(a) and connected(b):
                return bisect(a, k1) + bisect(b, k - k1)
    raise RuntimeError("cannot bisect")


CELLS_PER_GRID = 3.1
GRID_CELLS: dict[str, list] = {}  # grid code -> cells
GRID_COMM: dict[str, str] = {}
for code, name in COMMUNITIES:
    cells = COMM_CELLS[code]
    k = max(5, round(len(cells) / CELLS_PER_GRID))
    parts = bisect(cells, k)

    def reading_order(p):
        cx = np.mean([base_centre(c)[0] for c in p])
        cy = np.mean([base_centre(c)[1] for c in p])
        return (-round(cy / 350), cx)

    parts.sort(key=reading_order)
    for n, p in enumerate(parts, 1):
        g = f"{code}-{n:02d}"
        GRID_CELLS[g] = p
        GRID_COMM[g] = code
CELL_GRID = {c: g for g, cs in GRID_CELLS.items() for c in cs}

# two-part grid: one block of grid U is handed to grid T, which it does not touch (one block between)
TWO_PART = None
for code, _ in sorted(COMMUNITIES, key=lambda x: x[0], reverse=True):
    gs = sorted(g for g in GRID_CELLS if GRID_COMM[g] == code)
    for t in gs:
        tcells = set(GRID_CELLS[t])
        for u in gs:
            if u == t or len(GRID_CELLS[u]) < 4:
                continue
            for d in GRID_CELLS[u]:
                if any(n in tcells for n in nbrs8(d)):
                    continue
                bridge = [e for e in nbrs4(d) if CELL_GRID.get(e) == u and any(n in tcells for n in nbrs4(e))]
                rest = [c for c in GRID_CELLS[u] if c != d]
                if bridge and connected(rest):
                    TWO_PART = (t, u, d)
                    break
            if TWO_PART:
                break
        if TWO_PART:
            break
    if TWO_PART:
        break
assert TWO_PART
_t, _u, _d = TWO_PART
GRID_CELLS[_u].remove(_d)
GRID_CELLS[_t] = sorted(GRID_CELLS[_t] + [_d])
CELL_GRID[_d] = _t

# ----------------------------------------------------------------------------------------------
# Blocks: street-front houses and compound lots with slab or tower buildings
# ----------------------------------------------------------------------------------------------
@dataclass
class Lot:
    cell: tuple
    rect: tuple  # (s0, s1, t0, t1) in block metres
    faces: list  # block sides the lot can have its gate on (with a road)
    tier: str
    kind: str = "compound"  # compound | unit | centre | green
    grid: str = ""
    name: str = ""
    gate_side: str = ""
    gate_local: np.ndarray | None = None
    doorplate: str = ""
    road: int = -1
    buildings: list = field(default_factory=list)
    island: bool = False


@dataclass
class Bldg:
    cell: tuple
    local: np.ndarray  # (4, 2) metres
    weight: float
    lot: int | None = None  # index into LOTS, None for a street-front house
    side: str = ""  # street house: block side it faces
    grid: str = ""
    road: int = -1
    doorplate: str = ""
    households: int = 0
    population: int = 0
    dropped: bool = False
    code: str = ""
    name: str = ""
    building_no: str = ""


class Block:
    def __init__(self, c):
        i, j = c
        self.c = c
        self.p00, self.p10, self.p11, self.p01 = NODE[i, j], NODE[i + 1, j], NODE[i + 1, j + 1], NODE[i, j + 1]
        self.w = (np.linalg.norm(self.p10 - self.p00) + np.linalg.norm(self.p11 - self.p01)) / 2
        self.h = (np.linalg.norm(self.p01 - self.p00) + np.linalg.norm(self.p11 - self.p10)) / 2
        self.edges = cell_edges(c)

    def at(self, s, t):
        u, v = s / self.w, t / self.h
        return (1 - u) * (1 - v) * self.p00 + u * (1 - v) * self.p10 + u * v * self.p11 + (1 - u) * v * self.p01

    def rect(self, s0, s1, t0, t1):
        return np.array([self.at(s0, t0), self.at(s1, t0), self.at(s1, t1), self.at(s0, t1)])

    def road(self, side):
        return EDGE_ROAD.get(self.edges[side], -1)

    def road_kind(self, side):
        ri = self.road(side)
        return None if ri < 0 else ROADS[ri].kind


LOTS: list[Lot] = []
BLDGS: list[Bldg] = []
BLOCKS = {c: Block(c) for c in CELLS}


def layout(b: Block):
    sb = {s: {"main": 14.0, "lane": 6.0, None: 3.0}[b.road_kind(s)] for s in "SNWE"}
    pair = ("S", "N") if rng.random() < 0.55 else ("W", "E")
    strips = {}
    for side in pair:
        p = {"main": 0.4, "lane": 0.16, None: 0.0}[b.road_kind(side)]
        if rng.random() < p:
            strips[side] = float(rng.uniform(9, 12))
    for side, depth in strips.items():
        if side in "SN":
            lo, hi = sb["W"], b.w - sb["E"]
            a0 = sb["S"] if side == "S" else b.h - sb["N"] - depth
        else:
            lo, hi = sb["S"], b.h - sb["N"]
            a0 = sb["W"] if side == "W" else b.w - sb["E"] - depth
        pos = lo + float(rng.uniform(0, 4))
        while True:
            w = float(rng.uniform(10, 16))
            if pos + w > hi:
                break
            if side in "SN":
                poly = b.rect(pos, pos + w, a0, a0 + depth)
            else:
                poly = b.rect(a0, a0 + depth, pos, pos + w)
            floors = int(rng.integers(2, 5))
            BLDGS.append(Bldg(b.c, poly, 0.6 * floors, None, side))
            pos += w + float(rng.choice([1.5, 2.0, 3.0, 3.0, 8.0, 15.0]))
    s0 = sb["W"] + (strips["W"] + 5 if "W" in strips else 0)
    s1 = b.w - sb["E"] - (strips["E"] + 5 if "E" in strips else 0)
    t0 = sb["S"] + (strips["S"] + 5 if "S" in strips else 0)
    t1 = b.h - sb["N"] - (strips["N"] + 5 if "N" in strips else 0)
    along = "s" if (s1 - s0) >= (t1 - t0) else "t"
    length = (s1 - s0) if along == "s" else (t1 - t0)
    n = max(1, min(int((length + 6) // 51), int(rng.choice([1, 1, 2, 2, 3]))))
    props = rng.uniform(0.75, 1.25, n)
    sizes = props / props.sum() * (length - 6 * (n - 1))
    if sizes.min() < 45:
        sizes = np.full(n, (length - 6 * (n - 1)) / n)
    pos = s0 if along == "s" else t0
    for k in range(n):
        a, z = pos, pos + float(sizes[k])
        pos = z + 6
        if along == "s":
            rect, faces = (a, z, t0, t1), ["S", "N"] + (["W"] if k == 0 else []) + (["E"] if k == n - 1 else [])
        else:
            rect, faces = (s0, s1, a, z), ["W", "E"] + (["S"] if k == 0 else []) + (["N"] if k == n - 1 else [])
        faces = [f for f in faces if b.road(f) >= 0]
        faces.sort(key=lambda f: (b.road_kind(f) != "main", "SNWE".index(f)))
        tier = str(rng.choice(["old", "mid", "high"], p=[0.35, 0.5, 0.15]))
        lot = Lot(b.c, rect, faces, tier, kind="compound" if faces else "green")
        LOTS.append(lot)
        fill_lot(b, len(LOTS) - 1)


def fill_lot(b: Block, li: int):
    lot = LOTS[li]
    s0, s1, t0, t1 = lot.rect
    m = 6.0
    if lot.tier == "high":
        depth, gap, lo, hi, sgap, floors = float(rng.uniform(16, 20)), float(rng.uniform(30, 38)), 18, 24, (14, 20), (11, 19)
    elif lot.tier == "mid":
        depth, gap, lo, hi, sgap, floors = float(rng.uniform(11, 13)), float(rng.uniform(18, 24)), 30, 60, (8, 14), (5, 8)
    else:
        depth, gap, lo, hi, sgap, floors = float(rng.uniform(10, 12)), float(rng.uniform(14, 18)), 24, 45, (8, 12), (3, 6)
    avail = t1 - t0 - 2 * m
    rows = int((avail + gap) // (depth + gap))
    if rows < 1:
        return
    t = t0 + m + (avail - (rows * depth + (rows - 1) * gap)) / 2
    for _ in range(rows):
        x, end = s0 + m, s1 - m
        while end - x >= lo:
            ln = min(float(rng.uniform(lo, hi)), end - x)
            if end - x - ln < lo:
                ln = min(end - x, hi * 1.3)
            fl = int(rng.integers(*floors))
            w = fl * (4.0 if lot.tier == "high" else ln / 12.0)
            BLDGS.append(Bldg(b.c, b.rect(x, x + ln, t, t + depth), w, li))
            x += ln + float(rng.uniform(*sgap))
        t += depth + gap


for c in CELLS:
    layout(BLOCKS[c])
for li, lot in enumerate(LOTS):
    lot.grid = CELL_GRID[lot.cell]
for b in BLDGS:
    b.grid = CELL_GRID[b.cell]
    if b.lot is not None:
        LOTS[b.lot].buildings.append(b)

# ----------------------------------------------------------------------------------------------
# The enclave: a compound inside grid G's block that belongs to the neighbouring grid N
# ----------------------------------------------------------------------------------------------
OPP = {"S": "N", "N": "S", "W": "E", "E": "W"}
SIDE_DIR = {"S": (0, -1), "N": (0, 1), "W": (-1, 0), "E": (1, 0)}
ISLAND = None
_excl = {TWO_PART[0], TWO_PART[1]}
for li, lot in enumerate(LOTS):
    g = lot.grid
    s0, s1, t0, t1 = lot.rect
    if g in _excl or lot.kind != "compound" or len(lot.buildings) < 4 or lot.tier == "high":
        continue
    if min(s1 - s0, t1 - t0) < 60:
        continue
    for side in lot.faces:
        dx, dy = SIDE_DIR[side]
        other = (lot.cell[0] + dx, lot.cell[1] + dy)
        n = CELL_GRID.get(other)
        if n and n != g and n not in _excl and GRID_COMM[n] == GRID_COMM[g] and len(GRID_CELLS[g]) >= 3:
            ISLAND = (g, n, li, side)
            break
    if ISLAND:
        break
assert ISLAND
HOLE_GRID, ISLAND_GRID, ISLAND_LOT, _iside = ISLAND
LOTS[ISLAND_LOT].island = True
LOTS[ISLAND_LOT].grid = ISLAND_GRID
LOTS[ISLAND_LOT].faces = [_iside]
for b in LOTS[ISLAND_LOT].buildings:
    b.grid = ISLAND_GRID

# ----------------------------------------------------------------------------------------------
# Special lots: 13 community centres (党群服务中心) and 72 co-building units (驻区单位)
# ----------------------------------------------------------------------------------------------
UNITS = [
    *(("学校", n) for n in "临猗中学 临猗二中 县实验小学 县第二实验小学 县实验初中 县职业中学 双塔小学 城西小学 "
      "县第一幼儿园 县第二幼儿园 县特殊教育学校 猗氏镇中心校".split()),
    *(("医院", n) for n in "县人民医院 县中医医院 县妇幼保健院 猗氏镇卫生院 城区社区卫生服务中心".split()),
    *(("机关", n) for n in "县财政局 县住建局 县教育局 县城管局 县人社局 县民政局 县自然资源局 县市场监管局 县税务局 "
      "县公安局 县交通运输局 县水利局 县农业农村局 县卫健局 县文旅局 县统计局 县审计局 县应急管理局 县司法局 "
      "县人民法院 县人民检察院 县人武部 猗氏镇人民政府 县消防救援大队".split()),
    *(("事业单位", n) for n in "县果业服务中心 县图书馆 县文化馆 县气象局 县疾控中心 县融媒体中心 县政务服务中心 "
      "县档案馆 县社保中心 县住房公积金管理中心 县农业技术推广中心 县体育中心".split()),
    *(("企业", n) for n in "县供电公司 县自来水公司 县热力公司 县燃气公司 中国移动临猗分公司 中国联通临猗分公司 "
      "中国电信临猗分公司 县邮政分公司 县公交公司".split()),
    *(("金融", n) for n in "农业银行临猗支行 工商银行临猗支行 建设银行临猗支行 中国银行临猗支行 临猗农商银行 "
      "邮储银行临猗支行 人保财险临猗支公司".split()),
    *(("群团组织", n) for n in "县总工会 团县委 县妇联".split()),
]
assert len(UNITS) == 72 and len({n for _, n in UNITS}) == 72
RESOURCES = {
    "学校": ["志愿者", "会议室", "场地", "文体活动", "培训"],
    "医院": ["医疗", "志愿者", "车辆", "心理咨询", "应急物资"],
    "机关": ["志愿者", "会议室", "车辆", "培训", "应急物资"],
    "事业单位": ["志愿者", "会议室", "场地", "培训", "技术服务"],
    "企业": ["维修", "照明", "车辆", "志愿者", "技术服务", "应急物资"],
    "金融": ["志愿者", "金融知识", "会议室", "资金"],
    "群团组织": ["志愿者", "法律咨询", "心理咨询", "物资"],
}
RES_ORDER = ["志愿者", "车辆", "会议室", "场地", "医疗", "维修", "照明", "法律咨询", "心理咨询", "培训",
             "文体活动", "技术服务", "应急物资", "物资", "金融知识", "资金"]


def grid_live(g):
    return sum(1 for b in BLDGS if b.grid == g and not b.dropped and b.lot is not None
               and LOTS[b.lot].kind == "compound") + sum(1 for b in BLDGS if b.grid == g and b.lot is None)


_cands = [li for li in (int(k) for k in rng.permutation(len(LOTS)))
          if LOTS[li].kind == "compound" and not LOTS[li].island and LOTS[li].grid not in (HOLE_GRID,)]
CENTRE_LOT: dict[str, int] = {}
for code, _ in COMMUNITIES:
    li = next(li for li in _cands if GRID_COMM[LOTS[li].grid] == code and code not in CENTRE_LOT)
    LOTS[li].kind = "centre"
    CENTRE_LOT[code] = li
_main_first = sorted((li for li in _cands if LOTS[li].kind == "compound"),
                     key=lambda li: BLOCKS[LOTS[li].cell].road_kind(LOTS[li].faces[0]) != "main")
UNIT_LOTS: list[int] = []
_per_comm: Counter = Counter()
_live = {g: grid_live(g) for g in GRID_CELLS}
for li in _main_first:
    lot = LOTS[li]
    comm = GRID_COMM[lot.grid]
    if _per_comm[comm] >= 7 or _live[lot.grid] - len(lot.buildings) < 24:
        continue
    lot.kind = "unit"
    _live[lot.grid] -= len(lot.buildings)
    _per_comm[comm] += 1
    UNIT_LOTS.append(li)
    if len(UNIT_LOTS) == 72:
        break
assert len(UNIT_LOTS) == 72
for lot in LOTS:
    if lot.kind in ("unit", "centre", "green"):
        for b in lot.buildings:
            b.dropped = True

# ----------------------------------------------------------------------------------------------
# Households: each grid gets 320-480 households, spread over its buildings by size
# ----------------------------------------------------------------------------------------------
GRID_TARGET: dict[str, int] = {}
for g in sorted(GRID_CELLS):
    target = int(rng.integers(320, 481))
    GRID_TARGET[g] = target
    live = [b for b in BLDGS if b.grid == g and not b.dropped]
    cap = target // 7
    if len(live) > cap:
        droppable = [b for b in live if not (b.lot is not None and LOTS[b.lot].island)]
        for k in rng.permutation(len(droppable))[: len(live) - cap]:
            droppable[int(k)].dropped = True
        live = [b for b in live if not b.dropped]
    assert len(live) * 6 <= target <= sum(60 if b.lot is not None else 12 for b in live), (g, len(live))
    w = np.array([b.weight for b in live])
    lo = np.array([6 if b.lot is not None else int(rng.integers(6, 10)) for b in live])
    if lo.sum() > target:
        lo[:] = 6
    hh = np.floor(lo + (target - lo.sum()) * w / w.sum()).astype(int)
    hi = np.array([60 if b.lot is not None else 12 for b in live])
    hh = np.minimum(hh, hi)
    order = np.argsort(-w, kind="stable")
    k = 0
    while hh.sum() < target:
        idx = order[k % len(order)]
        if hh[idx] < hi[idx]:
            hh[idx] += 1
        k += 1
    assert hh.sum() == target and hh.min() >= 6 and hh.max() <= 60
    for b, h in zip(live, hh):
        b.households = int(h)
        b.population = max(int(h), int(round(h * float(rng.uniform(2.2, 3.2)))))
for lot in LOTS:
    if lot.kind == "compound" and not any(not b.dropped for b in lot.buildings):
        lot.kind = "green"
BLDGS = [b for b in BLDGS if not b.dropped]

# ----------------------------------------------------------------------------------------------
# Compound names
# ----------------------------------------------------------------------------------------------
REAL_COMPOUNDS = [  # (name, community or None, road it must face or None)
    ("丰林小区", "双塔社区", None), ("圣慧小区", "双塔社区", None), ("晟康小区", "双塔社区", None),
    ("八家巷小区", "葫芦岛社区", "八家巷"), ("瑞祥小区", "神后堡社区", None), ("润田巷", "渠南社区", "润田巷"),
    ("金荷苑", "涑水社区", None), ("同济巷小区", None, "同济巷"), ("瑞苑小区", None, None),
    ("王村新村", None, None), ("织锦苑", None, None), ("针织小区", None, None), ("法院小区", None, None),
    ("丽庭书院", None, None), ("光荣小区", None, None), ("幸福小区", "临化社区", None), ("幸福小区", "郇阳社区", None),
]
PREFIXES = (
    "阳光 锦绣 康馨 盛世 御景 怡和 金色 华庭 翠柏 碧水 紫荆 丹桂 玉兰 海棠 银杏 梧桐 青松 柳岸 杏林 桃源 "
    "梨香 果香 丰泽 丰源 润泽 嘉禾 鑫源 祥和 和谐 安康 永安 长乐 长青 福馨 福泽 瑞丰 泰和 泰安 兴盛 兴华 "
    "建业 富康 宏达 东方 西城 南城 北城 东城 中兴 明珠 星河 文苑 学府 书香 鼓楼 汇丰 惠民 康乐 晨曦 朝阳 "
    "旭日 温馨 天润 金苑 银河 龙城 凤凰 开元 同心 聚福 锦华 华都 金桂 丰华 富贵 荣华 万和 万家 百合 兰亭 "
    "芳华 春晖 秋实 华兴 康泰 安居 乐居 宜居 翡翠 金鼎 金泰 新城 世纪 时代 振华 恒泰 恒安 德馨 德润 博雅 "
    "水岸 湖畔 滨河 河畔 果都 桃李 芙蓉 牡丹 蔷薇 丁香 紫薇 香樟 绿洲 绿城 山水 清泉"
).split()
SUFFIXES = {"小区": 6, "花园": 3, "苑": 3, "家园": 2, "新村": 1.5, "公寓": 1, "雅居": 0.7}
STAFF = (
    "县医院 农行 工行 建行 供电 粮食局 供销社 税务局 交通局 水利局 公路段 邮政 电信 二中 实验小学 棉麻公司 "
    "果品公司 化肥厂 农机局 卫生局 检察院 人武部 烟草 气象局 林业局 物资局 食品公司 酒厂"
).split()
_real_names = {n for n, _, _ in REAL_COMPOUNDS}
_pool = [(p + s, w) for p in PREFIXES for s, w in SUFFIXES.items() if not (p.endswith("苑") and s == "苑")]
_pool = [(n, w) for n, w in _pool if n not in _real_names]
_w = np.array([w for _, w in _pool]) / sum(w for _, w in _pool)
_pool = [_pool[int(k)][0] for k in rng.choice(len(_pool), len(_pool), replace=False, p=_w)]
_staff = [STAFF[int(k)] + "家属院" for k in rng.permutation(len(STAFF))]

_comp = [li for li in (int(k) for k in rng.permutation(len(LOTS))) if LOTS[li].kind == "compound"]
for name, comm, road in REAL_COMPOUNDS:
    best = None
    for li in _comp:
        lot = LOTS[li]
        if lot.name or lot.island:
            continue
        if comm and GRID_COMM[lot.grid] != COMM_BY_NAME[comm]:
            continue
        if sum(1 for b in lot.buildings if not b.dropped) < 3:
            continue
        b = BLOCKS[lot.cell]
        if road:
            faces = [f for f in lot.faces if ROADS[b.road(f)].name == road]
            if not faces:
                continue
            lot.gate_side = faces[0]
        best = li
        break
    assert best is not None, name
    LOTS[best].name = name
# the enclave is a work-unit compound (单位大院), as such enclaves usually are
LOTS[ISLAND_LOT].name = _staff.pop(0)
_all_names = Counter()
for li in _comp:
    lot = LOTS[li]
    if lot.name:
        continue
    live = sum(1 for b in lot.buildings if not b.dropped)
    src = _staff if (lot.tier == "old" and live <= 6 and _staff and rng.random() < 0.5) else _pool
    lot.name = src.pop(0)
for lot in LOTS:
    if lot.kind == "compound":
        _all_names[(GRID_COMM[lot.grid], lot.name)] += 1
assert max(_all_names.values()) == 1

# ----------------------------------------------------------------------------------------------
# Gates and doorplates: numbers grow along the road, even on the north/east side, odd opposite
# ----------------------------------------------------------------------------------------------
def side_parity(side):  # the block lies north/east of its S/W edge road -> even numbers
    return 0 if side in ("S", "W") else 1


def lot_gate(lot: Lot):
    b = BLOCKS[lot.cell]
    s0, s1, t0, t1 = lot.rect
    side = lot.gate_side or lot.faces[0]
    lot.gate_side = side
    sm, tm = (s0 + s1) / 2, (t0 + t1) / 2
    on_edge = {"S": (sm, t0), "N": (sm, t1), "W": (s0, tm), "E": (s1, tm)}[side]
    inside = {"S": (sm, t0 + 3), "N": (sm, t1 - 3), "W": (s0 + 3, tm), "E": (s1 - 3, tm)}[side]
    lot.road = b.road(side)
    lot.gate_local = b.at(*inside)
    return side, b.at(*on_edge)


ADDRESSED = []  # (road index, parity, position, kind, object)
for li, lot in enumerate(LOTS):
    if lot.kind in ("compound", "centre"):
        side, pt = lot_gate(lot)
        ADDRESSED.append((lot.road, side_parity(side), ROADS[lot.road].line_local.project(Point(pt)), li, lot))
for bi, b in enumerate(BLDGS):
    if b.lot is None:
        blk = BLOCKS[b.cell]
        b.road = blk.road(b.side)
        centre = b.local.mean(axis=0)
        ADDRESSED.append((b.road, side_parity(b.side), ROADS[b.road].line_local.project(Point(centre)),
                          len(LOTS) + bi, b))
ADDRESSED.sort(key=lambda a: (a[0], a[1], a[2], a[3]))
_last: dict = {}
for ri, par, pos, _, obj in ADDRESSED:
    k = max(_last.get((ri, par), -1) + 1, int(pos // 20))
    _last[(ri, par)] = k
    obj.doorplate = f"{2 * k + 2 if par == 0 else 2 * k + 1}号"
for lot in LOTS:
    for b in lot.buildings:
        b.road, b.doorplate = lot.road, lot.doorplate

# building codes, names and addresses, in community / grid / block order
BLDGS.sort(key=lambda b: (b.grid, b.cell, b.lot if b.lot is not None else -1, tuple(np.round(b.local[0], 3))))
for lot in LOTS:
    lot.buildings = [b for b in lot.buildings if not b.dropped]
    # 1号楼 nearest the gate, then row by row
    g = lot.gate_local
    lot.buildings.sort(key=lambda b: (round(float(np.linalg.norm(b.local.mean(axis=0) - g)) / 25), b.local[0][0]))
    for n, b in enumerate(lot.buildings, 1):
        b.building_no = str(n)
for n, b in enumerate(BLDGS, 1):
    b.code = f"B{n:06d}"


def comm_of(grid):
    return COMM_NAME[GRID_COMM[grid]]


def building_props(b: Bldg):
    road = ROADS[b.road].name
    if b.lot is None:
        name = f"{road}{b.doorplate}"
        addr = f"{PREFIX}{comm_of(b.grid)}{road}{b.doorplate}"
        compound, no = "", ""
    else:
        lot = LOTS[b.lot]
        compound, no = lot.name, b.building_no
        name = f"{compound}{no}号楼"
        addr = f"{PREFIX}{comm_of(b.grid)}{road}{b.doorplate}{compound}{no}号楼"
    return {"code": b.code, "name": name, "address": addr, "road": road, "doorplate": b.doorplate,
            "compound": compound, "building_no": no, "households": b.households, "population": b.population}


# ----------------------------------------------------------------------------------------------
# Geometry in WGS84
# ----------------------------------------------------------------------------------------------
def cell_poly(c):
    i, j = c
    ring = [NODE_LL[i, j], NODE_LL[i + 1, j], NODE_LL[i + 1, j + 1], NODE_LL[i, j + 1]]
    return Polygon([tuple(map(float, p)) for p in ring])


def union_cells(cells):
    return shapely.coverage_union_all([cell_poly(c) for c in sorted(cells)])


def quad_ll(local):
    ll = to_ll(local)
    return Polygon([tuple(map(float, p)) for p in ll])


# the enclave's wall: the lon/lat rectangle around the lot (a few cm larger), so the hole's edges
# are horizontal and vertical like every other grid edge
_ib = to_ll(BLOCKS[LOTS[ISLAND_LOT].cell].rect(*LOTS[ISLAND_LOT].rect))
_x0, _y0 = (float(v) for v in _ib.min(axis=0))
_x1, _y1 = (float(v) for v in _ib.max(axis=0))
ISLAND_POLY = Polygon([(_x0, _y0), (_x1, _y0), (_x1, _y1), (_x0, _y1)])
GRID_GEOM: dict[str, object] = {}
for g, cells in GRID_CELLS.items():
    geom = union_cells(cells)
    if g == HOLE_GRID:
        assert geom.geom_type == "Polygon" and not geom.interiors
        assert geom.contains(ISLAND_POLY)
        geom = Polygon(geom.exterior.coords, [ISLAND_POLY.exterior.coords])
    elif g == ISLAND_GRID:
        assert geom.geom_type == "Polygon"
        geom = MultiPolygon([geom, ISLAND_POLY])
    GRID_GEOM[g] = geom
assert GRID_GEOM[TWO_PART[0]].geom_type == "MultiPolygon" and len(GRID_GEOM[TWO_PART[0]].geoms) == 2
COMM_GEOM = {code: union_cells(COMM_CELLS[code]) for code, _ in COMMUNITIES}
for code, geom in COMM_GEOM.items():
    assert geom.geom_type == "Polygon" and not geom.interiors, code
BUILT_GEOM = union_cells(CELLS)

# town outline: a star-shaped polygon around the seat, every 5 degrees
ANGLES = np.arange(0, 360, 5)
_ph = rng.uniform(0, 2 * math.pi, 3)
_noise = rng.uniform(-0.03, 0.03, len(ANGLES))
_r_town = 5000 * (1 + 0.13 * np.sin(2 * np.radians(ANGLES) + _ph[0]) + 0.07 * np.sin(3 * np.radians(ANGLES) + _ph[1])
                  + _noise)
TOWN_LL = to_ll(np.column_stack([_r_town * np.cos(np.radians(ANGLES)), _r_town * np.sin(np.radians(ANGLES))]))
TOWN_GEOM = Polygon([tuple(map(float, p)) for p in TOWN_LL])
# police precincts: a central one and three sectors, sharing the town outline's vertices
_r_core = 1500 * (1 + 0.12 * np.sin(3 * np.radians(ANGLES) + _ph[2]))
CORE_LL = to_ll(np.column_stack([_r_core * np.cos(np.radians(ANGLES)), _r_core * np.sin(np.radians(ANGLES))]))
SECTORS = [("城东派出所", -90, 30), ("城北派出所", 30, 150), ("城西派出所", 150, 270)]


def sector(a0, a1):
    idx = [int(((a % 360) // 5)) for a in range(a0, a1 + 1, 5)]
    ring = [tuple(map(float, TOWN_LL[k])) for k in idx] + [tuple(map(float, CORE_LL[k])) for k in reversed(idx)]
    return Polygon(ring)


PRECINCTS = [("P01", "猗氏派出所", Polygon([tuple(map(float, p)) for p in CORE_LL]))] + [
    (f"P{n:02d}", name, sector(a0, a1)) for n, (name, a0, a1) in enumerate(SECTORS, 2)
]
PRECINCT_PHONES = sorted({f"0359-40{int(x):05d}" for x in rng.integers(10000, 99999, 12)})[:4]

# ----------------------------------------------------------------------------------------------
# Stations, units, workers
# ----------------------------------------------------------------------------------------------
def lot_point(lot: Lot, where="gate"):
    if where == "gate":
        return Point(*map(float, to_ll(lot.gate_local)[0]))
    s0, s1, t0, t1 = lot.rect
    return Point(*map(float, to_ll(BLOCKS[lot.cell].at((s0 + s1) / 2, (t0 + t1) / 2))[0]))


STATIONS = []
_sizes = sorted(((len(COMM_CELLS[c]), c) for c, _ in COMMUNITIES), reverse=True)
_quota = {c: 4 + (1 if k < 64 - 4 * 13 else 0) for k, (_, c) in enumerate(_sizes)}
for code, cname in COMMUNITIES:
    centre = LOTS[CENTRE_LOT[code]]
    STATIONS.append(dict(name=f"{cname}党群服务中心", kind="党群服务中心", community_code=code,
                         address=f"{PREFIX}{cname}{ROADS[centre.road].name}{centre.doorplate}",
                         geom=lot_point(centre, "centre")))
    lots = [lot for lot in LOTS if lot.kind == "compound" and GRID_COMM[lot.grid] == code]
    lots.sort(key=lambda lot: (lot.name not in _real_names, -sum(b.households for b in lot.buildings), lot.name))
    picked = []
    for lot in lots:
        if len(picked) == _quota[code]:
            break
        if lot.name == "幸福小区" and any(s["name"] == "幸福小区党群服务站" for s in STATIONS):
            continue
        picked.append(lot)
        STATIONS.append(dict(name=f"{lot.name}党群服务站", kind="党群服务站", community_code=code,
                             address=f"{PREFIX}{cname}{ROADS[lot.road].name}{lot.doorplate}{lot.name}",
                             geom=lot_point(lot, "gate")))
for n, s in enumerate(STATIONS, 1):
    s["code"] = f"S{n:03d}"

UNIT_ROWS = []
_uorder = [int(k) for k in rng.permutation(72)]
for n, (li, k) in enumerate(zip(sorted(UNIT_LOTS, key=lambda li: (GRID_COMM[LOTS[li].grid], li)), _uorder), 1):
    cat, name = UNITS[k]
    lot = LOTS[li]
    pool = RESOURCES[cat]
    res = {pool[int(x)] for x in rng.choice(len(pool), int(rng.integers(2, 5)), replace=False)}
    if any(w in name for w in ("法院", "检察院", "司法")):
        res.add("法律咨询")
    if "医院" in name or "卫生" in name:
        res.add("医疗")
    UNIT_ROWS.append(dict(code=f"U{n:03d}", name=name, category=cat,
                          resources=";".join(r for r in RES_ORDER if r in res),
                          community_code=GRID_COMM[lot.grid], geom=lot_point(lot, "centre")))
UNIT_ROWS.sort(key=lambda u: u["code"])

SURNAMES = ("王 王 王 张 张 李 李 刘 刘 杨 赵 郭 郭 陈 吴 孙 马 薛 卫 畅 柴 贾 牛 侯 宁 樊 史 冯 董 梁 范 姚 任 "
            "景 段 原 杜 程 高 黄 周 何 韩 曹 田 许 裴 解 荆 乔").split()
GIVEN = ("建 国 军 华 平 芳 娟 丽 敏 静 霞 燕 红 艳 英 玲 强 伟 磊 勇 斌 涛 鹏 辉 明 亮 刚 峰 波 杰 俊 鑫 浩 宇 晨 "
         "瑞 欣 悦 婷 雪 琳 佳 慧 雯 倩 晶 丹 蕾 洁 萍 荣 海 文 武 志 新 宏 利 春 秋 梅 兰 凤 云 彦 晓 永 红 珍 "
         "玉 振 宁 嘉 怡 帆 博 卓").split()
MOBILE = "133 134 135 136 137 138 139 150 151 152 155 156 157 158 159 177 180 181 182 183 186 187 188 189 199".split()
_names_used: set = set()
_phones_used: set = set()


def person():
    while True:
        given = "".join(GIVEN[int(k)] for k in rng.integers(0, len(GIVEN), int(rng.choice([1, 2, 2]))))
        name = SURNAMES[int(rng.integers(len(SURNAMES)))] + given
        if name not in _names_used and len(set(given)) == len(given):
            _names_used.add(name)
            break
    while True:
        phone = MOBILE[int(rng.integers(len(MOBILE)))] + f"{int(rng.integers(0, 10**8)):08d}"
        if phone not in _phones_used:
            _phones_used.add(phone)
            return name, phone


WORKERS = []
for code, _ in COMMUNITIES:
    WORKERS.append((*person(), "网格长", "", code))
    for g in sorted(x for x in GRID_CELLS if GRID_COMM[x] == code):
        WORKERS.append((*person(), "专职网格员", g, code))
        if rng.random() < 0.45:
            WORKERS.append((*person(), "兼职网格员", g, code))
    WORKERS.append((*person(), "社区民警", "", code))
WORKERS = [(f"W{n:04d}", *w) for n, w in enumerate(WORKERS, 1)]


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def write_geojson(layer: str, rows: list[dict]):
    spec = LAYERS[layer]
    lines = []
    for row in rows:
        geom = row["geom"]
        assert geom.geom_type in spec.geometry_types, (layer, geom.geom_type)
        if geom.geom_type in ("Polygon", "MultiPolygon"):
            geom = shapely.orient_polygons(geom)  # RFC 7946 right-hand rule
        geom = round7(geom)
        props = {}
        for f in spec.fields:
            v = row[f.name]
            if f.type == "int":
                assert isinstance(v, int) and not isinstance(v, bool)
            else:
                assert isinstance(v, str)
            props[f.name] = v
        feat = {"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geom)}
        lines.append(json.dumps(feat, ensure_ascii=False, separators=(",", ":")))
    text = '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"
    (OUT / f"{layer}.geojson").write_text(text, encoding="utf-8", newline="\n")


def write_all():
    OUT.mkdir(exist_ok=True)
    regions = [dict(code=COUNTY_CODE, name="临猗县", level="county", parent_code="", geom=COUNTY_GEOM),
               dict(code=TOWN_CODE, name="猗氏镇", level="town", parent_code=COUNTY_CODE, geom=TOWN_GEOM)]
    regions += [dict(code=c, name=n, level="community", parent_code=TOWN_CODE, geom=COMM_GEOM[c])
                for c, n in COMMUNITIES]
    write_geojson("regions", regions)
    grids = []
    for g in sorted(GRID_CELLS):
        n = int(g.split("-")[1])
        grids.append(dict(code=g, name=f"{comm_of(g)}第{n}网格", community_code=GRID_COMM[g], geom=GRID_GEOM[g]))
    write_geojson("grids", grids)
    write_geojson("buildings", [dict(**building_props(b), geom=quad_ll(b.local)) for b in BLDGS])
    write_geojson("stations", STATIONS)
    write_geojson("precincts", [dict(code=c, name=n, phone=p, geom=g)
                                for (c, n, g), p in zip(PRECINCTS, PRECINCT_PHONES)])
    write_geojson("units", UNIT_ROWS)
    write_geojson("roads", [dict(code=r.code, name=r.name,
                                 geom=LineString([tuple(map(float, NODE_LL[n])) for n in r.nodes()]))
                            for r in ROADS])
    with open(OUT / "workers.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(LAYERS["workers"].field_names)
        w.writerows(WORKERS)


# ----------------------------------------------------------------------------------------------
# Checks, on the files as written
# ----------------------------------------------------------------------------------------------
def shared_edge_point():
    """The middle of a north-south block edge between two grids (exactly on it: the edge is vertical)."""
    special = {HOLE_GRID, ISLAND_GRID, *TWO_PART[:2]}
    for i in range(1, NX):
        for j in range(NY):
            w, e = (i - 1, j), (i, j)
            if w in CELLSET and e in CELLSET:
                gw, ge = CELL_GRID[w], CELL_GRID[e]
                if gw != ge and not {gw, ge} & special:
                    y = round((float(LATS[j]) + float(LATS[j + 1])) / 2, 7)
                    return (float(LONS[i]), y), tuple(sorted((gw, ge)))
    raise RuntimeError


def check():
    crs = MCRS
    read = {name: gpd.read_file(OUT / f"{name}.geojson") for name in
            ("regions", "grids", "buildings", "stations", "precincts", "units", "roads")}
    workers = pd.read_csv(OUT / "workers.csv", dtype=str, keep_default_na=False)
    for name, df in read.items():
        assert df.crs is not None and df.crs.to_epsg() == 4326, name
        spec = LAYERS[name]
        assert list(df.columns[:-1]) == spec.field_names, (name, list(df.columns))
        for f in spec.fields:
            assert df[f.name].notna().all(), (name, f.name)
            if f.type == "int":
                assert pd.api.types.is_integer_dtype(df[f.name]), (name, f.name)
        assert df["code"].is_unique, name
        assert df.geometry.is_valid.all(), name
        assert set(df.geom_type) <= set(spec.geometry_types), name
    assert workers["code"].is_unique and list(workers.columns) == LAYERS["workers"].field_names
    m = {k: v.to_crs(crs) for k, v in read.items()}
    regions, grids, bldgs = read["regions"], read["grids"], read["buildings"]
    mreg, mgrid = m["regions"], m["grids"]

    county = mreg[mreg.level == "county"].geometry.iloc[0]
    town = mreg[mreg.level == "town"].geometry.iloc[0]
    comms = mreg[mreg.level == "community"].set_index("code").geometry
    assert len(comms) == 13 and (regions[regions.level == "community"].parent_code == TOWN_CODE).all()
    assert town.difference(county).area < 1.0, "town outside the county"
    built = shapely.union_all(comms.values)
    for c, geom in comms.items():
        assert geom.difference(town).area < 1.0, c
    cl = list(comms.items())
    for a in range(len(cl)):
        for b in range(a + 1, len(cl)):
            assert cl[a][1].intersection(cl[b][1]).area < 1.0
    # grids
    assert len(grids) >= 80
    gm = mgrid.set_index("code").geometry
    for code, geom in gm.items():
        comm = comms[grids.set_index("code").community_code[code]]
        assert geom.difference(comm).area < 1.0, code
    tree = shapely.STRtree(mgrid.geometry.values)
    pa, pb = tree.query(mgrid.geometry.values, predicate="intersects")
    for a, b in zip(pa, pb):
        if a < b:
            assert mgrid.geometry.iloc[a].intersection(mgrid.geometry.iloc[b]).area < 1.0
    for c, geom in comms.items():
        u = shapely.union_all(mgrid[mgrid.community_code == c].geometry.values)
        assert geom.difference(u).area < 1.0 and u.difference(geom).area < 1.0, c
    # buildings: covered by exactly one grid, inside no other grid's interior (WGS84, as written)
    assert len(bldgs) >= 3000
    gtree = shapely.STRtree(grids.geometry.values)
    bi, gi = gtree.query(bldgs.geometry.values, predicate="intersects")
    covering = Counter()
    owner = {}
    for b, g in zip(bi, gi):
        bg, gg = bldgs.geometry.iloc[b], grids.geometry.iloc[g]
        if shapely.covers(gg, bg):
            covering[b] += 1
            owner[b] = g
        else:
            assert not shapely.relate_pattern(gg, bg, "T********"), bldgs.code.iloc[b]
    assert all(covering[b] == 1 for b in range(len(bldgs))), "building not in exactly one grid"
    hh = Counter()
    for b, g in owner.items():
        hh[grids.code.iloc[g]] += int(bldgs.households.iloc[b])
    for g in grids.code:
        assert 300 <= hh[g] <= 500, (g, hh[g])
    assert (bldgs.households > 0).all() and (bldgs.population > 0).all()
    assert (bldgs.compound == "").sum() > 0 and (bldgs.compound != "").sum() > len(bldgs) / 2
    # doorplates unique per road (a compound shares one)
    gates = bldgs.assign(key=np.where(bldgs.compound == "", bldgs.code, bldgs.compound))
    per = gates.groupby(["road", "doorplate"]).key.nunique()
    assert (per == 1).all(), per[per > 1]
    # roads do not touch buildings
    rtree = shapely.STRtree(m["roads"].geometry.values)
    assert len(rtree.query(m["buildings"].geometry.values, predicate="intersects")[0]) == 0
    # stations and units
    st, un = read["stations"], read["units"]
    assert (st.kind == "党群服务站").sum() == 64 and (st.kind == "党群服务中心").sum() == 13
    assert st.name.is_unique
    btree = shapely.STRtree(bldgs.geometry.values)
    for df in (st, un):
        assert len(btree.query(df.geometry.values, predicate="intersects")[0]) == 0, "point in a building"
        for code, pt in zip(df.community_code, df.geometry):
            assert comms.index.isin([code]).any()
            assert regions.set_index("code").geometry[code].contains(pt)
    assert len(un) == 72
    # precincts cover the town exactly
    pr = m["precincts"].geometry.values
    assert 3 <= len(pr) <= 4
    for a in range(len(pr)):
        for b in range(a + 1, len(pr)):
            assert pr[a].intersection(pr[b]).area < 1.0
    pu = shapely.union_all(pr)
    assert town.difference(pu).area < 1.0 and pu.difference(town).area < 1.0
    # workers
    for g in grids.code:
        assert ((workers.grid_code == g) & (workers.role == "专职网格员")).sum() == 1
    for c in comms.index:
        for role in ("网格长", "社区民警"):
            assert ((workers.community_code == c) & (workers.role == role) & (workers.grid_code == "")).sum() == 1
    assert workers.phone.str.fullmatch(r"1[3-9]\d{9}").all()
    # special grids
    gg = grids.set_index("code").geometry
    hole = gg[HOLE_GRID]
    assert hole.geom_type == "Polygon" and len(hole.interiors) == 1
    assert gg[ISLAND_GRID].geom_type == "MultiPolygon" and len(gg[ISLAND_GRID].geoms) == 2
    assert gg[TWO_PART[0]].geom_type == "MultiPolygon" and len(gg[TWO_PART[0]].geoms) == 2
    multi = sorted(grids.code[grids.geom_type == "MultiPolygon"])
    holed = sorted(c for c, g in gg.items() if g.geom_type == "Polygon" and g.interiors)
    assert multi == sorted([ISLAND_GRID, TWO_PART[0]]) and holed == [HOLE_GRID], (multi, holed)
    island_pt = Point(*map(float, to_ll(BLOCKS[LOTS[ISLAND_LOT].cell].at(
        (LOTS[ISLAND_LOT].rect[0] + LOTS[ISLAND_LOT].rect[1]) / 2, LOTS[ISLAND_LOT].rect[2] + 3))[0]))
    assert Polygon(hole.interiors[0]).contains(island_pt) and gg[ISLAND_GRID].contains(island_pt)
    assert not hole.intersects(island_pt)
    assert len(btree.query(island_pt, predicate="intersects")) == 0
    edge_pt, (ga, gb) = shared_edge_point()
    ep = Point(edge_pt)
    assert gg[ga].boundary.intersects(ep) and gg[gb].boundary.intersects(ep)
    assert gg[ga].covers(ep) and gg[gb].covers(ep)
    assert sum(1 for g in gg.values if g.intersects(ep)) == 2
    parts = [p.representative_point() for p in gg[TWO_PART[0]].geoms]
    parts = [Point(round(p.x, 7), round(p.y, 7)) for p in parts]
    assert all(gg[TWO_PART[0]].contains(p) for p in parts)
    hole_pt = hole.representative_point()
    hole_pt = Point(round(hole_pt.x, 7), round(hole_pt.y, 7))
    assert hole.contains(hole_pt)

    sizes = {p.name: p.stat().st_size for p in sorted(OUT.iterdir())}
    area = built.area / 1e6
    print("临猗县 sample data package ->", OUT)
    print(f"  regions   {len(regions)} (county 1, town 1, communities {len(comms)})")
    print(f"  grids     {len(grids)}  (per community {min(Counter(grids.community_code).values())}-"
          f"{max(Counter(grids.community_code).values())})")
    print(f"  buildings {len(bldgs)}  ({(bldgs.compound != '').sum()} in "
          f"{bldgs[bldgs.compound != ''].groupby(['compound', 'road', 'doorplate']).ngroups} compounds, "
          f"{(bldgs.compound == '').sum()} street-front houses)")
    print(f"  households {int(bldgs.households.sum())}, population {int(bldgs.population.sum())}, "
          f"per grid {min(hh.values())}-{max(hh.values())}")
    print(f"  stations  {len(st)} (党群服务中心 {(st.kind == '党群服务中心').sum()}, "
          f"党群服务站 {(st.kind == '党群服务站').sum()})")
    print(f"  units     {len(un)}   precincts {len(pr)}   roads {len(read['roads'])}   workers {len(workers)} "
          f"({dict(sorted(Counter(workers.role).items()))})")
    print(f"  built-up area {area:.2f} km², town {town.area / 1e6:.1f} km², county {county.area / 1e6:.0f} km²")
    print(f"  files: " + ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in sizes.items()))
    print(f"  hole grid {HOLE_GRID}: point in the grid {hole_pt.x:.7f},{hole_pt.y:.7f}; "
          f"hole = compound {LOTS[ISLAND_LOT].name} of grid {ISLAND_GRID}, point {island_pt.x:.7f},{island_pt.y:.7f}")
    mp = gg[ISLAND_GRID]
    main_pt = max(mp.geoms, key=lambda p: p.area).representative_point()
    print(f"  island grid {ISLAND_GRID}: main part point {round(main_pt.x, 7):.7f},{round(main_pt.y, 7):.7f}")
    print(f"  two-part grid {TWO_PART[0]} (block taken from {TWO_PART[1]}): parts at "
          + "; ".join(f"{p.x:.7f},{p.y:.7f}" for p in parts))
    print(f"  point on the edge shared by {ga} and {gb}: {edge_pt[0]:.7f},{edge_pt[1]:.7f}")


if __name__ == "__main__":
    write_all()
    check()
