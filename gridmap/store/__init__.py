"""Storage backends behind one interface; ``open_store`` picks one from a location."""

from __future__ import annotations

from pathlib import Path

from gridmap.store.base import Store
from gridmap.store.geopackage import GeoPackageStore


def open_store(location: str | Path) -> Store:
    return GeoPackageStore(Path(location))


__all__ = ["GeoPackageStore", "Store", "open_store"]
