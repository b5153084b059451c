"""OGC API Features under /ogc (issue #14 §4), on both store backends.

The answers are checked against the store itself (feature counts, codes, a bbox computed with shapely,
incidents by their report time), the role rules against ``gridmap.access``, and the service as a whole with
real clients: GDAL's OAPIF driver (``ogrinfo``/``ogr2ogr`` from Debian's gdal-bin) and OWSLib, each against a
real ``gridmap serve`` process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
import shapely.geometry
from fastapi.testclient import TestClient
from servers import serving
from stores import open_test_store, store_settings

from gridmap import auth
from gridmap.access import (
    OGC_PUBLIC_COLLECTIONS,
    OGC_SIGNED_IN_COLLECTIONS,
    PLANNER_INCIDENT_FIELDS,
    is_sensitive,
    round_position,
)
from gridmap.api import create_app
from gridmap.ogc.features import CONFORMANCE, CRS84, MAX_LIMIT
from gridmap.store.base import IncidentQuery

ADMIN_TOKEN = "ogc-admin-token"
LAYER_COLLECTIONS = ("regions", "grids", "stations", "roads", "buildings", "precincts", "units")
"""Collections served from a package layer (feature id = the layer's ``code``)."""


@dataclass
class World:
    client: TestClient
    db: str | Path
    store: Any
    layers: dict[str, gpd.GeoDataFrame]
    incidents: list[dict[str, Any]]
    headers: dict[str, dict[str, str]]
    worker_grid: str


@pytest.fixture(scope="module")
def world(sample_db: str | Path, copy_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    db = copy_store(sample_db, tmp_path_factory.mktemp("ogc"), "ogc.gpkg")
    store = open_test_store(db)
    layers = {name: store.read_layer(name) for name in (*LAYER_COLLECTIONS, "workers")}
    workers = layers["workers"]
    worker = workers[workers["grid_code"] != ""].sort_values("code").iloc[0]
    headers = {"public": {}, "admin": {"Authorization": f"Bearer {ADMIN_TOKEN}"}}
    headers["worker"] = {"Authorization": f"Bearer {auth.create_token(store, role='worker', worker_code=worker['code'])[1]}"}
    for role in ("planner", "dispatcher"):
        headers[role] = {"Authorization": f"Bearer {auth.create_token(store, role=role)[1]}"}
    incidents, _ = store.query_incidents(IncidentQuery())
    settings = store_settings(db=db, load_sample_if_empty=False, admin_token=ADMIN_TOKEN)
    with TestClient(create_app(settings)) as client:
        yield World(client, db, store, layers, incidents, headers, worker["grid_code"])


def _get(w: World, path: str, role: str = "public", **params: Any) -> Any:
    return w.client.get(path, params=params, headers=w.headers[role])


def _walk(w: World, url: str, role: str) -> tuple[list[Any], list[dict[str, Any]]]:
    """Every feature by following ``next`` links from ``url``; also every page's document."""
    features, pages = [], []
    while url:
        answer = w.client.get(url, headers=w.headers[role])
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/geo+json")
        assert answer.headers["content-crs"] == f"<{CRS84}>"
        page = answer.json()
        pages.append(page)
        assert page["numberReturned"] == len(page["features"])
        features += page["features"]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    return features, pages


# landing page, conformance, the OpenAPI -------------------------------------------------------------

def test_landing_page_links_the_service_description_conformance_and_collections(world: World) -> None:
    landing = _get(world, "/ogc").json()
    rels = {link["rel"]: link for link in landing["links"]}
    assert {"self", "alternate", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    api = world.client.get(rels["service-desc"]["href"])
    assert api.status_code == 200 and api.json()["openapi"].startswith("3.0")
    items = api.json()["paths"]["/ogc/collections/{collectionId}/items"]["get"]
    limit = next(p for p in items["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100}
    assert world.client.get(rels["conformance"]["href"]).json()["conformsTo"] == list(CONFORMANCE)
    assert world.client.get(rels["data"]["href"]).status_code == 200


def test_conformance_declares_core_geojson_html_oas30_crs_and_queryables(world: World) -> None:
    classes = set(_get(world, "/ogc/conformance").json()["conformsTo"])
    base = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
    part3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
    assert classes == {base + c for c in ("core", "geojson", "html", "oas30")} | {
        "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs"} | {
        part3 + c for c in ("queryables", "queryables-query-parameters")}


def test_the_openapi_of_the_service_is_3_0_without_3_1_null_types(world: World) -> None:
    text = world.client.get("/ogc/api").text
    assert '"type":"null"' not in text.replace(" ", "")


# collections ----------------------------------------------------------------------------------------

def test_public_collections_are_the_public_layers_and_staff_get_every_layer(world: World) -> None:
    public = [c["id"] for c in _get(world, "/ogc/collections").json()["collections"]]
    assert public == list(OGC_PUBLIC_COLLECTIONS)
    for role in ("worker", "planner", "dispatcher", "admin"):
        ids = [c["id"] for c in _get(world, "/ogc/collections", role).json()["collections"]]
        assert ids == [*OGC_PUBLIC_COLLECTIONS, *OGC_SIGNED_IN_COLLECTIONS]
    assert set(LAYER_COLLECTIONS) | {"incidents"} == set(OGC_PUBLIC_COLLECTIONS) | set(OGC_SIGNED_IN_COLLECTIONS)


@pytest.mark.parametrize("name", LAYER_COLLECTIONS)
def test_a_collection_has_the_extent_of_its_layer_and_links_to_its_items(world: World, name: str) -> None:
    document = _get(world, f"/ogc/collections/{name}", "admin").json()
    assert document["id"] == name and document["title"] and document["itemType"] == "feature"
    assert document["extent"]["spatial"]["bbox"][0] == pytest.approx(list(world.layers[name].total_bounds))
    assert document["extent"]["spatial"]["crs"] == CRS84
    items = [link for link in document["links"] if link["rel"] == "items"]
    assert {link["type"] for link in items} == {"application/geo+json", "text/html"}


def test_the_incidents_collection_has_the_time_span_of_the_reports(world: World) -> None:
    document = _get(world, "/ogc/collections/incidents", "admin").json()
    times = pd.to_datetime([r["reported_at"] for r in world.incidents], utc=True, format="ISO8601")
    start, end = document["extent"]["temporal"]["interval"][0]
    assert pd.Timestamp(start) == times.min().floor("s") and pd.Timestamp(end) == times.max().floor("s")


# items: paging, bbox, datetime, properties -------------------------------------------------------------

@pytest.mark.parametrize("name", LAYER_COLLECTIONS)
def test_next_links_walk_every_feature_of_a_layer_once(world: World, name: str) -> None:
    features, pages = _walk(world, f"/ogc/collections/{name}/items?limit=37", "admin")
    codes = [f["id"] for f in features]
    assert len(codes) == len(set(codes))
    assert sorted(codes) == sorted(world.layers[name]["code"])
    assert {p["numberMatched"] for p in pages} == {len(world.layers[name])}
    assert all(f["properties"]["code"] == f["id"] for f in features)


def test_next_links_walk_every_incident_once_with_the_store_s_count(world: World) -> None:
    features, pages = _walk(world, "/ogc/collections/incidents/items?limit=1000", "admin")
    assert sorted(f["id"] for f in features) == sorted(r["id"] for r in world.incidents)
    assert pages[0]["numberMatched"] == len(world.incidents)


def test_the_default_page_and_an_offset_past_the_end(world: World) -> None:
    page = _get(world, "/ogc/collections/grids/items").json()
    assert page["numberReturned"] == min(100, len(world.layers["grids"]))
    beyond = _get(world, "/ogc/collections/grids/items", offset=len(world.layers["grids"]) + 5).json()
    assert beyond["features"] == [] and not any(link["rel"] == "next" for link in beyond["links"])
    assert any(link["rel"] == "prev" for link in beyond["links"])


@pytest.mark.parametrize("name", ["grids", "buildings", "roads"])
def test_bbox_selects_what_shapely_says_intersects(world: World, name: str) -> None:
    minx, miny, maxx, maxy = world.layers["grids"].total_bounds
    bbox = (minx + (maxx - minx) * 0.3, miny + (maxy - miny) * 0.4, minx + (maxx - minx) * 0.55, miny + (maxy - miny) * 0.6)
    layer = world.layers[name]
    expected = set(layer.loc[shapely.intersects(layer.geometry.values, shapely.box(*bbox)), "code"])
    features, pages = _walk(world, f"/ogc/collections/{name}/items?bbox={','.join(map(str, bbox))}&limit=50", "admin")
    assert 0 < len(expected) < len(layer)
    assert {f["id"] for f in features} == expected and pages[0]["numberMatched"] == len(expected)
    assert all("bbox=" in link["href"] for page in pages for link in page["links"] if link["rel"] == "next")


def test_datetime_selects_incidents_reported_in_the_interval(world: World) -> None:
    times = pd.to_datetime(pd.Series([r["reported_at"] for r in world.incidents]), utc=True, format="ISO8601")
    start, end = times.quantile(0.25).floor("D"), times.quantile(0.5).floor("D")
    expected = {r["id"] for r, t in zip(world.incidents, times) if start <= t < end + pd.Timedelta(days=1)}
    interval = f"{start.date()}/{end.date()}"
    features, _ = _walk(world, f"/ogc/collections/incidents/items?datetime={interval}&limit=2000", "admin")
    assert 0 < len(expected) < len(world.incidents)
    assert {f["id"] for f in features} == expected
    after = _get(world, "/ogc/collections/incidents/items", "admin", datetime=f"{end.isoformat()}/..", limit=1).json()
    assert after["numberMatched"] == int((times >= end).sum())


def test_a_property_filter_by_equality(world: World) -> None:
    grids = world.layers["grids"]
    community = min(grids["community_code"])
    features, _ = _walk(world, f"/ogc/collections/grids/items?community_code={community}", "public")
    assert {f["id"] for f in features} == set(grids.loc[grids["community_code"] == community, "code"])
    buildings = world.layers["buildings"]
    households = int(buildings["households"].iloc[0])
    found = _get(world, "/ogc/collections/buildings/items", "admin", households=households, limit=MAX_LIMIT).json()
    assert found["numberMatched"] == int((buildings["households"] == households).sum())


@pytest.mark.parametrize("name", LAYER_COLLECTIONS)
def test_queryables_are_a_json_schema_of_every_property_a_filter_may_name(world: World, name: str) -> None:
    collection = _get(world, f"/ogc/collections/{name}", "admin").json()
    [link] = [k for k in collection["links"] if k["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/queryables"]
    answer = world.client.get(link["href"], headers=world.headers["admin"])
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/schema+json")
    schema = answer.json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema" and schema["type"] == "object"
    feature = _get(world, f"/ogc/collections/{name}/items", "admin", limit=1).json()["features"][0]
    assert set(schema["properties"]) == set(feature["properties"])
    for prop, spec in schema["properties"].items():
        value = feature["properties"][prop]
        expected = {bool: "boolean", int: "integer", float: "number"}.get(type(value), "string")
        assert spec["type"] == expected or value is None, (prop, spec, value)


def test_the_public_reads_the_queryables_of_public_collections_only(world: World) -> None:
    assert _get(world, "/ogc/collections/grids/queryables").status_code == 200
    assert _get(world, "/ogc/collections/buildings/queryables").status_code == 401
    assert _get(world, "/ogc/collections/nothing/queryables", "admin").status_code == 404


# single features, errors ------------------------------------------------------------------------------

def test_a_feature_by_id_is_the_one_in_the_listing(world: World) -> None:
    listed = _get(world, "/ogc/collections/stations/items", limit=1, offset=3).json()["features"][0]
    answer = _get(world, f"/ogc/collections/stations/items/{listed['id']}")
    assert answer.status_code == 200 and answer.headers["content-crs"] == f"<{CRS84}>"
    feature = answer.json()
    assert feature["properties"] == listed["properties"] and feature["geometry"] == listed["geometry"]
    assert {"self", "alternate", "collection"} <= {link["rel"] for link in feature["links"]}
    incident = world.incidents[0]["id"]
    assert _get(world, f"/ogc/collections/incidents/items/{incident}", "admin").json()["id"] == incident


@pytest.mark.parametrize("path", ["/ogc/collections/nothing", "/ogc/collections/nothing/items",
                                  "/ogc/collections/grids/items/no-such-grid",
                                  "/ogc/collections/incidents/items/999999999"])
def test_unknown_collections_and_features_are_404(world: World, path: str) -> None:
    assert _get(world, path, "admin").status_code == 404


@pytest.mark.parametrize("params", [
    {"bbox": "110.7,35.1"}, {"bbox": "a,b,c,d"}, {"bbox": "110.8,35.2,110.7,35.1,0"}, {"bbox": "110,95,111,96"},
    {"bbox": "110.7,35.2,110.8,35.1"}, {"bbox": "nan,35.1,110.8,35.2"}, {"limit": "0"}, {"limit": "ten"},
    {"limit": "-5"}, {"offset": "-1"}, {"datetime": "yesterday"}, {"datetime": "2026-05-01/2026-04-01"},
    {"no_such_property": "1"}, {"f": "xml"}, {"crs": "http://www.opengis.net/def/crs/EPSG/0/32649"}, {"bbox-crs": "EPSG:3857"},
    {"bbox": "12331000,4180000,12330000,4190000", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/3857"},
    {"bbox": "-1e30,-1e30,1e30,1e30", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4546"},
])
def test_bad_query_parameters_are_400(world: World, params: dict[str, str]) -> None:
    answer = _get(world, "/ogc/collections/grids/items", **params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_parameter"


def test_a_limit_above_the_maximum_is_capped(world: World) -> None:
    page = _get(world, "/ogc/collections/buildings/items", "admin", limit=MAX_LIMIT * 10).json()
    assert page["numberReturned"] == min(MAX_LIMIT, len(world.layers["buildings"]))


def test_html_pages_for_people(world: World) -> None:
    for path in ("/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/collections/grids",
                 "/ogc/collections/grids/items", f"/ogc/collections/grids/items/{world.layers['grids']['code'].iloc[0]}"):
        answer = world.client.get(path, headers={"Accept": "text/html"})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html"), path
        assert "<script" not in answer.text
    page = _get(world, "/ogc/collections/grids/items", f="html", limit=3).text
    assert all(code in page for code in sorted(world.layers["grids"]["code"])[:3])


# CRS by reference (Part 2) --------------------------------------------------------------------------

EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


def _offered(w: World) -> list[str]:
    return _get(w, "/ogc/collections/grids").json()["crs"]


def _zone(w: World) -> str:
    """The offered Gauss–Krüger CRS's URI (whichever zone the server chose: the test below checks which)."""
    return next(u for u in _offered(w)[1:] if "Gauss-Kruger" in pyproj.CRS(f"EPSG:{u.removeprefix(EPSG)}").name)


def test_the_offered_crss_include_cgcs2000_and_the_county_s_gauss_kruger_zone(world: World) -> None:
    offered = _offered(world)
    assert offered[0] == CRS84 and _get(world, "/ogc/collections/grids").json()["storageCrs"] == CRS84
    assert {f"{EPSG}4326", f"{EPSG}4490", f"{EPSG}3857"} <= set(offered)
    zones = [pyproj.CRS(f"EPSG:{uri.removeprefix(EPSG)}") for uri in offered[1:]]
    central = round(float(world.layers["grids"].total_bounds[0::2].mean()) / 3) * 3
    assert [z.name for z in zones if "Gauss-Kruger" in z.name] == [f"CGCS2000 / 3-degree Gauss-Kruger CM {central}E"]


@pytest.mark.parametrize("name", ["grids", "stations", "roads"])
def test_answers_in_every_offered_crs_come_back_with_pyproj(world: World, name: str) -> None:
    plain = _get(world, f"/ogc/collections/{name}/items", limit=20).json()["features"]
    for uri in _offered(world)[1:]:
        answer = _get(world, f"/ogc/collections/{name}/items", limit=20, crs=uri)
        assert answer.headers["content-crs"] == f"<{uri}>"
        back = pyproj.Transformer.from_crs(pyproj.CRS(f"EPSG:{uri.removeprefix(EPSG)}"), "OGC:CRS84")
        for ours, theirs in zip(plain, answer.json()["features"]):
            moved = shapely.transform(shapely.geometry.shape(theirs["geometry"]),
                                      lambda c, t=back: np.column_stack(t.transform(c[:, 0], c[:, 1])))
            assert shapely.equals_exact(moved, shapely.geometry.shape(ours["geometry"]), tolerance=1e-7), uri


def test_axis_order_is_the_crs_s_own(world: World) -> None:
    station = world.layers["stations"].iloc[0]
    lon, lat = station.geometry.x, station.geometry.y
    def coords(uri: str) -> list[float]:
        return _get(world, f"/ogc/collections/stations/items/{station['code']}", crs=uri).json()["geometry"]["coordinates"]
    assert coords(f"{EPSG}4326") == pytest.approx([lat, lon]) and coords(f"{EPSG}4490") == pytest.approx([lat, lon])
    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(lon, lat)
    assert coords(f"{EPSG}3857") == pytest.approx([x, y])
    zone = _zone(world)
    easting, northing = pyproj.Transformer.from_crs("EPSG:4326", f"EPSG:{zone.removeprefix(EPSG)}",
                                                    always_xy=True).transform(lon, lat)
    assert coords(zone) == pytest.approx([northing, easting])


@pytest.mark.parametrize("code", [3857, 4326, "zone"])
def test_bbox_crs_selects_what_intersects_the_box_in_that_crs(world: World, code: int | str) -> None:
    uri = _zone(world) if code == "zone" else f"{EPSG}{code}"
    epsg = int(uri.removeprefix(EPSG))
    layer = world.layers["buildings"].to_crs(epsg)  # geopandas: x east (or lon), y north (or lat)
    minx, miny, maxx, maxy = layer.total_bounds
    box = (minx + (maxx - minx) * 0.3, miny + (maxy - miny) * 0.3, minx + (maxx - minx) * 0.6, miny + (maxy - miny) * 0.5)
    expected = set(layer.loc[shapely.intersects(layer.geometry.values, shapely.box(*box)), "code"])
    first_axis_north = pyproj.CRS(f"EPSG:{epsg}").axis_info[0].direction == "north"
    bbox = (box[1], box[0], box[3], box[2]) if first_axis_north else box
    page = _get(world, "/ogc/collections/buildings/items", "admin", limit=MAX_LIMIT, bbox=",".join(map(str, bbox)),
                **{"bbox-crs": uri}).json()
    assert 0 < len(expected) < len(layer)
    assert {f["id"] for f in page["features"]} == expected


def test_a_bbox_of_no_area_in_a_projected_crs_is_a_line_or_a_point(world: World) -> None:
    station = world.layers["stations"].iloc[0]
    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(station.geometry.x,
                                                                                          station.geometry.y)
    page = _get(world, "/ogc/collections/stations/items", bbox=f"{x},{y},{x},{y}", **{"bbox-crs": f"{EPSG}3857"})
    assert page.status_code == 200, page.text  # a point round-tripped through pyproj may miss by a hair
    assert page.json()["numberMatched"] <= 1


# who may see what -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", OGC_SIGNED_IN_COLLECTIONS)
def test_the_public_cannot_read_signed_in_collections(world: World, name: str) -> None:
    for path in (f"/ogc/collections/{name}", f"/ogc/collections/{name}/items", f"/ogc/collections/{name}/items/1"):
        assert _get(world, path).status_code == 401


def test_grids_carry_the_workers_public_contacts_as_the_public_map_shows(world: World) -> None:
    grid = world.worker_grid
    feature = _get(world, f"/ogc/collections/grids/items/{grid}").json()
    workers = world.layers["workers"]
    for _, worker in workers[workers["grid_code"] == grid].iterrows():
        assert f"{worker['name']}（{worker['role']} {worker['phone']}）" in feature["properties"]["workers"]


def test_a_worker_reads_only_the_incidents_of_their_grid(world: World) -> None:
    features, _ = _walk(world, "/ogc/collections/incidents/items?limit=1000", "worker")
    assert {f["id"] for f in features} == {r["id"] for r in world.incidents if r["grid_code"] == world.worker_grid}
    other = next(r["id"] for r in world.incidents if r["grid_code"] != world.worker_grid)
    assert _get(world, f"/ogc/collections/incidents/items/{other}", "worker").status_code == 404


def test_a_planner_reads_anonymised_incident_points(world: World) -> None:
    features, _ = _walk(world, "/ogc/collections/incidents/items?limit=2000", "planner")
    assert len(features) == sum(1 for r in world.incidents if r["grid_code"])
    assert {k for f in features for k in f["properties"]} == set(PLANNER_INCIDENT_FIELDS)
    stored = {r["id"]: r for r in world.incidents}
    for f in features:
        record = stored[f["id"]]
        exact = (record["lon"], record["lat"])
        shown = round_position(*exact) if is_sensitive(record["category"]) else exact
        assert f["geometry"]["coordinates"] == pytest.approx(list(shown), abs=1e-9)


# real clients --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``gridmap serve`` over the module's store copy, with the module's admin token."""
    env = {**os.environ, "GRIDMAP_ADMIN_TOKEN": ADMIN_TOKEN}
    with serving(world.db, log=tmp_path_factory.mktemp("ogc-server") / "server.log", env=env) as url:
        yield url


def _gdal() -> str:
    found = shutil.which("ogr2ogr")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("GDAL's command line tools are not installed (.ci/run installs gdal-bin)")
        pytest.skip("GDAL's command line tools are not installed: apt-get install gdal-bin")
    return found


def _ogr2ogr(url: str, name: str, out: Path, *, header_file: Path | None = None) -> gpd.GeoDataFrame:
    env = {**os.environ, "GDAL_HTTP_HEADER_FILE": str(header_file)} if header_file else None
    done = subprocess.run([_gdal(), "-f", "GeoJSON", str(out), f"OAPIF:{url}/ogc", name],
                          check=False, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return gpd.read_file(out)


@pytest.mark.slow
def test_ogrinfo_lists_the_public_collections(world: World, server: str) -> None:
    _gdal()
    done = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{server}/ogc"], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = [line.split(":", 1)[1].split("(")[0].strip() for line in done.stdout.splitlines() if ":" in line]
    assert listed == list(OGC_PUBLIC_COLLECTIONS)


@pytest.mark.slow
@pytest.mark.parametrize("name", OGC_PUBLIC_COLLECTIONS)
def test_ogr2ogr_reads_every_public_collection_completely(world: World, server: str, name: str,
                                                          tmp_path: Path) -> None:
    read = _ogr2ogr(server, name, tmp_path / f"{name}.geojson")
    layer = world.layers[name]
    assert len(read) == len(layer)
    assert sorted(read["code"]) == sorted(layer["code"])
    ours = layer.set_index("code").geometry
    for code, geometry in zip(read["code"], read.geometry):
        assert shapely.equals_exact(geometry, ours[code], tolerance=1e-7)


@pytest.mark.slow
def test_ogr2ogr_reads_the_buildings_with_a_staff_token(world: World, server: str, tmp_path: Path) -> None:
    header = tmp_path / "headers.txt"
    header.write_text(f"Authorization: Bearer {ADMIN_TOKEN}\n")
    read = _ogr2ogr(server, "buildings", tmp_path / "buildings.geojson", header_file=header)
    assert sorted(read["code"]) == sorted(world.layers["buildings"]["code"])
    refused = subprocess.run([_gdal(), "-f", "GeoJSON", str(tmp_path / "refused.geojson"), f"OAPIF:{server}/ogc",
                              "buildings"], check=False, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0


@pytest.mark.slow
def test_ogr2ogr_filters_by_a_queryable(world: World, server: str, tmp_path: Path) -> None:
    grids = world.layers["grids"]
    community = min(grids["community_code"])
    out = tmp_path / "filtered.geojson"
    done = subprocess.run([_gdal(), "-f", "GeoJSON", "-where", f"community_code = '{community}'", str(out),
                           f"OAPIF:{server}/ogc", "grids"], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(gpd.read_file(out)["code"]) == sorted(grids.loc[grids["community_code"] == community, "code"])


def owslib_client(features_api: Any, url: str, headers: dict[str, str] | None = None) -> Any:
    """OWSLib's ``Features`` with headers of its own: OWSLib 0.35 updates its module-wide
    ``REQUEST_HEADERS`` in place, so a client given a token would lend it to every later client."""
    import owslib.ogcapi

    shared = owslib.ogcapi.REQUEST_HEADERS
    owslib.ogcapi.REQUEST_HEADERS = dict(shared)
    try:
        return features_api.Features(url, headers=headers)
    finally:
        owslib.ogcapi.REQUEST_HEADERS = shared


@pytest.mark.slow
def test_owslib_lists_collections_and_reads_items(world: World, server: str) -> None:
    features_api = pytest.importorskip("owslib.ogcapi.features")
    api = owslib_client(features_api, f"{server}/ogc")
    assert api.conformance()["conformsTo"] == list(CONFORMANCE)
    assert [c["id"] for c in api.collections()["collections"]] == list(OGC_PUBLIC_COLLECTIONS)
    assert api.collection("grids")["title"] == "网格"
    codes: list[str] = []
    offset = 0
    while True:
        page = api.collection_items("stations", limit=20, offset=offset)
        codes += [f["id"] for f in page["features"]]
        if not any(link["rel"] == "next" for link in page["links"]):
            break
        offset += 20
    assert sorted(codes) == sorted(world.layers["stations"]["code"])
    one = api.collection_item("stations", codes[0])
    assert one["id"] == codes[0]
    staff = owslib_client(features_api, f"{server}/ogc", {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert "buildings" in [c["id"] for c in staff.collections()["collections"]]
    page = staff.collection_items("buildings", bbox=list(world.layers["grids"].total_bounds), limit=5)
    assert page["numberMatched"] == len(world.layers["buildings"])
    assert json.loads(json.dumps(page))["numberReturned"] == 5
