"""Throughput of the address matcher, in-process, one core.

    python bench/address_throughput.py [--data geodata/linyi] [--single 5000] [--batch 100000]

* single: distinct noisy addresses (the eval's variants, every noise kind) matched one call at a time,
  with the normalisation cache cleared first so repeated strings do not flatter the figure;
* batch: ``match_many`` over a 100,000-row batch built by sampling those variants (a real batch of
  hotline records repeats addresses; the per-process caches of normalised text and pinyin help there).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from address_eval import KINDS, load, make_variants  # noqa: E402

from gridmap.address import AddressMatcher  # noqa: E402
from gridmap.address.normalize import normalize  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "geodata" / "linyi"))
    ap.add_argument("--single", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    layers = load(Path(args.data))
    t = time.perf_counter()
    matcher = AddressMatcher.from_layers(layers)
    print(f"library: {len(layers['buildings'])} buildings, built in {time.perf_counter() - t:.2f} s")
    variants = make_variants(layers, max(1, args.single // len(KINDS)), args.seed)
    texts = list(dict.fromkeys(v.text for v in variants))
    normalize.cache_clear()
    t = time.perf_counter()
    for text in texts:
        matcher.match(text)
    el = time.perf_counter() - t
    print(f"single: {len(texts)} distinct addresses in {el:.2f} s = {len(texts) / el:,.0f} addresses/s "
          f"({el / len(texts) * 1e6:.0f} µs each)")  # fmt: skip
    for kind in KINDS:
        kt = [v.text for v in variants if v.kind == kind]
        normalize.cache_clear()
        t = time.perf_counter()
        for text in kt:
            matcher.match(text)
        el = time.perf_counter() - t
        print(f"  {kind:<22}{len(kt) / el:>10,.0f}/s")
    rng = random.Random(args.seed)
    batch = [rng.choice(texts) for _ in range(args.batch)]
    t = time.perf_counter()
    results = matcher.match_many(batch)
    el = time.perf_counter() - t
    found = sum(r.building is not None for r in results)
    print(f"batch: {len(batch):,} rows in {el:.2f} s = {len(batch) / el:,.0f} rows/s; {found / len(batch):.1%} with a building")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
