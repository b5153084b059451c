"""How long the store's write transactions take, told to whoever listens (the API's metrics).

Mixed into ``GeoPackageStore`` before the table mixins, it wraps their shared ``_transaction``:
every incident, token, session and scenario write is timed from asking for the write lock to the
commit, which is what a caller waits for. The store only calls plain functions; it knows nothing
of HTTP or Prometheus.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

WriteObserver = Callable[[float], None]
"""Called with the seconds one write transaction took (committed or rolled back)."""


class TimedWrites:
    """Needs a ``_transaction()`` further along the bases (``IncidentTables``)."""

    _write_observers: tuple[WriteObserver, ...] = ()

    def observe_writes(self, observer: WriteObserver) -> None:
        """Call ``observer`` after every write transaction of this store object."""
        self._write_observers = (*self._write_observers, observer)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        started = time.perf_counter()
        try:
            with super()._transaction() as conn:  # type: ignore[misc]
                yield conn
        finally:
            elapsed = time.perf_counter() - started
            for observer in self._write_observers:
                observer(elapsed)
