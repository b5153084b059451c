"""Storage backends behind one interface; ``open_store`` picks one from a location."""

from __future__ import annotations

from pathlib import Path

from gridmap.store.base import Store
from gridmap.store.geopackage import GeoPackageStore


def open_store(location: str | Path, *, secret: str | None = None) -> Store:
    """``secret``: the receipt secret (``GRIDMAP_SECRET``); None keeps it in a key file beside the store."""
    return GeoPackageStore(Path(location), secret=secret)


__all__ = ["GeoPackageStore", "Store", "open_store"]
