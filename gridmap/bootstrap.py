"""Opening the configured store, loading the sample county into a fresh one."""

from __future__ import annotations

import logging

from gridmap.importer import import_package
from gridmap.settings import Settings
from gridmap.store import Store, open_store

log = logging.getLogger(__name__)


def open_configured_store(settings: Settings, *, load_sample: bool | None = None) -> Store:
    """The store at ``settings.db``; an empty one gets the sample county unless told otherwise."""
    store = open_store(settings.db)
    wanted = settings.load_sample_if_empty if load_sample is None else load_sample
    if wanted and store.is_empty():
        report = import_package(store, settings.sample_package)
        log.info("loaded the sample package %s into %s (%s)", settings.sample_package, settings.db, report.counts)
    return store
