"""City-scale start-up (issue #10): each build step, server ready with and without the cache, history load.

For each size (towns of ``geodata/build_city.py``; 1, 10 and 100 by default):

1. the city package is generated once into ``bench/results/city-N/`` (kept for later runs) and imported
   with ``gridmap import`` into a fresh store ``bench/results/startup-N.gpkg``;
2. in a fresh process: ``read_layers``, then ``Coverage.from_layers`` with its steps (``build_seconds``:
   polygon indexes, grid answers, building grids, address library), the cache file written, and that
   process's peak memory; in another fresh process the file read back (then removed);
3. in a fresh process: the incident history loaded into the store (``load_history``), its time and the
   process's peak memory;
4. ``gridmap serve`` started on that store (no cache file for its revision yet: the first start after an
   import) until ``/health`` answers, stopped, started again (the file now exists: a restart with an
   unchanged store); each with the server's peak memory (VmHWM) when ready.

    python bench/bench_startup.py                      # 1, 10, 100 towns (100: ~10 min, ~2 GB of files)
    python bench/bench_startup.py --sizes 1 10         # skip 100
    python bench/bench_startup.py --baseline /path/to/older/checkout   # also time that checkout's server start
    python bench/bench_startup.py --only history       # steps 1 and 3: the history load alone (100: ~3 min)

``--baseline`` starts the server of another checkout (e.g. ``git worktree add /tmp/base <commit>``) on the
same stores, for 1 and 10 towns only (the pre-issue-10 code needs ~33 min at 100 towns). Figures are wall
clock on a shared machine; ratios come from this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's gridmap, whatever an editable install points at
RESULTS = ROOT / "bench" / "results"
STEPS = ("read_layers", "polygon_indexes", "grid_answers", "building_grids", "address_library", "coverage_total",
         "cache_write", "cache_read")
START_TIMEOUT_S = 3600.0


# ------------------------------------------------------------------------------------------- children
def child_build(db: str) -> None:
    """Step 2: one fresh process, figures as JSON on stdout."""
    from gridmap.coverage.cache import CoverageCache
    from gridmap.coverage.service import Coverage
    from gridmap.store import GeoPackageStore

    store = GeoPackageStore(Path(db))
    out: dict[str, float] = {}
    started = time.perf_counter()
    layers = store.read_layers()
    out["read_layers"] = time.perf_counter() - started
    started = time.perf_counter()
    coverage = Coverage.from_layers(layers, revision=store.revision())
    out["coverage_total"] = time.perf_counter() - started
    out.update(coverage.build_seconds)
    out["build_peak_mb"] = _peak_mb()
    started = time.perf_counter()
    path = CoverageCache.for_store(store).save(coverage)
    out["cache_write"] = time.perf_counter() - started
    out["cache_mb"] = path.stat().st_size / 1e6
    print(json.dumps(out))


def child_read(db: str) -> None:
    """The cache file read back by a fresh process (as a restarted server reads it), then removed: the
    server's first start must find no file for this revision (a start after an import)."""
    from gridmap.coverage.cache import CoverageCache, cache_path
    from gridmap.store import GeoPackageStore

    store = GeoPackageStore(Path(db))
    revision = store.revision()
    started = time.perf_counter()
    assert CoverageCache.for_store(store).load(revision) is not None
    elapsed = time.perf_counter() - started
    cache_path(Path(db), revision).unlink()
    print(json.dumps({"cache_read": elapsed, "cache_read_peak_mb": _peak_mb()}))


def child_history(db: str, csv: str) -> None:
    """Step 3: the history loaded by a fresh process (its Coverage built, not cached: the server's first
    start must still find no cache file)."""
    from gridmap.coverage.service import Coverage
    from gridmap.incidents.history import load_history
    from gridmap.store import GeoPackageStore

    store = GeoPackageStore(Path(db))
    coverage = Coverage.from_layers(store.read_layers(), revision=store.revision())
    before = _peak_mb()
    started = time.perf_counter()
    count = load_history(store, coverage, Path(csv))
    print(json.dumps({"incidents": count, "history_s": time.perf_counter() - started,
                      "history_peak_mb": _peak_mb(), "before_history_peak_mb": before}))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------- parent
def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True, env=env, **kwargs)


def city(towns: int) -> Path:
    folder = RESULTS / f"city-{towns}"
    if not (folder / "incidents.csv").exists():
        started = time.perf_counter()
        run([sys.executable, "geodata/build_city.py", "--towns", str(towns), "--out", str(folder)])
        print(f"  generated {folder.relative_to(ROOT)} in {time.perf_counter() - started:.1f} s", flush=True)
    return folder


def fresh_store(towns: int, package: Path) -> tuple[Path, float]:
    db = RESULTS / f"startup-{towns}.gpkg"
    for path in db.parent.glob(db.name + "*"):
        path.unlink()
    started = time.perf_counter()
    run([sys.executable, "-m", "gridmap", "import", str(package), "--db", str(db)])
    return db, time.perf_counter() - started


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_until_ready(db: Path, *, pythonpath: Path | None = None) -> tuple[float, float]:
    """Seconds from ``gridmap serve`` to a 200 from /health, and the server's peak memory (MB) then."""
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(pythonpath or ROOT)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "gridmap", "serve", "--db", str(db), "--port", str(port),
                                "--empty"], cwd=pythonpath or ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
                break
            except OSError:
                if process.poll() is not None or time.perf_counter() - started > START_TIMEOUT_S:
                    raise RuntimeError("gridmap serve did not start") from None
                time.sleep(0.05)
        ready = time.perf_counter() - started
        peak = _vm_hwm_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
    return ready, peak


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(towns: int, baseline: Path | None, only: str | None = None) -> dict[str, float]:
    print(f"{towns} town(s):", flush=True)
    package = city(towns)
    db, import_s = fresh_store(towns, package)
    figures: dict[str, float] = {"import_s": import_s}
    if only == "history":
        figures.update(json.loads(run([sys.executable, __file__, "--child", "history", str(db),
                                       str(package / "incidents.csv")]).stdout))
        print("  " + json.dumps({k: round(v, 3) for k, v in figures.items()}), flush=True)
        return figures
    figures.update(json.loads(run([sys.executable, __file__, "--child", "build", str(db)]).stdout))
    figures.update(json.loads(run([sys.executable, __file__, "--child", "read", str(db)]).stdout))
    figures.update(json.loads(run([sys.executable, __file__, "--child", "history", str(db),
                                   str(package / "incidents.csv")]).stdout))
    figures["ready_after_import_s"], figures["server_peak_after_import_mb"] = serve_until_ready(db)
    figures["ready_cached_s"], figures["server_peak_cached_mb"] = serve_until_ready(db)
    if baseline is not None and towns <= 10:
        figures["baseline_ready_s"], figures["baseline_server_peak_mb"] = serve_until_ready(db, pythonpath=baseline)
    print("  " + json.dumps({k: round(v, 3) for k, v in figures.items()}), flush=True)
    return figures


def report(results: dict[int, dict[str, float]]) -> None:
    sizes = sorted(results)
    rows = [*STEPS, "import_s", "ready_after_import_s", "ready_cached_s", "baseline_ready_s", "history_s",
            "build_peak_mb", "cache_read_peak_mb", "server_peak_after_import_mb", "server_peak_cached_mb",
            "history_peak_mb", "cache_mb"]
    columns = [f"{n}×" for n in sizes] + [f"{b}×/{a}×" for a, b in zip(sizes, sizes[1:])]
    print("\n| step | " + " | ".join(columns) + " |")
    print("|---" * (1 + len(columns)) + "|")
    for row in rows:
        values = [results[n].get(row) for n in sizes]
        if all(v is None for v in values):
            continue
        cells = [f"{v:.3f}" if v is not None else "–" for v in values]
        cells += [f"{b / a:.1f}" if a and b else "–" for a, b in zip(values, values[1:])]
        print(f"| {row} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--baseline", type=Path, help="another checkout whose server start is timed too")
    parser.add_argument("--only", choices=["history"], help="only this step, on a freshly imported store "
                        "(results in bench/results/startup-history.json)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        {"build": child_build, "read": child_read, "history": child_history}[args.child[0]](*args.child[1:])
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(f"{time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    results = {towns: measure(towns, args.baseline, args.only) for towns in args.sizes}
    (RESULTS / ("startup.json" if args.only is None else f"startup-{args.only}.json")).write_text(
        json.dumps(results, indent=1))
    report(results)


if __name__ == "__main__":
    main()
