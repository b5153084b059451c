"""The topology report: every problem of the boundaries in one pass, as JSON and as GeoJSON.

Grids are checked within their communities and communities within their towns: overlaps, gaps, slivers,
parts outside the parent's boundary, invalid geometries, and buildings a grid edge splits. A geometry that
is invalid is reported as such and left out of the other measures (an overlay of it means nothing).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.topology import measures
from gridmap.topology.measures import AREA_TOLERANCE_M2
from gridmap.validation import usable

KINDS: Final[dict[str, str]] = {
    "overlap": "重叠",
    "gap": "缝隙",
    "sliver": "狭长碎片",
    "crossing": "超出上级边界",
    "invalid": "几何无效",
    "split_building": "楼栋被网格边界分割",
}
"""Problem kinds and their Chinese names (legends, messages)."""

WARNING_KINDS: Final = frozenset({"gap", "sliver"})
"""Kinds the import also lets through (a community may hold land no grid covers yet); the others are
errors, as the import's validation treats them."""

SLIVER_WIDTH_M: Final = 2.0
"""Default width below which a part of a grid or community counts as a sliver: narrower than a lane,
no grid is drawn that thin on purpose."""

LEVEL_NAMES: Final = {"grids": "网格", "communities": "社区", "towns": "乡镇", "buildings": "楼栋"}


@dataclass(frozen=True)
class Item:
    """One problem: its kind, the layer (grids, communities, towns, buildings), the features involved,
    the parent it was checked within, its area and where it is."""

    kind: str
    level: str
    codes: tuple[str, ...]
    parent: str
    area_m2: float
    message: str
    geometry: shapely.Geometry | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return "warning" if self.kind in WARNING_KINDS else "error"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "kind_name": KINDS[self.kind], "severity": self.severity, "level": self.level, "codes": list(self.codes),
                "parent": self.parent, "area_m2": round(self.area_m2, 1), "message": self.message, **self.extra}


@dataclass
class TopologyReport:
    items: list[Item]
    sliver_width_m: float
    tolerance_m2: float
    checked: dict[str, int]

    @property
    def clean(self) -> bool:
        return not self.items

    @property
    def errors(self) -> int:
        return sum(i.severity == "error" for i in self.items)

    def counts(self) -> dict[str, int]:
        found = Counter(i.kind for i in self.items)
        return {kind: found.get(kind, 0) for kind in KINDS}

    def to_dict(self) -> dict[str, Any]:
        return {"clean": self.clean, "errors": self.errors, "warnings": len(self.items) - self.errors,
                "sliver_width_m": self.sliver_width_m, "tolerance_m2": self.tolerance_m2,
                "checked": self.checked, "counts": self.counts(), "problems": [i.to_dict() for i in self.items]}

    def to_geojson(self) -> dict[str, Any]:
        """The problem geometries (the overlap itself, the gap, the sliver, the part outside, the invalid
        feature, the split building), each with the item's fields as properties."""
        features = []
        for item in self.items:
            geometry = None if item.geometry is None else json.loads(shapely.to_geojson(
                shapely.set_precision(item.geometry, 1e-7) if item.kind != "invalid" else item.geometry))
            features.append({"type": "Feature", "properties": item.to_dict(), "geometry": geometry})
        return {"type": "FeatureCollection", "features": features}

    def frame(self) -> gpd.GeoDataFrame:
        """The items as a GeoDataFrame (for the map layer): kind, kind_name, codes text, area, message."""
        rows = [{"kind": i.kind, "kind_name": KINDS[i.kind], "level": LEVEL_NAMES[i.level],
                 "codes": "、".join(i.codes), "parent": i.parent, "area_m2": round(i.area_m2, 1),
                 "message": i.message} for i in self.items if i.geometry is not None]
        geoms = [i.geometry for i in self.items if i.geometry is not None]
        return gpd.GeoDataFrame(pd.DataFrame(rows, columns=["kind", "kind_name", "level", "codes", "parent",
                                                            "area_m2", "message"]),
                                geometry=geoms, crs="EPSG:4326")


def _invalid(frame: gpd.GeoDataFrame, level: str) -> list[Item]:
    geoms = frame.geometry.values
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    out = []
    for code, geom, ok in zip(frame["code"], geoms, present):
        if not ok:
            out.append(Item("invalid", level, (code,), "", 0.0, f"{LEVEL_NAMES[level]} {code} 几何为空", None,
                            {"reason": "empty"}))
        elif not shapely.is_valid(geom):
            reason = shapely.is_valid_reason(geom)
            out.append(Item("invalid", level, (code,), "", 0.0, f"{LEVEL_NAMES[level]} {code} 几何无效：{reason}",
                            geom, {"reason": reason}))
    return out


def _parent_of(codes: tuple[str, ...], parents: Mapping[str, str]) -> str:
    found = {parents.get(c, "") for c in codes}
    return found.pop() if len(found) == 1 else ""


def _overlap_items(frame: gpd.GeoDataFrame, level: str, parents: Mapping[str, str], tolerance: float) -> list[Item]:
    name = LEVEL_NAMES[level]
    out = []
    for p in measures.overlaps(frame.geometry.values, frame["code"].to_numpy(), tolerance):
        a, b = p.codes
        out.append(Item("overlap", level, p.codes, _parent_of(p.codes, parents), p.area_m2,
                        f"{name} {a} 与 {b} 重叠 {p.area_m2:.1f} 平方米", p.geometry))
    return out


def _gap_items(parents: gpd.GeoDataFrame, children: gpd.GeoDataFrame, parent_column: str, level: str,
               tolerance: float) -> list[Item]:
    """Gaps of each parent that has children (a community with no grid yet is not a gap of its grids)."""
    out = []
    grouped = {code: g.geometry.values for code, g in children.groupby(parent_column)}
    for code, geom in zip(parents["code"], parents.geometry.values):
        if code not in grouped:
            continue
        for p in measures.gaps(geom, grouped[code], code, tolerance):
            out.append(Item("gap", level, (code,), code, p.area_m2,
                            f"{LEVEL_NAMES[level]} {code} 内有 {p.area_m2:.1f} 平方米未划入任何"
                            f"{'网格' if level == 'communities' else '社区'}", p.geometry))
    return out


def _crossing_items(children: gpd.GeoDataFrame, parent_column: str, parents: gpd.GeoDataFrame, level: str,
                    parent_level: str, tolerance: float) -> list[Item]:
    outline = dict(zip(parents["code"], parents.geometry.values))
    out = []
    for code, parent, geom in zip(children["code"], children[parent_column], children.geometry.values):
        if parent not in outline:
            continue
        p = measures.crossing(geom, outline[parent], code, parent, tolerance)
        if p is not None:
            out.append(Item("crossing", level, (code,), parent, p.area_m2,
                            f"{LEVEL_NAMES[level]} {code} 超出所属{LEVEL_NAMES[parent_level]} {parent} 边界 "
                            f"{p.area_m2:.1f} 平方米", p.geometry))
    return out


def _sliver_items(frame: gpd.GeoDataFrame, level: str, parents: Mapping[str, str], width_m: float,
                  tolerance: float) -> list[Item]:
    out = []
    for p in measures.slivers(frame.geometry.values, frame["code"].to_numpy(), width_m, tolerance):
        code = p.codes[0]
        out.append(Item("sliver", level, p.codes, parents.get(code, ""), p.area_m2,
                        f"{LEVEL_NAMES[level]} {code} 有窄于 {width_m:g} 米的狭长部分 {p.area_m2:.1f} 平方米",
                        p.geometry, {"width_m": width_m}))
    return out


def _split_items(buildings: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, tolerance: float) -> list[Item]:
    out = []
    for p in measures.splits(buildings.geometry.values, buildings["code"].to_numpy(), grids.geometry.values,
                             grids["code"].to_numpy(), tolerance):
        building, *sides = p.codes
        shares = p.extra["shares"]
        text = "，".join(f"{g} 占 {shares[g]:.0%}" for g in sides)
        out.append(Item("split_building", "buildings", tuple(p.codes), "", p.area_m2,
                        f"楼栋 {building} 被网格边界分割：{text}", p.geometry, dict(p.extra)))
    return out


def check_topology(layers: Mapping[str, Any], *, sliver_width_m: float = SLIVER_WIDTH_M,
                   tolerance_m2: float = AREA_TOLERANCE_M2) -> TopologyReport:
    """The report for a package's or a store's layers (``regions``, ``grids``, optionally ``buildings``).

    ``tolerance_m2``: areas at or below it are coordinate rounding (the import's own tolerance by default).
    """
    regions = layers["regions"]
    grids = layers["grids"]
    buildings = layers.get("buildings")
    communities_all = regions[regions["level"] == "community"]
    towns_all = regions[regions["level"] == "town"]
    items: list[Item] = []
    items += _invalid(towns_all, "towns") + _invalid(communities_all, "communities") + _invalid(grids, "grids")
    if buildings is not None:
        items += _invalid(buildings[np.isin(shapely.get_type_id(buildings.geometry.values), (-1, 3, 6))],
                          "buildings")
    good_regions = usable(regions, "regions")
    communities = good_regions[good_regions["level"] == "community"]
    towns = good_regions[good_regions["level"] == "town"]
    good_grids = usable(grids, "grids")
    grid_parent = dict(zip(good_grids["code"], good_grids["community_code"]))
    community_parent = dict(zip(communities["code"], communities["parent_code"]))

    items += _overlap_items(good_grids, "grids", grid_parent, tolerance_m2)
    items += _overlap_items(communities, "communities", community_parent, tolerance_m2)
    items += _gap_items(communities, good_grids, "community_code", "communities", tolerance_m2)
    items += _gap_items(towns, communities, "parent_code", "towns", tolerance_m2)
    items += _sliver_items(good_grids, "grids", grid_parent, sliver_width_m, tolerance_m2)
    items += _sliver_items(communities, "communities", community_parent, sliver_width_m, tolerance_m2)
    items += _crossing_items(good_grids, "community_code", communities, "grids", "communities", tolerance_m2)
    items += _crossing_items(communities, "parent_code", towns, "communities", "towns", tolerance_m2)
    checked = {"grids": len(grids), "communities": len(communities_all), "towns": len(towns_all)}
    if buildings is not None:
        good_buildings = usable(buildings, "buildings")
        items += _split_items(good_buildings, good_grids, tolerance_m2)
        checked["buildings"] = len(buildings)
    order = list(KINDS)
    items.sort(key=lambda i: (order.index(i.kind), i.level, i.codes))
    return TopologyReport(items, sliver_width_m, tolerance_m2, checked)
