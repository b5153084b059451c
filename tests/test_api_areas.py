"""Grids, a worker's patch, communities, stations, health and docs through the real app."""

from __future__ import annotations

import numpy as np
import shapely


def test_grids_are_a_feature_collection_with_totals(client, sample_layers) -> None:
    body = client.get("/v1/grids").json()
    assert body["type"] == "FeatureCollection"
    assert len(body["features"]) == len(sample_layers["grids"])
    households = sum(f["properties"]["households"] for f in body["features"])
    assert households == sample_layers["buildings"]["households"].sum()


def test_grids_filter_by_community_code_or_name(client, sample_layers) -> None:
    grids = sample_layers["grids"]
    expected = set(grids.loc[grids["community_code"] == "140821100014", "code"])
    by_code = {f["properties"]["code"] for f in client.get("/v1/grids?community=140821100014").json()["features"]}
    by_name = {f["properties"]["code"] for f in client.get("/v1/grids?community=双塔社区").json()["features"]}
    assert by_code == by_name == expected
    assert client.get("/v1/grids?community=不存在社区").status_code == 404


def test_one_grid_has_workers_buildings_and_households(client, sample_layers) -> None:
    grid = sample_layers["grids"].iloc[0]
    body = client.get(f"/v1/grids/{grid['code']}").json()
    assert body["type"] == "Feature" and body["properties"]["code"] == grid["code"]
    inside = sample_layers["buildings"][
        shapely.covers(grid.geometry, shapely.point_on_surface(sample_layers["buildings"].geometry.values))
    ]
    assert body["properties"]["building_count"] == len(inside)
    assert body["properties"]["households"] == inside["households"].sum()
    assert 300 <= body["properties"]["households"] <= 500
    assert any(w["role"] == "专职网格员" for w in body["properties"]["workers"])


def test_unknown_grid_is_404_with_a_message(client) -> None:
    response = client.get("/v1/grids/NOPE")
    assert response.status_code == 404 and "NOPE" in response.json()["detail"]


def test_worker_coverage_is_their_grid_and_its_buildings(client, sample_layers) -> None:
    workers = sample_layers["workers"]
    worker = workers[workers["role"] == "专职网格员"].iloc[0]
    body = client.get(f"/v1/workers/{worker['code']}/coverage").json()
    assert body["worker"]["name"] == worker["name"]
    assert [f["properties"]["code"] for f in body["grids"]["features"]] == [worker["grid_code"]]
    buildings = body["buildings"]["features"]
    assert {f["properties"]["grid_code"] for f in buildings} == {worker["grid_code"]}
    assert body["totals"]["households"] == sum(f["properties"]["households"] for f in buildings)
    assert body["totals"]["population"] == sum(f["properties"]["population"] for f in buildings)


def test_community_staff_cover_every_grid_of_their_community(client, sample_layers) -> None:
    workers = sample_layers["workers"]
    head = workers[workers["role"] == "网格长"].iloc[0]
    body = client.get(f"/v1/workers/{head['code']}/coverage").json()
    grids = sample_layers["grids"]
    assert {f["properties"]["code"] for f in body["grids"]["features"]} == set(
        grids.loc[grids["community_code"] == head["community_code"], "code"])


def test_unknown_worker_is_404(client) -> None:
    assert client.get("/v1/workers/W-NOPE/coverage").status_code == 404


def test_communities_add_up_to_the_county(client, sample_layers) -> None:
    body = client.get("/v1/communities").json()
    assert len(body) == 13
    assert {c["name"] for c in body} >= {"双塔社区", "葫芦岛社区", "神后堡社区", "涑水社区", "渠南社区"}
    assert sum(c["households"] for c in body) == sample_layers["buildings"]["households"].sum()
    assert sum(c["grid_count"] for c in body) == len(sample_layers["grids"])


def test_stations_are_geojson_points(client) -> None:
    body = client.get("/v1/stations").json()
    kinds = [f["properties"]["kind"] for f in body["features"]]
    assert kinds.count("党群服务站") == 64
    assert {f["geometry"]["type"] for f in body["features"]} == {"Point"}
    some = client.get("/v1/stations?community=双塔社区").json()["features"]
    assert 0 < len(some) < len(body["features"])


def test_health_reports_the_revision(client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["revision"] and body["grids"] >= 80


def test_docs_work_without_a_cdn(client) -> None:
    page = client.get("/docs").text
    assert "cdn.jsdelivr.net" not in page and "/static/swagger/swagger-ui-bundle.js" in page
    asset = client.get("/static/swagger/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    spec = client.get("/openapi.json").json()
    assert "/v1/lookup" in spec["paths"]


def test_geojson_coordinates_are_wgs84(client) -> None:
    feature = client.get("/v1/grids").json()["features"][0]
    coords = np.array(shapely.get_coordinates(shapely.geometry.shape(feature["geometry"])))
    assert (110.6 < coords[:, 0]).all() and (coords[:, 0] < 110.95).all()
    assert (35.0 < coords[:, 1]).all() and (coords[:, 1] < 35.3).all()
