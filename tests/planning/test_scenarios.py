"""Planning runs need a planning role, are bounded, and are kept as scenarios nobody else overwrites.

Also: the caches keyed by what requests choose (planner intermediates, map pages) stay bounded.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point
from stores import store_settings

import gridmap.planning
from gridmap.api import create_app
from gridmap.maps.cache import MAX_PAGES, MapCache
from gridmap.planning.service import PLANNER_CACHE_ENTRIES, Planner
from gridmap.settings import Settings

RUN = {"k": 2, "radius_m": 300, "metric": "euclidean", "candidate_spacing_m": 250}
OTHER_RUN = {"k": 3, "radius_m": 500, "metric": "euclidean", "candidate_spacing_m": 300,
             "objective": "p_median"}
needs_assets = pytest.mark.skipif(not Settings().map_assets.is_dir(),
                                  reason="map assets not installed (npm ci --prefix assets)")
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def run(api, headers: dict, body: dict) -> dict:
    response = api.client.post("/v1/planning/stations", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# ------------------------------------------------------------------ who may plan


ENDPOINTS = [
    ("POST", "/v1/planning/stations", RUN),
    ("GET", "/v1/planning/coverage?metric=euclidean", None),
    ("GET", "/v1/planning/scenarios", None),
]


@pytest.mark.parametrize("method, path, body", ENDPOINTS)
def test_the_public_gets_401_and_a_worker_403(planning_api, method, path, body) -> None:
    public = planning_api.client.request(method, path, json=body)
    assert public.status_code == 401 and CHINESE.search(public.json()["detail"])
    worker = planning_api.client.request(method, path, json=body, headers=planning_api.worker)
    assert worker.status_code == 403 and worker.json()["error"] == "forbidden"


@pytest.mark.parametrize("role", ["planner", "dispatcher", "admin"])
def test_planners_dispatchers_and_admins_may_plan(planning_api, role) -> None:
    headers = getattr(planning_api, role)
    coverage = planning_api.client.get("/v1/planning/coverage?metric=euclidean", headers=headers)
    assert coverage.status_code == 200
    assert run(planning_api, headers, RUN)["scenario"]["id"] > 0


def test_a_scenario_is_for_planning_roles_only(planning_api) -> None:
    scenario = run(planning_api, planning_api.planner, RUN)["scenario"]
    path = f"/v1/planning/scenarios/{scenario['id']}"
    assert planning_api.client.get(path).status_code == 401
    assert planning_api.client.get(path, headers=planning_api.worker).status_code == 403
    assert planning_api.client.get(path, headers=planning_api.dispatcher).status_code == 200


# ------------------------------------------------------------------ bounds


@pytest.mark.parametrize("change, field", [
    ({"k": 101}, "k"),
    ({"k": 0}, "k"),
    ({"time_limit_s": 61}, "time_limit_s"),
    ({"time_limit_s": 0}, "time_limit_s"),
    ({"time_limit_s": 600}, "time_limit_s"),
    ({"candidate_spacing_m": 10}, "candidate_spacing_m"),
    ({"candidate_spacing_m": 5000}, "candidate_spacing_m"),
    ({"name": "方案" * 51}, "name"),
])
def test_out_of_bounds_runs_are_refused_with_a_chinese_message(planning_api, change, field) -> None:
    before = planning_api.client.get("/v1/planning/scenarios", headers=planning_api.planner).json()["total"]
    response = planning_api.client.post("/v1/planning/stations", json={**RUN, **change},
                                        headers=planning_api.planner)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert field in detail and CHINESE.search(detail)
    after = planning_api.client.get("/v1/planning/scenarios", headers=planning_api.planner).json()["total"]
    assert after == before  # nothing saved


def test_the_largest_allowed_run_is_accepted(planning_api) -> None:
    body = {**RUN, "k": 100, "time_limit_s": 60, "candidate_spacing_m": 2000}
    answer = run(planning_api, planning_api.planner, body)
    assert answer["k"] == 100 and len(answer["proposals"]) <= 100


# ------------------------------------------------------------------ scenarios


def test_every_run_is_saved_with_who_when_parameters_and_result(planning_api) -> None:
    answer = run(planning_api, planning_api.planner, {**RUN, "name": "东片区两站"})
    scenario = answer["scenario"]
    assert scenario["name"] == "东片区两站" and scenario["map"] == f"/maps/planner?scenario={scenario['id']}"
    path = f"/v1/planning/scenarios/{scenario['id']}"
    saved = planning_api.client.get(path, headers=planning_api.planner).json()
    assert saved["id"] == scenario["id"] and saved["name"] == "东片区两站"
    assert saved["created_by"] == planning_api.planner_label
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", saved["created_at"])
    assert saved["revision"] == answer["revision"]
    assert {k: saved["parameters"][k] for k in RUN} == RUN
    assert saved["proposals"] == answer["proposals"]
    result = {k: v for k, v in answer.items() if k not in ("proposals", "scenario")}
    assert saved["summary"] == result


def test_an_unnamed_run_gets_a_name_that_says_what_it_was(planning_api) -> None:
    scenario = run(planning_api, planning_api.planner, RUN)["scenario"]
    assert scenario["name"] == "最大覆盖 · 2 站 · 300 米 · 直线"


def test_scenarios_list_newest_first_with_paging(planning_api) -> None:
    first = run(planning_api, planning_api.planner, RUN)["scenario"]["id"]
    second = run(planning_api, planning_api.other_planner, OTHER_RUN)["scenario"]["id"]
    listing = planning_api.client.get("/v1/planning/scenarios", params={"limit": 2},
                                      headers=planning_api.planner).json()
    assert [item["id"] for item in listing["items"]] == [second, first]
    assert listing["total"] >= 2
    newest = listing["items"][0]
    assert newest["created_by"] == planning_api.other_planner_label
    assert newest["parameters"]["objective"] == "p_median" and "proposals" not in newest
    assert newest["summary"]["objective"] == "p_median" and newest["summary"]["optimal"] is True
    assert newest["map"] == f"/maps/planner?scenario={second}"
    page = planning_api.client.get("/v1/planning/scenarios", params={"limit": 1, "offset": 1},
                                   headers=planning_api.planner).json()
    assert [item["id"] for item in page["items"]] == [first] and page["total"] == listing["total"]
    everything = planning_api.client.get("/v1/planning/scenarios", params={"limit": 200},
                                         headers=planning_api.planner).json()
    ids = [item["id"] for item in everything["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == min(everything["total"], 200)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"offset": -1}])
def test_bad_paging_is_422(planning_api, params) -> None:
    response = planning_api.client.get("/v1/planning/scenarios", params=params, headers=planning_api.planner)
    assert response.status_code == 422


def test_an_unknown_scenario_is_404(planning_api) -> None:
    response = planning_api.client.get("/v1/planning/scenarios/987654", headers=planning_api.planner)
    assert response.status_code == 404 and response.json()["detail"] == "规划方案 987654 不存在"


def test_a_scenario_exports_as_geojson_and_csv(planning_api) -> None:
    answer = run(planning_api, planning_api.planner, RUN)
    path = f"/v1/planning/scenarios/{answer['scenario']['id']}"
    geojson = planning_api.client.get(path, params={"format": "geojson"}, headers=planning_api.planner)
    assert geojson.headers["content-type"].startswith("application/geo+json")
    coordinates = [f["geometry"]["coordinates"] for f in geojson.json()["features"]]
    assert coordinates == [[p["lon"], p["lat"]] for p in answer["proposals"]]
    csv = planning_api.client.get(path, params={"format": "csv"}, headers=planning_api.planner)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.content.decode("utf-8-sig").count("\n") == 3  # a header and two sites


def test_exports_of_a_run_name_the_scenario_they_saved(planning_api) -> None:
    response = planning_api.client.post("/v1/planning/stations?format=csv", json=RUN,
                                        headers=planning_api.planner)
    scenario_id = int(response.headers["x-scenario-id"])
    assert planning_api.client.get(f"/v1/planning/scenarios/{scenario_id}",
                                   headers=planning_api.planner).status_code == 200


def test_scenarios_outlive_the_server(planning_api) -> None:
    scenario = run(planning_api, planning_api.planner, RUN)["scenario"]
    settings = store_settings(db=planning_api.db, load_sample_if_empty=False, admin_token="test-admin-token")
    with TestClient(create_app(settings)) as restarted:
        saved = restarted.get(f"/v1/planning/scenarios/{scenario['id']}", headers=planning_api.admin)
    assert saved.status_code == 200 and saved.json()["name"] == scenario["name"]


def test_no_process_wide_latest_proposals_remain(planning_api) -> None:
    assert not hasattr(gridmap.planning, "map_proposals")
    assert not hasattr(planning_api.client.app.state, "map_proposals")


# ------------------------------------------------------------------ the planner map


def _sites(answer: dict) -> set[str]:
    """How a proposed site appears in a page: its marker's ``[lat, lon]``."""
    return {f"[{p['lat']}, {p['lon']}]" for p in answer["proposals"]}


def _sites_on(html: str, sites: set[str]) -> list[bool]:
    return [site in html for site in sites]


@needs_assets
def test_the_planner_map_shows_the_scenario_its_link_names_and_nobody_replaces_it(planning_api) -> None:
    mine = run(planning_api, planning_api.planner, RUN)
    theirs = run(planning_api, planning_api.other_planner, OTHER_RUN)  # run later, by someone else
    get = planning_api.client.get
    page = get("/maps/planner", params={"scenario": mine["scenario"]["id"]}, headers=planning_api.planner)
    assert page.status_code == 200
    only_mine, only_theirs = _sites(mine) - _sites(theirs), _sites(theirs) - _sites(mine)
    assert only_mine and only_theirs
    assert all(_sites_on(page.text, _sites(mine))) and not any(_sites_on(page.text, only_theirs))
    assert "规划站点 1" in page.text
    other = get("/maps/planner", params={"scenario": theirs["scenario"]["id"]},
                headers=planning_api.planner).text
    assert all(_sites_on(other, _sites(theirs))) and not any(_sites_on(other, only_mine))


@needs_assets
def test_without_a_scenario_the_planner_map_shows_no_proposals(planning_api) -> None:
    answer = run(planning_api, planning_api.planner, RUN)
    page = planning_api.client.get("/maps/planner", headers=planning_api.planner)
    assert page.status_code == 200
    assert "规划站点" not in page.text and not any(_sites_on(page.text, _sites(answer)))


@needs_assets
def test_the_planner_map_of_an_unknown_scenario_is_404(planning_api) -> None:
    page = planning_api.client.get("/maps/planner", params={"scenario": 987654}, headers=planning_api.planner)
    assert page.status_code == 404 and page.json()["detail"] == "规划方案 987654 不存在"


# ------------------------------------------------------------------ bounded caches


def test_the_planner_cache_keeps_its_bound_under_many_radii(sample_coverage) -> None:
    xy = sample_coverage.building_xy[::40]
    layer = gpd.GeoDataFrame({"code": [f"C{i}" for i in range(len(xy))], "name": ["候选"] * len(xy)},
                             geometry=[Point(x, y) for x, y in xy], crs="EPSG:4326")
    planner = Planner(sample_coverage, roads=None, candidates=layer)
    cands = planner.candidates("layer")
    assert planner.candidates("layer") is cands
    for radius in np.linspace(100, 3000, PLANNER_CACHE_ENTRIES * 3):
        planner.reach(cands, "euclidean", float(radius))
        assert planner.cache_size() <= PLANNER_CACHE_ENTRIES
    assert planner.cache_size() == PLANNER_CACHE_ENTRIES
    last = planner.reach(cands, "euclidean", 3000.0)
    assert planner.reach(cands, "euclidean", 3000.0) is last  # the most recent entries are kept
    fresh = planner.reach(cands, "euclidean", 100.0)  # evicted long ago: computed again, the same
    assert (fresh != planner.reach(cands, "euclidean", 100.0)).nnz == 0


def test_the_map_cache_keeps_its_bound_under_many_pages() -> None:
    cache = MapCache()
    for radius in range(50, 50 + 3 * MAX_PAGES):
        cache.get(("planner", None, float(radius), None), "r1", lambda r=radius: f"page {r}")
        assert len(cache) <= MAX_PAGES
    assert len(cache) == MAX_PAGES
    built = []
    recent = ("planner", None, float(50 + 3 * MAX_PAGES - 1), None)
    assert cache.get(recent, "r1", lambda: built.append(1) or "again") == f"page {50 + 3 * MAX_PAGES - 1}"
    assert cache.get(("planner", None, 50.0, None), "r1", lambda: built.append(1) or "rebuilt") == "rebuilt"
    assert built == [1]


@needs_assets
def test_served_map_pages_go_through_the_bounded_cache(planning_api) -> None:
    """Each radius is a page of its own, kept in the app's cache of ``MAX_PAGES`` (bound tested above)."""
    cache = planning_api.client.app.state.map_cache
    assert isinstance(cache, MapCache) and cache.size == MAX_PAGES
    before = len(cache)
    for radius in (301, 302, 303):
        assert planning_api.client.get("/maps/planner", params={"radius": radius},
                                       headers=planning_api.planner).status_code == 200
    assert len(cache) == min(before + 3, MAX_PAGES)
