"""Opening the configured store, loading the sample county into a fresh one."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Final

from gridmap.cogov.sample import load_cogov_sample
from gridmap.coverage.cache import CoverageCache, load_or_build
from gridmap.importer import import_package
from gridmap.incidents.history import load_history
from gridmap.settings import Settings
from gridmap.store import Store, open_store

SAMPLE_EFFECTIVE_FROM: Final = date(2025, 1, 1)
"""The sample county's grids are its first boundary version, in force before its year of incidents."""
SAMPLE_LABEL: Final = "临猗县网格（样例）"

log = logging.getLogger(__name__)


def open_configured_store(settings: Settings, *, with_sample: bool | None = None) -> Store:
    """The store at ``settings.db``, upgraded if an earlier release wrote it (the receipt secret
    moves out of the GeoPackage); an empty one gets the sample county unless told otherwise."""
    store = open_store(settings.db, secret=settings.secret, read=settings.db_read, cache_dir=settings.cache_dir)
    if settings.server_mode or Path(settings.db).exists():
        store.migrate()
    wanted = settings.load_sample_if_empty if with_sample is None else with_sample
    if wanted and store.is_empty():
        load_sample(store, settings.sample_package, cogov=True)
    return store


def load_sample(store: Store, package: Path, *, cogov: bool = False) -> None:
    """The sample county: its data package, then its year of incidents (when the package has one), and
    with ``cogov`` its year of co-governance (``cogov.json``: registrations, needs, projects, activities,
    meetings, patrols). The served sample has it (``open_configured_store``); tests and benchmarks load
    the sample without it, as a baseline their own co-governance records are counted from.

    The Coverage built to place the incidents is cached beside the store, so the server that starts
    next (``gridmap serve`` loads the sample, then starts uvicorn) loads it instead of building it again.
    """
    report = import_package(store, package, effective_from=SAMPLE_EFFECTIVE_FROM, label=SAMPLE_LABEL, actor="sample")
    history = package / "incidents.csv"
    count = 0
    if history.exists():
        coverage = load_or_build(store, CoverageCache.for_store(store))
        count = load_history(store, coverage, history)
    log.info("loaded the sample package %s (%s) and %d incidents", package, report.counts, count)
    if cogov and (package / "cogov.json").exists():
        log.info("loaded the sample's co-governance records: %s", load_cogov_sample(store, package / "cogov.json"))
