"""Boundary versions (issue #14 §3): what asking about another day costs, in process.

    python bench/bench_versions.py [--data geodata/linyi] [--points 20000] [--seed 7]

The sample package is imported as version A (a year ago) and, redrawn, as version B (today): in every
community with two grids or more, the first two (by code) are merged into the first, whose workers the
second's join (a redraw that stays valid: no overlaps, inside the community). Reported:
(a) keeping a version: writing the layers with the version row (its blob encoded), against writing the
    same layers without one (``replace_layers`` as the release before wrote them);
(b) the first question about a day of version A (its index built), against building the live index;
(c) point lookups ``at`` a day of version A once its index is kept, against today's (the live index):
    the same points, the same ``Coverage.lookup``; the difference is choosing the version;
(d) the diff of A and B (grids, buildings moved, workers), first and kept.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridmap.coverage.live import LiveCoverage  # noqa: E402
from gridmap.coverage.service import Coverage  # noqa: E402
from gridmap.importer import content_revision, import_package  # noqa: E402
from gridmap.package import read_package  # noqa: E402
from gridmap.store import GeoPackageStore  # noqa: E402
from gridmap.versions import service, snapshot  # noqa: E402
from gridmap.versions.coverage import VersionedCoverage  # noqa: E402
from gridmap.versions.records import today_local  # noqa: E402

def redrawn(layers: dict) -> dict:
    """Version B: the first two grids of every community with two or more merged into the first."""
    grids, workers = layers["grids"].copy(), layers["workers"].copy()
    merged: dict[str, str] = {}
    for _, codes in grids.sort_values("code").groupby("community_code")["code"]:
        if len(codes) >= 2:
            merged[codes.iloc[1]] = codes.iloc[0]
    for gone, kept in merged.items():
        union = shapely.union(grids.loc[grids["code"] == kept].geometry.iloc[0],
                              grids.loc[grids["code"] == gone].geometry.iloc[0])
        grids.loc[grids["code"] == kept, "geometry"] = union
    workers["grid_code"] = workers["grid_code"].replace(merged)
    return {**layers, "grids": grids[~grids["code"].isin(merged)].reset_index(drop=True), "workers": workers}


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=ROOT / "geodata" / "linyi")
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    today = today_local()
    layers = read_package(args.data).layers
    with tempfile.TemporaryDirectory() as tmp:
        revision = content_revision(layers)
        plain, kept = GeoPackageStore(Path(tmp) / "plain.gpkg"), GeoPackageStore(Path(tmp) / "kept.gpkg")
        row = {"effective_from": today.isoformat(), "label": "", "revision": revision, "created_at": "",
               "actor": "bench", "counts": "{}"}
        t_plain = min(timed(plain.replace_layers, layers, revision=revision)[0] for _ in range(3))
        t_kept = min(timed(lambda: kept.replace_layers(layers, revision=revision,
                                                       version=(row, snapshot.encode(layers))))[0] for _ in range(3))
        print(f"(a) writing the layers: {t_plain * 1000:.0f} ms; with the version row: {t_kept * 1000:.0f} ms "
              f"(blob {len(snapshot.encode(layers)):,} bytes)")
        store = GeoPackageStore(Path(tmp) / "versions.gpkg")
        import_package(store, args.data, effective_from=today - timedelta(days=365), today=today)
        later = Path(tmp) / "b.gpkg"
        b_store = GeoPackageStore(later)
        b_layers = redrawn(layers)
        b_store.replace_layers(b_layers, revision=content_revision(b_layers))
        report = import_package(store, later, effective_from=today, today=today)
        live = LiveCoverage(store, cache=False)
        versions = VersionedCoverage(store, live)
        t_live, _ = timed(Coverage.from_layers, store.read_layers())
        day_a = today - timedelta(days=100)
        t_first, _ = timed(versions.at, day_a)
        print(f"(b) first question about a day of A: {t_first * 1000:.0f} ms; building the live index: "
              f"{t_live * 1000:.0f} ms")
        rng = np.random.default_rng(args.seed)
        minx, miny, maxx, maxy = layers["grids"].total_bounds
        points = np.column_stack([rng.uniform(minx, maxx, args.points), rng.uniform(miny, maxy, args.points)])
        today_index = live.get()

        def at_today() -> None:
            for lon, lat in points:
                today_index.lookup(lon, lat)

        def at_a() -> None:
            for lon, lat in points:
                versions.at(day_a)[0].lookup(lon, lat)

        runs = {"today": [], "at": []}
        for _ in range(3):
            runs["today"].append(timed(at_today)[0])
            runs["at"].append(timed(at_a)[0])
        per = {k: statistics.median(v) / args.points * 1e6 for k, v in runs.items()}
        print(f"(c) point lookup: today {per['today']:.1f} µs, at a day of A {per['at']:.1f} µs "
              f"({per['at'] / per['today']:.2f}×; the difference: choosing the version)")
        ids = [v["id"] for v in store.boundary_versions()]
        t_diff, (answer, _) = timed(service.diff, store, ids[0], ids[1])
        t_kept, _ = timed(service.diff, store, ids[0], ids[1])
        print(f"(d) diff A→B: {t_diff * 1000:.0f} ms first, {t_kept * 1000:.2f} ms kept; "
              f"{answer['counts']}, households moved {answer['households_moved']}, "
              f"workers affected {len(answer['workers_affected'])}")
        live.close()
        print(f"version B: {report.version}")


if __name__ == "__main__":
    main()
