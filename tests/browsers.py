"""Helpers for tests that drive Debian's Chromium with Playwright, with outside traffic blocked."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
"""Without the background-networking flags Chromium keeps trying hosts this machine cannot reach."""
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
"""Screenshots of every page a browser test opens (git-ignored; CI keeps them as artefacts)."""
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
TILE_HOSTS = ("tile.openstreetmap.org", "autonavi.com", "tianditu.gov.cn")
"""Basemap tiles are the only thing a page may ask of the network."""


class Offline:
    """A page on which every request to a non-loopback address is aborted (and remembered)."""

    def __init__(self, browser, *, width: int = 1400, height: int = 900, allow_files: bool = False) -> None:
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.allow_files = allow_files
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route) -> None:
        url = route.request.url
        parsed = urlparse(url)
        local = parsed.hostname in LOCAL_HOSTS or (self.allow_files and parsed.scheme in ("file", "data"))
        try:
            if local or parsed.scheme == "data":
                route.continue_()
            else:
                self.blocked.append(url)
                route.abort()
        except Exception:  # the page moved on (a tile request cancelled by a zoom or a navigation)
            pass

    def sign_in(self, base: str, token: str) -> None:
        """Sign in on the real /login page, as staff do: the session cookie signs in what follows."""
        self.page.goto(f"{base}/login")
        self.page.fill("input[name=token]", token)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(lambda url: "/login" not in url, wait_until="commit")

    def open(self, url: str) -> float:
        start = time.perf_counter()
        self.page.goto(url)
        self.page.wait_for_function("window.gridmap && window.gridmap.ready", timeout=20_000)
        return time.perf_counter() - start

    def overlays(self) -> list[str]:
        return self.page.evaluate("Object.keys(window.gridmap.overlays)")

    def check_offline(self) -> None:
        assert not self.errors, self.errors
        # Nothing but basemap tiles was asked of the network: scripts, styles, fonts and icons are local.
        assert all(any(h in (urlparse(u).hostname or "") for h in TILE_HOSTS) for u in self.blocked), self.blocked

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.wait_for_timeout(300)
        self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        self.page.close()


def wait_js(page, expression: str, timeout_s: float = 20.0) -> None:
    """Until ``expression`` is true in the page: polled from here, as the pages' Content-Security-Policy
    (``script-src 'self'``, no eval) does not let Playwright's ``wait_for_function`` evaluate it in the page."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout_s:g} s: {expression}"
        page.wait_for_timeout(50)


def sign_in_console(o: Offline, base: str, token: str) -> None:
    """The real /login page, coming back to /console as a browser sent there would."""
    o.page.goto(f"{base}/login?next=%2Fconsole")
    o.page.fill("input[name=token]", token)
    o.page.click("button[type=submit]")
    o.page.wait_for_url(f"{base}/console")
    wait_js(o.page, "!!(window.gridmap && window.gridmap.ready)")
