"""Benchmark of gridmap.coverage.index.PolygonIndex (point -> covering grid).

    python bench/bench_lookup.py [--quick]

(a) batch: PolygonIndex.locate vs geopandas.sjoin(predicate="within") on the same random points;
(b) single point: locate_one latency in-process;
(d) growth: synthetic Voronoi partitions of 1,000 / 10,000 / 100,000 polygons.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridmap.coverage.index import PolygonIndex  # noqa: E402

GRIDS = ROOT / "geodata" / "linyi" / "grids.geojson"
COUNTY_BOX = (110.45, 34.97, 110.98, 35.33)  # about the size of Linyi county (~48 km x 40 km)


def voronoi(n: int, box: tuple[float, float, float, float], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = shapely.points(rng.uniform(box[0], box[2], n), rng.uniform(box[1], box[3], n))
    frame = shapely.box(*box)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=frame))
    return shapely.intersection(cells, frame)


def sample_grids() -> tuple[np.ndarray, str]:
    if GRIDS.exists():
        frame = gpd.read_file(GRIDS).to_crs(4326).sort_values("code", kind="stable").reset_index(drop=True)
        return frame.geometry.values.to_numpy(), f"{GRIDS.relative_to(ROOT)} ({len(frame)} grids, sorted by code)"
    # ~100 cells over 4 km x 3 km around lon 110.77, lat 35.14
    box = (110.748, 35.1265, 110.792, 35.1535)
    return voronoi(100, box, seed=7), "synthetic Voronoi partition (100 cells, 4 km x 3 km)"


def random_points(geoms: np.ndarray, m: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    rng = np.random.default_rng(seed)
    return rng.uniform(xmin, xmax, m), rng.uniform(ymin, ymax, m)


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def single_latency(index: PolygonIndex, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    xs, ys = x.tolist(), y.tolist()
    locate_one, clock = index.locate_one, time.perf_counter_ns
    times = np.empty(len(xs))
    for k in range(len(xs)):
        t = clock()
        locate_one(xs[k], ys[k])
        times[k] = clock() - t
    return float(np.median(times)) / 1e3, float(np.percentile(times, 99)) / 1e3


def batch(geoms: np.ndarray, m: int, singles: int) -> None:
    x, y = random_points(geoms, m)
    t = time.perf_counter()
    index = PolygonIndex(geoms)
    build = time.perf_counter() - t
    index.locate(x[:1000], y[:1000])  # warm-up
    t_idx, hits = best_of(lambda: index.locate(x, y), 3)

    polys = gpd.GeoDataFrame(geometry=gpd.GeoSeries(geoms, crs=4326))
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y, crs=4326))
    polys.sindex  # build the spatial index outside the timing, like PolygonIndex's build
    t_sj, joined = best_of(lambda: gpd.sjoin(points, polys, predicate="within", how="left"), 2)

    right = joined["index_right"].fillna(-1).astype(np.int64)
    sj = right.groupby(level=0).min().reindex(range(m), fill_value=-1).to_numpy()
    differ = np.flatnonzero(sj != hits)
    # sjoin("within") excludes boundaries; PolygonIndex includes them: those are not disagreements.
    on_boundary = np.zeros(len(differ), bool)
    if len(differ):
        cand = hits[differ]
        ok = cand >= 0
        on_boundary[ok] = shapely.intersects_xy(shapely.boundary(geoms[cand[ok]]), x[differ[ok]], y[differ[ok]])
    disagreements = int((~on_boundary).sum())

    print(f"  build                : {build * 1e3:9.1f} ms   {index!r}")
    print(f"  PolygonIndex.locate  : {m / t_idx / 1e6:9.2f} M points/s  ({t_idx * 1e3:.1f} ms for {m:,})")
    print(f"  geopandas.sjoin      : {m / t_sj / 1e6:9.2f} M points/s  ({t_sj * 1e3:.1f} ms)")
    print(f"  speed-up             : {t_sj / t_idx:9.1f} x")
    print(f"  covered              : {(hits >= 0).mean():9.1%} of points")
    print(f"  disagreements        : {disagreements} (points on a boundary, excluded: {int(on_boundary.sum())})")
    assert disagreements == 0, "PolygonIndex and sjoin disagree off the boundaries"

    print(f"\n(b) single-point lookups: locate_one, {singles:,} calls in-process")
    sx, sy = random_points(geoms, singles, seed=2)
    median, p99 = single_latency(index, sx, sy)
    print(f"  median {median:.2f} us   p99 {p99:.2f} us")


def growth(sizes: list[int], m: int, singles: int) -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(COUNTY_BOX[0], COUNTY_BOX[2], m)
    y = rng.uniform(COUNTY_BOX[1], COUNTY_BOX[3], m)
    print(f"  {'polygons':>9} {'build s':>8} {'M pts/s':>8} {'single med us':>14} {'p99 us':>7} {'mixed cells':>12}")
    rates = {}
    for n in sizes:
        geoms = voronoi(n, COUNTY_BOX, seed=n)
        t = time.perf_counter()
        index = PolygonIndex(geoms)
        build = time.perf_counter() - t
        index.locate(x[:1000], y[:1000])
        t_idx, _ = best_of(lambda: index.locate(x, y), 5)
        rates[n] = m / t_idx
        median, p99 = single_latency(index, x[:singles], y[:singles])
        print(f"  {n:>9,} {build:8.2f} {rates[n] / 1e6:8.2f} {median:14.2f} {p99:7.2f} {len(index._off) - 1:>12,}")
        del index, geoms
    lo, hi = min(sizes), max(sizes)
    print(f"  batch throughput {lo:,} vs {hi:,} polygons: {rates[lo] / rates[hi]:.2f} x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    m = 100_000 if args.quick else 1_000_000
    singles = 10_000 if args.quick else 100_000
    sizes = [1_000, 5_000] if args.quick else [1_000, 10_000, 100_000]

    geoms, source = sample_grids()
    print(f"(a) batch lookup of {m:,} random points over the grids' bounding box")
    print(f"  grids                : {source}")
    batch(geoms, m, singles)
    print(f"\n(d) growth: Voronoi partitions over {COUNTY_BOX} ({m:,} points)")
    growth(sizes, m, singles // 10)


if __name__ == "__main__":
    main()
