"""Incident benchmarks: creation over HTTP, and listing / statistics over the sample year.

Starts `gridmap serve` on a fresh copy of the sample county (with its 5,400 incidents), then
  (1) creates incidents from a separate process: wrk POSTing JSON bodies over 16 connections;
  (2) times GET /v1/incidents (filtered, paged) and GET /v1/incidents/stats with a dispatcher token.

    python bench/bench_incidents.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_http import free_port, run_wrk, wait_until_up

ROOT = Path(__file__).resolve().parent.parent

POST_LUA = """
local i = 0
request = function()
  i = i + 1
  local lon = 110.755 + (i % 200) * 0.0001
  local lat = 35.135 + (i % 97) * 0.0001
  local body = string.format('{"category":"infra.streetlight","description":"bench %d","lon":%f,"lat":%f}', i, lon, lat)
  return wrk.format("POST", "/v1/incidents", {["Content-Type"] = "application/json"}, body)
end
"""


def timed_get(url: str, headers: dict, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30).read()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1 if len(times) >= 100 else -1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.gpkg"
        subprocess.run([sys.executable, "-m", "gridmap", "import", "geodata/linyi", "--db", str(db)], cwd=ROOT,
                       check=True, capture_output=True)
        from gridmap.bootstrap import load_sample
        from gridmap.store import GeoPackageStore

        db.unlink()
        load_sample(GeoPackageStore(db), ROOT / "geodata" / "linyi")
        token = subprocess.run([sys.executable, "-m", "gridmap", "token", "create", "--role", "dispatcher",
                                "--db", str(db)], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "gridmap", "serve", "--db", str(db), "--port", str(port)],
                                  env=os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(f"{base}/health")
            headers = {"Authorization": f"Bearer {token}"}
            listing = timed_get(f"{base}/v1/incidents?status=closed&category=infra.heating&limit=50", headers, 100)
            overdue = timed_get(f"{base}/v1/incidents?overdue=true&limit=50", headers, 100)
            stats = timed_get(f"{base}/v1/incidents/stats", headers, 30)
            stats_period = timed_get(f"{base}/v1/incidents/stats?since=2026-06-01&until=2026-09-01", headers, 30)
            script = Path(tmp) / "post.lua"
            script.write_text(POST_LUA)
            created = run_wrk(base, args.seconds, 16, 1, script)
            total = json.loads(urllib.request.urlopen(urllib.request.Request(
                f"{base}/v1/incidents?limit=1", headers=headers)).read())["total"]
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"incident creation over HTTP (wrk -c16 -d{args.seconds}s, 1 worker, synchronous=FULL commits):")
    print(f"    {created['rps']:.0f} req/s   p99 {created['p99_ms']:.1f} ms   non-2xx {created['non2xx']}   "
          f"incidents now {total}")
    print("queries over the sample year (5,400 incidents), median / p99 ms:")
    print(f"    list closed heating, page of 50     {listing[0]:7.2f} / {listing[1]:7.2f}")
    print(f"    list overdue, page of 50            {overdue[0]:7.2f} / {overdue[1]:7.2f}")
    print(f"    stats, whole year                   {stats[0]:7.2f} / {stats[1]:7.2f}")
    print(f"    stats, one quarter                  {stats_period[0]:7.2f} / {stats_period[1]:7.2f}")


if __name__ == "__main__":
    main()
