"""PolygonIndex: exact, boundary-inclusive, lowest-index-wins point location.

The specification is brute force: the answer for (x, y) is the lowest i with
``shapely.intersects_xy(geoms[i], x, y)``, else -1.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridmap.coverage.index import PolygonIndex

X0, Y0, U = 110.76, 35.13, 0.001  # a small lon/lat area in Linyi county; U ≈ 100 m


def sq(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0 * U, Y0 + y0 * U, X0 + x1 * U, Y0 + y1 * U)


def brute(geoms, x, y) -> np.ndarray:
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    out = np.full(x.shape, -1, np.int64)
    for i in range(len(geoms) - 1, -1, -1):
        if geoms[i] is not None:
            out[shapely.intersects_xy(geoms[i], x, y)] = i
    return out


def rectangles() -> list[shapely.Geometry]:
    """A 4 x 3 square cut into 6 rectangles with shared edges and vertices."""
    return [sq(i, j, i + w, j + 1.5) for j in (0, 1.5) for i, w in ((0, 1), (1, 2), (3, 1))]


def hole_and_island() -> list[shapely.Geometry]:
    """0: square with two holes; 1: multipolygon = island filling hole 1 + a piece outside;
    2: a two-piece multipolygon; hole 2 of polygon 0 stays empty."""
    outer = sq(0, 0, 4, 4).exterior.coords
    hole1 = sq(1, 1, 2, 2).exterior.coords
    hole2 = sq(2.5, 2.5, 3.5, 3.5).exterior.coords
    ring = shapely.Polygon(outer, [hole1, hole2])
    island = shapely.MultiPolygon([sq(1, 1, 2, 2), sq(4, 0, 5, 1)])
    two = shapely.MultiPolygon([sq(4, 1, 5, 4), sq(6, 0, 7, 4)])
    return [ring, island, two]


def overlapping() -> list[shapely.Geometry]:
    """Bad data: a big polygon listed after smaller ones it overlaps and contains."""
    return [sq(1, 1, 2, 2), sq(1.5, 0.5, 3, 1.5), sq(0, 0, 4, 4), sq(0.5, 0.5, 1, 1)]


def voronoi(seed: int, n: int) -> list[shapely.Geometry]:
    rng = np.random.default_rng(seed)
    box = sq(0, 0, 40, 30)
    pts = shapely.points(rng.uniform(X0, X0 + 40 * U, n), rng.uniform(Y0, Y0 + 30 * U, n))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=box))
    return list(shapely.intersection(cells, box))


FIXTURES = {
    "rectangles": rectangles,
    "rectangles_reversed": lambda: rectangles()[::-1],
    "hole_and_island": hole_and_island,
    "overlapping": overlapping,
    "voronoi_a": lambda: voronoi(1, 12),
    "voronoi_b": lambda: voronoi(2, 60),
    "voronoi_c": lambda: voronoi(3, 200),
}
RESOLUTIONS = (None, 400, 16)  # default raster, and coarse ones that force the exact (mixed) paths


@cache
def fixture(name: str) -> list[shapely.Geometry]:
    return FIXTURES[name]()


@cache
def index(name: str, cells: int | None) -> PolygonIndex:
    return PolygonIndex(fixture(name), target_cells=cells)


def special_points(geoms, rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertices, points on edges (midpoints and random t), and their 1-ulp neighbours."""
    coords = shapely.get_coordinates(shapely.get_rings(shapely.get_parts(geoms)))
    pick = rng.integers(0, len(coords) - 1, k)
    a, b = coords[pick], coords[pick + 1]
    t = rng.choice([0.0, 0.5, 1.0, 0.25], k)
    t = np.where(rng.random(k) < 0.3, rng.random(k), t)
    x = a[:, 0] + t * (b[:, 0] - a[:, 0])
    y = a[:, 1] + t * (b[:, 1] - a[:, 1])
    nudge = rng.integers(-1, 2, (2, k))
    x = np.where(nudge[0] == 1, np.nextafter(x, np.inf), np.where(nudge[0] == -1, np.nextafter(x, -np.inf), x))
    y = np.where(nudge[1] == 1, np.nextafter(y, np.inf), np.where(nudge[1] == -1, np.nextafter(y, -np.inf), y))
    return x, y


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(FIXTURES)),
    cells=st.sampled_from(RESOLUTIONS),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_brute_force(name: str, cells: int | None, seed: int) -> None:
    geoms = fixture(name)
    idx = index(name, cells)
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    pad = 0.05 * (xmax - xmin)
    x = rng.uniform(xmin - pad, xmax + pad, 400)
    y = rng.uniform(ymin - pad, ymax + pad, 400)
    sx, sy = special_points(np.asarray(geoms, dtype=object), rng, 400)
    x, y = np.concatenate([x, sx]), np.concatenate([y, sy])
    expected = brute(geoms, x, y)
    got = idx.locate(x, y)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    one = np.array([idx.locate_one(a, b) for a, b in zip(x[::4], y[::4])])
    np.testing.assert_array_equal(one, expected[::4])


@pytest.mark.parametrize("cells", RESOLUTIONS)
def test_shared_edge_and_vertex_go_to_lowest_index(cells: int | None) -> None:
    for name in ("rectangles", "rectangles_reversed"):
        geoms = fixture(name)
        idx = index(name, cells)
        n = len(geoms)
        bottom_left, bottom_mid = (0, 1) if name == "rectangles" else (n - 1, n - 2)
        # Edge x = 1 between the two left-bottom rectangles, and the vertex (1, 1.5) shared by 4.
        x = np.array([X0 + 1 * U, X0 + 1 * U, X0 + 1 * U])
        y = np.array([Y0 + 0.75 * U, Y0 + 1.5 * U, Y0 + 0 * U])
        owners_at_vertex = [i for i in range(n) if shapely.intersects_xy(geoms[i], x[1], y[1])]
        assert len(owners_at_vertex) == 4
        expected = [min(bottom_left, bottom_mid), min(owners_at_vertex), min(bottom_left, bottom_mid)]
        assert idx.locate(x, y).tolist() == expected
        assert [idx.locate_one(a, b) for a, b in zip(x, y)] == expected


@pytest.mark.parametrize("cells", RESOLUTIONS)
def test_holes_islands_and_multipart(cells: int | None) -> None:
    idx = index("hole_and_island", cells)
    cases = {
        (0.5, 0.5): 0,  # in the holed square
        (1.5, 1.5): 1,  # in hole 1: the island, part of multipolygon 1
        (1.0, 1.5): 0,  # on the hole's edge, shared by 0 and the island: lowest wins
        (3.0, 3.0): -1,  # in hole 2, no island
        (2.5, 3.0): 0,  # on hole 2's edge: boundary-inclusive
        (4.5, 0.5): 1,  # the island's other piece
        (4.5, 2.0): 2,  # first piece of the two-piece multipolygon
        (6.5, 2.0): 2,  # second piece
        (5.5, 2.0): -1,  # between the pieces
        (4.0, 0.5): 0,  # edge shared by 0 and 1's outer piece
    }
    for (u, v), expected in cases.items():
        lon, lat = X0 + u * U, Y0 + v * U
        assert idx.locate_one(lon, lat) == expected, (u, v)
        assert idx.locate([lon], [lat]).tolist() == [expected], (u, v)


def test_overlapping_data_lowest_index_wins() -> None:
    idx = index("overlapping", None)
    pts = {(1.5, 1.5): 0, (1.75, 1.25): 0, (2.5, 1.0): 1, (3.5, 3.5): 2, (0.75, 0.75): 2, (1.0, 1.0): 0}
    for (u, v), expected in pts.items():
        assert idx.locate_one(X0 + u * U, Y0 + v * U) == expected


def test_outside_nan_and_shapes() -> None:
    idx = index("rectangles", None)
    assert idx.locate_one(X0 - U, Y0) == -1
    assert idx.locate_one(math.nan, Y0) == -1
    assert idx.locate_one(X0 + U / 2, math.inf) == -1
    got = idx.locate([math.nan, X0 + 0.5 * U, X0 + 9 * U], [Y0, Y0 + 0.5 * U, Y0])
    assert got.tolist() == [-1, 0, -1]
    grid = idx.locate(np.full((2, 3), X0 + 0.5 * U), Y0 + 0.5 * U)
    assert grid.shape == (2, 3) and (grid == 0).all()
    assert idx.locate(X0 + 0.5 * U, Y0 + 0.5 * U).shape == ()
    assert len(idx) == 6
    assert idx.nearest(math.nan, Y0) == (-1, math.inf)


def test_nearest_in_metres_matches_utm() -> None:
    geoms = fixture("hole_and_island")
    idx = PolygonIndex(geoms)
    utm = pyproj.CRS.from_epsg(32649)  # lon 110.76 is in UTM zone 49N
    assert idx.metric_crs == utm
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", utm, always_xy=True)

    def metric(g):
        return shapely.transform(g, lambda c: np.column_stack(to_utm.transform(c[:, 0], c[:, 1])))

    for u, v in [(5.5, 2.0), (3.0, 3.0), (9.0, -2.0), (-1.0, 5.0)]:
        lon, lat = X0 + u * U, Y0 + v * U
        got, dist = idx.nearest(lon, lat)
        point = shapely.Point(*to_utm.transform(lon, lat))
        dists = [shapely.distance(metric(g), point) for g in geoms]
        assert got == int(np.argmin(dists))
        assert dist == pytest.approx(min(dists), rel=1e-9, abs=1e-6)
        assert dist > 10  # metres, not degrees
    assert idx.nearest(X0 + 0.5 * U, Y0 + 0.5 * U) == (0, 0.0)
    assert idx.nearest(X0 + 1 * U, Y0 + 1.5 * U) == (0, 0.0)  # on an edge: covered


def test_nearest_uses_given_crs() -> None:
    crs = pyproj.CRS.from_epsg(3857)
    idx = PolygonIndex(rectangles(), metric_crs=crs)
    assert idx.metric_crs == crs
    _, d = idx.nearest(X0 - U, Y0 + U)
    assert d == pytest.approx(U * math.pi / 180 * 6378137, rel=1e-6)  # web-mercator metres


def test_empty_and_missing_geometries() -> None:
    empty = PolygonIndex([])
    assert len(empty) == 0
    assert empty.locate([X0, 0.0], [Y0, 0.0]).tolist() == [-1, -1]
    assert empty.locate(np.zeros(0), np.zeros(0)).shape == (0,)
    assert empty.locate_one(X0, Y0) == -1
    assert empty.nearest(X0, Y0) == (-1, math.inf)
    only_missing = PolygonIndex(np.array([None, shapely.Polygon()], dtype=object))
    assert only_missing.locate_one(X0, Y0) == -1
    geoms = [None, sq(0, 0, 1, 1), shapely.Polygon(), sq(1, 0, 2, 1)]
    idx = PolygonIndex(geoms)
    assert len(idx) == 4
    assert idx.locate([X0 + 0.5 * U, X0 + 1 * U, X0 + 1.5 * U], [Y0 + 0.5 * U] * 3).tolist() == [1, 1, 3]
    assert idx.nearest(X0 + 3 * U, Y0 + 0.5 * U)[0] == 3


def test_accepts_geometry_array() -> None:
    import geopandas as gpd

    frame = gpd.GeoDataFrame({"code": ["b", "a"]}, geometry=[sq(1, 0, 2, 1), sq(0, 0, 1, 1)], crs=4326)
    frame = frame.sort_values("code").reset_index(drop=True)
    idx = PolygonIndex(frame.geometry.values)
    assert idx.locate_one(X0 + 1 * U, Y0 + 0.5 * U) == 0  # shared edge: the smaller code ("a")
    assert idx.locate_one(X0 + 1.5 * U, Y0 + 0.5 * U) == 1


def test_orientation_filter_never_trusts_a_wrong_sign() -> None:
    """The float side-of-line test behind the single-segment fast path: Kettner et al.'s classic
    near-degenerate configuration, where naive floating-point orientation gets signs wrong.
    Whenever the filter declares the sign certain, it must equal the exact sign."""
    from fractions import Fraction

    from gridmap.coverage.index import _orient

    k = np.arange(64)
    ax = ((0.5 + k * 2.0**-53)[:, None] * np.ones(64)).ravel()
    ay = ((0.5 + k * 2.0**-53)[None, :] * np.ones((64, 1))).ravel()
    bx, by, x, y = 12.0, 12.0, 24.0, 24.0
    det, bound = _orient(ax, ay, bx, by, x, y)
    naive_wrong = 0
    for d, b, ax_, ay_ in zip(det, bound, ax, ay):
        exact = (Fraction(bx) - Fraction(ax_)) * (Fraction(y) - Fraction(ay_)) - (Fraction(by) - Fraction(ay_)) * (
            Fraction(x) - Fraction(ax_)
        )
        sign = (exact > 0) - (exact < 0)
        naive_wrong += int(np.sign(d)) == -sign != 0
        if d > b:
            assert sign == 1
        elif d < -b:
            assert sign == -1
    assert naive_wrong > 0  # plain floating point gets the opposite sign here
