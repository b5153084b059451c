"""Storage backends behind one interface; ``open_store`` picks one from a location."""

from __future__ import annotations

from pathlib import Path

from gridmap.store.base import Store
from gridmap.store.geopackage import GeoPackageStore
from gridmap.store.postgis import PostgisStore, is_database_url


def open_store(location: str | Path, *, secret: str | None = None, read: str | None = None,
               cache_dir: Path | None = None) -> Store:
    """A ``postgresql://`` URL opens the PostGIS store (server mode, needs ``secret``); anything else
    is the path of a GeoPackage store. ``secret``: the receipt secret (``GRIDMAP_SECRET``); for a
    GeoPackage, None keeps it in a key file beside the store. ``read``: a PostGIS read replica's URL;
    ``cache_dir``: where a PostGIS store's lookup index is cached (a GeoPackage's sits beside its file)."""
    if is_database_url(location):
        return PostgisStore(str(location), secret=secret, read_url=read, cache_dir=cache_dir)
    if read:
        raise ValueError("a read replica needs a PostGIS store (GRIDMAP_DB=postgresql://…)")
    return GeoPackageStore(Path(location), secret=secret)


__all__ = ["GeoPackageStore", "PostgisStore", "Store", "is_database_url", "open_store"]
