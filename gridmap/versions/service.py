"""The versions API's work: the list of kept versions and the diff of two (``/v1/versions``)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date
from typing import Any, Final

from gridmap.errors import NotFound
from gridmap.store.base import Store
from gridmap.versions.diff import diff_geojson, diff_layers
from gridmap.versions.model import Version, in_force
from gridmap.versions.records import kept_versions, layers_of_version

DIFF_CACHE_SIZE: Final = 8
_diffs: OrderedDict[tuple[int, str | None, int, int], tuple[dict, dict]] = OrderedDict()
_lock = threading.Lock()


def list_versions(store: Store, today: date) -> dict[str, Any]:
    versions = kept_versions(store)
    live = store.live_boundary_version()
    current = in_force(versions, today)
    items = [v.to_dict(today=today, live=live) for v in versions]
    return {"items": items, "total": len(items), "live": live, "in_force_today": current.id if current else None,
            "today": today.isoformat()}


def _version(versions: list[Version], number: int) -> Version:
    for version in versions:
        if version.id == number:
            return version
    raise NotFound(f"没有编号为 {number} 的网格版本")


def diff(store: Store, a: int, b: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the JSON answer, its GeoJSON) of the changes from version ``a`` to version ``b``; kept per store
    revision, since buildings (whose moves it counts) change only by an import."""
    versions = kept_versions(store)
    va, vb = _version(versions, a), _version(versions, b)
    key = (id(store), store.revision(), a, b)
    with _lock:
        if key in _diffs:
            _diffs.move_to_end(key)
            return _diffs[key]
    buildings = store.read_layer("buildings")
    la, lb = layers_of_version(store, a, {}), layers_of_version(store, b, {})
    answer = {"from": va.to_dict(), "to": vb.to_dict(), **diff_layers(la, lb, buildings)}
    found = (answer, diff_geojson(la, lb, answer, buildings))
    with _lock:
        _diffs[key] = found
        while len(_diffs) > DIFF_CACHE_SIZE:
            _diffs.popitem(last=False)
    return found
