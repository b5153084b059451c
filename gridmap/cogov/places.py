"""Where a co-governance record is: its grid and community from a point or an address, through the same
coverage index and address matcher that answer ``/v1/lookup`` and place incidents."""

from __future__ import annotations

import math
from typing import Any

from gridmap.address.matcher import check_address
from gridmap.coverage.service import Coverage, check_point
from gridmap.errors import InvalidInput, NotFound


def community_name(coverage: Coverage, code: str) -> str:
    """The community's name; 422 when ``code`` is not a community of the package."""
    region = coverage.region(code)
    if region is None or region.get("level") != "community":
        raise InvalidInput(f"社区编码 {code} 不存在")
    return str(region["name"])


def check_grid(coverage: Coverage, grid_code: str, community_code: str) -> None:
    try:
        coverage.grid_position(grid_code)
    except NotFound:
        raise InvalidInput(f"网格 {grid_code} 不存在") from None
    community = coverage.grids["community_code"].iat[coverage.grid_position(grid_code)]
    if community != community_code:
        raise InvalidInput(f"网格 {grid_code} 不属于社区 {community_code}")


def locate(coverage: Coverage, *, lon: float | None, lat: float | None, address: str | None
           ) -> dict[str, Any] | None:
    """``{lon, lat, grid_code, community_code, match_level}`` of a point or an address (None without
    either); an address that names no building, compound or road is a 422, as for incidents."""
    if lon is not None and lat is not None:
        check_point(lon, lat)
        level = None
    elif address:
        check_address(address)
        if coverage.matcher is None:
            raise InvalidInput("地址库尚未建立，请提供经纬度")
        match = coverage.matcher.match(address)
        position = coverage.building_position.get(match.building.code) if match.building else None
        if match.level not in ("building", "compound", "road") or position is None:
            raise InvalidInput(f"地址“{address}”无法定位到楼栋（匹配级别 {match.level}），请提供经纬度或更详细的地址")
        lon, lat = (float(v) for v in coverage.building_xy[position])
        level = match.level
    else:
        return None
    grids, communities, _ = coverage.places([lon], [lat])
    return {"lon": lon, "lat": lat, "grid_code": grids[0], "community_code": communities[0], "match_level": level}


def unit_row(coverage: Coverage, code: str) -> dict[str, Any]:
    """A co-building unit of the ``units`` layer (code, name, category, resources, community, lon, lat)."""
    units = coverage.units
    if units is None or not len(units):
        raise InvalidInput("数据包中没有共建单位（units 图层）")
    match = units[units["code"] == code]
    if not len(match):
        raise InvalidInput(f"共建单位 {code} 不存在（units 图层）")
    row = match.iloc[0]
    return {"code": code, "name": str(row["name"]), "category": str(row.get("category") or ""),
            "resources": [r.strip() for r in str(row.get("resources") or "").split(";") if r.strip()],
            "community_code": str(row.get("community_code") or ""),
            "lon": float(row.geometry.x), "lat": float(row.geometry.y)}


def station_row(coverage: Coverage, code: str) -> dict[str, Any]:
    stations = coverage.stations
    match = stations[stations["code"] == code]
    if not len(match):
        raise InvalidInput(f"党群服务站 {code} 不存在")
    row = match.iloc[0]
    return {"code": code, "name": str(row["name"]), "community_code": str(row.get("community_code") or ""),
            "lon": float(row.geometry.x), "lat": float(row.geometry.y)}


def grid_centre(coverage: Coverage, grid_code: str) -> tuple[float, float]:
    """A point inside the grid (where a member placed in it is taken to be, for distances)."""
    geometry = coverage.grids.geometry.iat[coverage.grid_position(grid_code)]
    p = geometry.representative_point()
    return float(p.x), float(p.y)


def community_centre(coverage: Coverage, community_code: str) -> tuple[float, float] | None:
    region = coverage.region(community_code)
    if region is None or region.get("geometry") is None:
        return None
    p = region["geometry"].representative_point()
    return float(p.x), float(p.y)


def metres(coverage: Coverage, a: tuple[float, float], b: tuple[float, float]) -> float:
    """Straight-line metres between two (lon, lat) points, in the coverage's metric CRS."""
    x, y = coverage.to_metric([a[0], b[0]], [a[1], b[1]])
    return float(math.hypot(x[1] - x[0], y[1] - y[0]))
