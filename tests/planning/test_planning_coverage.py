"""Coverage of the sample county's stations, checked against computations done another way.

Straight line: geopandas ``sjoin_nearest`` in the same UTM zone. Walking: networkx Dijkstra over the
noded road lines (not split at the points), each point reaching its line's two ends along the line
(``project``), plus the direct walk when two points share a line.
"""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from gridmap.geo import metric_crs

RADII = (300, 500, 1000)


@pytest.fixture(scope="module")
def metric(sample_layers, planner):
    crs = planner.crs
    buildings = sample_layers["buildings"].to_crs(crs)
    points = gpd.GeoDataFrame(
        {"households": buildings["households"], "population": buildings["population"]},
        geometry=buildings.geometry.representative_point(), crs=crs,
    )
    grids = sample_layers["grids"].to_crs(crs)
    located = gpd.sjoin(points, grids[["code", "community_code", "geometry"]], predicate="within", how="left")
    located = located[~located.index.duplicated()]
    points["community_code"] = located["community_code"]
    points["grid_code"] = located["code"]
    stations = sample_layers["stations"].sort_values("code").to_crs(crs).reset_index(drop=True)
    roads = sample_layers["roads"].to_crs(crs)
    return points, stations, roads


def _independent_network(points: gpd.GeoDataFrame, stations: gpd.GeoDataFrame, roads: gpd.GeoDataFrame):
    lines = gpd.GeoDataFrame(geometry=shapely.get_parts(shapely.union_all(roads.geometry.values)), crs=roads.crs)
    graph = nx.Graph()
    ends = {}
    for i, line in enumerate(lines.geometry):
        a, b = (tuple(np.round(line.coords[0], 2)), tuple(np.round(line.coords[-1], 2)))
        ends[i] = (a, b)
        if not graph.has_edge(a, b) or graph[a][b]["weight"] > line.length:
            graph.add_edge(a, b, weight=line.length)

    def attach(frame: gpd.GeoDataFrame) -> pd.DataFrame:
        near = gpd.sjoin_nearest(frame[["geometry"]], lines, distance_col="access")
        near = near[~near.index.duplicated()]
        line = lines.geometry.values[near["index_right"].to_numpy()]
        along = shapely.line_locate_point(line, frame.geometry.values)
        return pd.DataFrame({"line": near["index_right"].to_numpy(), "along": along,
                             "length": shapely.length(line), "access": near["access"].to_numpy()})

    p, s = attach(points), attach(stations)
    node_id = {node: n for n, node in enumerate(graph.nodes)}
    pa = np.array([node_id[ends[i][0]] for i in p.line])
    pb = np.array([node_id[ends[i][1]] for i in p.line])
    along, length = p.along.to_numpy(), p.length.to_numpy()

    def lengths_from(node) -> np.ndarray:
        found = nx.single_source_dijkstra_path_length(graph, node, weight="weight")
        out = np.full(len(node_id), np.inf)
        for other, d in found.items():
            out[node_id[other]] = d
        return out

    best = np.full(len(p), np.inf)
    for _, st in s.iterrows():
        a, b = ends[st.line]
        da, db = lengths_from(a), lengths_from(b)
        to_a, to_b = st.along, st.length - st.along  # station to its line's ends
        from_station = np.minimum(to_a + da, to_b + db)  # to every node
        via = np.minimum(from_station[pa] + along, from_station[pb] + (length - along))
        same = p.line.to_numpy() == st.line
        via = np.where(same, np.minimum(via, np.abs(along - st.along)), via)
        best = np.minimum(best, via + p.access.to_numpy() + st.access)
    return best


@pytest.fixture(scope="module")
def independent(metric):
    points, stations, roads = metric
    nearest = gpd.sjoin_nearest(points[["geometry"]], stations[["geometry"]], distance_col="d")
    euclid = nearest[~nearest.index.duplicated()]["d"].to_numpy()
    return {"euclidean": euclid, "network": _independent_network(points, stations, roads)}


@pytest.mark.parametrize("kind", ["euclidean", "network"])
def test_distance_to_nearest_station_matches_an_independent_computation(planner, independent, kind) -> None:
    ours, _ = planner.station_distance(kind)
    theirs = independent[kind]
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, theirs, atol=0.01)


def test_utm_zone_is_the_one_of_the_county(planner) -> None:
    assert planner.crs == metric_crs(110.77, 35.14)


@pytest.mark.parametrize("radius", RADII)
@pytest.mark.parametrize("kind", ["euclidean", "network"])
def test_coverage_per_community_matches_an_independent_computation(planner, metric, independent, kind, radius):
    points, _, _ = metric
    report = planner.coverage_report(radius_m=radius, metric=kind)
    frame = points.assign(covered=independent[kind] <= radius)
    frame["hh_cov"] = frame["households"].where(frame["covered"], 0)
    frame["pop_cov"] = frame["population"].where(frame["covered"], 0)
    expected = frame.groupby("community_code")[["households", "hh_cov", "population", "pop_cov"]].sum()
    assert len(report["communities"]) == 13
    for c in report["communities"]:
        row = expected.loc[c["code"]]
        assert (c["households"], c["households_covered"], c["population"], c["population_covered"]) == (
            row["households"], row["hh_cov"], row["population"], row["pop_cov"]), c["name"]
        assert c["households_uncovered"] == c["households"] - c["households_covered"]
    by_grid = frame.groupby("grid_code")[["households", "hh_cov"]].sum()
    for g in report["grids"]:
        expected_grid = tuple(by_grid.loc[g["code"]]) if g["code"] in by_grid.index else (0, 0)
        assert (g["households"], g["households_covered"]) == expected_grid, g["code"]
    total = report["total"]
    assert total["households_covered"] == frame["hh_cov"].sum()
    assert total["population_covered"] == frame["pop_cov"].sum()
    assert total["share"] == pytest.approx(frame["hh_cov"].sum() / frame["households"].sum(), abs=1e-4)


def test_walking_is_never_shorter_than_the_straight_line(planner) -> None:
    walk, _ = planner.station_distance("network")
    line, _ = planner.station_distance("euclidean")
    assert np.all(walk >= line - 1e-6)
    for radius in RADII:
        assert (walk <= radius).sum() <= (line <= radius).sum()


def test_repeated_coverage_requests_use_the_cache(planner) -> None:
    import time

    planner.coverage_report(radius_m=500, metric="network")
    started = time.perf_counter()
    for radius in (300, 420, 500, 777, 1000):
        planner.coverage_report(radius_m=radius, metric="network")
    assert time.perf_counter() - started < 2.0  # thresholds over cached distances, no graph work
