"""Station siting at city size (issue #10): scoped runs, distances only within the radius.

    python bench/bench_planning_city.py            # 10× and 100× cities (≈ 6 min, most of it the old planner)
    python bench/bench_planning_city.py --quick    # 10× only, no old planner

Cities come from ``geodata/build_city.py`` (10 and 100 copies of the sample town, ten per county),
written as GeoPackages under ``bench/results/siting-city-N/`` and read once; the store's index is
built without the address library (planning does not use it). Every figure is one cold run: a new
``Planner`` (roads noded, candidates, walking graphs, distances, model, HiGHS), as the first request
after a server start meets it.

(a) Coverage report of the whole city (every building's walking distance to its nearest station,
    figures of every community and grid): 10× and 100×. Target ≤ 10 s at city size.
(b) Maximal covering, k = 10, R = 500 m, households, walking distance, street candidates every
    100 m, over one county (10 towns, 47,750 buildings): on the 10× city (the county is the whole
    store) and on the 100× city (one county of ten). Target ≤ 5 s and proven optimal.
(c) The same runs on the planner before issue #10 (``OLD_REV``, checked out of git into a temporary
    folder and run in a subprocess): on the 10× city, which holds exactly that county (same data,
    same model, same solver), and on the sample town (1×). It has no scope, so at 100× it can only
    run on the whole city, which is not the same problem: not run.
(d) Where the gain comes from, on the 10× county: the reach matrix (candidates × buildings within
    R) by Dijkstra blocks over the whole graph (before) and by tiles, on the whole graph and on the
    scope graph; the figures of 1,050 grids by a mask per grid (before) and by bincount.
(e) Growth with the scope on the 100× city: a community, a town, a county (time per candidate).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gridmap.coverage.service import Coverage  # noqa: E402
from gridmap.package import read_package  # noqa: E402
from gridmap.planning.scope import Area  # noqa: E402
from gridmap.planning.service import Planner, SitingRequest  # noqa: E402
from gridmap.planning.tally import Figures  # noqa: E402

OLD_REV = "a878aaf~1"
"""The commit before siting was scoped (issue #10): the planner whose Dijkstra blocks ran over the whole store."""
RESULTS = ROOT / "bench" / "results"
COUNTY_10 = "140821"  # 临猗县: the 10-town city's only county (copy 0 is the sample town)
RUN = {"k": 10, "radius_m": 500.0, "objective": "max_coverage", "demand": "households", "metric": "network",
       "candidates": "generated", "candidate_spacing_m": 100.0, "time_limit_s": 60.0}

OLD_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from gridmap.package import read_package
from gridmap.coverage.service import Coverage
from gridmap.planning.service import Planner, SitingRequest
layers = read_package(sys.argv[2]).layers
cov = Coverage(grids=layers["grids"], regions=layers["regions"], workers=layers["workers"],
               stations=layers["stations"], precincts=layers["precincts"], buildings=layers["buildings"],
               revision="old")
out = {}
t0 = time.perf_counter()
planner = Planner(cov, roads=layers["roads"], candidates=layers.get("candidates"))
report = planner.coverage_report(radius_m=500, metric="network")
out["coverage_seconds"] = time.perf_counter() - t0
out["coverage_share"] = report["total"]["share"]
t0 = time.perf_counter()
planner = Planner(cov, roads=layers["roads"], candidates=layers.get("candidates"))
a = planner.site(SitingRequest(**json.loads(sys.argv[3]))).answer
out.update(seconds=time.perf_counter() - t0, objective_value=a["objective_value"], optimal=a["optimal"],
           candidates=a["candidates"]["count"], solve_seconds=a["solve_seconds"], model=a["model"])
print(json.dumps(out))
"""


def build_city(towns: int) -> Path:
    spec = importlib.util.spec_from_file_location("build_city", ROOT / "geodata" / "build_city.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_city"] = module
    spec.loader.exec_module(module)
    out = RESULTS / f"siting-city-{towns}"
    t0 = time.perf_counter()
    city = module.build_city(towns, out, fmt="gpkg")
    print(f"city of {towns} towns: {city.counts['buildings']:,} buildings, {city.counts['grids']:,} grids, "
          f"{city.counts['stations']:,} stations, {city.counts['roads']:,} roads "
          f"(written in {time.perf_counter() - t0:.1f} s)")
    return out


def load(folder: Path) -> tuple[dict, Coverage]:
    layers = read_package(folder).layers
    coverage = Coverage(grids=layers["grids"], regions=layers["regions"], workers=layers["workers"],
                        stations=layers["stations"], precincts=layers["precincts"], buildings=layers["buildings"],
                        revision="bench")
    return layers, coverage


def cold(layers: dict, coverage: Coverage) -> Planner:
    return Planner(coverage, roads=layers["roads"], candidates=layers.get("candidates"))


def bench_coverage(label: str, layers: dict, coverage: Coverage) -> None:
    t0 = time.perf_counter()
    planner = cold(layers, coverage)
    built = time.perf_counter() - t0
    report = planner.coverage_report(radius_m=500, metric="network")
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    planner.coverage_report(radius_m=300, metric="network")
    cached = time.perf_counter() - t0
    print(f"(a) {label} coverage of the whole city, walking, 500 m: cold {total:.2f} s (planner {built:.2f} s), "
          f"cached report {cached:.2f} s; {len(report['grids']):,} grids, {len(report['communities']):,} "
          f"communities, households covered {report['total']['share']:.1%}  (target ≤ 10 s)")


def site(label: str, layers: dict, coverage: Coverage, **area: str) -> dict:
    t0 = time.perf_counter()
    planner = cold(layers, coverage)
    built = time.perf_counter() - t0
    answer = planner.site(SitingRequest(**RUN, **area)).answer
    seconds = time.perf_counter() - t0
    m = answer["model"]
    print(f"(b) {label}: {answer['scope']['buildings'] if answer['scope'] else m['demand']:,} buildings × "
          f"{answer['candidates']['count']:,} candidates → reduced {m['demand_reduced']} × {m['candidates_reduced']}; "
          f"whole run {seconds:.2f} s from a cold planner (planner {built:.2f} s, run {seconds - built:.2f} s, "
          f"HiGHS {answer['solve_seconds']:.2f} s), optimal={answer['optimal']}, gap={answer['gap']}, "
          f"newly covered households {answer['objective_value']:g}  (target ≤ 5 s)")
    return {"seconds": seconds, **answer}


def old_planner(label: str, folder: Path, workdir: Path) -> dict | None:
    source = workdir / "old"
    if not source.exists():
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_REV, "gridmap"], capture_output=True,
                                 check=True).stdout
        source.mkdir()
        archive_path = workdir / "old.tar"
        archive_path.write_bytes(archive)
        with tarfile.open(archive_path) as tar:
            tar.extractall(source, filter="data")
    run = subprocess.run([sys.executable, "-c", OLD_SCRIPT, str(source), str(folder), json.dumps(RUN)],
                         capture_output=True, text=True, cwd=workdir, check=False)
    if run.returncode:
        print(f"(c) {label}: the old planner failed: {run.stderr[-500:]}")
        return None
    old = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"(c) {label}, planner before issue #10 ({OLD_REV}): coverage report cold {old['coverage_seconds']:.2f} s; "
          f"max covering {old['candidates']:,} candidates, whole run {old['seconds']:.2f} s "
          f"(HiGHS {old['solve_seconds']:.2f} s), optimal={old['optimal']}, newly covered {old['objective_value']:g}")
    return old


def where_the_gain_is(layers: dict, coverage: Coverage) -> None:
    planner = cold(layers, coverage)
    R = RUN["radius_m"]
    cands = planner.candidates("generated", RUN["candidate_spacing_m"])
    whole = planner._graph(cands)
    sources, targets = whole.candidate_points(), whole.building_points()
    t0 = time.perf_counter()
    blocks = whole.walk.from_points_dense(sources, targets, limit=R)
    t_blocks = time.perf_counter() - t0
    t0 = time.perf_counter()
    tiles = whole.walk.from_points(sources, targets, limit=R)
    t_tiles = time.perf_counter() - t0
    scope = planner.scope(Area.of(county=COUNTY_10))
    scoped_cands = planner.candidates("generated", RUN["candidate_spacing_m"], scope)
    t0 = time.perf_counter()
    local = planner._graph(scoped_cands, scope, R)
    t_graph = time.perf_counter() - t0
    t0 = time.perf_counter()
    scoped = local.walk.from_points(local.candidate_points(), local.building_points(), limit=R)
    t_scoped = time.perf_counter() - t0
    same = (blocks != tiles).nnz == 0 and abs(blocks - scoped).max() < 1e-6
    print(f"(d) reach matrix, 10× county, R = {R:g} m, {len(cands):,} candidates × {len(planner.building_xy):,} "
          f"buildings ({blocks.nnz:,} pairs): whole-graph blocks {t_blocks:.2f} s; tiles on the whole graph "
          f"{t_tiles:.2f} s; scope graph {t_graph:.2f} s + tiles {t_scoped:.2f} s; identical: {same}")
    dist, _ = planner.station_distance("network")
    figures = Figures(planner.households, planner.population, dist <= R, dist)
    t0 = time.perf_counter()
    for code in coverage.grids["code"]:  # what the report did before: a mask per grid
        mask = planner.building_grid == code
        _ = planner.households[mask].sum(), planner.households[mask & (dist <= R)].sum()
    t_masks = time.perf_counter() - t0
    t0 = time.perf_counter()
    figures.by(planner.building_grid_pos, len(coverage.grids))
    t_bincount = time.perf_counter() - t0
    print(f"    figures of {len(coverage.grids):,} grids: a mask per grid {t_masks:.2f} s (two sums only), "
          f"bincount {t_bincount:.3f} s (every figure)")


def growth(layers: dict, coverage: Coverage) -> None:
    regions = layers["regions"]
    county = regions[regions["level"] == "county"]["code"].iloc[3]
    town = regions[(regions["level"] == "town") & (regions["parent_code"] == county)]["code"].iloc[0]
    community = regions[(regions["level"] == "community") & (regions["parent_code"] == town)]["code"].iloc[0]
    for level, code in (("community", community), ("town", town), ("county", county)):
        t0 = time.perf_counter()
        planner = cold(layers, coverage)
        built = time.perf_counter() - t0
        answer = planner.site(SitingRequest(**RUN, **{level: code})).answer
        seconds = time.perf_counter() - t0
        n = answer["candidates"]["count"]
        print(f"(e) 100× {level} {answer['scope']['region']['name']} ({code}): {answer['scope']['buildings']:,} "
              f"buildings, {n:,} candidates: {seconds:.2f} s (planner {built:.2f} s, run {seconds - built:.2f} s, "
              f"{(seconds - built) / n * 1000:.2f} ms per candidate), optimal={answer['optimal']}, "
              f"newly covered {answer['objective_value']:g}")


def compare_with_the_old_planner(ten: Path, new10: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old10 = old_planner("10× city (= the county)", ten, Path(tmp))
        if old10:
            print(f"    same optimum as the new run: {old10['objective_value'] == new10['objective_value']}; "
                  f"speed-up {old10['seconds'] / new10['seconds']:.1f}×")
        one = build_city(1)
        layers, coverage = load(one)
        new1 = site("1× (the sample town)", layers, coverage)
        old1 = old_planner("1× (the sample town)", one, Path(tmp))
        if old1:
            print(f"    same optimum as the new run: {old1['objective_value'] == new1['objective_value']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10× only, without the old planner")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    ten = build_city(10)
    layers, coverage = load(ten)
    bench_coverage("10×", layers, coverage)
    new10 = site(f"10× city, county={COUNTY_10}", layers, coverage, county=COUNTY_10)
    where_the_gain_is(layers, coverage)
    if args.quick:
        return
    del layers, coverage
    compare_with_the_old_planner(ten, new10)
    hundred = build_city(100)
    layers, coverage = load(hundred)
    bench_coverage("100×", layers, coverage)
    county = layers["regions"][layers["regions"]["level"] == "county"]["code"].iloc[3]
    new100 = site(f"100× city, county={county}", layers, coverage, county=county)
    print(f"    same optimum as the 10× county: {new100['objective_value'] == new10['objective_value']}")
    growth(layers, coverage)


if __name__ == "__main__":
    main()
