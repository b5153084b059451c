"""Siting and coverage scoped to a community, town, county or box (issue #10), checked three ways.

- Against an independent computation on a small scope: walking distances from networkx over the
  noded road lines (no tiles, no scope graph), the optimum by brute force over every choice of sites.
- Against a store that holds only the scope: one community's regions, grids and buildings (with
  every road and station, since a station across the edge still serves it). The same optimum means
  the scope let in no other demand and no other candidate sites.
- Against the old computation: tiled, scope-limited Dijkstra gives the very matrix the whole-graph
  blocks gave.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from gridmap.coverage.service import Coverage
from gridmap.errors import InvalidInput, NotFound
from gridmap.package import read_package
from gridmap.planning.scope import Area, parse_bbox
from gridmap.planning.service import Planner, SitingRequest

TOWN = "140821100"
COMMUNITY = "140821100014"  # 双塔社区
SCOPED_RUN = {"k": 2, "radius_m": 300, "metric": "network", "candidate_spacing_m": 150, "community": COMMUNITY}
GENERATOR = Path(__file__).resolve().parents[2] / "geodata" / "build_city.py"


# ------------------------------------------------------------------ shared helpers


def community_layers(layers: dict, planner: Planner, code: str) -> dict:
    """The layers of a store that holds one community: its regions, grids and buildings; every road and
    station (a station across the edge still serves it; a road across it is still walked)."""
    regions = layers["regions"]
    chain = {code}
    while True:
        parents = set(regions.loc[regions["code"].isin(chain), "parent_code"]) - {""} - chain
        if not parents:
            break
        chain |= parents
    mine = planner.building_community == code
    return {
        "regions": regions[regions["code"].isin(chain)],
        "grids": layers["grids"][layers["grids"]["community_code"] == code],
        "buildings": layers["buildings"][mine],
        "workers": layers["workers"][layers["workers"]["community_code"] == code],
        "stations": layers["stations"],
        "precincts": layers["precincts"],
        "roads": layers["roads"],
    }


def planner_of(layers: dict) -> Planner:
    coverage = Coverage(grids=layers["grids"], regions=layers["regions"], workers=layers["workers"],
                        stations=layers["stations"], precincts=layers["precincts"], buildings=layers["buildings"],
                        revision="scope-test")
    return Planner(coverage, roads=layers["roads"], candidates=layers.get("candidates"))


def headline(answer: dict) -> dict:
    """What two runs of the same problem must agree on (chosen sites may differ between equal optima)."""
    keys = ("households", "households_covered", "population", "population_covered", "buildings",
            "buildings_covered", "demand", "demand_covered")
    return {"objective_value": answer["objective_value"], "optimal": answer["optimal"],
            "candidates": answer["candidates"]["count"],
            "before": {k: answer["before"][k] for k in keys}, "after": {k: answer["after"][k] for k in keys}}


# ------------------------------------------------------------------ the scope's rule


@pytest.mark.parametrize("text", ["110.7,35.1,110.8", "a,b,c,d", "110.8,35.1,110.7,35.2", "110.7,95,110.8,96",
                                  "nan,35.1,110.8,35.2", "110.7,35.1,110.8,35.1"])
def test_a_bad_bbox_is_refused_with_a_chinese_message(text: str) -> None:
    with pytest.raises(InvalidInput, match="bbox"):
        parse_bbox(text)


def test_a_bbox_is_four_numbers_as_text_or_as_a_list() -> None:
    assert parse_bbox("110.7, 35.1,110.8,35.2") == parse_bbox([110.7, 35.1, 110.8, 35.2]) == (110.7, 35.1, 110.8, 35.2)


def test_one_region_at_a_time() -> None:
    with pytest.raises(InvalidInput, match="只能给出一个"):
        Area.of(community=COMMUNITY, town=TOWN)


def test_unknown_region_is_not_found_and_a_wrong_level_is_named(planner) -> None:
    with pytest.raises(NotFound, match="区域 140821999999 不存在"):
        planner.scope(Area.of(community="140821999999"))
    with pytest.raises(InvalidInput, match="town=140821100"):
        planner.scope(Area.of(community=TOWN))


def test_an_empty_scope_is_refused(planner) -> None:
    with pytest.raises(InvalidInput, match="没有楼栋"):
        planner.scope(Area.of(bbox=[100.0, 30.0, 100.1, 30.1]))
    with pytest.raises(InvalidInput, match="没有楼栋"):  # the community and the box do not meet
        planner.scope(Area.of(community=COMMUNITY, bbox=[110.70, 35.10, 110.71, 35.11]))


def test_a_scope_holds_the_buildings_grids_and_communities_of_its_region(planner) -> None:
    scope = planner.scope(Area.of(community=COMMUNITY))
    assert set(planner.building_community[scope.buildings]) == {COMMUNITY}
    assert scope.buildings.tolist() == np.flatnonzero(planner.building_community == COMMUNITY).tolist()
    grids = planner.coverage.grids
    assert set(grids["community_code"].to_numpy()[scope.grids]) == {COMMUNITY}
    assert [c for c, _ in scope.communities] == [COMMUNITY]
    town = planner.scope(Area.of(town=TOWN))
    assert len(town.buildings) == len(planner.building_xy) and len(town.communities) == 13


def test_a_box_keeps_the_buildings_whose_inside_point_is_in_it_edges_included(planner) -> None:
    lonlat = planner.building_lonlat
    edge = int(np.argsort(lonlat[:, 0])[int(0.7 * len(lonlat))])  # a building right on the box's east edge
    box = (float(np.quantile(lonlat[:, 0], 0.3)), float(min(np.quantile(lonlat[:, 1], 0.2), lonlat[edge, 1])),
           float(lonlat[edge, 0]), float(max(np.quantile(lonlat[:, 1], 0.8), lonlat[edge, 1])))
    scope = planner.scope(Area.of(bbox=box))
    inside = ((lonlat[:, 0] >= box[0]) & (lonlat[:, 0] <= box[2]) & (lonlat[:, 1] >= box[1]) &
              (lonlat[:, 1] <= box[3]))
    assert scope.buildings.tolist() == np.flatnonzero(inside).tolist() and edge in scope.buildings
    grids = planner.coverage.grids
    touching = grids.geometry.intersects(shapely.box(*box)).to_numpy()
    assert scope.grids.tolist() == np.flatnonzero(touching).tolist()


def test_candidates_of_a_scope_are_the_stores_candidates_inside_it(planner) -> None:
    everywhere = planner.candidates("generated", 150.0)
    for area in (Area.of(community=COMMUNITY), Area.of(bbox=[110.75, 35.13, 110.79, 35.16])):
        scope = planner.scope(area)
        mine = planner.candidates("generated", 150.0, scope)
        lonlat = planner.to_lonlat(everywhere.xy)
        community = planner._communities_of(planner._locate(lonlat))
        expected = everywhere.xy[scope.covers(lonlat, community)]
        np.testing.assert_array_equal(mine.xy, expected)  # the same sites, in the same order
        assert len(mine) > 10


# ------------------------------------------------------------------ distances: tiles and scope graphs


@pytest.mark.parametrize("limit", [300.0, 500.0, 835.0])
def test_tiled_distances_equal_whole_graph_blocks(planner, limit: float) -> None:
    cands = planner.candidates("generated", 150.0)
    graph = planner._graph(cands)
    tiled = graph.walk.from_points(graph.candidate_points(), graph.building_points(), limit=limit)
    blocks = graph.walk.from_points_dense(graph.candidate_points(), graph.building_points(), limit=limit)
    assert tiled.nnz == blocks.nnz > 0
    assert (tiled != blocks).nnz == 0  # the same pairs, the same values


@pytest.mark.parametrize("area", [{"community": COMMUNITY}, {"community": "140821100019"},
                                  {"bbox": [110.75, 35.13, 110.79, 35.16]}])
def test_a_scope_graph_gives_the_whole_networks_distances(planner, area) -> None:
    scope = planner.scope(Area.of(**area))
    cands = planner.candidates("generated", 150.0, scope)
    local = planner.reach(cands, "network", 500.0, scope)
    whole = planner._graph(cands)  # every road and station, the scope's candidates
    n = len(planner.building_xy)
    full = whole.walk.from_points_dense(whole.candidate_points(), scope.buildings, limit=500.0)
    assert whole.n_buildings == n and planner._graph(cands, scope).walk.n_nodes < whole.walk.n_nodes
    np.testing.assert_allclose(local.toarray(), full.toarray(), atol=1e-6)
    d_scope, i_scope = planner.station_distance("network", scope)
    d_all, i_all = planner.station_distance("network")
    np.testing.assert_allclose(d_scope, d_all[scope.buildings], atol=1e-6)
    assert (i_scope == i_all[scope.buildings]).all()


# ------------------------------------------------------------------ an independent computation on one community


def _independent_distances(sources: np.ndarray, targets: np.ndarray, roads: gpd.GeoSeries) -> np.ndarray:
    """Walking distances source × target with networkx over the noded road lines: a point walks straight
    to its nearest line, along it to either end (or straight to a point on the same line), on through
    the network. Nothing of gridmap's graph, tiles or scope graphs is used."""
    lines = shapely.get_parts(shapely.union_all(roads.values))
    graph = nx.Graph()
    ends = [(tuple(np.round(ln.coords[0], 2)), tuple(np.round(ln.coords[-1], 2))) for ln in lines]
    for (a, b), line in zip(ends, lines):
        if not graph.has_edge(a, b) or graph[a][b]["weight"] > line.length:
            graph.add_edge(a, b, weight=line.length)
    tree = shapely.STRtree(lines)

    def attach(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        points = shapely.points(xy)
        line = tree.query_nearest(points, all_matches=False)[1]
        return line, shapely.line_locate_point(lines[line], points), shapely.distance(points, lines[line])

    s_line, s_along, s_access = attach(sources)
    t_line, t_along, t_access = attach(targets)
    lengths = shapely.length(lines)
    nodes = list(graph.nodes)
    index = {node: i for i, node in enumerate(nodes)}
    apsp = np.full((len(nodes), len(nodes)), np.inf)
    for node, found in nx.all_pairs_dijkstra_path_length(graph, weight="weight"):
        for other, d in found.items():
            apsp[index[node], index[other]] = d
    end_a = np.array([index[e[0]] for e in ends])
    end_b = np.array([index[e[1]] for e in ends])
    # from each source to every node, then on to each target through its line's ends
    to_node = np.minimum(s_along[:, None] + apsp[end_a[s_line]], (lengths[s_line] - s_along)[:, None] +
                         apsp[end_b[s_line]])
    via = np.minimum(to_node[:, end_a[t_line]] + t_along[None], to_node[:, end_b[t_line]] +
                     (lengths[t_line] - t_along)[None])
    same = s_line[:, None] == t_line[None]
    via = np.where(same, np.minimum(via, np.abs(s_along[:, None] - t_along[None])), via)
    return (via + s_access[:, None] + t_access[None]).T  # rows: targets


@pytest.fixture(scope="module")
def one_community(planner, sample_layers):
    scope = planner.scope(Area.of(community=COMMUNITY))
    cands = planner.candidates("generated", 150.0, scope)
    roads = sample_layers["roads"].to_crs(planner.crs).geometry
    buildings = planner.building_xy[scope.buildings]
    to_sites = _independent_distances(cands.xy, buildings, roads)
    to_stations = _independent_distances(planner.station_xy, buildings, roads)
    return scope, cands, to_sites, to_stations


def test_scoped_walking_distances_equal_networkx(planner, one_community) -> None:
    scope, cands, to_sites, _ = one_community
    ours = planner.reach(cands, "network", 300.0, scope).toarray()
    near = np.abs(to_sites - 300.0) > 1e-3  # leave pairs right at the radius to rounding
    assert ((ours > 0) == (to_sites <= 300.0))[near].all()
    np.testing.assert_allclose(ours[ours > 0], to_sites[ours > 0], atol=0.01)


def test_scoped_coverage_report_equals_networkx_with_stations_across_the_edge(planner, one_community) -> None:
    scope, _, _, to_stations = one_community
    nearest = to_stations.min(axis=1)
    covered = nearest <= 300.0
    hh = planner.households[scope.buildings]
    report = planner.coverage_report(radius_m=300, metric="network", area=Area.of(community=COMMUNITY))
    assert report["total"]["households"] == hh.sum() and report["buildings"] == len(scope.buildings)
    assert report["total"]["households_covered"] == hh[covered].sum()
    assert [c["code"] for c in report["communities"]] == [COMMUNITY]
    assert {g["community_code"] for g in report["grids"]} == {COMMUNITY}
    # the boundary rule: stations outside the community count for the buildings they reach
    inside = planner.station_community == COMMUNITY
    serving = set(np.argmin(to_stations, axis=1)[covered])
    assert report["scope"]["stations_outside"] == len([s for s in serving if not inside[s]]) > 0
    assert report["stations"] == int(inside.sum())
    served_from_outside = covered & ~(to_stations[:, inside] <= 300.0).any(axis=1)
    assert hh[served_from_outside].sum() > 0


def test_scoped_max_coverage_equals_brute_force_on_networkx_distances(planner, one_community) -> None:
    scope, cands, to_sites, to_stations = one_community
    R, k = 300.0, 3
    w = planner.households[scope.buildings]
    covered = (to_stations <= R).any(axis=1)
    reach = (to_sites <= R) & ~covered[:, None]
    best = max(w[reach[:, list(c)].any(axis=1)].sum() for c in itertools.combinations(range(len(cands)), k))
    answer = planner.site(SitingRequest(k=k, radius_m=R, metric="network", candidates="generated",
                                        candidate_spacing_m=150.0, community=COMMUNITY)).answer
    assert answer["optimal"] and answer["objective_value"] == best
    assert answer["after"]["households_covered"] - answer["before"]["households_covered"] == best
    assert answer["candidates"]["count"] == len(cands) and len(cands) >= 20


# ------------------------------------------------------------------ the same optimum as a store of the scope alone


@pytest.fixture(scope="module")
def alone(planner, sample_layers):
    """Planners of stores holding one community each (built on demand, kept for the module)."""
    made: dict[str, Planner] = {}

    def get(code: str) -> Planner:
        if code not in made:
            made[code] = planner_of(community_layers(sample_layers, planner, code))
        return made[code]

    return get


@pytest.mark.parametrize("code", [COMMUNITY, "140821100010", "140821100019"])
@pytest.mark.parametrize("run", [
    {"objective": "max_coverage", "k": 2, "radius_m": 300},
    {"objective": "set_cover", "target_share": 0.9, "radius_m": 300},
    {"objective": "p_median", "k": 2},
])
def test_scoping_to_a_community_equals_a_store_of_that_community(planner, alone, code, run) -> None:
    base = {"metric": "network", "candidates": "generated", "candidate_spacing_m": 150.0, **run}
    scoped = planner.site(SitingRequest(**base, community=code)).answer
    theirs = alone(code).site(SitingRequest(**base)).answer
    assert headline(scoped) == headline(theirs)
    assert scoped["before"]["mean_distance_m"] == theirs["before"]["mean_distance_m"]
    assert scoped["after"]["mean_distance_m"] == pytest.approx(theirs["after"]["mean_distance_m"], abs=0.05)
    assert {p["community"]["code"] for p in scoped["proposals"]} <= {code}
    assert [c["code"] for c in scoped["communities"]] == [code]


def test_the_same_store_coverage_report_for_a_community(planner, alone) -> None:
    scoped = planner.coverage_report(radius_m=500, metric="network", area=Area.of(community=COMMUNITY))
    theirs = alone(COMMUNITY).coverage_report(radius_m=500, metric="network")
    for key in ("total", "presets", "communities", "grids"):
        assert scoped[key] == theirs[key], key


def test_scoping_to_the_whole_town_is_the_unscoped_answer(planner) -> None:
    base = SitingRequest(k=3, radius_m=300, metric="network", candidates="generated", candidate_spacing_m=150.0)
    whole = planner.site(base).answer
    town = planner.site(SitingRequest(**{**vars(base), "town": TOWN})).answer
    assert town["proposals"] == whole["proposals"] and town["before"] == whole["before"]
    assert town["after"] == whole["after"] and town["communities"] == whole["communities"]
    assert whole["scope"] is None and town["scope"]["region"]["name"] == "猗氏镇"


# ------------------------------------------------------------------ a city: one town of three is the sample town


def _generator() -> ModuleType:
    if "build_city" not in sys.modules:
        spec = importlib.util.spec_from_file_location("build_city", GENERATOR)
        module = importlib.util.module_from_spec(spec)
        sys.modules["build_city"] = module
        spec.loader.exec_module(module)
    return sys.modules["build_city"]


@pytest.fixture(scope="module")
def city_planner(tmp_path_factory) -> Planner:
    city = _generator().build_city(3, tmp_path_factory.mktemp("city") / "city", fmt="gpkg")
    return planner_of(read_package(city.out).layers)


@pytest.mark.parametrize("run", [{"objective": "max_coverage", "k": 5, "radius_m": 500},
                                 {"objective": "p_median", "k": 3}])
def test_a_town_of_a_city_has_the_answer_of_the_sample_town(city_planner, planner, run) -> None:
    """Copy 0 of the city is the sample town unchanged: scoped to it, the city answers what the sample
    does, with the other towns' buildings, sites and stations around it."""
    base = {"metric": "network", "candidates": "generated", "candidate_spacing_m": 100.0, **run}
    sample = planner.site(SitingRequest(**base)).answer
    city = city_planner.site(SitingRequest(**base, town=TOWN)).answer
    assert headline(city) == headline(sample)
    assert [(p["lon"], p["lat"]) for p in city["proposals"]] == [(p["lon"], p["lat"]) for p in sample["proposals"]]
    assert len(city_planner.building_xy) == 3 * len(planner.building_xy)


def test_a_town_scope_walks_a_graph_of_its_own_size(city_planner) -> None:
    """The work of a scoped run follows the scope: a town's graph, a town's sites (not the city's)."""
    scope = city_planner.scope(Area.of(town=TOWN))
    cands = city_planner.candidates("generated", 100.0, scope)
    town_graph = city_planner._graph(cands, scope).walk
    city_cands = city_planner.candidates("generated", 100.0)
    city_graph = city_planner._graph(city_cands).walk
    assert len(cands) < 0.4 * len(city_cands)
    assert town_graph.n_nodes < 0.45 * city_graph.n_nodes
    assert town_graph.n_segments < 0.6 * len(city_planner.network.seg_len)


# ------------------------------------------------------------------ p-median's cap


def test_p_median_is_exact_when_every_walk_is_within_the_cap(planner) -> None:
    from gridmap.planning import service

    answer = planner.site(SitingRequest(k=3, objective="p_median", metric="network", candidates="generated",
                                        candidate_spacing_m=150.0, community=COMMUNITY)).answer
    assert answer["distance_cap_m"] == service.P_MEDIAN_CAP_M and "note" not in answer
    d0, _ = planner.station_distance("network", planner.scope(Area.of(community=COMMUNITY)))
    assert d0.max() < service.P_MEDIAN_CAP_M  # no walk reaches the cap: the exact p-median


def test_p_median_without_stations_uses_the_cap(sample_layers, planner) -> None:
    layers = community_layers(sample_layers, planner, COMMUNITY)
    layers["stations"] = layers["stations"].iloc[:0]
    bare = planner_of(layers)
    answer = bare.site(SitingRequest(k=2, objective="p_median", metric="euclidean", candidates="generated",
                                     candidate_spacing_m=150.0)).answer
    assert answer["optimal"] and "2000 米" in answer["note"]
    assert answer["objective_value"] < 2000 and answer["after"]["mean_distance_m"] < 2000


# ------------------------------------------------------------------ through the API and the command line


def test_a_scoped_run_through_the_api_is_saved_with_its_scope(planning_api, planner) -> None:
    response = planning_api.client.post("/v1/planning/stations", json=SCOPED_RUN, headers=planning_api.planner)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"]["region"] == {"code": COMMUNITY, "name": "双塔社区", "level": "community"}
    assert body["scope"]["bbox"] is None and body["scope"]["buildings"] > 0
    assert {p["community"]["code"] for p in body["proposals"]} == {COMMUNITY}
    assert [c["code"] for c in body["communities"]] == [COMMUNITY]
    assert body["scenario"]["name"] == "最大覆盖 · 2 站 · 300 米 · 步行 · 双塔社区"
    saved = planning_api.client.get(f"/v1/planning/scenarios/{body['scenario']['id']}",
                                    headers=planning_api.planner).json()
    assert saved["parameters"]["community"] == COMMUNITY and saved["summary"]["scope"] == body["scope"]
    direct = planner.site(SitingRequest(**{k: v for k, v in SCOPED_RUN.items()})).answer
    assert headline(body) == headline(direct)


def test_a_region_and_a_box_together_take_what_both_hold(planning_api, planner) -> None:
    box = [110.755, 35.125, 110.775, 35.16]
    body = planning_api.client.post("/v1/planning/stations", json={**SCOPED_RUN, "bbox": box},
                                    headers=planning_api.planner).json()
    scope = planner.scope(Area.of(community=COMMUNITY, bbox=box))
    assert body["scope"]["bbox"] == box and body["scope"]["buildings"] == len(scope.buildings)
    assert len(scope.buildings) < len(planner.scope(Area.of(community=COMMUNITY)).buildings)
    assert all(box[0] <= p["lon"] <= box[2] and box[1] <= p["lat"] <= box[3] for p in body["proposals"])
    assert body["scenario"]["name"].endswith("双塔社区 · 框选")


@pytest.mark.parametrize("change, status, words", [
    ({"community": "140821999999"}, 404, "区域 140821999999 不存在"),
    ({"community": TOWN}, 422, "town=140821100"),
    ({"community": None, "town": TOWN, "county": "140821"}, 422, "只能给出一个"),
    ({"community": None, "bbox": [100.0, 30.0, 100.1, 30.1]}, 422, "没有楼栋"),
    ({"bbox": [110.8, 35.1, 110.7, 35.2]}, 422, "bbox"),
    ({"bbox": [110.7, 35.1]}, 422, "bbox"),
])
def test_a_bad_scope_is_refused_in_chinese_and_nothing_is_saved(planning_api, change, status, words) -> None:
    listing = "/v1/planning/scenarios"
    before = planning_api.client.get(listing, headers=planning_api.planner).json()["total"]
    response = planning_api.client.post("/v1/planning/stations", json={**SCOPED_RUN, **change},
                                        headers=planning_api.planner)
    assert response.status_code == status and words in response.json()["detail"], response.text
    assert planning_api.client.get(listing, headers=planning_api.planner).json()["total"] == before


def test_coverage_through_the_api_takes_the_same_scope(planning_api, planner) -> None:
    get = planning_api.client.get
    headers = planning_api.planner
    body = get("/v1/planning/coverage", params={"community": COMMUNITY, "radius_m": 300}, headers=headers).json()
    expected = planner.coverage_report(radius_m=300, area=Area.of(community=COMMUNITY))
    assert body == expected | {"revision": body["revision"]}
    assert [c["code"] for c in body["communities"]] == [COMMUNITY] and body["scope"]["stations_outside"] > 0
    county = get("/v1/planning/coverage", params={"county": "140821"}, headers=headers).json()
    whole = get("/v1/planning/coverage", headers=headers).json()
    assert county["total"] == whole["total"] and county["grids"] == whole["grids"] and whole["scope"] is None
    box = "110.76,35.14,110.77,35.145"
    touching = planner.coverage.grids.intersects(shapely.box(110.76, 35.14, 110.77, 35.145))
    csv = get("/v1/planning/coverage", params={"bbox": box, "format": "csv"}, headers=headers)
    assert csv.status_code == 200 and csv.content.decode("utf-8-sig").count("level") == 1
    geojson = get("/v1/planning/coverage", params={"bbox": box, "format": "geojson"}, headers=headers).json()
    assert len(geojson["features"]) == touching.sum() < 105


@pytest.mark.parametrize("params, status", [({"town": "999"}, 404), ({"bbox": "100,30,100.1,30.1"}, 422),
                                            ({"bbox": "1,2,3"}, 422), ({"county": TOWN}, 422),
                                            ({"community": "1" * 33}, 422)])
def test_coverage_refuses_a_bad_scope(planning_api, params, status) -> None:
    response = planning_api.client.get("/v1/planning/coverage", params=params, headers=planning_api.planner)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def _gridmap(*args: str | Path):
    import subprocess

    return subprocess.run([sys.executable, "-m", "gridmap", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_the_command_line_takes_a_region_and_a_bbox(sample_db: Path) -> None:
    import json

    cov = _gridmap("plan", "coverage", "--region", COMMUNITY, "--radius-m", "300", "--db", sample_db, "--json")
    assert cov.returncode == 0, cov.stderr
    report = json.loads(cov.stdout)
    assert report["scope"]["region"]["name"] == "双塔社区" and len(report["communities"]) == 1
    run = _gridmap("plan", "stations", "-k", "2", "--radius-m", "300", "--spacing", "150", "--region", TOWN,
                   "--bbox", "110.75,35.13,110.79,35.16", "--db", sample_db)
    assert run.returncode == 0, run.stderr
    assert "范围：猗氏镇（140821100） ∩ bbox 110.75,35.13,110.79,35.16" in run.stdout and "已证明最优" in run.stdout
    bad = _gridmap("plan", "coverage", "--region", "140821999", "--db", sample_db)
    assert bad.returncode == 1 and "区域 140821999 不存在" in bad.stderr
