"""The current ``Coverage`` of a store, rebuilt when the store's content changes.

An import through the API rebuilds at once; an import by another process (the CLI, another
server worker) is noticed by a revision check at most every ``check_interval`` seconds, so a
running server never answers from a package that was replaced long ago.

Each revision's Coverage is kept on disk beside the store (``gridmap.coverage.cache``): a restart,
or another worker, with an unchanged store loads it instead of building it again.
"""

from __future__ import annotations

import threading
import time

from gridmap.coverage.cache import CoverageCache, load_or_build
from gridmap.coverage.service import Coverage
from gridmap.store.base import Store


class LiveCoverage:
    def __init__(self, store: Store, *, check_interval: float = 1.0, cache: bool = True) -> None:
        """``cache=False``: build from the store every time, never read or write the cache files."""
        self.store = store
        self.check_interval = check_interval
        self.cache = CoverageCache.for_store(store) if cache else None
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self._coverage = self._build(background=False)

    def _build(self, *, background: bool = True) -> Coverage:
        """At start the cache file is written before serving; later (a running server) in the background."""
        self._checked_at = time.monotonic()
        return load_or_build(self.store, self.cache, background=background)

    def get(self) -> Coverage:
        if time.monotonic() - self._checked_at < self.check_interval:
            return self._coverage
        with self._lock:
            if time.monotonic() - self._checked_at >= self.check_interval:
                self._checked_at = time.monotonic()
                if self.store.revision() != self._coverage.revision:
                    self._coverage = self._build()
        return self._coverage

    def reload(self) -> Coverage:
        with self._lock:
            self._coverage = self._build()
        return self._coverage
