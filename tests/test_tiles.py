"""Vector tiles (``GET /tiles/{layer}/{z}/{x}/{y}.pbf``) as a specification, on the sample county:

- a tile holds exactly the features that intersect its bounds (the bounds computed here with pyproj,
  the features found with geopandas), for grids, buildings, stations and incident points;
- the server's clusters count every incident once: all tiles of a zoom add up to the listing's total
  for the same filters (``GET /v1/incidents`` as a dispatcher);
- roles: a worker's incident tiles hold only their grids, the public's only public categories, rounded;
  buildings need a sign-in;
- ``gcj02=1`` moves every coordinate by the GCJ-02 offset.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pyproj
import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient
from stores import store_settings

from gridmap import auth
from gridmap.access import is_public_asset, is_sensitive
from gridmap.api import create_app
from gridmap.geo import wgs84_to_gcj02
from gridmap.incidents.categories import CATEGORIES
from gridmap.layers.tiles import MIN_ZOOM
from gridmap.maps.incidents import OPEN_STATUSES, load_incidents

ADMIN = "tiles-admin-token"
EXTENT = 4096
TO_WGS84 = pyproj.Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
TO_MERCATOR = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
WORLD = 2 * 6378137.0 * math.pi
"""Width of the web-mercator square in metres: tile sizes and origins follow from it (as mercantile does)."""


# independent tile math -------------------------------------------------------------------------------

def mercator_box(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = WORLD / 2 ** z
    return -WORLD / 2 + x * size, WORLD / 2 - (y + 1) * size, -WORLD / 2 + (x + 1) * size, WORLD / 2 - y * size


def tile_box(z: int, x: int, y: int) -> shapely.Polygon:
    minx, miny, maxx, maxy = mercator_box(z, x, y)
    (w, e), (s, n) = TO_WGS84.transform([minx, maxx], [miny, maxy])
    return shapely.box(w, s, e, n)


def tiles_over(bounds: np.ndarray, z: int) -> list[tuple[int, int, int]]:
    """Every tile of zoom ``z`` touching ``bounds`` (west, south, east, north)."""
    (x0, x1), (y0, y1) = TO_MERCATOR.transform([bounds[0], bounds[2]], [bounds[3], bounds[1]])
    size = WORLD / 2 ** z
    cols = range(int((x0 + WORLD / 2) // size), int((x1 + WORLD / 2) // size) + 1)
    rows = range(int((WORLD / 2 - y0) // size), int((WORLD / 2 - y1) // size) + 1)
    return [(z, x, y) for x in cols for y in rows]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    mx, my = TO_MERCATOR.transform(lon, lat)
    size = WORLD / 2 ** z
    return z, int((mx + WORLD / 2) // size), int((WORLD / 2 - my) // size)


def features(answer, layer: str) -> list[dict]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    return mapbox_vector_tile.decode(answer.content).get(layer, {}).get("features", [])


def lonlat(feature: dict, z: int, x: int, y: int) -> tuple[float, float]:
    """A point feature's position, back from tile units (y up, as decode gives it) to degrees."""
    minx, miny, maxx, maxy = mercator_box(z, x, y)
    px, py = feature["geometry"]["coordinates"]
    return TO_WGS84.transform(minx + px / EXTENT * (maxx - minx), miny + py / EXTENT * (maxy - miny))


# the app ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    db = copy_store(sample_db, tmp_path_factory.mktemp("tiles"), "sample.gpkg")
    with TestClient(create_app(store_settings(db=db, load_sample_if_empty=False, admin_token=ADMIN))) as client:
        yield client.app


@pytest.fixture(scope="module")
def client(app) -> TestClient:
    return TestClient(app)


@pytest.fixture(scope="module")
def coverage(app):
    return app.state.coverage.get()


@pytest.fixture(scope="module")
def incidents(app, coverage) -> gpd.GeoDataFrame:
    return load_incidents(app.state.store, coverage)


@pytest.fixture(scope="module")
def headers(app, coverage) -> dict[str, dict[str, str]]:
    workers = coverage.workers
    worker = workers[workers["grid_code"].fillna("") != ""].iloc[0]["code"]
    store = app.state.store
    bearer = lambda token: {"Authorization": f"Bearer {token}"}
    return {"dispatcher": bearer(auth.create_token(store, role="dispatcher")[1]),
            "worker": bearer(auth.create_token(store, role="worker", worker_code=worker)[1]),
            "planner": bearer(auth.create_token(store, role="planner")[1]),
            "public": {}, "worker_code": {"code": worker}}


def sample_tiles(bounds: np.ndarray, z: int, step: int) -> list[tuple[int, int, int]]:
    """Every ``step``-th tile over the county: edge tiles and middle ones, a handful per zoom."""
    return tiles_over(bounds, z)[::step]


# exactly the features that intersect the tile ---------------------------------------------------------

@pytest.mark.parametrize(("layer", "z", "step"), [
    ("grids", 12, 1), ("grids", 14, 3), ("grids", 16, 23),
    ("stations", 14, 2), ("buildings", 16, 17), ("buildings", 17, 61),
    ("regions", 11, 1), ("regions", 14, 2), ("precincts", 13, 1), ("units", 14, 1), ("coverage", 15, 3),
])
def test_a_tile_holds_exactly_the_features_that_intersect_it(client, coverage, headers, layer, z, step):
    frame = {"grids": coverage.grids, "stations": coverage.stations, "buildings": coverage.buildings,
             "regions": coverage.regions, "precincts": coverage.precincts, "units": coverage.units,
             "coverage": coverage.buildings}[layer]
    checked = 0
    for tile in sample_tiles(coverage.grids.total_bounds, z, step):
        expected = set(frame.loc[frame.intersects(tile_box(*tile)), "code"])
        got = [f["properties"]["code"] for f in features(
            client.get(f"/tiles/{layer}/{'/'.join(map(str, tile))}.pbf", headers=headers["dispatcher"]), layer)]
        assert len(got) == len(set(got)), "a feature twice in one tile"
        assert set(got) == expected, tile
        checked += len(expected)
    assert checked > 0


def test_buildings_only_from_street_zoom(client, coverage, headers):
    tile = tile_of(*coverage.building_xy[0], 15)
    assert features(client.get(f"/tiles/buildings/{'/'.join(map(str, tile))}.pbf", headers=headers["dispatcher"]),
                    "buildings") == []


@pytest.mark.parametrize("layer", sorted(MIN_ZOOM))
def test_each_layer_is_empty_below_its_zoom_and_drawn_from_it(client, coverage, headers, layer):
    """At a city's zoom a tile would hold thousands of grids: layers start at their MIN_ZOOM, while county and
    town outlines (and incident clusters) draw at every zoom."""
    lon, lat = coverage.building_xy[0]
    get = lambda z: features(client.get(
        f"/tiles/{layer}/{'/'.join(map(str, tile_of(lon, lat, z)))}.pbf", headers=headers["dispatcher"]), layer)
    assert get(MIN_ZOOM[layer] - 1) == []
    if layer != "units":  # a unit need not be in the first building's tile
        assert get(MIN_ZOOM[layer]) != []
    outer = features(client.get(f"/tiles/regions/{'/'.join(map(str, tile_of(lon, lat, 7)))}.pbf"), "regions")
    assert outer and {f["properties"]["level"] for f in outer} == {"county", "town"}


def test_grid_features_carry_what_the_popup_shows(client, coverage, headers):
    tile = tile_of(*coverage.grids.geometry.iloc[0].representative_point().coords[0], 14)
    got = features(client.get(f"/tiles/grids/{'/'.join(map(str, tile))}.pbf", headers=headers["dispatcher"]), "grids")
    first = {f["properties"]["code"]: f["properties"] for f in got}[coverage.grids["code"].iloc[0]]
    assert first["name"] == coverage.grids["name"].iloc[0]
    assert {"community", "households", "buildings", "open", "overdue"} <= set(first)


def test_incident_points_are_exactly_those_in_the_tile(client, incidents, headers):
    open_ = incidents[incidents["status"].isin(OPEN_STATUSES)]
    params = [("status", s) for s in sorted(OPEN_STATUSES)]
    checked = 0
    for tile in tiles_over(open_.total_bounds, 15)[::7]:
        expected = set(open_.loc[open_.intersects(tile_box(*tile)), "id"])
        got = features(client.get(f"/tiles/incidents/{'/'.join(map(str, tile))}.pbf", params=params,
                                  headers=headers["dispatcher"]), "incidents")
        assert {f["properties"]["id"] for f in got} == expected, tile
        checked += len(expected)
    assert checked > 0


# clusters add up to the listing's total ---------------------------------------------------------------

FILTERS = [
    [],
    [("status", s) for s in sorted(OPEN_STATUSES)],
    [("category", "sanitation"), ("category", "infra.streetlight")],
    [("status", "closed"), ("since", "2026-03-01"), ("until", "2026-06-01T00:00:00Z")],
]


def cluster_total(client, bounds, z: int, params, headers) -> int:
    total = 0
    for tile in tiles_over(bounds, z):
        for f in features(client.get(f"/tiles/incidents/{'/'.join(map(str, tile))}.pbf", params=params,
                                     headers=headers), "incidents"):
            assert f["geometry"]["type"] == "Point" and f["properties"]["count"] >= 1
            total += f["properties"]["count"]
    return total


@pytest.mark.parametrize("params", FILTERS, ids=["all", "open", "categories", "closed-in-period"])
@pytest.mark.parametrize("z", [11, 14])
def test_clusters_add_up_to_the_listing_total(client, incidents, headers, params, z):
    listing = client.get("/v1/incidents", params=[*params, ("limit", 1)], headers=headers["dispatcher"])
    assert listing.status_code == 200, listing.text
    total = listing.json()["total"]
    assert total > 0
    assert cluster_total(client, incidents.total_bounds, z, params, headers["dispatcher"]) == total


def test_filters_are_checked(client, headers):
    for bad in ({"status": "nope"}, {"category": "nope"}, {"since": "yesterday"}):
        assert client.get("/tiles/incidents/12/3358/1622.pbf", params=bad, headers=headers["dispatcher"]
                          ).status_code == 422


# roles ------------------------------------------------------------------------------------------------

def test_a_workers_incident_tiles_hold_only_their_grids(client, coverage, incidents, headers):
    code = headers["worker_code"]["code"]
    grid = coverage.workers.set_index("code").loc[code, "grid_code"]
    own = incidents[incidents["grid_code"] == grid]
    assert len(own) and len(own) < len(incidents)
    assert cluster_total(client, incidents.total_bounds, 12, [], headers["worker"]) == len(own)
    listing = client.get("/v1/incidents", params={"limit": 1}, headers=headers["worker"]).json()["total"]
    assert listing == len(own)
    seen = set()
    for tile in tiles_over(own.total_bounds, 16):
        seen |= {f["properties"]["grid"] for f in features(
            client.get(f"/tiles/incidents/{'/'.join(map(str, tile))}.pbf", headers=headers["worker"]), "incidents")}
    assert seen == {grid}


def test_public_tiles_only_public_categories_rounded(client, incidents, headers):
    public = incidents[~incidents["category"].map(is_sensitive).astype(bool)]
    assert 0 < len(public) < len(incidents)
    assert cluster_total(client, incidents.total_bounds, 12, [], headers["public"]) == len(public)
    names = {c.name: code for code, c in CATEGORIES.items()}
    tile = tile_of(*public.geometry.iloc[0].coords[0], 16)
    got = features(client.get(f"/tiles/incidents/{'/'.join(map(str, tile))}.pbf"), "incidents")
    assert got
    for f in got:
        category = names[f["properties"]["category"]]
        assert not is_sensitive(category)
        assert "assignee" not in f["properties"] and "due_at" not in f["properties"]
        if not is_public_asset(category):  # snapped to the centre of a 0.001° cell
            lon, lat = lonlat(f, *tile)
            assert abs((lon / 0.001) % 1 - 0.5) < 0.02 and abs((lat / 0.001) % 1 - 0.5) < 0.02


@pytest.mark.parametrize("layer", ["buildings", "precincts", "units", "coverage"])
def test_internal_layers_need_a_sign_in(client, coverage, headers, layer):
    tile = "/".join(map(str, tile_of(*coverage.building_xy[0], 16)))
    assert client.get(f"/tiles/{layer}/{tile}.pbf").status_code == 401
    assert client.get(f"/tiles/{layer}/{tile}.pbf", headers=headers["planner"]).status_code == 200
    assert client.get(f"/tiles/grids/{tile}.pbf").status_code == 200
    assert client.get(f"/tiles/regions/{tile}.pbf").status_code == 200


def test_coverage_tiles_carry_the_distance_to_the_nearest_station(client, coverage, headers):
    """The planner's buildings: straight-line distance in metres to the nearest station, computed here with
    geopandas in the local metric CRS, and the station's name; nothing below the coverage zoom."""
    metric = coverage.crs
    stations = coverage.stations.to_crs(metric)
    points = gpd.GeoSeries(gpd.points_from_xy(coverage.building_xy[:, 0], coverage.building_xy[:, 1]),
                           crs="EPSG:4326").to_crs(metric)
    tile = tile_of(*coverage.building_xy[0], 16)
    got = features(client.get(f"/tiles/coverage/{'/'.join(map(str, tile))}.pbf", headers=headers["planner"]),
                   "coverage")
    assert got
    position = {c: i for i, c in enumerate(coverage.buildings["code"])}
    for f in got:
        i = position[f["properties"]["code"]]
        distances = stations.distance(points.iloc[i])
        assert f["properties"]["distance_m"] == pytest.approx(distances.min(), abs=0.51)
        assert f["properties"]["station"] == stations["name"].iloc[int(np.argmin(distances.to_numpy()))]
    low = tile_of(*coverage.building_xy[0], 13)
    assert features(client.get(f"/tiles/coverage/{'/'.join(map(str, low))}.pbf", headers=headers["planner"]),
                    "coverage") == []


# GCJ-02 ------------------------------------------------------------------------------------------------

def test_gcj02_moves_coordinates_by_the_offset(client, coverage, headers):
    station = coverage.stations.iloc[0]
    lon, lat = station.geometry.x, station.geometry.y
    glon, glat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    assert abs(glon - lon) > 1e-4  # the offset here is hundreds of metres
    for params, (elon, elat) in (({}, (lon, lat)), ({"gcj02": 1}, (glon, glat)), ({"crs": "gcj02"}, (glon, glat))):
        tile = tile_of(elon, elat, 17)
        got = features(client.get(f"/tiles/stations/{'/'.join(map(str, tile))}.pbf", params=params,
                                  headers=headers["dispatcher"]), "stations")
        found = {f["properties"]["code"]: lonlat(f, *tile) for f in got}
        assert station["code"] in found, params
        x, y = found[station["code"]]
        assert abs(x - elon) < 3e-6 and abs(y - elat) < 3e-6  # a tile unit at z17 is about 0.3 m


# HTTP ------------------------------------------------------------------------------------------------

def test_etag_and_errors(client, coverage, headers):
    tile = "/".join(map(str, tile_of(*coverage.building_xy[0], 14)))
    first = client.get(f"/tiles/grids/{tile}.pbf", headers=headers["dispatcher"])
    again = client.get(f"/tiles/grids/{tile}.pbf", headers={**headers["dispatcher"],
                                                           "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    other = client.get(f"/tiles/grids/{tile}.pbf", headers=headers["worker"])
    assert other.headers["etag"] != first.headers["etag"]  # views never share a tile
    assert client.get("/tiles/grids/3/8/0.pbf").status_code == 404
    assert client.get("/tiles/grids/30/0/0.pbf").status_code == 422
    assert client.get("/tiles/roads/3/1/1.pbf").status_code == 422


def test_a_scenarios_sites_count_as_stations_in_coverage_tiles_and_the_planner_page(app, client, coverage, headers):
    """``scenario=``: the building farthest from any station gets a proposed site at its door; its tile then says
    0 m to that site, and the planner page counts the sites in."""
    from gridmap.layers.tiles import distance_targets

    distance, _ = distance_targets(coverage)
    far = int(np.argmax(distance))
    lon, lat = (float(v) for v in coverage.building_xy[far])
    proposal = {"name": "规划站点 1", "lon": lon, "lat": lat, "community": None, "grid": None, "nearest_station": None}
    scenario = app.state.store.insert_scenario({
        "name": "测试方案", "created_by": "test", "created_at": "2026-01-01T00:00:00Z", "revision": "r",
        "parameters": {}, "summary": {"radius_m": 500}, "proposals": [proposal]})
    tile = "/".join(map(str, tile_of(lon, lat, 16)))
    code = coverage.buildings["code"].iloc[far]
    before = {f["properties"]["code"]: f["properties"] for f in features(
        client.get(f"/tiles/coverage/{tile}.pbf", headers=headers["planner"]), "coverage")}[code]
    after = {f["properties"]["code"]: f["properties"] for f in features(
        client.get(f"/tiles/coverage/{tile}.pbf", params={"scenario": scenario}, headers=headers["planner"]),
        "coverage")}[code]
    assert before["distance_m"] == round(distance[far]) > 0
    assert after["distance_m"] == 0 and after["station"] == "规划站点 1"
    page = client.get("/maps/planner", params={"scenario": scenario}, headers=headers["planner"])
    assert page.status_code == 200 and "含规划站点" in page.text and f'"scenario":{scenario}' in page.text
    assert client.get("/tiles/coverage/16/0/0.pbf", params={"scenario": 999999},
                      headers=headers["planner"]).status_code == 404


def test_dispatchers_and_admins_share_one_prepared_view_of_the_incidents(app, client, coverage, headers):
    """Both see every incident: after a change, the first of them prepares the incidents, the other reads none."""
    report = {"category": "infra.streetlight", "description": "路灯不亮", "lon": 110.7693, "lat": 35.1425}
    assert client.post("/v1/incidents", json=report).status_code == 201  # a new incidents revision
    tile = "/".join(map(str, tile_of(110.7693, 35.1425, 13)))
    store = app.state.store
    read = store.incident_rows_read
    assert client.get(f"/tiles/incidents/{tile}.pbf", headers=headers["dispatcher"]).status_code == 200
    assert store.incident_rows_read > read
    read = store.incident_rows_read
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert client.get(f"/tiles/incidents/{tile}.pbf", headers=admin).status_code == 200
    assert client.get(f"/tiles/grids/{tile}.pbf", headers=admin).status_code == 200
    assert store.incident_rows_read == read
