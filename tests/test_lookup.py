"""Who covers a point: answers on the sample county, checked against independent computations."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridmap.coverage.service import Coverage


@pytest.fixture(scope="session")
def coverage(sample_layers) -> Coverage:
    return Coverage.from_layers(sample_layers)


@pytest.fixture(scope="session")
def grids(sample_layers) -> gpd.GeoDataFrame:
    return sample_layers["grids"].sort_values("code").reset_index(drop=True)


def brute_force_grid(grids: gpd.GeoDataFrame, lon: float, lat: float) -> str | None:
    """The specification: every grid that covers the point (edges included); the smallest code wins."""
    hits = sorted(code for code, geom in zip(grids["code"], grids.geometry) if geom.covers(shapely.Point(lon, lat)))
    return hits[0] if hits else None


def metric(geoms, crs) -> gpd.GeoSeries:
    return gpd.GeoSeries(geoms, crs=4326).to_crs(crs)


def get(client, **params):
    response = client.get("/v1/lookup", params=params)
    return response.status_code, response.json()


class TestCoveredPoints:
    def test_a_point_inside_a_grid_names_grid_workers_and_admin_chain(self, client, grids, sample_layers) -> None:
        grid = grids.iloc[10]
        p = grid.geometry.representative_point()
        status, body = get(client, lon=p.x, lat=p.y)
        assert status == 200 and body["covered"] is True
        assert body["grid"] == {"code": grid["code"], "name": grid["name"]}
        community = sample_layers["regions"].set_index("code").loc[grid["community_code"]]
        assert body["community"] == {"code": grid["community_code"], "name": community["name"]}
        assert body["town"]["code"] == community["parent_code"] == "140821100"
        assert body["county"] == {"code": "140821", "name": "临猗县"}
        workers = sample_layers["workers"]
        own = workers[workers["grid_code"] == grid["code"]]
        assert set(own["code"]) <= {w["code"] for w in body["workers"]}
        assert any(w["role"] == "专职网格员" for w in body["workers"])
        assert body["nearest_grid"] is None

    def test_nearest_station_and_its_distance_in_metres(self, client, grids, sample_layers, coverage) -> None:
        p = grids.iloc[3].geometry.representative_point()
        _, body = get(client, lon=p.x, lat=p.y)
        stations = sample_layers["stations"]
        distances = metric(stations.geometry, coverage.crs).distance(metric([p], coverage.crs).iloc[0])
        best = distances.idxmin()
        assert body["station"]["code"] == stations.loc[best, "code"]
        assert body["station"]["distance_m"] == pytest.approx(distances[best], abs=0.1)

    def test_police_precinct_covers_the_point(self, client, grids, sample_layers) -> None:
        p = grids.iloc[-1].geometry.representative_point()
        _, body = get(client, lon=p.x, lat=p.y)
        precincts = sample_layers["precincts"]
        expected = precincts[precincts.covers(p)].sort_values("code").iloc[0]
        assert body["precinct"] == {"code": expected["code"], "name": expected["name"], "phone": expected["phone"]}


class TestAwkwardGrids:
    def test_a_point_in_a_hole_belongs_to_the_grid_that_owns_the_island(self, client, grids) -> None:
        holed = [(c, g) for c, g in zip(grids["code"], grids.geometry) if any(
            len(part.interiors) for part in getattr(g, "geoms", [g]))]
        assert holed, "the sample county must have a grid with a hole"
        code, geom = holed[0]
        part = next(p for p in getattr(geom, "geoms", [geom]) if p.interiors)
        hole = shapely.Polygon(part.interiors[0])
        p = hole.representative_point()
        _, body = get(client, lon=p.x, lat=p.y)
        assert body["grid"]["code"] != code
        assert body["grid"]["code"] == brute_force_grid(grids, p.x, p.y)

    def test_every_part_of_a_multipart_grid_answers_with_that_grid(self, client, grids) -> None:
        multi = grids[grids.geom_type == "MultiPolygon"]
        assert len(multi), "the sample county must have a grid in several parts"
        for code, geom in zip(multi["code"], multi.geometry):
            for part in geom.geoms:
                p = part.representative_point()
                status, body = get(client, lon=p.x, lat=p.y)
                assert body["grid"]["code"] == code

    def test_a_shared_edge_gets_the_smaller_code_deterministically(self, client, grids) -> None:
        tree = shapely.STRtree(grids.geometry.values)
        left, right = tree.query(grids.geometry.values, predicate="touches")
        i, j = next((i, j) for i, j in zip(left, right) if i < j and
                    shapely.length(shapely.intersection(grids.geometry.iat[i], grids.geometry.iat[j])) > 0)
        edge = shapely.intersection(grids.geometry.iat[i], grids.geometry.iat[j])
        line = max(getattr(edge, "geoms", [edge]), key=lambda g: g.length)
        mid = shapely.line_interpolate_point(line, 0.5, normalized=True)
        assert grids.geometry.iat[i].covers(mid) and grids.geometry.iat[j].covers(mid)
        answers = {get(client, lon=mid.x, lat=mid.y)[1]["grid"]["code"] for _ in range(3)}
        assert answers == {min(grids["code"].iat[i], grids["code"].iat[j])}

    def test_a_vertex_counts_as_covered(self, client, grids) -> None:
        x, y = shapely.get_coordinates(grids.geometry.iat[0])[0]
        _, body = get(client, lon=x, lat=y)
        assert body["covered"] and body["grid"]["code"] == brute_force_grid(grids, x, y)


class TestOutsideEveryGrid:
    def test_a_point_outside_gets_the_nearest_grid_and_its_distance(self, client, grids, coverage) -> None:
        minx, miny, maxx, maxy = grids.total_bounds
        lon, lat = maxx + 0.01, (miny + maxy) / 2
        status, body = get(client, lon=lon, lat=lat)
        assert status == 200 and body["covered"] is False and body["grid"] is None and body["workers"] == []
        projected = metric(grids.geometry, coverage.crs)
        point = metric([shapely.Point(lon, lat)], coverage.crs).iloc[0]
        distances = projected.distance(point)
        assert body["nearest_grid"]["code"] == grids["code"].iat[int(distances.argmin())]
        assert body["nearest_grid"]["distance_m"] == pytest.approx(distances.min(), rel=1e-3)
        assert body["nearest_grid"]["distance_m"] > 500  # metres, not degrees
        assert body["county"]["code"] == "140821"

    def test_far_away_is_outside_every_region(self, client) -> None:
        status, body = get(client, lon=116.39, lat=39.91)
        assert status == 200 and body["covered"] is False
        assert body["county"] is None and body["community"] is None
        assert body["nearest_grid"]["distance_m"] > 500_000


@st.composite
def points_near_grids(draw, bounds):
    minx, miny, maxx, maxy = bounds
    pad = 0.003
    return (draw(st.floats(minx - pad, maxx + pad)), draw(st.floats(miny - pad, maxy + pad)))


class TestIndexAgreesWithBruteForce:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def test_random_points(self, data, coverage, grids) -> None:
        lon, lat = data.draw(points_near_grids(tuple(grids.total_bounds)))
        answer = coverage.lookup(lon, lat)
        assert (answer["grid"] or {}).get("code") == brute_force_grid(grids, lon, lat)

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(i=st.integers(0, 10_000), t=st.floats(0, 1))
    def test_points_on_grid_edges(self, i, t, coverage, grids) -> None:
        geom = grids.geometry.iat[i % len(grids)]
        p = shapely.line_interpolate_point(geom.boundary, t, normalized=True)
        p = shapely.get_geometry(p, 0) if p.geom_type == "MultiPoint" else p
        answer = coverage.lookup(p.x, p.y)
        assert (answer["grid"] or {}).get("code") == brute_force_grid(grids, p.x, p.y)

    def test_batch_locate_matches_single_lookups(self, coverage, grids) -> None:
        rng = np.random.default_rng(7)
        minx, miny, maxx, maxy = grids.total_bounds
        lon = rng.uniform(minx, maxx, 2000)
        lat = rng.uniform(miny, maxy, 2000)
        batch = coverage.locate_grids(lon, lat)
        single = [(coverage.lookup(x, y)["grid"] or {}).get("code") for x, y in zip(lon, lat)]
        assert list(batch) == single


class TestBadCoordinates:
    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({}, "缺少经度 lon和纬度 lat参数"),
            ({"lon": "110.77"}, "缺少纬度 lat参数"),
            ({"lon": "abc", "lat": "35.1"}, "不是数字"),
            ({"lon": "nan", "lat": "35.1"}, "NaN"),
            ({"lon": "inf", "lat": "35.1"}, "有限数值"),
            ({"lon": "200", "lat": "35.1"}, "超出范围"),
            ({"lon": "35.14", "lat": "110.77"}, "写反"),
        ],
    )
    def test_is_a_422_with_a_message(self, client, params, message) -> None:
        response = client.get("/v1/lookup", params=params)
        assert response.status_code == 422
        assert message in response.json()["detail"]

    def test_out_of_range_without_swap_does_not_suggest_one(self, client) -> None:
        response = client.get("/v1/lookup", params={"lon": "500", "lat": "35"})
        assert "写反" not in response.json()["detail"]


def test_distance_is_never_in_degrees(coverage) -> None:
    answer = coverage.lookup(110.9, 35.14)
    assert not answer["covered"]
    assert answer["nearest_grid"]["distance_m"] > 1000
    assert math.isfinite(answer["station"]["distance_m"])
