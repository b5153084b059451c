"""Incident and grid tiles after writes (issue #10): the tile service applies the incidents written since its
last read to the prepared view instead of preparing every incident again, and the answer is exactly what a
fresh preparation gives:

- after reports and transitions through the API, every role's incident tiles (clusters and points with their
  popups) and grid tiles (open/overdue counts) decode to the same features as a fresh service's, and the
  prepared views hold the same rows, in the same order, as a full preparation;
- the update reads only the rows written lately (``store.incident_rows_read``), not the table;
- a worker's updated view holds exactly what ``incidents_for_map`` gives that worker.
"""

from __future__ import annotations

import math

import mapbox_vector_tile
import numpy as np
import pyproj
from incident_fixtures import ADMIN, act, api, incident_db, place, report, roles  # noqa: F401

from gridmap.access import incidents_for_map
from gridmap.auth import Actor
from gridmap.layers.tiles import TileService
from gridmap.maps.incidents import load_incidents
from gridmap.store.base import IncidentQuery

TO_MERCATOR = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
WORLD = 2 * 6378137.0 * math.pi


def tile_of(lon: float, lat: float, z: int) -> str:
    mx, my = TO_MERCATOR.transform(lon, lat)
    size = WORLD / 2 ** z
    return f"{z}/{int((mx + WORLD / 2) // size)}/{int((WORLD / 2 - my) // size)}"


def decoded(api, layer: str, tile: str, headers: dict) -> list[dict]:
    answer = api.get(f"/tiles/{layer}/{tile}.pbf", headers=headers)
    assert answer.status_code == 200, answer.text
    return mapbox_vector_tile.decode(answer.content).get(layer, {}).get("features", [])


def callers(roles) -> dict[str, dict]:
    return {"dispatcher": roles.dispatcher, "worker": roles.worker, "planner": roles.planner, "public": {}}


def every_tile(api, place, roles) -> dict[tuple[str, str, str], list[dict]]:
    """The incident tiles (clusters at 11 and 13, points at 16) and grid tiles around the place, per role."""
    out = {}
    for who, headers in callers(roles).items():
        for layer, z in (("incidents", 11), ("incidents", 13), ("incidents", 16), ("grids", 14), ("grids", 12)):
            tile = tile_of(place.lon, place.lat, z)
            out[(who, layer, tile)] = decoded(api, layer, tile, headers)
    return out


def reports(api, place) -> list[dict]:
    """New reports, one in a sensitive category the public does not see."""
    return [report(api, place), report(api, place, category="dispute.neighbour"), report(api, place)]


def transitions(api, roles, made: list[dict]) -> None:
    """Transitions of reports the views already hold, and of an incident of the sample history."""
    assert act(api, made[0], "accept", roles.dispatcher).status_code == 200
    assert act(api, made[0], "dispatch", roles.dispatcher).status_code == 200
    assert act(api, made[1], "cancel", roles.dispatcher, note="重复").status_code == 200
    listed = api.get("/v1/incidents", params={"status": "verified", "limit": 5}, headers=ADMIN).json()
    old = next(i for i in listed["items"] if i["id"] not in {m["id"] for m in made})
    assert act(api, old, "close", roles.dispatcher).status_code == 200


def writes(api, place, roles) -> list[dict]:
    made = reports(api, place)
    transitions(api, roles, made)
    return made


def same_views(ours: TileService, fresh: TileService) -> None:
    assert ours._views.keys() == fresh._views.keys()
    for key, mine in ours._views.items():
        full = fresh._views[key]
        assert mine.version == full.version, key
        assert mine.counts == full.counts, key
        assert np.array_equal(mine.ids, full.ids), key
        for name in ("mx", "my", "status", "category", "reported_ns", "open_", "overdue"):
            assert np.array_equal(getattr(mine.view, name), getattr(full.view, name)), (key, name)
        assert mine.view.columns.keys() == full.view.columns.keys(), key
        for name, column in mine.view.columns.items():
            assert column.tolist() == full.view.columns[name].tolist(), (key, name)


def test_after_writes_every_tile_equals_a_fresh_preparation(api, place, roles):
    service = api.app.state.tiles = TileService()
    every_tile(api, place, roles)  # prepared in full, once per view
    prepared = service.full_preparations
    assert prepared >= 3 and service.updates == 0
    made = reports(api, place)
    every_tile(api, place, roles)
    transitions(api, roles, made)
    after = every_tile(api, place, roles)
    assert service.full_preparations == prepared, "a write made a full preparation"
    assert service.updates >= prepared
    assert all(v.incremental for v in service._views.values())

    fresh = api.app.state.tiles = TileService()
    try:
        again = every_tile(api, place, roles)
        assert fresh.updates == 0
        assert after == again
        same_views(service, fresh)
    finally:
        api.app.state.tiles = service
    assert any(f["properties"].get("id") for (_, layer, _), got in after.items() if layer == "incidents"
               for f in got)


def test_the_update_reads_only_the_rows_written_lately(api, place, roles):
    service = api.app.state.tiles = TileService()
    tile = tile_of(place.lon, place.lat, 13)
    decoded(api, "incidents", tile, roles.dispatcher)
    store = api.app.state.store
    total = store.query_incidents(IncidentQuery(), limit=0)[1]
    report(api, place)
    before = store.incident_rows_read
    decoded(api, "incidents", tile, roles.dispatcher)
    read = store.incident_rows_read - before
    assert service.updates == 1 and service.full_preparations == 1
    assert 1 <= read <= 50 < total  # this module's writes of the last minutes, never the table


def test_a_workers_updated_view_holds_only_what_incidents_for_map_gives(api, place, roles):
    service = api.app.state.tiles = TileService()
    tile = tile_of(place.lon, place.lat, 16)
    decoded(api, "incidents", tile, roles.worker)
    decoded(api, "incidents", tile, roles.outsider)
    writes(api, place, roles)
    mine = {f["properties"]["id"] for f in decoded(api, "incidents", tile, roles.worker)}
    theirs = {f["properties"]["id"] for f in decoded(api, "incidents", tile, roles.outsider)}
    assert service.updates == 2 and service.full_preparations == 2
    coverage = api.app.state.coverage.get()
    store = api.app.state.store
    for code, got in ((roles.worker_code, mine), (roles.outsider_code, theirs)):
        views = [v for k, v in service._views.items() if code in repr(k)]
        assert len(views) == 1
        expected = incidents_for_map(load_incidents(store, coverage, now=views[0].now),
                                     actor=Actor("worker", worker_code=code), coverage=coverage)
        assert views[0].view.columns["id"].tolist() == expected["id"].tolist()
        assert got <= set(expected["id"])
    assert mine and not theirs & mine
