"""Answering from the grids in force on a day (``?at=YYYY-MM-DD``), and putting scheduled versions in force.

Today's version is the live index (``LiveCoverage``), kept in step with the store as before. An earlier
(or later) version gets an index of its own, built on the first question about one of its days from the
live layers with that version's grids and workers, and kept for the next ones: a few versions are asked
about at a time (last year's, the one before a redraw), and each costs what building the live index costs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from datetime import date
from typing import Final

from gridmap.coverage.live import LiveCoverage
from gridmap.coverage.service import Coverage
from gridmap.errors import GridmapError, InvalidInput
from gridmap.store.base import Store
from gridmap.versions.model import Version, in_force
from gridmap.versions.records import (
    ACTIVATION_CHECK_S,
    activate_due,
    kept_versions,
    layers_of_version,
    today_local,
)

log = logging.getLogger(__name__)

VERSION_CACHE_SIZE: Final = 3
"""Indexes of versions other than today's kept in memory (least recently asked about goes first)."""
VERSION_LIST_TTL_S: Final = 1.0
"""How long the list of versions (and which one is live) read from the store answers ``at`` questions
before it is read again: a version kept by another process is seen within this time."""


class VersionedCoverage:
    def __init__(self, store: Store, live: LiveCoverage) -> None:
        self.store = store
        self.live = live
        self.builds = 0
        """Indexes of other versions built (tests and /metrics see whether one was reused)."""
        self._cache: OrderedDict[tuple[str | None, int], Coverage] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listed: tuple[float, list[Version], int | None] | None = None

    def at(self, day: date) -> tuple[Coverage, Version | None]:
        """The index of the version in force on ``day`` and that version (None for a store whose grids
        were imported before versions were kept: its one layout answers for every day)."""
        versions, live_id = self._versions()
        version = in_force(versions, day)
        live = self.live.get()
        if version is None:
            if live_id is None:
                return live, None
            first = min(v.effective_from for v in versions)
            raise InvalidInput(f"{day.isoformat()} 早于最早的网格版本（自 {first.isoformat()} 起），没有当时的网格")
        if version.id == live_id:
            return live, version
        return self._index(live, version), version

    def _versions(self) -> tuple[list[Version], int | None]:
        listed = self._listed
        if listed is None or time.monotonic() - listed[0] > VERSION_LIST_TTL_S:
            listed = self._listed = (time.monotonic(), kept_versions(self.store), self.store.live_boundary_version())
        return listed[1], listed[2]

    def _index(self, live: Coverage, version: Version) -> Coverage:
        key = (live.revision, version.id)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        layers = layers_of_version(self.store, version.id, self.store.read_layers())
        built = Coverage.from_layers(layers, revision=f"{live.revision}@v{version.id}")
        with self._lock:
            self.builds += 1
            self._cache[key] = built
            while len(self._cache) > VERSION_CACHE_SIZE:
                self._cache.popitem(last=False)
        return built

    # scheduled versions ------------------------------------------------------------------------
    def activate(self, today: date | None = None) -> int | None:
        """Put the version in force today into the live layers (``records.activate_due``)."""
        number = activate_due(self.store, today or today_local())
        self._listed = None
        if number is not None:
            self.live.check_now()
        return number

    def start(self, interval_s: float = ACTIVATION_CHECK_S) -> None:
        """Check now and then every ``interval_s`` in a daemon thread; a store that is down is tried again."""
        self._safe_activate()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), name="gridmap-versions", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self._safe_activate()

    def _safe_activate(self) -> None:
        try:
            self.activate()
        except GridmapError as exc:
            log.warning("scheduled boundary versions not checked: %s", exc.message)
