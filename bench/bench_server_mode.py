"""Server mode (issue #11): the SQLite store and the PostGIS store side by side, in one run.

Real ``gridmap serve`` processes on loopback, real HTTP. One throwaway PostgreSQL cluster (Debian's
packages, tests/pgcluster.py, fsync on, synchronous_commit on) and one SQLite file, both holding the
sample county with its 5,400-incident year.

(1) Lookups per second (``/v1/lookup?lon=…&lat=…``, 1,000 random points in the grids' bounding box,
    ``wrk -t1 -c32``): 1 and 2 workers, on SQLite and on PostGIS. The four settings alternate within
    a round and the order is reversed in the next round, so a change in the machine's load hits all
    alike. Lookups are answered from the in-memory index: the backend should not matter.
(2) Incident creation (``POST /v1/incidents``, public intake, ``GRIDMAP_INTAKE_RATE_PER_MINUTE=0``,
    ``wrk -t1 -c8``, a fresh copy of the store for every run): SQLite with 1 worker vs PostGIS with 1
    and with 2 workers. Printed: requests/s, median and p99 latency, non-2xx answers, the incidents the
    store gained (checked against wrk's count), and the CPU seconds of the gridmap and PostgreSQL
    processes during the measured seconds.
(3) Reads with an admin token, warm (5 calls first), sequential on one keep-alive connection, the
    three servers asked in turn call by call: ``/v1/incidents?limit=50``, a filtered listing and
    ``/v1/incidents/stats`` (the year): SQLite vs PostGIS vs PostGIS with ``GRIDMAP_DB_READ`` on a
    streaming replica (``pg_basebackup -R``). Median and p95. The answers of the three are compared.
(4) Two single-worker servers A and B per backend over one store: the sample package with one grid
    renamed is imported through A's admin API while a thread asks B every 20 ms for the grid at a point
    inside it. Printed: B's first answer from the new package, in seconds after A answered the import
    (negative: B had it before A answered) and after the import was sent; B's background build (from
    its log). SQLite: B's revision check, once a second. PostGIS: NOTIFY on ``gridmap_revision`` starts
    B's check at once. The two backends alternate import by import.

    python bench/bench_server_mode.py [--seconds 10] [--rounds 3] [--calls 50] [--imports 5]
                                      [--quiet-load 2.0 --max-wait 300] [--only 1234]

About 7.5 minutes with the defaults (plus the wait for a quiet machine, when asked). Needs ``wrk`` and
Debian's PostgreSQL with PostGIS (``postgresql``, ``postgresql-15-postgis-3``); as root the cluster runs
as the ``postgres`` user (tests/pgcluster.py).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
from bench_http import free_port, lua_for_points, sample_points, wait_until_up
from bench_incidents import POST_LUA
from bench_workers import GRID, POINT, changed_package, children, cpu_seconds, stop
from pgcluster import Cluster, new_folder

ADMIN = "bench-server-mode-admin-token"
SECRET = "bench-server-mode-secret-" + "s" * 24  # ≥ 32 characters: server mode's receipt secret
AUTH = {"Authorization": f"Bearer {ADMIN}"}
LISTINGS = {
    "list, newest 50": "/v1/incidents?limit=50",
    "list, closed infra.heating, 50": "/v1/incidents?status=closed&category=infra.heating&limit=50",
    "stats, the year": "/v1/incidents/stats",
}



# ---------------------------------------------------------------------------------------------- servers
@dataclass
class Server:
    process: subprocess.Popen
    base: str
    log: Path
    workers: int
    offset: int = 0

    @property
    def pids(self) -> list[int]:
        return children(self.process.pid) if self.workers > 1 else [self.process.pid]

    def new_log(self) -> str:
        text = self.log.read_text(errors="replace")
        fresh, self.offset = text[self.offset:], len(text)
        return fresh


def serve(db: str | Path, workers: int, log: Path, *, read: str | None = None) -> Server:
    env = {**os.environ, "GRIDMAP_ADMIN_TOKEN": ADMIN, "GRIDMAP_INTAKE_RATE_PER_MINUTE": "0"}
    env.pop("GRIDMAP_DB_READ", None)
    if isinstance(db, str):  # PostGIS: server mode needs the receipt secret (SQLite keeps its .key file)
        env["GRIDMAP_SECRET"] = SECRET
    if read:
        env["GRIDMAP_DB_READ"] = read
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "gridmap", "serve", "--db", str(db), "--port", str(port),
                                    "--workers", str(workers)], env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", log, workers)
    wait_until_up(f"{server.base}/health")
    if workers > 1:  # /health answering means one worker is up; give the others their start-up too
        deadline = time.monotonic() + 120
        while len(server.pids) < workers and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
    server.offset = len(log.read_text(errors="replace"))
    return server


def get_json(base: str, path: str, headers: dict | None = None) -> dict:
    request = urllib.request.Request(base + path, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


def incident_total(server: Server) -> int:
    return int(get_json(server.base, "/v1/incidents?limit=1", AUTH)["total"])


def postgres_pids(cluster: Cluster) -> list[int]:
    """The postmaster and every process it started (backends, walwriter, checkpointer, walsender …)."""
    root = int((cluster.data / "postmaster.pid").read_text().split()[0])
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            pass
    return found


def cpu_of(pids: list[int]) -> dict[int, float]:
    seen = {}
    for pid in pids:
        try:
            seen[pid] = cpu_seconds(pid)
        except OSError:
            pass
    return seen


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two samples (processes that started in between count from zero)."""
    return sum(after[pid] - before.get(pid, 0.0) for pid in after)


# ---------------------------------------------------------------------------------------------- wrk
def wrk(base: str, seconds: int, connections: int, script: Path) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), base]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        found = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        return float(found.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[found.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50_ms": ms("50%"), "p99_ms": ms("99%"),
            "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1).strip() if socket_errors else ""}


# ---------------------------------------------------------------------------------------------- setup
@dataclass
class Stores:
    folder: Path
    sqlite: Path
    primary: Cluster
    pg: str
    replica: Cluster | None = None
    pg_read: str | None = None
    copies: list[str] = field(default_factory=list)

    def sqlite_copy(self, name: str) -> Path:
        target = self.folder / name
        shutil.copytree(self.sqlite.parent, target)
        return target / self.sqlite.name

    def pg_copy(self) -> str:
        url = self.primary.copy_database(self.pg.rsplit("/", 1)[1])
        self.copies.append(url)
        return url

    def drop_copies(self) -> None:
        import psycopg

        with psycopg.connect(self.primary.url(), autocommit=True) as conn:
            for url in self.copies:
                conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        self.copies.clear()


def load_stores(folder: Path) -> Stores:
    from gridmap.bootstrap import load_sample
    from gridmap.settings import SAMPLE_PACKAGE
    from gridmap.store import GeoPackageStore, open_store

    started = time.perf_counter()
    (folder / "sqlite").mkdir()
    sqlite = folder / "sqlite" / "bench.gpkg"
    load_sample(GeoPackageStore(sqlite), SAMPLE_PACKAGE)  # also writes the index cache the servers load
    print(f"    SQLite store loaded in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    primary = Cluster.start_new(new_folder())
    primary.make_template()
    url = primary.new_database()
    store = open_store(url, secret=SECRET)
    load_sample(store, SAMPLE_PACKAGE)
    store.close()
    print(f"    PostgreSQL cluster started and PostGIS store loaded in {time.perf_counter() - started:.1f} s")
    return Stores(folder, sqlite, primary, url)


def start_replica(stores: Stores) -> None:
    import psycopg

    stores.replica = stores.primary.replica(new_folder())
    stores.pg_read = stores.replica.url(stores.pg.rsplit("/", 1)[1])
    with psycopg.connect(stores.pg_read) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True


def replica_sessions(stores: Stores) -> int:
    import psycopg

    with psycopg.connect(stores.replica.url(), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gridmap' "
                            "AND datname = %s", (stores.pg.rsplit("/", 1)[1],)).fetchone()[0]


# ---------------------------------------------------------------------------------------------- (1)
def lookups(stores: Stores, args: argparse.Namespace, folder: Path) -> None:
    points = sample_points()
    script = folder / "lookup.lua"
    script.write_text(lua_for_points(points))
    settings = [("SQLite", 1), ("PostGIS", 1), ("SQLite", 2), ("PostGIS", 2)]
    runs: dict[tuple[str, int], list[dict]] = {s: [] for s in settings}
    print(f"\n(1) /v1/lookup over HTTP, wrk -t1 -c{args.connections} -d{args.seconds}s, 1,000 random points")
    for round_ in range(args.rounds):
        for backend, workers in settings if round_ % 2 == 0 else settings[::-1]:
            db = stores.sqlite if backend == "SQLite" else stores.pg
            server = serve(db, workers, folder / f"lookup-{backend}-{workers}.log")
            try:
                pids = server.pids
                wrk(server.base, 2, args.connections, script)  # warm-up
                pg_before = cpu_of(postgres_pids(stores.primary))
                before = cpu_of(pids)
                r = wrk(server.base, args.seconds, args.connections, script)
                after = cpu_of(pids)
                r["cpu"] = [round(after[p] - before[p], 1) for p in pids]
                r["pg_cpu"] = cpu_delta(pg_before, cpu_of(postgres_pids(stores.primary)))
            finally:
                stop(server.process)
            runs[(backend, workers)].append(r)
            print(f"    round {round_ + 1}  {backend:7s} --workers {workers}: {r['rps']:7.0f} lookups/s  "
                  f"p50 {r['p50_ms']:5.1f} ms  p99 {r['p99_ms']:6.1f} ms  non-2xx {r['non2xx']}  "
                  f"gridmap CPU s {r['cpu']}  PostgreSQL CPU s {r['pg_cpu']:.2f}  (load {os.getloadavg()[0]:.2f})")
    print("    median of rounds:")
    for backend, workers in settings:
        rs = runs[(backend, workers)]
        print(f"      {backend:7s} --workers {workers}: {statistics.median(r['rps'] for r in rs):7.0f} lookups/s")
    for backend in ("SQLite", "PostGIS"):
        one = statistics.median(r["rps"] for r in runs[(backend, 1)])
        two = statistics.median(r["rps"] for r in runs[(backend, 2)])
        print(f"      {backend}: 2 workers / 1 worker = {two / one:.2f}")
    for workers in (1, 2):
        lite = statistics.median(r["rps"] for r in runs[("SQLite", workers)])
        pg = statistics.median(r["rps"] for r in runs[("PostGIS", workers)])
        print(f"      {workers} worker(s): PostGIS / SQLite = {pg / lite:.2f}")


# ---------------------------------------------------------------------------------------------- (2)
def creation(stores: Stores, args: argparse.Namespace, folder: Path) -> None:
    script = folder / "post.lua"
    script.write_text(POST_LUA)
    settings = [("SQLite", 1), ("PostGIS", 1), ("PostGIS", 2)]
    runs: dict[tuple[str, int], list[dict]] = {s: [] for s in settings}
    print(f"\n(2) POST /v1/incidents (public intake, rate limit off), wrk -t1 -c{args.writers} -d{args.seconds}s, "
          f"a fresh copy of the store per run")
    for round_ in range(args.rounds):
        for backend, workers in settings if round_ % 2 == 0 else settings[::-1]:
            db = stores.sqlite_copy(f"create-{round_}-{workers}") if backend == "SQLite" else stores.pg_copy()
            server = serve(db, workers, folder / f"create-{backend}-{workers}.log")
            try:
                pids = server.pids
                wrk(server.base, 2, args.writers, script)  # warm-up (its incidents stay)
                total_before = incident_total(server)
                pg_before = cpu_of(postgres_pids(stores.primary))
                before = cpu_of(pids)
                r = wrk(server.base, args.seconds, args.writers, script)
                r["cpu"] = cpu_delta(before, cpu_of(pids))
                r["pg_cpu"] = cpu_delta(pg_before, cpu_of(postgres_pids(stores.primary)))
                time.sleep(0.5)
                r["gained"] = incident_total(server) - total_before
                errors = [line for line in server.new_log().splitlines() if '"level": "error"' in line]
                r["errors"] = len(errors)
                if errors:
                    print(f"      server error: {errors[0][:300]}")
            finally:
                stop(server.process)
                if backend == "PostGIS":
                    stores.drop_copies()
            runs[(backend, workers)].append(r)
            print(f"    round {round_ + 1}  {backend:7s} --workers {workers}: {r['rps']:6.0f} created/s  "
                  f"p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  non-2xx {r['non2xx']}  "
                  f"{r['socket_errors'] or 'no socket errors'}  store +{r['gained']} (wrk counted {r['requests']})  "
                  f"gridmap CPU {r['cpu']:.1f} s  PostgreSQL CPU {r['pg_cpu']:.1f} s  (load {os.getloadavg()[0]:.2f})")
    print("    median of rounds:")
    for backend, workers in settings:
        rs = runs[(backend, workers)]
        print(f"      {backend:7s} --workers {workers}: {statistics.median(r['rps'] for r in rs):6.0f} created/s, "
              f"p99 {statistics.median(r['p99_ms'] for r in rs):.1f} ms "
              "(rounds: " + " / ".join(f"{r['rps']:.0f}" for r in rs) + " per s)")


# ---------------------------------------------------------------------------------------------- (3)
class KeepAlive:
    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def get(self, path: str) -> tuple[float, bytes]:
        started = time.perf_counter()
        self.conn.request("GET", path, headers=AUTH)
        response = self.conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        assert response.status == 200, (path, response.status, body[:300])
        return elapsed * 1e3, body


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q, method="nearest"))


def reads(stores: Stores, args: argparse.Namespace, folder: Path) -> None:
    configs = {"SQLite": (stores.sqlite, None), "PostGIS": (stores.pg, None),
               "PostGIS + replica": (stores.pg, stores.pg_read)}
    servers = {name: serve(db, 1, folder / f"reads-{name.replace(' ', '')}.log", read=read)
               for name, (db, read) in configs.items()}
    print(f"\n(3) reads with the admin token, {args.calls} calls each after 5 warm-up calls, one keep-alive "
          f"connection per server, the three servers asked in turn")
    try:
        clients = {name: KeepAlive(s.base) for name, s in servers.items()}
        results: dict[str, dict[str, list[float]]] = {label: {name: [] for name in servers} for label in LISTINGS}
        answers: dict[str, dict[str, bytes]] = {label: {} for label in LISTINGS}
        for label, path in LISTINGS.items():
            for i in range(5 + args.calls):
                for name, client in clients.items():
                    ms, body = client.get(path)
                    if i >= 5:
                        results[label][name].append(ms)
                    answers[label][name] = body
        print(f"    {'':32s} " + "  ".join(f"{name:>26s}" for name in servers))
        for label in LISTINGS:
            cells = [f"median {statistics.median(v):6.1f} p95 {percentile(v, 95):6.1f} ms"
                     for v in results[label].values()]
            print(f"    {label:32s} " + "  ".join(f"{c:>26s}" for c in cells))
        for label in LISTINGS:
            decoded = {name: json.loads(body) for name, body in answers[label].items()}
            same = all(decoded[name] == decoded["SQLite"] for name in decoded)
            print(f"    answers of '{label}': {'identical on all three' if same else 'DIFFER'}")
            if not same:
                for name in ("PostGIS", "PostGIS + replica"):
                    for key in sorted(set(decoded["SQLite"]) | set(decoded[name])):
                        if decoded["SQLite"].get(key) != decoded[name].get(key):
                            print(f"      {name} differs from SQLite at '{key}': "
                                  f"{json.dumps(decoded['SQLite'].get(key), ensure_ascii=False)[:200]} vs "
                                  f"{json.dumps(decoded[name].get(key), ensure_ascii=False)[:200]}")
        print(f"    gridmap sessions on the replica's database afterwards: {replica_sessions(stores)}")
    finally:
        for server in servers.values():
            stop(server.process)


# ---------------------------------------------------------------------------------------------- (4)
def grid_at(base: str) -> str:
    return get_json(base, f"/v1/lookup?lon={POINT[0]}&lat={POINT[1]}")["grid"]["name"]


def import_once(a: Server, b: Server, name: str, body: bytes) -> dict:
    seen: dict[str, float] = {}
    done = threading.Event()

    def poll() -> None:
        polls = 0
        while not done.is_set():
            if grid_at(b.base) == name:
                seen["at"] = time.monotonic()
                seen["polls"] = polls
                return
            polls += 1
            time.sleep(0.02)

    b.new_log()
    poller = threading.Thread(target=poll)
    request = urllib.request.Request(f"{a.base}/v1/admin/import", data=body, method="POST",
                                     headers={**AUTH, "Content-Type": "application/zip"})
    sent = time.monotonic()
    poller.start()
    with urllib.request.urlopen(request, timeout=300) as r:
        assert r.status == 200
    answered = time.monotonic()
    assert grid_at(a.base) == name
    poller.join(60)
    done.set()
    if "at" not in seen:
        raise RuntimeError("B never answered from the new package")
    time.sleep(0.3)
    log = b.new_log()
    built = re.findall(r"built off the request path in ([\d.]+) s", log)
    source = "cache file" if "loaded from" in log else ("built" if "built in" in log else "?")
    return {"import_s": answered - sent, "after_answer_s": seen["at"] - answered, "after_send_s": seen["at"] - sent,
            "b_build_s": float(built[-1]) if built else float("nan"), "b_source": source, "polls": seen["polls"]}


def propagation(stores: Stores, args: argparse.Namespace, folder: Path) -> None:
    pairs = {"SQLite": (serve(stores.sqlite, 1, folder / "import-SQLite-A.log"),
                        serve(stores.sqlite, 1, folder / "import-SQLite-B.log")),
             "PostGIS": (serve(stores.pg, 1, folder / "import-PostGIS-A.log"),
                         serve(stores.pg, 1, folder / "import-PostGIS-B.log"))}
    print("\n(4) import through A (admin API), B asked every 20 ms from the moment the import is sent")
    results: dict[str, list[dict]] = {name: [] for name in pairs}
    try:
        for i in range(args.imports):
            for backend, (a, b) in pairs.items():
                name = f"{GRID}（第{i + 1}次导入）"
                r = import_once(a, b, name, changed_package(folder, name))
                results[backend].append(r)
                print(f"    import {i + 1} {backend:7s}: A answered in {r['import_s']:.2f} s; B answered from it "
                      f"{r['after_answer_s']:+.2f} s after A's answer ({r['after_send_s']:.2f} s after sending); "
                      f"B's background load {r['b_build_s']:.2f} s ({r['b_source']}), so begun "
                      f"{r['after_send_s'] - r['b_build_s']:.2f} s after sending  (load {os.getloadavg()[0]:.2f})")
                time.sleep(1.5)  # background cache writes finish before the next import
        for backend, rs in results.items():
            after = [r["after_answer_s"] for r in rs]
            sent = [r["after_send_s"] for r in rs]
            build = [r["b_build_s"] for r in rs]
            begun = [r["after_send_s"] - r["b_build_s"] for r in rs]
            print(f"    {backend:7s}: after A's answer median {statistics.median(after):+.2f} s, max {max(after):+.2f} s; "
                  f"after sending median {statistics.median(sent):.2f} s, max {max(sent):.2f} s; "
                  f"A's import median {statistics.median(r['import_s'] for r in rs):.2f} s; "
                  f"B's load median {statistics.median(build):.2f} s, begun median {statistics.median(begun):.2f} s "
                  f"after sending")
    finally:
        for a, b in pairs.values():
            stop(a.process)
            stop(b.process)


# ---------------------------------------------------------------------------------------------- main
def wait_for_quiet(limit: float, max_wait: float) -> None:
    started = time.monotonic()
    while os.getloadavg()[0] > limit and time.monotonic() - started < max_wait:
        time.sleep(15)
    waited = time.monotonic() - started
    print(f"waited {waited:.0f} s for a load average ≤ {limit}: now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="seconds of each wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for lookups")
    parser.add_argument("--writers", type=int, default=8, help="wrk connections for incident creation")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=50, help="timed calls per read endpoint and store")
    parser.add_argument("--imports", type=int, default=5)
    parser.add_argument("--quiet-load", type=float, default=None, help="wait for this load average first")
    parser.add_argument("--max-wait", type=float, default=300)
    parser.add_argument("--only", default="1234", help="which benchmarks to run, e.g. 13")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    if args.quiet_load is not None:
        wait_for_quiet(args.quiet_load, args.max_wait)
    import uvicorn

    print(f"machine: {os.cpu_count()} cores; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"uvicorn {uvicorn.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stores = load_stores(folder)
        print(f"    PostgreSQL {stores.primary.bin.parent.name} "
              f"(fsync on, synchronous_commit on; the replica is asynchronous)")
        try:
            if "1" in args.only:
                lookups(stores, args, folder)
            if "2" in args.only:
                creation(stores, args, folder)
            if "3" in args.only:
                start_replica(stores)
                reads(stores, args, folder)
            if "4" in args.only:
                propagation(stores, args, folder)
        finally:
            for cluster in (stores.replica, stores.primary):
                if cluster is not None:
                    cluster.stop("immediate")
                    shutil.rmtree(cluster.folder, ignore_errors=True)
        errors = []
        for log in sorted(folder.glob("*.log")):
            errors += [f"{log.name}: {line}" for line in log.read_text(errors="replace").splitlines()
                       if '"level": "error"' in line]
        if errors:
            print(f"\nserver errors logged: {len(errors)}; first: {errors[0][:400]}")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"whole run {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
