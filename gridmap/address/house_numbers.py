"""House numbers the library does not hold: where on its road a doorplate should be.

Chinese doorplates run along a road with the odd numbers on one side and the even numbers on the
other, rising in one direction. A number missing from the library (府前街225号 where 223 and 227 are
known) is therefore placed between the two known doorplates of the SAME parity that bracket it, in
proportion to the numbers: a quarter of the way from 223 to 231 for 225. The position is taken along the
road's line (the two buildings projected onto it, the distance along the road and the distance from its
centre line both interpolated, so the point stays on the odd side among the odd buildings); when the
road has no usable line — not in the roads layer, several separate parts in the town, or a neighbour
too far from it to stand on it — the point is interpolated on the straight segment between the two
buildings' points instead.

What is never done: a number below the lowest or above the highest known number of its side gets no
position at all (extrapolating past the last house known is a guess about where the road's numbering
goes, not an estimate), nor does a number whose bracketing neighbours are more than
``MAX_BRACKET_GAP`` apart. Such an address is answered at road level without a position; the answer
never names a building for a number the library does not hold.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely
from shapely.geometry import LineString, Point

if TYPE_CHECKING:
    from gridmap.address.library import AddressLibrary

__all__ = ["MAX_BRACKET_GAP", "ROAD_REACH_M", "HousePosition", "bracket", "interpolate", "locate"]

# ---------------------------------------------------------------- tuning (all in one place)
MAX_BRACKET_GAP = 50
"""The greatest difference between the two bracketing numbers of one side that is interpolated. In the
sample county 95% of the gaps between successive known numbers of a side are at most 28 and 99% at most
56; 50 numbers are some 25 plots (several hundred metres) — beyond that, the houses in between may bend
away with the road or belong to a later numbering, and a position would look more certain than it is."""
ROAD_REACH_M = 500.0
"""How far from the road's line a bracketing building may stand for the line to be used (compounds set
back from the street are some 150 m off it in the sample); farther, the line found is taken to be
another road of the same name, and the two buildings' points are used instead."""
METRES_PER_DEGREE = 111_320.0
"""Length of a degree of latitude (and of longitude at the equator): enough to compare with
``ROAD_REACH_M`` and to keep the local frame square (longitude scaled by cos(latitude))."""
_TANGENT_STEP = 1e-7
"""Half the chord (in degrees) over which the road's direction is taken at a point."""


@dataclass(frozen=True, slots=True)
class HousePosition:
    """Where a missing number is placed, and from what."""

    lon: float
    lat: float
    below: tuple[int, int]
    """(number, building idx) of the known doorplate below it, on the same side."""
    above: tuple[int, int]
    """(number, building idx) of the known doorplate above it, on the same side."""
    along_road: bool
    """True when placed along the road's line, False when between the two buildings' points."""


def locate(lib: AddressLibrary, road: str, door: int, town: str | None) -> HousePosition | None:
    """Where doorplate ``door`` of ``road`` in ``town`` should be, from the library's doorplates of that
    road there and the road's line in the roads layer; None when no position can be given (see above)."""
    found = bracket(lib.road_doors.get((road, town), ()), door)
    if found is None:
        return None
    below, above = found
    low, high = lib.records[below[1]], lib.records[above[1]]
    return interpolate(door, below, above, (low.x, low.y), (high.x, high.y), lib.road_line(road, town)[1])


def bracket(doors: Sequence[tuple[int, int]], door: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The known (number, idx) just below and just above ``door`` with its parity, from ``doors`` sorted by
    number; None when ``door`` is itself known, lies outside the known range of its side, or the two are
    more than ``MAX_BRACKET_GAP`` apart (see the module's docstring for why no position is given then)."""
    side = [(n, i) for n, i in doors if n % 2 == door % 2]
    at = bisect_left(side, (door, -1))
    if at == 0 or at == len(side) or side[at][0] == door:
        return None
    below, above = side[at - 1], side[at]
    if above[0] - below[0] > MAX_BRACKET_GAP:
        return None
    return below, above


def interpolate(door: int, below: tuple[int, int], above: tuple[int, int], below_xy: tuple[float, float],
                above_xy: tuple[float, float], line: LineString | None) -> HousePosition | None:
    """The position of ``door`` between the buildings of ``below`` and ``above`` (at ``below_xy`` and
    ``above_xy``, lon/lat), along ``line`` when it is a usable single line; None when a point is unknown."""
    if not all(math.isfinite(v) for v in (*below_xy, *above_xy)):
        return None
    t = (door - below[0]) / (above[0] - below[0])
    found = _along(line, t, below_xy, above_xy) if line is not None else None
    if found is not None:
        return HousePosition(found[0], found[1], below, above, along_road=True)
    lon = below_xy[0] + t * (above_xy[0] - below_xy[0])
    lat = below_xy[1] + t * (above_xy[1] - below_xy[1])
    return HousePosition(lon, lat, below, above, along_road=False)


def _along(line: LineString, t: float, a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float] | None:
    """The point a fraction ``t`` of the way from ``a`` to ``b`` along ``line``: the distance along the line
    and the signed distance from it both interpolated. Computed in a local frame where a degree of
    longitude is shrunk by cos(latitude), so that "perpendicular" and "distance" mean what they do on the
    ground. None when the line is not a single line or a point stands farther than ``ROAD_REACH_M``."""
    if line.geom_type != "LineString" or line.is_empty:
        return None
    scale = np.array([math.cos(math.radians((a[1] + b[1]) / 2)), 1.0])
    local = shapely.transform(line, lambda xy: xy * scale)
    if local.length == 0:
        return None
    pa, pb = Point(np.asarray(a) * scale), Point(np.asarray(b) * scale)
    if max(local.distance(pa), local.distance(pb)) * METRES_PER_DEGREE > ROAD_REACH_M:
        return None
    da, db = local.project(pa), local.project(pb)
    d = da + t * (db - da)
    offset = _signed_offset(local, da, pa) + t * (_signed_offset(local, db, pb) - _signed_offset(local, da, pa))
    foot = local.interpolate(d)
    tx, ty = _direction(local, d)
    x, y = foot.x - ty * offset, foot.y + tx * offset  # the left normal of the road's direction
    return float(x / scale[0]), float(y)


def _direction(line: LineString, d: float) -> tuple[float, float]:
    """The unit direction of ``line`` at distance ``d`` along it (a chord across a bend at a vertex)."""
    start = line.interpolate(max(0.0, d - _TANGENT_STEP))
    end = line.interpolate(min(line.length, d + _TANGENT_STEP))
    dx, dy = end.x - start.x, end.y - start.y
    norm = math.hypot(dx, dy)
    return (dx / norm, dy / norm) if norm else (1.0, 0.0)


def _signed_offset(line: LineString, d: float, p: Point) -> float:
    """Distance of ``p`` from its foot at ``d`` on ``line``: positive on the left of the road's direction."""
    foot = line.interpolate(d)
    tx, ty = _direction(line, d)
    vx, vy = p.x - foot.x, p.y - foot.y
    return math.copysign(math.hypot(vx, vy), tx * vy - ty * vx)
