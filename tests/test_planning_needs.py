"""Siting that weighs demand by open needs (issue #13 §6): ``demand="needs"`` (the households of the needs
still asking: collected, accepted, in a project) and ``"households+needs"`` (a building's households plus
those), checked against computations made here:

- where needs count: at the building nearest a need's point (brute force over every building, distances
  in the coverage's metric CRS from pyproj), or shared over the community's buildings by households;
- that open needs pull a proposed site towards them: the optimum of a one-site maximal covering found by
  trying every candidate by hand, with and without the needs, and the site moving closer to them;
- through the API on the sample county with its year of co-governance: the total demand is the
  households in scope plus the open needs' households counted from ``GET /v1/needs``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyproj
import pytest
from fastapi.testclient import TestClient
from stores import open_test_store, store_settings

from gridmap import auth
from gridmap.api import create_app
from gridmap.cogov.sample import load_cogov_sample
from gridmap.coverage.service import Coverage
from gridmap.errors import InvalidInput
from gridmap.planning.scope import Area
from gridmap.planning.service import Planner, SitingRequest
from gridmap.settings import SAMPLE_PACKAGE

COMMUNITY = "140821100014"  # 双塔社区
OPEN = ("collected", "accepted", "in_project")


@pytest.fixture(scope="module")
def coverage(sample_layers, sample_db) -> Coverage:
    return Coverage.from_layers(sample_layers, revision=open_test_store(sample_db).revision())


@pytest.fixture(scope="module")
def planner(coverage: Coverage, sample_layers) -> Planner:
    return Planner(coverage, roads=sample_layers["roads"], candidates=sample_layers.get("candidates"))


def metric(coverage: Coverage, lonlat: np.ndarray) -> np.ndarray:
    """Positions in the coverage's metric CRS, by a transformer of our own."""
    forward = pyproj.Transformer.from_crs("EPSG:4326", coverage.crs, always_xy=True)
    x, y = forward.transform(lonlat[:, 0], lonlat[:, 1])
    return np.column_stack([x, y])


def building_communities(coverage: Coverage) -> np.ndarray:
    grid_community = dict(zip(coverage.grids["code"], coverage.grids["community_code"]))
    return np.array([grid_community.get(g) for g in coverage.building_grid], dtype=object)


def expected_needs(coverage: Coverage, needs: list[dict[str, Any]]) -> np.ndarray:
    """Open needs' households per building, computed without the planner: nearest building by brute force,
    or shared over the community's buildings in proportion to their households."""
    lonlat = np.asarray(coverage.building_xy, dtype=float)
    xy = metric(coverage, lonlat)
    households = coverage.buildings["households"].to_numpy(dtype=float)
    communities = building_communities(coverage)
    out = np.zeros(len(lonlat))
    for need in needs:
        if need["status"] not in OPEN:
            continue
        if need.get("lon") is not None:
            here = metric(coverage, np.array([[need["lon"], need["lat"]]]))[0]
            out[int(np.argmin(np.hypot(*(xy - here).T)))] += need["households"]
        else:
            mine = communities == need["community_code"]
            out[mine] += need["households"] * households[mine] / households[mine].sum()
    return out


def test_open_needs_count_at_the_nearest_building_or_over_their_community(planner, coverage) -> None:
    lonlat = np.asarray(coverage.building_xy, dtype=float)
    near = planner.to_lonlat(planner.building_xy[[10, 10, 200, 300]] + 3.0)
    needs = [
        {"status": "collected", "households": 40, "lon": near[0, 0], "lat": near[0, 1], "community_code": None},
        {"status": "in_project", "households": 5, "lon": near[1, 0], "lat": near[1, 1], "community_code": None},
        {"status": "done", "households": 900, "lon": near[2, 0], "lat": near[2, 1], "community_code": None},
        {"status": "rejected", "households": 900, "lon": near[3, 0], "lat": near[3, 1], "community_code": None},
        {"status": "accepted", "households": 124, "lon": None, "lat": None, "community_code": COMMUNITY},
    ]
    got = planner.demand("needs", needs=needs)
    assert got == pytest.approx(expected_needs(coverage, needs))
    assert got.sum() == pytest.approx(40 + 5 + 124)  # done and rejected needs weigh nothing
    both = planner.demand("households+needs", needs=needs)
    assert both == pytest.approx(coverage.buildings["households"].to_numpy(dtype=float) + got)
    assert len(lonlat) == len(got)


def test_units_must_agree_to_be_summed_and_needs_must_be_given(planner) -> None:
    with pytest.raises(InvalidInput, match="单位相同"):
        planner.demand("population+incidents", incidents=None)
    with pytest.raises(InvalidInput, match="需求清单"):
        planner.demand("households+needs")
    with pytest.raises(InvalidInput, match="未知的需求指标"):
        planner.demand("households+wishes", needs=[])


def _best_single_site(coverage: Coverage, weights: np.ndarray, scope_mask: np.ndarray,
                      sites_lonlat: np.ndarray, radius: float) -> tuple[float, int]:
    """Max covering with one new site, by trying each candidate: the uncovered weight within ``radius``."""
    buildings = metric(coverage, np.asarray(coverage.building_xy, dtype=float))[scope_mask]
    stations = metric(coverage, np.column_stack([coverage.stations.geometry.x, coverage.stations.geometry.y]))
    to_stations = np.hypot(buildings[:, None, 0] - stations[None, :, 0], buildings[:, None, 1] - stations[None, :, 1])
    uncovered = ~(to_stations <= radius).any(axis=1)
    sites = metric(coverage, sites_lonlat)
    reach = np.hypot(buildings[:, None, 0] - sites[None, :, 0], buildings[:, None, 1] - sites[None, :, 1]) <= radius
    gains = (weights[scope_mask][:, None] * (reach & uncovered[:, None])).sum(axis=0)
    return float(gains.max()), int(np.argmax(gains))


def test_open_needs_move_a_proposed_site_towards_them(planner, coverage) -> None:
    radius = 300.0
    base = {"k": 1, "radius_m": radius, "metric": "euclidean", "candidates": "generated",
            "candidate_spacing_m": 150.0, "community": COMMUNITY}
    scope = planner.scope(Area.of(community=COMMUNITY))
    scope_mask = np.zeros(len(coverage.building_xy), dtype=bool)
    scope_mask[scope.buildings] = True
    assert (building_communities(coverage)[scope_mask] == COMMUNITY).all()
    sites = planner.to_lonlat(planner.candidates("generated", 150.0, scope).xy)
    households = coverage.buildings["households"].to_numpy(dtype=float)

    plain = planner.site(SitingRequest(**base, demand="households")).answer
    best, _ = _best_single_site(coverage, households, scope_mask, sites, radius)
    assert plain["optimal"] and plain["objective_value"] == pytest.approx(best)
    first = np.array([[plain["proposals"][0]["lon"], plain["proposals"][0]["lat"]]])

    # needs at the uncovered building of the community farthest from that site
    xy = metric(coverage, np.asarray(coverage.building_xy, dtype=float))
    stations = metric(coverage, np.column_stack([coverage.stations.geometry.x, coverage.stations.geometry.y]))
    uncovered = scope_mask & (np.hypot(xy[:, None, 0] - stations[None, :, 0],
                                       xy[:, None, 1] - stations[None, :, 1]).min(axis=1) > radius)
    away = np.hypot(*(xy - metric(coverage, first)[0]).T)
    target = int(np.flatnonzero(uncovered)[np.argmax(away[uncovered])])
    lon, lat = coverage.building_xy[target]
    needs = [{"status": status, "households": 150, "lon": float(lon), "lat": float(lat), "community_code": COMMUNITY}
             for status in ("collected", "accepted", "in_project")]
    needs.append({"status": "done", "households": 10_000, "lon": float(first[0, 0]), "lat": float(first[0, 1]),
                  "community_code": COMMUNITY})  # a need met weighs nothing, even where the first site was

    weighed = planner.site(SitingRequest(**base, demand="households+needs"), needs=needs).answer
    expected, chosen = _best_single_site(coverage, households + expected_needs(coverage, needs), scope_mask,
                                         sites, radius)
    assert weighed["optimal"] and weighed["objective_value"] == pytest.approx(expected)
    second = np.array([[weighed["proposals"][0]["lon"], weighed["proposals"][0]["lat"]]])
    to_target = lambda site: float(np.hypot(*(metric(coverage, site)[0] - xy[target])))
    assert to_target(second) < to_target(first) and to_target(second) <= radius
    assert to_target(sites[[chosen]]) <= radius  # the hand-made optimum reaches them too
    assert weighed["before"]["demand"] == pytest.approx(households[scope_mask].sum() + 450)


# through the API, on the sample county with its year of co-governance ----------------------------------

@pytest.fixture(scope="module")
def county(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = copy_store(sample_db, tmp_path_factory.mktemp("planning_needs"), "county.gpkg")
    load_cogov_sample(open_test_store(db), SAMPLE_PACKAGE / "cogov.json")
    with TestClient(create_app(store_settings(db=db, load_sample_if_empty=False, admin_token="needs-admin"))) as c:
        yield c


def bearer(client: TestClient, role: str, worker: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.create_token(client.app.state.store, role=role, worker_code=worker)[1]}"}


def test_the_stations_request_weighs_the_sample_countys_open_needs(county: TestClient) -> None:
    planner = bearer(county, "planner")
    needs, offset = [], 0
    while True:
        page = county.get("/v1/needs", params={"limit": 500, "offset": offset}, headers=planner).json()
        needs += page["items"]
        offset += 500
        if offset >= page["total"]:
            break
    open_households = sum(n["households"] for n in needs if n["status"] in OPEN)
    assert open_households > 0  # the heating of 圣慧小区/晟康小区 and the needs still being collected
    coverage = county.app.state.coverage.get()
    households = int(coverage.buildings["households"].sum())
    request = {"k": 2, "radius_m": 300, "metric": "euclidean", "demand": "households+needs"}
    answer = county.post("/v1/planning/stations", json=request, headers=planner)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["demand"] == "households+needs" and len(body["proposals"]) == 2
    assert body["before"]["demand"] == pytest.approx(households + open_households)
    alone = county.post("/v1/planning/stations", json={**request, "demand": "needs"}, headers=planner).json()
    assert alone["before"]["demand"] == pytest.approx(open_households)
    worker = coverage.workers[coverage.workers["grid_code"].fillna("") != ""]["code"].iat[0]
    assert county.post("/v1/planning/stations", json=request, headers=bearer(county, "worker", worker)).status_code == 403
    assert county.post("/v1/planning/stations", json=request).status_code == 401
    bad = county.post("/v1/planning/stations", json={**request, "demand": "population+incidents"}, headers=planner)
    assert bad.status_code == 422
