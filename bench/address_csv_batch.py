"""End-to-end CSV batch: `gridmap lookup --csv` over 100,000 rows sampled from the noisy variants.

Times the whole command (start-up, library build, matching, grid/worker answers, CSV out) and
prints its summary line. Rows repeat variants, as real hotline exports repeat addresses.

    python bench/address_csv_batch.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from address_eval import load, make_variants  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    layers = load(ROOT / "geodata" / "linyi")
    variants = make_variants(layers, per_kind=400, seed=11)
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        src, out, db = Path(tmp) / "in.csv", Path(tmp) / "out.csv", Path(tmp) / "db.gpkg"
        with open(src, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "address"])
            for i in range(args.rows):
                writer.writerow([i, rng.choice(variants).text])
        subprocess.run([sys.executable, "-m", "gridmap", "import", "geodata/linyi", "--db", db], check=True,
                       cwd=ROOT, capture_output=True)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "gridmap", "lookup", "--csv", src, "--out", out, "--db", db],
                                check=True, cwd=ROOT, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
    distinct = len({v.text for v in variants})
    print(f"{args.rows:,} rows ({distinct:,} distinct variants) in {elapsed:.1f} s "
          f"= {args.rows / elapsed:,.0f} rows/s end to end (whole command)")
    print(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
