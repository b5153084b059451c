"""HTTP benchmark (c): /v1/lookup vs /health on the same server under the same load.

Starts `gridmap serve` (uvloop + httptools) on a loopback port over a fresh copy of the sample
county, then drives it from a separate process with wrk (Debian package `wrk`), first /health,
then /v1/lookup over a fixed list of points inside the county seat (a Lua script cycles them).

    python bench/bench_http.py [--seconds 10] [--connections 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server at {url} did not come up")


def sample_points(n: int = 1000, seed: int = 1) -> np.ndarray:
    """``n`` seeded random (lon, lat) points in the sample county's grids' bounding box: what the HTTP
    lookup benchmarks ask for."""
    import geopandas as gpd

    grids = gpd.read_file(ROOT / "geodata" / "linyi" / "grids.geojson")
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = grids.total_bounds
    return np.column_stack([rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)])


def lua_for_points(points: np.ndarray) -> str:
    paths = ",\n".join(f'"/v1/lookup?lon={x:.6f}&lat={y:.6f}"' for x, y in points)
    # Requests are formatted once in init(): formatting per request in Lua costs wrk more CPU
    # than the server spends answering, and the two share this machine's cores.
    return f"""
local paths = {{{paths}}}
local requests = {{}}
local i = 0
init = function(args)
  for k, path in ipairs(paths) do
    requests[k] = wrk.format("GET", path)
  end
end
request = function()
  i = (i % #requests) + 1
  return requests[i]
end
"""


def run_wrk(url: str, seconds: int, connections: int, threads: int, script: Path | None = None) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale, "non2xx": int(errors.group(1)) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")

    points = sample_points()

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**os.environ, "GRIDMAP_DB": str(Path(tmp) / "bench.gpkg")}
        server = subprocess.Popen(
            [sys.executable, "-m", "gridmap", "serve", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(f"{base}/health")
            script = Path(tmp) / "lookup.lua"
            script.write_text(lua_for_points(points))
            run_wrk(f"{base}/health", 2, args.connections, args.threads)  # warm-up
            health = run_wrk(f"{base}/health", args.seconds, args.connections, args.threads)
            lookup = run_wrk(base, args.seconds, args.connections, args.threads, script)
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(f"(c) HTTP, 1 uvicorn worker (uvloop+httptools), wrk -t{args.threads} -c{args.connections} "
          f"-d{args.seconds}s on loopback")
    print(f"    /health     {health['rps']:9.0f} req/s   p99 {health['p99_ms']:6.2f} ms   non-2xx {health['non2xx']}")
    print(f"    /v1/lookup  {lookup['rps']:9.0f} req/s   p99 {lookup['p99_ms']:6.2f} ms   non-2xx {lookup['non2xx']}")
    print(f"    ratio lookup/health: {lookup['rps'] / health['rps']:.2f} (target ≥ 0.70)")


if __name__ == "__main__":
    main()
