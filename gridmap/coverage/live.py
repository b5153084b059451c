"""The current ``Coverage`` of a store, rebuilt when the store's content changes.

An import through this process's API rebuilds at once (``reload``: the import answers once the new
package is live). An import by another process (the CLI, another server worker, another host) is
noticed by a revision check at most every ``check_interval`` seconds; the new Coverage is then built
by one background thread while ``get`` keeps answering from the old one, and swapped in when it is
ready. ``get`` itself never touches the store and never builds: it runs on the event loop, and a
build takes 0.8 s on the sample county, tens of seconds for a city.

A background build that fails is logged (the error's type and message, which name layers and codes,
never incidents or anything residents sent) and tried again at the next check; the old Coverage keeps
serving meanwhile. ``failures`` and ``error`` say so to whoever asks (tests, the health of a host).

Each revision's Coverage is kept on disk beside the store (``gridmap.coverage.cache``): a restart,
or another worker, with an unchanged store loads it instead of building it again.

Only the ``Store`` interface is used (``revision()``, what ``load_or_build`` reads), so the same
holds for every backend.
"""

from __future__ import annotations

import logging
import threading
import time

from gridmap.coverage.cache import CoverageCache, load_or_build
from gridmap.coverage.service import Coverage
from gridmap.store.base import Store

log = logging.getLogger(__name__)


class LiveCoverage:
    def __init__(self, store: Store, *, check_interval: float = 1.0, cache: bool = True) -> None:
        """``cache=False``: build from the store every time, never read or write the cache files."""
        self.store = store
        self.check_interval = check_interval
        self.cache = CoverageCache.for_store(store) if cache else None
        self.failures = 0
        """Background builds that failed (each logged); the old Coverage kept serving."""
        self.error: BaseException | None = None
        """The last background build's error, None once a build succeeded."""
        self.swaps = 0
        """Coverages installed after the first one (by ``reload`` or a background build)."""
        self._lock = threading.Lock()  # held for bookkeeping only, never while reading the store or building
        self._started = 0  # builds started, in order; the Coverage installed is the latest-started that finished
        self._installed = 0
        self._building: dict[int, str | None] = {}  # build number → the revision it was started for
        self._refresher: threading.Thread | None = None
        self._closed = False
        self._recheck = False
        self._checked_at = time.monotonic()
        self._coverage = load_or_build(store, self.cache, background=False)  # start-up: the file before serving
        self._unwatch = store.watch_revisions(lambda revision: self.check_now())
        """A store that announces imports (PostGIS: LISTEN/NOTIFY) starts the check at once, even with no
        request coming in; others are checked when a request comes after ``check_interval``."""

    @property
    def refreshing(self) -> bool:
        """A background check or build is running."""
        refresher = self._refresher
        return refresher is not None and refresher.is_alive()

    def get(self) -> Coverage:
        """The current Coverage, at once. When ``check_interval`` has passed since the last check, one
        background thread checks the store's revision (and builds if it changed); none while one runs."""
        now = time.monotonic()
        if now - self._checked_at >= self.check_interval and not self._closed:
            with self._lock:
                if now - self._checked_at >= self.check_interval:
                    self._checked_at = now
                    if not self.refreshing:  # a build still under way: it is the check
                        self._refresher = threading.Thread(target=self._refresh, name="coverage-refresh",
                                                           daemon=True)
                        self._refresher.start()
        return self._coverage

    def check_now(self) -> None:
        """Check the store's revision in the background now (an import was announced); a check or build
        under way checks once more when it ends."""
        with self._lock:
            self._checked_at = -float("inf")
            self._recheck = True
        self.get()

    def reload(self) -> Coverage:
        """Build the store's Coverage now, on the calling thread (a worker thread, never the event loop),
        and serve it from now on: after an import through this process. Errors go to the caller."""
        number = self._begin(self.store.revision())
        try:
            coverage = load_or_build(self.store, self.cache, background=True)
        finally:
            self._end(number)
        self._install(coverage, number)
        return self._coverage

    def wait(self, timeout: float | None = None) -> None:
        """Until a running background check or build has finished (tests, benchmarks)."""
        refresher = self._refresher
        if refresher is not None:
            refresher.join(timeout)

    def close(self) -> None:
        """No more checks; a build under way is dropped when it ends (the store is about to close)."""
        self._closed = True
        if self._unwatch is not None:
            self._unwatch()

    # ------------------------------------------------------------------ internals

    def _refresh(self) -> None:
        """The background check, again as long as imports were announced while it ran."""
        while True:
            self._recheck = False
            if not self._check() or not self._recheck or self._closed:
                return  # a failure waits for the next check: no tight loop on a package that cannot be built

    def _check(self) -> bool:
        """The store's revision, and a new Coverage when it changed; False when either failed."""
        try:
            revision = self.store.revision()
        except Exception as exc:  # noqa: BLE001 - a store that cannot answer now is asked again at the next check
            if not self._closed:
                log.warning("could not read the store's revision (%s: %s); still serving revision %s",
                            type(exc).__name__, exc, self._coverage.revision)
            return False
        with self._lock:
            if revision == self._coverage.revision or revision in self._building.values():
                return True  # unchanged, or being built already (by ``reload`` after an import here)
        number = self._begin(revision)
        started = time.perf_counter()
        try:
            coverage = load_or_build(self.store, self.cache, background=True)
        except Exception as exc:  # noqa: BLE001 - logged, counted, retried at the next check; the old index serves
            self.failures += 1
            self.error = exc
            if not self._closed:
                log.error("could not build the coverage of revision %s (%s: %s); still serving revision %s, "
                          "trying again at the next check", revision, type(exc).__name__, exc,
                          self._coverage.revision)
            return False
        finally:
            self._end(number)
        if self._closed:
            return True
        self.error = None
        if self._install(coverage, number):
            log.info("now serving the coverage of revision %s (built off the request path in %.2f s)",
                     coverage.revision, time.perf_counter() - started)
        return True

    def _begin(self, revision: str | None) -> int:
        with self._lock:
            self._started += 1
            self._building[self._started] = revision
            return self._started

    def _end(self, number: int) -> None:
        with self._lock:
            self._building.pop(number, None)

    def _install(self, coverage: Coverage, number: int) -> bool:
        """Serve ``coverage`` unless a build started after it has been installed already (that one read
        the store later, so its content is as new or newer). One assignment: requests see old or new."""
        with self._lock:
            if number < self._installed:
                return False
            self._installed = number
            self._coverage = coverage
            self.swaps += 1
            return True
