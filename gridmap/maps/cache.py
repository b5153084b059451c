"""Rendered map pages, kept per data revision: a new store revision or incidents state drops the old pages.

The incidents state is ``gridmap.maps.incidents.incidents_version`` (the store's incident revision and
the next due time), read without reading any incident, so a page served from here costs two look-ups.

Keys come from requests (worker code, radius, scenario), so the pages kept are bounded: the
``MAX_PAGES`` most recently used, least recently used dropped first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

MAX_PAGES: Final = 32
"""Pages kept per app: a page is 1–5 MB of HTML, so this bounds the cache to about 100 MB."""

class MapCache:
    def __init__(self, size: int = MAX_PAGES) -> None:
        self.size = size
        self._pages: OrderedDict[tuple, str] = OrderedDict()
        self._revision: Hashable = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, revision: Hashable, build: Callable[[], str]) -> str:
        """The page for ``key`` at ``revision``, built once; pages of other revisions are dropped."""
        with self._lock:
            if revision != self._revision:
                self._pages.clear()
                self._revision = revision
            page = self._pages.get((key,))
            if page is not None:
                self._pages.move_to_end((key,))
                self.hits += 1
                return page
        page = build()
        with self._lock:
            self.misses += 1
            if revision == self._revision:
                self._pages[(key,)] = page
                while len(self._pages) > self.size:
                    self._pages.popitem(last=False)
        return page

    def __len__(self) -> int:
        return len(self._pages)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()
            self._revision = None
