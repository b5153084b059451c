"""Address suggestions and staff edits of the library (issue #12 §3), in process.

    python bench/bench_typeahead.py [--data geodata/linyi] [--queries 2000] [--seed 7]

(a) Suggestions: ``gridmap.coverage.library_edits.suggest`` (what ``GET /v1/addresses?q=`` calls) for
    queries typed as people type them: the first 1–6 characters of a compound, building, doorplate or
    road name, pinyin initials of a compound, and a few characters from inside a name; p50 / p99 / max
    (target: p99 ≤ 30 ms), the first call (it builds the sorted keys) reported apart.
(b) Edits: an alias added, corrected and withdrawn through the service functions (store write, check,
    apply in place): the time each takes, against building the whole library again
    (``AddressLibrary.from_layers``), which is what applying an edit without the in-place path would cost.
Build a city with ``python geodata/build_city.py --scale 10 --out /tmp/city-10`` and pass ``--data``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridmap.address.library import AddressLibrary, initials_of  # noqa: E402
from gridmap.auth import Actor  # noqa: E402
from gridmap.coverage import library_edits  # noqa: E402
from gridmap.coverage.service import Coverage  # noqa: E402
from gridmap.package import read_package  # noqa: E402
from gridmap.store import GeoPackageStore  # noqa: E402

ADMIN = Actor("admin", token_id="bench")


def queries(layers, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    b = layers["buildings"]
    compounds = sorted(set(b["compound"].dropna()) - {""})
    names = sorted(set(b["name"]))
    doors = sorted({f"{r}{d}" for r, d in zip(b["road"], b["doorplate"]) if r})
    roads = sorted(set(b["road"]) - {""})
    out = []
    for _ in range(n):
        kind = rng.choice(("compound", "building", "door", "road", "initials", "inside"))
        if kind == "initials":
            out.append(initials_of(rng.choice(compounds))[: rng.randint(2, 4)])
            continue
        if kind == "inside":
            name = rng.choice(compounds)
            a = rng.randint(0, max(0, len(name) - 2))
            out.append(name[a:a + 2])
            continue
        name = rng.choice({"compound": compounds, "building": names, "door": doors, "road": roads}[kind])
        out.append(name[: rng.randint(1, min(6, len(name)))])
    return out


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "geodata" / "linyi"))
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    layers = read_package(args.data).layers
    t = time.perf_counter()
    coverage = Coverage.from_layers(layers)
    build_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as folder:
        store = GeoPackageStore(Path(folder) / "bench.gpkg")
        print(f"{args.data}: {len(layers['buildings']):,} buildings; coverage built in {build_s:.2f} s")
        t = time.perf_counter()
        library_edits.suggest(store, coverage, "丰")
        print(f"(a) first suggestion (builds the sorted keys): {(time.perf_counter() - t) * 1000:.0f} ms")
        times, empty = [], 0
        for q in queries(layers, args.queries, args.seed):
            t = time.perf_counter()
            answer = library_edits.suggest(store, coverage, q)
            times.append((time.perf_counter() - t) * 1000)
            empty += not answer["items"]
        print(f"    {len(times)} queries: p50 {statistics.median(times):.2f} ms, p99 {percentile(times, 0.99):.2f} ms, "
              f"max {max(times):.2f} ms (target p99 ≤ 30 ms); {empty} without a suggestion")
        target = layers["units"]["code"].iloc[0]
        other = layers["units"]["code"].iloc[1]
        t = time.perf_counter()
        entry = library_edits.add_entry(store, coverage, ADMIN, {"type": "alias", "alias": "基准测试旧称", "target_code": target})
        add_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        entry = library_edits.correct_entry(store, coverage, ADMIN, entry["id"], {"target_code": other},
                                            if_match=entry["version"])
        fix_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        library_edits.correct_entry(store, coverage, ADMIN, entry["id"], {"retired": True}, if_match=entry["version"])
        retire_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        AddressLibrary.from_layers(layers)
        rebuild_ms = (time.perf_counter() - t) * 1000
        print(f"(b) alias added {add_ms:.0f} ms, corrected {fix_ms:.0f} ms, withdrawn {retire_ms:.0f} ms (each: "
              f"store write, check, apply in place); building the library again: {rebuild_ms:.0f} ms")


if __name__ == "__main__":
    main()
