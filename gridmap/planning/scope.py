"""Where a planning run looks: a region (community, town or county) and/or a bounding box.

A city holds thousands of grids; a planner asks about one county, one town or the streets on the
screen. The scope decides three things, and the rule at its edge is what makes a scoped answer the
same as the answer of a store that held only the scope:

- **demand**: the buildings whose inside point (the point addresses are located by) lies in a grid
  of the region's communities and inside the box, edges included. A building outside every grid
  belongs to no community: a region leaves it out, a box alone keeps it if it lies inside.
- **candidate sites**: the same test on the site's point, so a new station always goes inside the
  scope.
- **existing stations**: all of them, wherever they stand. A station across the scope's edge covers
  the scope's buildings it reaches, as it does on the ground; it is counted as coverage, never as a
  site of the scope (``stations_outside`` in the answer says how many such stations serve it).

Distances are walked on the whole road network near the scope (``gridmap.planning.network``), so
a path may leave the scope and come back: only what is counted is scoped, never the streets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from gridmap.errors import InvalidInput, NotFound

LEVELS = ("community", "town", "county")
LEVEL_NAMES = {"community": "社区", "town": "乡镇（街道）", "county": "县（市、区）"}
BBOX_EXAMPLE = "110.70,35.10,110.80,35.20"
BBOX_HELP = f"范围 bbox 应为“最小经度,最小纬度,最大经度,最大纬度”（WGS84，例如 {BBOX_EXAMPLE}）"

MAX_CODE_LENGTH = 32
"""Region codes are 6 (county), 9 (town) or 12 (community) digits; anything much longer is not one."""

BBox = tuple[float, float, float, float]


def parse_bbox(value: str | Sequence[float] | None) -> BBox | None:
    """``"minlon,minlat,maxlon,maxlat"`` (a query string) or four numbers (JSON) → a checked box."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    if len(parts) != 4:
        raise InvalidInput(BBOX_HELP)
    try:
        box = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        raise InvalidInput(BBOX_HELP) from None
    minlon, minlat, maxlon, maxlat = box
    if not all(math.isfinite(v) for v in box):
        raise InvalidInput(BBOX_HELP)
    if not (-180 <= minlon <= 180 and -180 <= maxlon <= 180 and -90 <= minlat <= 90 and -90 <= maxlat <= 90):
        raise InvalidInput(f"{BBOX_HELP}；经度应在 -180 到 180 之间，纬度应在 -90 到 90 之间")
    if not (minlon < maxlon and minlat < maxlat):
        raise InvalidInput(f"{BBOX_HELP}；最小值应小于最大值")
    return box  # type: ignore[return-value]


@dataclass(frozen=True)
class Area:
    """What a request asks for: a region code (named by its level, or by ``region`` for any level)
    and/or a box. Nothing given: the whole store."""

    region: str | None = None
    level: str | None = None
    """The level the request named the region by (``community`` …); None: whichever it is."""
    bbox: BBox | None = None

    @classmethod
    def of(cls, *, community: str | None = None, town: str | None = None, county: str | None = None,
           region: str | None = None, bbox: str | Sequence[float] | None = None) -> Area:
        given = (("community", community), ("town", town), ("county", county), ("region", region))
        named = {level: str(code).strip() for level, code in given if code is not None and str(code).strip()}
        if len(named) > 1:
            raise InvalidInput("community、town、county 只能给出一个（要同时限定范围，请再加 bbox）")
        level, code = next(iter(named.items()), (None, None))
        return cls(region=code, level=level if level in LEVELS else None, bbox=parse_bbox(bbox))

    @property
    def key(self) -> tuple:
        """What the scope's buildings depend on (the level a request named it by does not matter)."""
        return () if self.whole else (self.region, self.bbox)

    @property
    def whole(self) -> bool:
        return self.region is None and self.bbox is None


WHOLE = Area()


@dataclass(frozen=True)
class Scope:
    """A resolved area: which buildings, grids and communities it holds; which points it covers."""

    area: Area
    region: dict[str, str] | None
    """``{"code", "name", "level"}`` of the region, None without one."""
    buildings: NDArray[np.int64]
    """Positions (in the planner's building arrays) of the buildings in scope, ascending."""
    grids: NDArray[np.int64]
    """Positions of the grids a report lists, in code order."""
    communities: tuple[tuple[str, str], ...]
    """``(code, name)`` of the communities a report lists, in code order."""
    community_set: frozenset[str] | None = field(default=None, repr=False)
    """The region's communities (None: no region, any community or none)."""

    @property
    def key(self) -> tuple:
        return self.area.key

    @property
    def whole(self) -> bool:
        return self.area.whole

    def covers(self, lonlat: NDArray, community: NDArray) -> NDArray[np.bool_]:
        """Which points (WGS84, with the community of the grid each lies in, None outside) are in scope."""
        lonlat = np.asarray(lonlat, dtype=float).reshape(-1, 2)
        inside = np.ones(len(lonlat), dtype=bool)
        if self.community_set is not None:
            inside &= np.isin(np.asarray(community, dtype=object), list(self.community_set))
        if self.area.bbox is not None:
            inside &= in_bbox(lonlat, self.area.bbox)
        return inside

    def describe(self) -> dict[str, Any] | None:
        """The scope as an answer states it (None: the whole store)."""
        if self.whole:
            return None
        return {"region": self.region, "bbox": list(self.area.bbox) if self.area.bbox else None,
                "buildings": len(self.buildings)}


def in_bbox(lonlat: NDArray, bbox: BBox) -> NDArray[np.bool_]:
    """Boundary-inclusive: a point on the box's edge is inside (like ``covers``)."""
    minlon, minlat, maxlon, maxlat = bbox
    x, y = lonlat[:, 0], lonlat[:, 1]
    return (x >= minlon) & (x <= maxlon) & (y >= minlat) & (y <= maxlat)


def resolve(area: Area, *, coverage, building_lonlat: NDArray, building_community: NDArray[np.int64],
            communities: Sequence[tuple[str, str]]) -> Scope:
    """The scope of ``area`` over a store: 404 for an unknown region, 422 for a scope with no buildings.

    ``communities``: every community of the store as ``(code, name)`` in code order (what an
    unscoped report lists); ``building_community``: each building's position in it (-1: none).
    """
    n = len(building_lonlat)
    grids = coverage.grids
    if area.whole:
        return Scope(area, None, np.arange(n), np.arange(len(grids)), tuple(communities))
    region, community_set = _region(area, coverage)
    keep = np.ones(n, dtype=bool)
    listed_grids = np.ones(len(grids), dtype=bool)
    if community_set is not None:
        wanted = [i for i, (code, _) in enumerate(communities) if code in community_set]
        keep &= np.isin(building_community, wanted)
        listed_grids &= grids["community_code"].isin(community_set).to_numpy()
    if area.bbox is not None:
        keep &= in_bbox(building_lonlat, area.bbox)
        listed_grids &= shapely.intersects(grids.geometry.values, shapely.box(*area.bbox))
    if not keep.any():
        where = f"{region['name']}（{region['code']}）" if region else "所选范围"
        box = f"与 bbox {','.join(f'{v:g}' for v in area.bbox)} 的交集" if region and area.bbox else ""
        raise InvalidInput(f"{where}{box}内没有楼栋，没有可分析的需求；请检查区域代码或范围")
    listed_codes = set(grids["community_code"].to_numpy()[listed_grids])
    listed = tuple((c, name) for c, name in communities
                   if (community_set is None or c in community_set) and (area.bbox is None or c in listed_codes))
    return Scope(area, region, np.flatnonzero(keep), np.flatnonzero(listed_grids), listed, community_set)


def _region(area: Area, coverage) -> tuple[dict[str, str] | None, frozenset[str] | None]:
    if area.region is None:
        return None, None
    row = coverage.region(area.region)
    if row is None:
        raise NotFound(f"区域 {area.region} 不存在")
    level, name = row["level"], row["name"]
    if level not in LEVELS:
        raise InvalidInput(f"{name}（{area.region}）不是社区、乡镇或县级区域")
    if area.level is not None and level != area.level:
        raise InvalidInput(f"{name}（{area.region}）是{LEVEL_NAMES[level]}，不是{LEVEL_NAMES[area.level]}；"
                           f"请用 {level}={area.region}")
    return ({"code": area.region, "name": name, "level": level},
            frozenset(coverage.communities_under(area.region)))


def region_fields(coverage, code: str) -> dict[str, str]:
    """``--region CODE`` of the command line as the request field of its level (``{"town": CODE}``)."""
    row = coverage.region(code)
    if row is None:
        raise NotFound(f"区域 {code} 不存在")
    if row["level"] not in LEVELS:
        raise InvalidInput(f"{row['name']}（{code}）不是社区、乡镇或县级区域")
    return {row["level"]: code}
