"""The first incidents tile after one new report (issue #10): a full preparation of the caller's view of every
incident against applying the incidents written since the last read to the prepared view.

    python bench/bench_tile_updates.py --towns 10 [--runs 5] [--city /tmp/city-10]

A city from ``geodata/build_city.py`` (built when ``--city`` does not exist) is loaded into a GeoPackage store in a
temporary folder; the app runs in process (``TestClient``), signed in as a dispatcher. Each run posts one report
through the API, then times the dispatcher's first incidents tile (z13 over the report) and first grid tile:

- "full": a new ``TileService`` (no view kept), so the tile prepares every incident, as every write did before;
- "incremental": the app's own service, which reads the incidents written lately and puts them in place.

After each incremental run the view is compared with a full preparation (ids, counts per grid): the bench fails
if they differ. Rows the store handed out per update are printed too.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
WORLD = 2 * 6378137.0 * math.pi


def tile_of(lon: float, lat: float, z: int) -> str:
    import pyproj

    mx, my = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(lon, lat)
    size = WORLD / 2 ** z
    return f"{z}/{int((mx + WORLD / 2) // size)}/{int((WORLD / 2 - my) // size)}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--towns", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--city", type=Path, default=None)
    args = parser.parse_args()

    from gridmap.api import create_app
    from gridmap.bootstrap import load_sample
    from gridmap.layers.tiles import TileService
    from gridmap.settings import Settings
    from gridmap.store.geopackage import GeoPackageStore

    city = args.city or Path(f"/tmp/city-{args.towns}")
    if not (city / "incidents.csv").exists():
        subprocess.run([sys.executable, str(ROOT / "geodata" / "build_city.py"), "--towns", str(args.towns),
                        "--out", str(city)], check=True)
    db = Path(tempfile.mkdtemp(prefix="bench_tile_updates_")) / "city.gpkg"
    t = time.perf_counter()
    load_sample(GeoPackageStore(db), city)
    print(f"{args.towns}×: store loaded in {time.perf_counter() - t:.1f} s", flush=True)

    token = "bench-tile-updates"
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(Settings(db=db, load_sample_if_empty=False, admin_token=token))) as client:
        app = client.app
        store = app.state.store
        coverage = app.state.coverage.get()
        grid = coverage.grids.iloc[0]
        spot = grid.geometry.representative_point()
        incidents_tile, grids_tile = tile_of(spot.x, spot.y, 13), tile_of(spot.x, spot.y, 14)
        body = {"category": "infra.streetlight", "description": "路灯不亮", "lon": spot.x, "lat": spot.y}

        def first_tiles() -> tuple[float, float]:
            t = time.perf_counter()
            client.get(f"/tiles/incidents/{incidents_tile}.pbf", headers=auth).raise_for_status()
            first = time.perf_counter() - t
            t = time.perf_counter()
            client.get(f"/tiles/grids/{grids_tile}.pbf", headers=auth).raise_for_status()
            return first, time.perf_counter() - t

        service = app.state.tiles = TileService()
        first_tiles()  # the first tile after a start: a full preparation in either case
        full, incremental, grids_after, read = [], [], [], []
        for _ in range(args.runs):
            client.post("/v1/incidents", json=body).raise_for_status()
            app.state.tiles = TileService()
            full.append(first_tiles()[0])
            client.post("/v1/incidents", json=body).raise_for_status()
            app.state.tiles = service
            before, updates = store.incident_rows_read, service.updates
            tile_s, grid_s = first_tiles()
            incremental.append(tile_s)
            grids_after.append(grid_s)
            read.append(store.incident_rows_read - before)
            assert service.updates == updates + 1, "the update fell back to a full preparation"
            # the updated view equals a full preparation made now
            check = TileService()
            app.state.tiles = check
            client.get(f"/tiles/incidents/{incidents_tile}.pbf", headers=auth).raise_for_status()
            app.state.tiles = service
            for key, mine in service._views.items():
                other = check._views[key]
                assert np.array_equal(mine.ids, other.ids) and mine.counts == other.counts, key
                assert all(np.array_equal(getattr(mine.view, n), getattr(other.view, n))
                           for n in ("mx", "my", "status", "open_", "overdue")), key
        total = store.query_incidents(__import__("gridmap.store.base", fromlist=["x"]).IncidentQuery(), limit=0)[1]
        print(f"{args.towns}× ({total:,} incidents), {args.runs} runs, median (max):")
        print(f"  first incidents tile after a report, full preparation: {statistics.median(full):.3f} s "
              f"({max(full):.3f})")
        print(f"  first incidents tile after a report, incremental:     {statistics.median(incremental):.3f} s "
              f"({max(incremental):.3f}); rows read per update: {statistics.median(read):.0f}")
        print(f"  the grid tile after it (same view):                   {statistics.median(grids_after):.3f} s")


if __name__ == "__main__":
    main()
