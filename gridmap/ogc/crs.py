"""OGC API – Features Part 2 (CRS by reference): ``crs`` for the coordinates of an answer and ``bbox-crs``
for those of a ``bbox``.

The data stay in CRS84 (lon/lat, WGS84). Answers in another CRS are transformed with pyproj in the CRS's
own axis order, as Part 2 requires: EPSG:4326 and EPSG:4490 (CGCS2000) are latitude first, the CGCS2000
Gauss–Krüger projections northing first, EPSG:3857 easting first. The county's Gauss–Krüger zone (3-degree,
central meridian nearest the county's centre: CM 111°E, EPSG:4546, for 临猗) is what the county's surveyors
deliver, so it is offered beside the web and national CRSs.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Final

import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

CRS84: Final = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI: Final = "http://www.opengis.net/def/crs/EPSG/0/"
FIXED_EPSG: Final = (4326, 4490, 3857)
DENSIFY_STEPS: Final = 64
"""A bbox in a projected CRS is a curved shape in lon/lat: its edges are cut in this many pieces first."""


class UnsupportedCrs(ValueError):
    """A CRS URI this service does not offer."""


class OutsideCrs(ValueError):
    """A bbox with corners where its CRS is not defined (pyproj answers infinity there)."""


def gauss_kruger_zone(lon: float) -> int:
    """The EPSG code of the CGCS2000 3-degree Gauss–Krüger projection (CM variant, no zone prefix in the
    easting) whose central meridian is nearest ``lon``: EPSG:4534 (75°E) to EPSG:4554 (135°E)."""
    central = min(max(round(lon / 3) * 3, 75), 135)
    return 4534 + (central - 75) // 3


def supported(centre_lon: float) -> list[str]:
    """CRS84 first (the storage CRS), then EPSG:4326, 4490, 3857 and the county's Gauss–Krüger zone."""
    return [CRS84, *(f"{EPSG_URI}{code}" for code in (*FIXED_EPSG, gauss_kruger_zone(centre_lon)))]


def check(uri: str, offered: Sequence[str], name: str) -> str:
    if uri not in offered:
        raise UnsupportedCrs(f"{name} 不支持 {uri!r}（可选：{'、'.join(offered)}）")
    return uri


@lru_cache(maxsize=16)
def _transformer(source: str, target: str) -> pyproj.Transformer:
    """Authority axis order on both sides (never ``always_xy``): that is what Part 2 asks for."""
    return pyproj.Transformer.from_crs(_crs(source), _crs(target))


def _crs(uri: str) -> pyproj.CRS:
    return pyproj.CRS("OGC:CRS84") if uri == CRS84 else pyproj.CRS(f"EPSG:{uri.removeprefix(EPSG_URI)}")


def to_crs(geometries: NDArray, uri: str) -> NDArray:
    """CRS84 geometries in the CRS ``uri``, in its axis order."""
    if uri == CRS84 or not len(geometries):
        return geometries
    transformer = _transformer(CRS84, uri)

    def move(coords: NDArray) -> NDArray:
        a, b = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([a, b])

    return shapely.transform(geometries, move)


def bbox_area(bbox: tuple[float, float, float, float], uri: str) -> shapely.Geometry:
    """The CRS84 area of a bbox given in ``uri``'s axis order (edges densified, then transformed)."""
    if uri == CRS84:
        return shapely.box(*bbox)
    first_min, second_min, first_max, second_max = bbox
    transformer = _transformer(uri, CRS84)
    if first_min == first_max or second_min == second_max:  # a line or a point: its corners are enough
        lon, lat = transformer.transform([first_min, first_max], [second_min, second_max])
        _check_finite(np.concatenate([lon, lat]))
        return shapely.box(min(lon), min(lat), max(lon), max(lat))
    ring = shapely.segmentize(shapely.box(first_min, second_min, first_max, second_max),
                              max(first_max - first_min, second_max - second_min) / DENSIFY_STEPS)

    def move(coords: NDArray) -> NDArray:
        lon, lat = transformer.transform(coords[:, 0], coords[:, 1])
        _check_finite(np.concatenate([lon, lat]))
        return np.column_stack([lon, lat])

    return shapely.transform(ring, move)


def _check_finite(values: NDArray) -> None:
    if not np.isfinite(values).all():
        raise OutsideCrs("bbox 超出 bbox-crs 坐标系的有效范围")
