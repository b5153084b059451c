"""The co-governance map layers (issue #13 §6) on the sample county with its year of co-governance, on
both stores, for every role:

- the needs, resources and projects tiles hold exactly the records the JSON API lists for the caller
  (a worker their own community's, planners, dispatchers and admins every community's; the public none:
  401), with the popup's fields only — no description of a need, no phone, a resource's text redacted;
- where they are drawn: a need at its point (or near its community's centre), a resource at its
  provider (a unit's site, a member's community), a project at its needs' points;
- patrol coverage: a worker's tiles hold their own buildings, and those not visited in the last 30 days
  are exactly the ``not_visited`` of ``GET /v1/workers/{code}/patrols``;
- the pages: the dispatcher's and planner's light pages name the layers in Chinese with their legends,
  the worker's page draws their community's needs and their buildings not visited, the public page none.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import mapbox_vector_tile
import numpy as np
import pyproj
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from stores import open_test_store, store_settings

from gridmap import auth
from gridmap.cogov.sample import load_cogov_sample
from gridmap.maps import cogov
from gridmap.settings import SAMPLE_PACKAGE, Settings

pytestmark = pytest.mark.skipif(not Settings().map_assets.is_dir(),
                                reason="map assets not installed (npm ci --prefix assets)")

ADMIN = "cogov-maps-admin"
HOME = "140821100014"  # 双塔社区
OTHER = "140821100010"  # 崇相西社区
PHONE = "13912345678"
OPEN = ("collected", "accepted", "in_project")
EXTENT = 4096
WORLD = 2 * 6378137.0 * math.pi
TO_WGS84 = pyproj.Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
TO_MERCATOR = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
GEOD = pyproj.Geod(ellps="WGS84")


# tiles, by our own tile math -------------------------------------------------------------------------

def mercator_box(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = WORLD / 2 ** z
    return -WORLD / 2 + x * size, WORLD / 2 - (y + 1) * size, -WORLD / 2 + (x + 1) * size, WORLD / 2 - y * size


def tiles_over(bounds: tuple[float, float, float, float], z: int) -> list[tuple[int, int, int]]:
    (x0, x1), (y0, y1) = TO_MERCATOR.transform([bounds[0], bounds[2]], [bounds[3], bounds[1]])
    size = WORLD / 2 ** z
    return [(z, x, y) for x in range(int((x0 + WORLD / 2) // size), int((x1 + WORLD / 2) // size) + 1)
            for y in range(int((WORLD / 2 - y0) // size), int((WORLD / 2 - y1) // size) + 1)]


def lonlat(feature: dict, z: int, x: int, y: int) -> tuple[float, float]:
    minx, miny, maxx, maxy = mercator_box(z, x, y)
    px, py = feature["geometry"]["coordinates"]
    return TO_WGS84.transform(minx + px / EXTENT * (maxx - minx), miny + py / EXTENT * (maxy - miny))


def drawn(client: TestClient, layer: str, headers: dict, bounds: Any, z: int) -> dict[Any, tuple[dict, tuple]]:
    """Every feature of ``layer`` in the tiles over ``bounds``, by id (code for footprints), with a position
    (points only; a feature inside the tile, not in its margin)."""
    out: dict[Any, tuple[dict, tuple]] = {}
    for tile in tiles_over(tuple(bounds), z):
        answer = client.get(f"/tiles/{layer}/{'/'.join(map(str, tile))}.pbf", headers=headers)
        assert answer.status_code == 200, answer.text
        for f in mapbox_vector_tile.decode(answer.content).get(layer, {}).get("features", []):
            p = f["properties"]
            key = p.get("code", p.get("id"))
            if f["geometry"]["type"] == "Point":
                px, py = f["geometry"]["coordinates"]
                if not (0 <= px <= EXTENT and 0 <= py <= EXTENT):
                    continue
                out[key] = (p, lonlat(f, *tile))
            else:
                out[key] = (p, ())
    return out


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


# the world -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    db = copy_store(sample_db, tmp_path_factory.mktemp("cogov_maps"), "county.gpkg")
    load_cogov_sample(open_test_store(db), SAMPLE_PACKAGE / "cogov.json")
    with TestClient(create_app_for(db)) as client:
        yield client.app


def create_app_for(db: Any) -> FastAPI:
    from gridmap.api import create_app

    return create_app(store_settings(db=db, load_sample_if_empty=False, admin_token=ADMIN))


@pytest.fixture(scope="module")
def client(app) -> TestClient:
    return TestClient(app)


@pytest.fixture(scope="module")
def coverage(app):
    return app.state.coverage.get()


@pytest.fixture(scope="module")
def cast(coverage) -> dict[str, str]:
    workers = coverage.workers
    home = workers[(workers["community_code"] == HOME) & (workers["grid_code"].fillna("") != "")].sort_values("code")
    return {"worker": home["code"].iat[0],
            "community": workers[(workers["community_code"] == HOME) & (workers["grid_code"].fillna("") == "")]["code"].iat[0],
            "outsider": workers[(workers["community_code"] == OTHER) & (workers["grid_code"].fillna("") != "")]["code"].iat[0]}


@pytest.fixture(scope="module")
def headers(app, cast) -> dict[str, dict[str, str]]:
    store = app.state.store
    made = {role: {"Authorization": f"Bearer {auth.create_token(store, role='worker', worker_code=code)[1]}"}
            for role, code in cast.items()}
    for role in ("planner", "dispatcher"):
        made[role] = {"Authorization": f"Bearer {auth.create_token(store, role=role)[1]}"}
    return {**made, "admin": {"Authorization": f"Bearer {ADMIN}"}, "public": {}}


def point_in(coverage, community: str) -> tuple[float, float]:
    """A building's point of a community (the needs recorded with a place are put there)."""
    grids = set(coverage.grids.loc[coverage.grids["community_code"] == community, "code"])
    at = int(np.flatnonzero(np.isin(coverage.building_grid, list(grids)))[3])
    return float(coverage.building_xy[at][0]), float(coverage.building_xy[at][1])


@pytest.fixture(scope="module")
def planted(client, coverage, headers) -> dict[str, Any]:
    """Needs with a point (one per community), and offers: a unit's, a member's with a phone in its text,
    one used up (quantity 0) and one past its end, which the map does not draw; a project of a placed need."""
    admin = headers["admin"]
    made: dict[str, Any] = {}
    for name, community in (("home", HOME), ("other", OTHER)):
        lon, lat = point_in(coverage, community)
        answer = client.post("/v1/needs", headers=admin, json={
            "community_code": community, "title": f"{name} 小区缺少健身器材", "category": "文体活动",
            "description": f"居民王某某（电话 {PHONE}）反映", "households": 30, "source": "居民提出", "lon": lon, "lat": lat})
        assert answer.status_code == 201, answer.text
        made[f"need_{name}"] = answer.json()
    member = client.get("/v1/members", params={"community": HOME, "limit": 1}, headers=admin).json()["items"][0]
    offers = {"unit": ({"kind": "unit", "code": "U026"}, "设备", "路灯 20 盏", 20, None),
              "member": ({"kind": "member", "code": member["code"]}, "专业服务", f"水电维修，联系 {PHONE}", None, None),
              "used_up": ({"kind": "unit", "code": "U026"}, "物资", "水泥", 0, None),
              "ended": ({"kind": "unit", "code": "U026"}, "场地", "会议室", None, "2020-01-01"),
              "other": ({"kind": "unit", "code": "U026"}, "资金", "两万元", None, None)}
    for name, (provider, category, text, quantity, until) in offers.items():
        body = {"provider": provider, "category": category, "description": text, "quantity": quantity,
                "communities": [OTHER if name == "other" else HOME], "available_until": until}
        answer = client.post("/v1/resources", headers=admin, json=body)
        assert answer.status_code == 201, answer.text
        made[f"resource_{name}"] = answer.json()
    made["member"] = member
    need = made["need_home"]
    version = client.get(f"/v1/needs/{need['id']}", headers=admin).headers["ETag"]
    assert client.post(f"/v1/needs/{need['id']}/transitions", json={"action": "accept"},
                       headers={**admin, "If-Match": version}).status_code == 200
    answer = client.post("/v1/projects", headers=admin, json={
        "title": "安装健身器材", "community_code": HOME, "needs": [need["id"]], "resources": [],
        "lead_unit_code": "U026"})
    assert answer.status_code == 201, answer.text
    made["project"] = answer.json()
    return made


def listing(client: TestClient, path: str, headers: dict, **params: Any) -> list[dict]:
    items, offset = [], 0
    while True:
        page = client.get(path, params={**params, "limit": 500, "offset": offset}, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        offset += 500
        if offset >= body["total"]:
            return items


ROLES = ("worker", "community", "outsider", "planner", "dispatcher", "admin")
NEED_FIELDS = {"id", "title", "category", "households", "status", "status_label", "community_code", "community_name",
               "grid_code", "place"}


# needs -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_needs_tiles_hold_what_the_listing_shows_the_role(client, coverage, headers, planted, role):
    features = drawn(client, "needs", headers[role], coverage.grids.total_bounds, 11)
    listed = {n["id"]: n for n in listing(client, "/v1/needs", headers[role])}
    assert set(features) == set(listed) and listed
    if role in ("worker", "community"):
        assert {n["community_code"] for n in listed.values()} == {HOME}
    for key, (props, _) in features.items():
        assert set(props) <= NEED_FIELDS, set(props) - NEED_FIELDS
        assert props["status"] == listed[key]["status"] and props["households"] == listed[key]["households"]
        assert PHONE not in json.dumps(props, ensure_ascii=False) and "王某某" not in json.dumps(props, ensure_ascii=False)


def test_a_need_is_drawn_at_its_point_or_near_its_communitys_centre(client, coverage, headers, planted):
    features = drawn(client, "needs", headers["dispatcher"], coverage.grids.total_bounds, 11)
    need = planted["need_home"]
    props, where = features[need["id"]]
    assert props["place"] == cogov.AT_POINT and metres(where, (need["lon"], need["lat"])) < 30  # tile units of z11: about 4 m
    for props, where in features.values():
        if props["place"] != cogov.NEAR_CENTRE:
            continue
        region = coverage.region(props["community_code"])["geometry"]
        centre = region.representative_point()
        assert metres(where, (centre.x, centre.y)) < cogov.SPREAD_M + 30


def test_the_public_gets_none_of_the_co_governance_layers(client):
    for layer in cogov.LAYERS:
        answer = client.get(f"/tiles/{layer}/14/13454/6552.pbf")
        assert answer.status_code == 401 and "登录" in answer.json()["detail"]
    page = client.get("/maps/public").text
    for name in ("居民需求", "共建资源", "为民办实事", "包楼院"):
        assert name not in page and json.dumps(name)[1:-1] not in page


# resources and projects ------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_resources_tiles_hold_the_offers_that_still_hold(client, coverage, headers, planted, role):
    features = drawn(client, "resources", headers[role], coverage.grids.total_bounds, 11)
    today = cogov.today().isoformat()
    expected = {r["id"] for r in listing(client, "/v1/resources", headers[role])
                if r["status"] == "active" and r.get("quantity") != 0
                and not (r.get("available_until") and r["available_until"] < today)}
    assert set(features) == expected
    assert planted["resource_used_up"]["id"] not in features and planted["resource_ended"]["id"] not in features
    assert (planted["resource_other"]["id"] in features) == (role not in ("worker", "community"))
    assert (planted["resource_unit"]["id"] in features) == (role != "outsider")
    for props, _ in features.values():
        assert PHONE not in json.dumps(props, ensure_ascii=False)


def test_a_resource_is_drawn_at_its_provider(client, coverage, headers, planted):
    features = drawn(client, "resources", headers["dispatcher"], coverage.grids.total_bounds, 11)
    units = coverage.units.set_index("code")
    unit = units.loc["U026"].geometry
    props, where = features[planted["resource_unit"]["id"]]
    assert props["provider"] == units.loc["U026", "name"] and props["quantity"] == 20
    assert metres(where, (unit.x, unit.y)) < cogov.SPREAD_M + 30  # the unit's offers share its site: a ring
    member = planted["member"]
    props, where = features[planted["resource_member"]["id"]]
    assert props["provider"] == f"在职党员 {member['code']}" and "****" in props["description"]
    centre = coverage.region(member["community_code"])["geometry"].representative_point()
    assert metres(where, (centre.x, centre.y)) < cogov.SPREAD_M + 30  # a person: their community, not a home


@pytest.mark.parametrize("role", ROLES)
def test_projects_tiles_hold_the_listed_projects_but_cancelled(client, coverage, headers, planted, role):
    features = drawn(client, "projects", headers[role], coverage.grids.total_bounds, 11)
    listed = [p for p in listing(client, "/v1/projects", headers[role]) if p["status"] != "cancelled"]
    assert set(features) == {p["id"] for p in listed}
    project = planted["project"]
    if role != "outsider":
        props, where = features[project["id"]]
        need = planted["need_home"]
        assert props["place"] == cogov.AT_POINT and metres(where, (need["lon"], need["lat"])) < 30
        assert props["status_label"] == "计划中" and props["lead_unit_name"]


# patrol coverage -------------------------------------------------------------------------------------

def _not_visited(client, headers, code: str) -> tuple[set[str], set[str]]:
    """(assigned, not visited in the 30 days up to today) from the JSON API."""
    until = (cogov.today() + timedelta(days=1)).isoformat()
    body = client.get(f"/v1/workers/{code}/patrols", params={"until": until}, headers=headers).json()
    assigned = client.get(f"/v1/workers/{code}/buildings", headers=headers).json()
    return {b["code"] for b in assigned["buildings"]}, {b["code"] for b in body["not_visited"]}


@pytest.mark.parametrize("role", ["worker", "community"])
def test_a_workers_patrol_coverage_is_their_own_buildings_as_the_patrols_api_counts(client, coverage, headers, cast,
                                                                                     role):
    code = cast[role]
    assigned, stale = _not_visited(client, headers[role], code)
    footprints = coverage.buildings[coverage.buildings["code"].isin(assigned)]
    features = drawn(client, "patrol_coverage", headers[role], footprints.total_bounds, 14)
    assert set(features) == assigned
    assert {c for c, (p, _) in features.items() if p["state"] != "visited"} == stale
    names = set(coverage.workers.loc[coverage.workers["code"] == code, "name"])
    assert all(set(p["workers"].split("、")) == names for p, _ in features.values())


def test_staff_see_every_workers_buildings_and_a_building_visited_by_one_of_its_workers(client, coverage, headers,
                                                                                      cast):
    assigned, _ = _not_visited(client, headers["dispatcher"], cast["worker"])
    footprints = coverage.buildings[coverage.buildings["code"].isin(assigned)]
    mine = drawn(client, "patrol_coverage", headers["worker"], footprints.total_bounds, 14)
    for role in ("dispatcher", "planner"):
        every = drawn(client, "patrol_coverage", headers[role], footprints.total_bounds, 14)
        assert assigned <= set(every)
        for code in assigned:  # visited by this worker: visited for staff too; staff may count a colleague's visit
            if mine[code][0]["state"] == "visited":
                assert every[code][0]["state"] == "visited"
            assert set(mine[code][0]["workers"].split("、")) <= set(every[code][0]["workers"].split("、"))
    outsider = drawn(client, "patrol_coverage", headers["outsider"], footprints.total_bounds, 14)
    assert not set(outsider) & assigned  # another community's worker: their own buildings only


def test_a_new_record_shows_on_the_next_tile(client, coverage, headers):
    lon, lat = point_in(coverage, HOME)
    bounds = (lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001)
    before = drawn(client, "needs", headers["worker"], bounds, 15)
    answer = client.post("/v1/needs", headers=headers["worker"], json={
        "community_code": HOME, "title": "楼道灯坏了", "category": "道路亮化", "households": 12, "source": "网格员走访",
        "lon": lon + 0.0002, "lat": lat})
    assert answer.status_code == 201, answer.text
    after = drawn(client, "needs", headers["worker"], bounds, 15)
    assert set(after) - set(before) == {answer.json()["id"]}


# the pages -------------------------------------------------------------------------------------------

def tile_specs(html: str) -> dict[str, dict]:
    match = re.search(r"GM\.tiles\([^,]+,\s*", html)
    options, _ = json.JSONDecoder().raw_decode(html, match.end())
    return {spec["id"]: spec for spec in options["layers"]}


def shows(html: str, text: str) -> bool:
    return text in html or json.dumps(text)[1:-1] in html


def test_the_dispatcher_page_names_the_layers_in_chinese_with_their_legends(client, headers):
    html = client.get("/maps/dispatcher", headers=headers["dispatcher"]).text
    specs = tile_specs(html)
    assert {"needs", "resources", "projects", "patrol_coverage"} <= set(specs)
    assert specs["needs"]["point"]["by"] == "status"
    assert set(specs["needs"]["point"]["colors"]) == {"collected", "accepted", "in_project", "done", "rejected"}
    assert specs["patrol_coverage"]["polygon"]["by"] == "state" and specs["patrol_coverage"]["min_zoom"] == 14
    for text in ("居民需求（需求清单）", "共建资源（资源清单）", "为民办实事项目（项目清单）", "包楼院走访（近 30 天）",
                 "已收集", "已受理", "已立项", "已办结", "不予受理", "计划中", "实施中", "超过 30 天未走访", "从未走访"):
        assert shows(html, text), text


def test_the_planner_page_has_needs_resources_and_projects_but_no_patrols(client, headers):
    html = client.get("/maps/planner", headers=headers["planner"]).text
    assert {"needs", "resources", "projects"} <= set(tile_specs(html)) and "patrol_coverage" not in tile_specs(html)
    embedded = client.get("/maps/planner?mode=embedded", headers=headers["planner"]).text
    assert shows(embedded, "居民需求（需求清单）") and not shows(embedded, "包楼院")


def test_the_workers_page_draws_their_communitys_needs_and_the_buildings_not_visited(client, headers, cast, planted):
    html = client.get(f"/maps/worker/{cast['worker']}", headers=headers["worker"]).text
    needs = listing(client, "/v1/needs", headers["worker"])
    open_ = sum(1 for n in needs if n["status"] in OPEN)
    assert shows(html, f"本社区居民需求（{len(needs)} 项，未办结 {open_} 项）")
    assert shows(html, planted["need_home"]["title"]) and not shows(html, planted["need_other"]["title"])
    assert not shows(html, PHONE) and not shows(html, "王某某")
    assigned, stale = _not_visited(client, headers["worker"], cast["worker"])
    assert shows(html, f"包楼院走访（近 30 天）：{len(assigned)} 栋，{len(stale)} 栋超过 30 天未走访")
    assert re.search(rf"超过 30 天未走访 <b style=\\?.color:#c0392b\\?.>{len(stale)}<\\?/b> 栋", html)  # the card
    staff = client.get(f"/maps/worker/{cast['worker']}", headers=headers["dispatcher"]).text
    assert shows(staff, f"{len(stale)} 栋超过 30 天未走访")  # the worker's page, whoever opens it


def test_the_embedded_dispatcher_page_draws_every_layer(client, headers):
    html = client.get("/maps/dispatcher?mode=embedded", headers=headers["dispatcher"]).text
    for text in ("居民需求（需求清单）", "共建资源（资源清单）", "为民办实事项目（项目清单）", "包楼院走访（近 30 天）"):
        assert shows(html, text), text
    assert not shows(html, PHONE)


def test_the_embedded_pages_count_what_the_listings_hold(client, headers):
    """The layer-control names of the embedded pages carry their counts: the listings' for the viewer."""
    for role, path in (("dispatcher", "/maps/dispatcher?mode=embedded"), ("planner", "/maps/planner?mode=embedded")):
        html = client.get(path, headers=headers[role]).text
        needs = listing(client, "/v1/needs", headers[role])
        open_ = sum(1 for n in needs if n["status"] in OPEN)
        assert shows(html, f"居民需求（需求清单）（{len(needs)} 项，未办结 {open_} 项）"), role
        projects = [p for p in listing(client, "/v1/projects", headers[role]) if p["status"] != "cancelled"]
        assert shows(html, f"为民办实事项目（项目清单）（{len(projects)} 个）"), role
