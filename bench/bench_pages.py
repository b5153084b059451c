"""The browser pages of issue #15: page weight before map tiles and time to interactive, cold and warm.

    python bench/bench_pages.py [--runs 7] [--json out.json]

Loads the sample county (its grids and its year of incidents) into a fresh GeoPackage store, makes a dispatcher's
and a grid worker's token, serves it with ``gridmap serve`` (one process, this checkout) and opens, in Debian's
headless Chromium where every host but the loopback fails to resolve (``--host-resolver-rules``: no basemap
tiles, a county intranet without internet; not Playwright's request routing, which would switch off the
browser's HTTP cache and make the warm loads cold):

- ``/console`` as the dispatcher at 1400 × 900 (the 待受理 queue and its map),
- ``/console`` as the grid worker at 390 × 844 (我的任务),
- ``/console/incidents/{id}`` as the dispatcher at 1400 × 900 (the newest waiting report),
- ``/report`` at 390 × 844 (public).

Each run is a new browser context (an empty HTTP cache), signed in by posting the token to /login from the
context's own request client (which shares the cookies, not the cache); the page is opened once (cold) and
then once more in the same context (warm). Figures are the medians over the runs.

- **Weight before map tiles**: the body bytes (``encodedBodySize`` of Resource Timing; nothing is compressed
  here) of the document and every resource the page asked for up to the moment it was measured, except map
  tiles: gridmap's vector tiles (``/tiles/…``) and basemap tiles (aborted anyway). "Transferred" is what
  crossed the network (``transferSize``: headers included, 0 for what came from the cache). Vector tile bytes
  are printed apart.
- **Time to interactive**: from navigation start (``performance.timeOrigin``) to the later of the end of
  DOMContentLoaded and the page's own ready marker ``window.gridmap.ready`` (report.js sets it once the form,
  the map and its handlers are set up; console.js calls ``GM.ready`` once the queue or task list is bound and
  the map made, in the animation frame after Leaflet is ready), with the first queue row or task card in the
  page (rendered by the server). A script added before the page's own polls for the marker every 4 ms.
- Console pages also get **incidents on the map**: until ``window.gridmap.tiles.settled()``, every vector
  tile of the first view drawn.

Targets (issue #15): ≤ 500 KB before map tiles, interactive ≤ 2 s. Exits 1 when a cold median misses one.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse

import httpx

ROOT: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gridmap import auth
from gridmap.bootstrap import load_sample
from gridmap.settings import SAMPLE_PACKAGE
from gridmap.store import GeoPackageStore

CHROMIUM: Final = "/usr/bin/chromium"
ARGS: Final = ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
LOCAL: Final = {"127.0.0.1", "localhost"}
WEIGHT_TARGET: Final = 500_000
"""Bytes before map tiles (issue #15)."""
INTERACTIVE_TARGET_S: Final = 2.0
ADMIN_TOKEN: Final = "bench-pages-admin-token"
PAGE_TIMEOUT_S: Final = 30.0
SETTLE_TIMEOUT_S: Final = 20.0
START_TIMEOUT_S: Final = 180.0
DESK: Final = {"width": 1400, "height": 900}
PHONE: Final = {"width": 390, "height": 844}

MARKS: Final = """
(() => {
  try { performance.setResourceTimingBufferSize(2000); } catch (e) {}
  const marks = window.__bench = {ready: null, settled: null};
  const started = performance.now();
  (function poll() {
    const g = window.gridmap;
    if (marks.ready === null && g && g.ready === true) marks.ready = performance.now();
    if (marks.ready !== null && marks.settled === null && g.tiles && g.tiles.settled && g.tiles.settled())
      marks.settled = performance.now();
    if ((marks.ready === null || (g && g.tiles && marks.settled === null)) && performance.now() - started < 30000)
      setTimeout(poll, 4);
  })();
})();
"""
"""Added before every document (an init script, which the pages' Content-Security-Policy does not govern)."""

READ: Final = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const entries = [nav].concat(performance.getEntriesByType('resource'));
  return {dcl: nav.domContentLoadedEventEnd, ready: window.__bench.ready, settled: window.__bench.settled,
          entries: entries.map(e => ({url: e.name, body: e.encodedBodySize, transfer: e.transferSize,
                                      kind: e.initiatorType}))};
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(folder: Path) -> dict[str, Any]:
    """The sample county in a fresh store, with a dispatcher's token and a full-time grid worker's."""
    db = folder / "sample.gpkg"
    store = GeoPackageStore(db)
    load_sample(store, SAMPLE_PACKAGE)
    layers = store.read_layers()
    workers = layers["workers"]
    worker = workers[(workers["role"] == "专职网格员") & (workers["grid_code"] != "")].sort_values("code").iloc[0]
    dispatcher = auth.create_token(store, role="dispatcher", label="bench_pages")[1]
    own = auth.create_token(store, role="worker", worker_code=worker["code"], label="bench_pages")[1]
    store.close()
    return {"db": db, "dispatcher": dispatcher, "worker": own, "worker_code": worker["code"]}


def serve(db: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}
    env |= {"GRIDMAP_ADMIN_TOKEN": ADMIN_TOKEN, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "gridmap", "serve", "--db", str(db), "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("gridmap serve did not start:\n" + log.read_text(errors="replace")[-3000:])
        time.sleep(0.3)


def is_tile(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.hostname not in LOCAL or parsed.path.startswith("/tiles/")


def measure(page, url: str, content: str) -> dict[str, Any]:
    """One navigation: the weight and the marks, once the page is interactive and its map tiles have settled."""
    page.goto(url, wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_S * 1000)
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    while True:
        marks = page.evaluate("window.__bench")
        tiles = page.evaluate("!!(window.gridmap && window.gridmap.tiles)")
        if marks["ready"] is not None and (not tiles or marks["settled"] is not None):
            break
        if time.monotonic() > deadline:
            if marks["ready"] is not None:
                break  # tiles did not settle: the interactive figure still stands, "on the map" stays empty
            raise RuntimeError(f"{url}: never ready")
        page.wait_for_timeout(20)
    assert page.locator(content).count() >= 1, f"{url}: no {content}"
    read = page.evaluate(READ)
    entries = read["entries"]
    local = [e for e in entries if not is_tile(e["url"])]
    vector = [e for e in entries if is_tile(e["url"]) and urlparse(e["url"]).hostname in LOCAL]
    return {
        "interactive_s": max(read["dcl"], read["ready"]) / 1000,
        "dcl_s": read["dcl"] / 1000,
        "settled_s": read["settled"] / 1000 if read["settled"] is not None else None,
        "bytes": sum(e["body"] for e in local),
        "transferred": sum(e["transfer"] for e in local),
        "requests": len(local),
        "tile_bytes": sum(e["body"] for e in vector),
        "tiles": len(vector),
        "by_url": {urlparse(e["url"]).path: e["body"] for e in local},
    }


def sign_in(context, base: str, token: str) -> None:
    """A session cookie for the context, from /login (its request client shares cookies, not the HTTP cache)."""
    answer = context.request.post(f"{base}/login", form={"token": token, "next": "/console"},
                                  headers={"Origin": base}, max_redirects=0)
    assert answer.status == 303, answer.status
    assert any(c["name"] for c in context.cookies(base)), "no session cookie"


NEW_REPORTS = 5


def run_pages(base: str, prepared: dict[str, Any], runs: int) -> dict[str, dict[str, list[dict]]]:
    from playwright.sync_api import sync_playwright

    for k in range(NEW_REPORTS):  # the sample year has none waiting: a morning's new reports, as residents send them
        made = httpx.post(f"{base}/v1/incidents", json={
            "category": "infra.streetlight", "description": f"路灯不亮（第{k + 1}处）",
            "lon": 110.7693 + 0.0004 * k, "lat": 35.1425}, timeout=30)
        assert made.status_code == 201, made.text
    listed = httpx.get(f"{base}/v1/incidents", params={"status": "reported", "limit": 1},
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30).json()
    incident_id = listed["items"][0]["id"]
    pages = [
        ("/console (dispatcher, 1400×900)", "/console", prepared["dispatcher"], DESK, ".cs-item"),
        ("/console (worker, 390×844)", "/console", prepared["worker"], PHONE, ".cs-task"),
        ("/console/incidents/{id} (dispatcher)", f"/console/incidents/{incident_id}", prepared["dispatcher"], DESK,
         "form.cs-action"),
        ("/report (390×844)", "/report", None, PHONE, "#submit"),
    ]
    results: dict[str, dict[str, list[dict]]] = {name: {"cold": [], "warm": []} for name, *_ in pages}
    blocked: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for run in range(runs):
            for name, path, token, size, content in pages:
                context = browser.new_context(viewport=size)
                context.add_init_script(MARKS)

                context.on("requestfailed", lambda r: blocked.append(r.url)
                           if urlparse(r.url).hostname not in LOCAL else None)
                if token:
                    sign_in(context, base, token)
                page = context.new_page()
                results[name]["cold"].append(measure(page, base + path, content))
                results[name]["warm"].append(measure(page, base + path, content))
                context.close()
            print(f"run {run + 1}/{runs} done", flush=True)
        browser.close()
    outside = {urlparse(u).hostname for u in blocked}
    print(f"requests aborted (not loopback): {len(blocked)}, hosts: {sorted(outside)}")
    return results


def median(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def report(results: dict[str, dict[str, list[dict]]]) -> bool:
    ok = True
    print()
    print("| page | cache | requests | bytes before map tiles | transferred | interactive, median (max) "
          "| incidents on the map, median | vector tiles |")
    print("|---|---|---|---|---|---|---|---|")
    for name, by_cache in results.items():
        for cache, rows in by_cache.items():
            tti = [r["interactive_s"] for r in rows]
            settled = median([r["settled_s"] for r in rows])
            weight = median([r["bytes"] for r in rows])
            print(f"| {name} | {cache} | {median([r['requests'] for r in rows]):.0f} | {weight / 1000:.0f} KB "
                  f"| {median([r['transferred'] for r in rows]) / 1000:.1f} KB "
                  f"| {median(tti):.2f} s ({max(tti):.2f} s) "
                  f"| {'—' if settled is None else f'{settled:.2f} s'} "
                  f"| {median([r['tiles'] for r in rows]):.0f}, {median([r['tile_bytes'] for r in rows]) / 1000:.0f} KB |")
            if cache == "cold" and (weight > WEIGHT_TARGET or median(tti) > INTERACTIVE_TARGET_S):
                ok = False
    print()
    for name, by_cache in results.items():
        first = by_cache["cold"][0]["by_url"]
        parts = ", ".join(f"{path} {size / 1000:.1f}" for path, size in sorted(first.items(), key=lambda kv: -kv[1]))
        print(f"{name}, cold, KB: {parts}")
    print(f"\ntargets: ≤ {WEIGHT_TARGET / 1000:.0f} KB before map tiles, interactive ≤ {INTERACTIVE_TARGET_S:g} s "
          f"(cold medians): {'met' if ok else 'MISSED'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write every run's figures here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_pages_"))
    started = time.perf_counter()
    prepared = prepare(folder)
    print(f"sample county loaded in {time.perf_counter() - started:.0f} s; store {prepared['db']}", flush=True)
    port = free_port()
    server = serve(prepared["db"], port, folder / "server.log")
    try:
        results = run_pages(f"http://127.0.0.1:{port}", prepared, args.runs)
    finally:
        server.terminate()
        server.wait(timeout=30)
    ok = report(results)
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
