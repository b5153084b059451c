"""Dispatcher map budget (issue #5): page weight and time to "layers drawn, a grid clickable" in headless Chromium.

    python bench/bench_maps.py [--runs 5]

Serves the sample county (all grids, buildings from zoom 16, the stored incident history) with
``gridmap serve`` in its own process, then opens /maps/dispatcher in Debian's Chromium (when fewer than
5,000 incidents are stored it measures ``gridmap map dispatcher --demo-incidents 5000`` as a file instead) with every non-loopback request blocked (no tiles: the worst case
for a county network). Each run uses a fresh browser context (no HTTP cache). Budget: ≤ 5 MB of HTML,
interactive within 3 s.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

from gridmap.coverage.service import Coverage
from gridmap.maps.incidents import load_incidents
from gridmap.store import GeoPackageStore

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

# Time from navigation start until the page script says it is drawn, then until a grid answers a click.
INTERACTIVE = """() => new Promise(resolve => {
  const map = window.gridmap.map, t0 = performance.timeOrigin;
  const ready = performance.now();
  let grid = null;
  window.gridmap.overlays['网格'].eachLayer(g => g.eachLayer && g.eachLayer(l => { if (!grid) grid = l; }));
  map.once('popupopen', () => resolve({ready: ready, clickable: performance.now()}));
  grid.fire('click', {latlng: grid.getBounds().getCenter()}, true);  // propagates to the GeoJSON layer's popup
})"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_maps_"))
    db = folder / "sample.gpkg"  # `gridmap serve` loads the sample county and its incident year into it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "gridmap", "serve", "--db", str(db), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run(args, db, base, folder)
    finally:
        server.terminate()
        server.wait(timeout=10)


def run(args, db: Path, base: str, folder: Path) -> None:
    from playwright.sync_api import sync_playwright

    deadline = time.monotonic() + 120
    print("waiting for the server to load the sample county…", flush=True)
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.3)
    store = GeoPackageStore(db)  # as the server left it (it loads the sample incident history at start)
    coverage = Coverage.from_layers(store.read_layers(), revision=store.revision())
    stored = load_incidents(store, coverage)
    print(f"server up; {len(stored)} incidents stored", flush=True)
    if len(stored) >= 5000:
        source, url = f"the stored history, {len(stored):,} incidents", f"{base}/maps/dispatcher"
    else:
        out = folder / "dispatcher.html"
        subprocess.run([sys.executable, "-m", "gridmap", "map", "dispatcher", "--db", str(db), "--out", str(out),
                        "--demo-incidents", "5000"], check=True)
        source, url = f"synthetic 5,000 in an exported file (only {len(stored)} stored)", out.as_uri()

    t = time.perf_counter()
    first = httpx.get(f"{base}/maps/dispatcher", timeout=60)
    render_s = time.perf_counter() - t
    t = time.perf_counter()
    httpx.get(f"{base}/maps/dispatcher", timeout=60)
    cached_s = time.perf_counter() - t
    html_bytes = len(first.content) if url.startswith("http") else Path(url[7:]).stat().st_size

    results, weights, all_shown = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for _ in range(args.runs):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            transferred = {"bytes": 0, "blocked": 0}

            def route(r):
                host = urlparse(r.request.url).hostname
                try:
                    if host in ("127.0.0.1", "localhost") or r.request.url.startswith(("file:", "data:")):
                        r.continue_()
                    else:
                        transferred["blocked"] += 1
                        r.abort()
                except Exception:
                    pass

            page.route("**/*", route)
            page.goto(url)
            page.wait_for_function("window.gridmap && window.gridmap.ready", timeout=30_000)
            marks = page.evaluate(INTERACTIVE)
            results.append(marks)
            weights.append(page.evaluate("""() => performance.getEntriesByType('navigation')
                .concat(performance.getEntriesByType('resource'))
                .filter(e => e.name.startsWith(location.origin) || e.name.startsWith('file:'))
                .reduce((n, e) => n + (e.encodedBodySize || 0), 0)"""))
            t = time.perf_counter()
            page.select_option(".gm-filter select[name=status]", "")
            all_shown.append(time.perf_counter() - t)
            context.close()
        browser.close()
    ready = [r["ready"] / 1000 for r in results]
    clickable = [r["clickable"] / 1000 for r in results]
    print(f"incidents: {source}; grids {len(coverage.grids)}, buildings {len(coverage.buildings):,}")
    print(f"HTML: {html_bytes / 1e6:.2f} MB (budget 5 MB); everything transferred (HTML + local scripts, "
          f"styles, fonts): {statistics.median(weights) / 1e6:.2f} MB")
    print(f"server: first render {render_s * 1000:.0f} ms, cached {cached_s * 1000:.1f} ms")
    print(f"navigation → layers drawn: median {statistics.median(ready):.2f} s, max {max(ready):.2f} s")
    print(f"navigation → a grid clickable (popup open): median {statistics.median(clickable):.2f} s, "
          f"max {max(clickable):.2f} s (budget 3 s) over {args.runs} cold page loads")
    print(f"filter 未办结 → 全部 ({max(len(stored), 5000) if len(stored) >= 5000 else 5000:,} markers clustered): "
          f"median {statistics.median(all_shown) * 1000:.0f} ms")
    ok = html_bytes <= 5 * 1024 * 1024 and max(clickable) <= 3
    print("within budget" if ok else "OVER BUDGET")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
