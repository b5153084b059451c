"""Server mode (issue #11): lookups per second with 1 and 2 workers, and how soon an import is seen elsewhere.

(a) ``gridmap serve --workers 1`` and ``--workers 2`` over one copy of the sample county, driven over real
    HTTP on loopback by wrk (Debian package ``wrk``) with ``/v1/lookup?lon=…&lat=…`` over 1,000 random
    points in the county's grids' bounding box. The two settings alternate (1, 2, 1, 2, …) so that a
    change in the machine's load hits both alike; every round is printed, then the median of each.
    Also printed per setting: the CPU seconds each worker process spent in the round (both workers take
    connections or neither helps), and the median latency of sequential requests on ONE keep-alive
    connection — uvicorn issue 3149: with a pre-bound socket (``--workers N``) a listener without
    ``proto=IPPROTO_TCP`` loses TCP_NODELAY, and each keep-alive request after the first then waits
    ~40 ms on the peer's delayed ACK; that shows here as a median of tens of milliseconds with 2 workers.
(b) Two single-worker servers A and B over one store: a changed package (one grid renamed) is imported
    through A's admin API; B is asked the grid at a point inside it every 20 ms until it answers with
    the new name. Printed: seconds from A's answer to B's first new answer, per import, and their median
    and maximum (issue #11: within 2 s).

    python bench/bench_workers.py [--seconds 10] [--connections 32] [--rounds 2] [--imports 5]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from bench_http import free_port, lua_for_points, run_wrk, sample_points, wait_until_up

ADMIN = "bench-workers-admin-token"
POINT = (110.7693, 35.1425)  # 中城社区第7网格 (the README's example)
GRID = "中城社区第7网格"


def load_store(folder: Path) -> Path:
    from gridmap.bootstrap import load_sample
    from gridmap.settings import SAMPLE_PACKAGE
    from gridmap.store import GeoPackageStore

    db = folder / "bench.gpkg"
    load_sample(GeoPackageStore(db), SAMPLE_PACKAGE)  # also writes the index cache the servers load
    return db


def start(db: Path, workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "GRIDMAP_ADMIN_TOKEN": ADMIN}
    with log.open("ab") as out:
        server = subprocess.Popen([sys.executable, "-m", "gridmap", "serve", "--db", str(db), "--port", str(port),
                                   "--workers", str(workers)], env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/health")
    if workers > 1:  # /health answering means one worker is up; give the others their start-up too
        deadline = time.monotonic() + 120
        while len(children(server.pid)) < workers and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
    return server, base


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def children(pid: int) -> list[int]:
    """Worker processes of a server: its children running gridmap (not multiprocessing's helpers)."""
    found = []
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in map(int, listed):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in command:
            found.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def keepalive_latency_ms(base: str, requests: int = 200) -> float:
    """Median of sequential lookups on one keep-alive connection (the Nagle/delayed-ACK symptom)."""
    import http.client

    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    times = []
    try:
        for i in range(requests):
            started = time.perf_counter()
            conn.request("GET", f"/v1/lookup?lon={POINT[0] + 1e-5 * (i % 7)}&lat={POINT[1]}")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            times.append(time.perf_counter() - started)
    finally:
        conn.close()
    return statistics.median(times[10:]) * 1e3


def throughput(db: Path, workers: int, script: Path, log: Path, args: argparse.Namespace) -> dict:
    server, base = start(db, workers, log)
    try:
        pids = children(server.pid) if workers > 1 else [server.pid]
        run_wrk(base, 2, args.connections, args.threads, script)  # warm-up
        before = {pid: cpu_seconds(pid) for pid in pids}
        result = run_wrk(base, args.seconds, args.connections, args.threads, script)
        result["cpu"] = [round(cpu_seconds(pid) - before[pid], 1) for pid in pids]
        result["keepalive_ms"] = keepalive_latency_ms(base)
    finally:
        stop(server)
    return result


def changed_package(folder: Path, name: str) -> bytes:
    """The sample package with grid ``GRID`` renamed to ``name``, zipped as the admin import takes it."""
    from gridmap.settings import SAMPLE_PACKAGE

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(SAMPLE_PACKAGE.iterdir()):
            if path.name == "incidents.csv":
                continue  # not a layer of the package (load_sample reads it)
            data = path.read_bytes()
            if path.name == "grids.geojson":
                assert GRID.encode() in data
                data = data.replace(GRID.encode(), name.encode())
            archive.writestr(path.name, data)
    return buffer.getvalue()


def grid_at(base: str) -> str:
    with urllib.request.urlopen(f"{base}/v1/lookup?lon={POINT[0]}&lat={POINT[1]}", timeout=10) as r:
        return json.loads(r.read())["grid"]["name"]


def propagation(db: Path, folder: Path, log: Path, imports: int) -> list[dict]:
    (a_server, a), (b_server, b) = start(db, 1, log), start(db, 1, log)
    results = []
    try:
        for i in range(imports):
            name = f"{GRID}（第{i + 1}次导入）"
            body = changed_package(folder, name)
            request = urllib.request.Request(f"{a}/v1/admin/import", data=body, method="POST",
                                             headers={"Authorization": f"Bearer {ADMIN}",
                                                      "Content-Type": "application/zip"})
            sent = time.monotonic()
            with urllib.request.urlopen(request, timeout=300) as r:
                assert r.status == 200
            answered = time.monotonic()
            assert grid_at(a) == name
            polls = 0
            while grid_at(b) != name:
                polls += 1
                if time.monotonic() - answered > 60:
                    raise RuntimeError("B never answered from the new package")
                time.sleep(0.02)
            seen = time.monotonic()
            results.append({"import_s": answered - sent, "seen_s": seen - answered, "polls": polls})
            time.sleep(1.5)  # let the servers' background cache writes finish before the next import
    finally:
        stop(a_server)
        stop(b_server)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="alternating 1-worker / 2-worker rounds")
    parser.add_argument("--imports", type=int, default=5)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")

    points = sample_points()
    import uvicorn

    print(f"machine: {os.cpu_count()} cores; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"uvicorn {uvicorn.__version__} (uvloop + httptools); wrk -t{args.threads} -c{args.connections} "
          f"-d{args.seconds}s on loopback, 1,000 random points")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = load_store(folder)
        log = folder / "servers.log"
        script = folder / "lookup.lua"
        script.write_text(lua_for_points(points))

        runs: dict[int, list[dict]] = {1: [], 2: []}
        print("\n(a) /v1/lookup over HTTP")
        for round_ in range(args.rounds):
            for workers in (1, 2):
                r = throughput(db, workers, script, log, args)
                runs[workers].append(r)
                print(f"    round {round_ + 1}  --workers {workers}: {r['rps']:8.0f} lookups/s  p99 {r['p99_ms']:6.1f} ms  "
                      f"non-2xx {r['non2xx']}  worker CPU s {r['cpu']}  keep-alive median {r['keepalive_ms']:.2f} ms  "
                      f"(load {os.getloadavg()[0]:.2f})")
        one = statistics.median(r["rps"] for r in runs[1])
        two = statistics.median(r["rps"] for r in runs[2])
        print(f"    median: 1 worker {one:.0f}/s, 2 workers {two:.0f}/s, ratio 2/1 = {two / one:.2f} "
              f"({'not slower' if two >= 0.95 * one else 'SLOWER'})")

        print("\n(b) import through A, lookup answered from the new package by B (two single-worker servers)")
        seen = propagation(db, folder, log, args.imports)
        for i, r in enumerate(seen, 1):
            print(f"    import {i}: A answered the import in {r['import_s']:.2f} s; B answered from it "
                  f"{r['seen_s']:.2f} s later ({r['polls']} polls)")
        times = [r["seen_s"] for r in seen]
        print(f"    B: median {statistics.median(times):.2f} s, max {max(times):.2f} s (target ≤ 2 s)")
        print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        errors = [line for line in log.read_text(errors="replace").splitlines() if '"level": "error"' in line]
        if errors:
            print(f"server errors logged: {len(errors)}; first: {errors[0][:300]}")


if __name__ == "__main__":
    main()
