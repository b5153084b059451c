"""Intake: routing to the covering grid's worker, police and units, duplicates, idempotency, bad bodies."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from incident_fixtures import Place, api, incident_db, place, report, roles  # noqa: F401

from gridmap.incidents.categories import CATEGORIES


def covering(layer: gpd.GeoDataFrame, lon: float, lat: float) -> str | None:
    hits = sorted(c for c, g in zip(layer["code"], layer.geometry) if g.covers(shapely.Point(lon, lat)))
    return hits[0] if hits else None


class TestRouting:
    def test_assigned_to_the_full_time_worker_of_the_covering_grid(self, api, place, sample_layers) -> None:
        incident = report(api, place)
        grid = covering(sample_layers["grids"], place.lon, place.lat)
        workers = sample_layers["workers"]
        expected = workers[(workers["grid_code"] == grid) & (workers["role"] == "专职网格员")]["code"].iat[0]
        assert incident["grid"]["code"] == grid and incident["assignee"]["code"] == expected
        assert incident["status"] == "reported" and incident["version"] == 1 and incident["receipt"]

    def test_due_time_follows_the_category_limit(self, api, place) -> None:
        from datetime import datetime, timedelta

        incident = report(api, place, category="safety.wall")
        reported = datetime.fromisoformat(incident["reported_at"].replace("Z", "+00:00"))
        due = datetime.fromisoformat(incident["due_at"].replace("Z", "+00:00"))
        assert due - reported == timedelta(hours=CATEGORIES["safety.wall"].hours)

    @pytest.mark.parametrize("category", [c for c, cat in CATEGORIES.items() if cat.group in ("dispute", "security")])
    def test_disputes_and_public_order_bring_in_the_police(self, api, place, sample_layers, category) -> None:
        incident = report(api, place, category=category)
        precinct = covering(sample_layers["precincts"], place.lon, place.lat)
        assert [h["code"] for h in incident["co_handlers"] if h["type"] == "precinct"] == [precinct]

    def test_a_street_light_needs_no_police(self, api, place) -> None:
        assert report(api, place)["co_handlers"] == []

    def test_units_with_matching_resources_are_suggested_nearest_first(self, api, place, sample_layers) -> None:
        incident = report(api, place, category="infra.streetlight")
        units = sample_layers["units"]
        able = units[units["resources"].str.split(";").map(lambda r: bool({"照明", "维修"} & set(r)))]
        metric = able.to_crs(32649)
        here = gpd.GeoSeries([shapely.Point(place.lon, place.lat)], crs=4326).to_crs(32649).iloc[0]
        distances = metric.distance(here).sort_values()
        expected = [able.loc[i, "code"] for i in distances.index[:3] if distances[i] <= 3000]
        assert [u["code"] for u in incident["suggested_units"]] == expected
        assert incident["suggested_units"][0]["distance_m"] == pytest.approx(distances.iloc[0], abs=1)

    def test_a_report_near_a_grid_edge_is_flagged(self, api, sample_layers) -> None:
        grids = sample_layers["grids"].sort_values("code")
        grid = grids.iloc[5]
        x, y = shapely.get_coordinates(grid.geometry.exterior if grid.geometry.geom_type == "Polygon"
                                       else grid.geometry.geoms[0].exterior)[0]
        inward = shapely.point_on_surface(grid.geometry)
        lon = x + (inward.x - x) * 1e-4
        lat = y + (inward.y - y) * 1e-4
        incident = report(api, Place(lon, lat, grid["code"]))
        assert "near_grid_edge" in incident["flags"]

    def test_far_from_edges_is_not_flagged(self, api, place) -> None:
        assert "near_grid_edge" not in report(api, place, category="infra.sign")["flags"]

    def test_outside_every_grid_is_accepted_but_flagged(self, api, sample_layers) -> None:
        minx, miny, maxx, maxy = sample_layers["grids"].total_bounds
        incident = report(api, Place(maxx + 0.02, (miny + maxy) / 2, ""))
        assert incident["grid"] is None and incident["assignee"] is None and "outside_grids" in incident["flags"]

    def test_an_address_instead_of_coordinates(self, api, sample_layers) -> None:
        response = api.post("/v1/incidents", json={"category": "dispute.dog", "description": "狗咬人",
                                                   "address": "临猗县双塔社区丰林小区三号楼2单元501"})
        assert response.status_code == 201
        incident = response.json()
        b = sample_layers["buildings"]
        target = b[(b["compound"] == "丰林小区") & (b["building_no"] == "3")].geometry.iat[0]
        assert target.covers(shapely.Point(incident["location"]["lon"], incident["location"]["lat"]))
        assert incident["location"]["match_level"] == "building"

    def test_an_address_that_names_no_building_is_refused(self, api) -> None:
        response = api.post("/v1/incidents", json={"category": "other.other", "description": "x",
                                                   "address": "北京市朝阳区"})
        assert response.status_code == 422 and "无法定位" in response.json()["detail"]


class TestDuplicates:
    def test_same_category_within_50_m_and_7_days_is_flagged(self, api, place) -> None:
        first = report(api, place, category="sanitation.toilet")
        near = Place(place.lon + 0.0002, place.lat, place.grid_code)  # about 18 m east
        second = report(api, near, category="sanitation.toilet")
        assert first["id"] in second["duplicate_of"]

    def test_further_away_or_another_category_is_not(self, api, place) -> None:
        first = report(api, place, category="infra.water")
        far = Place(place.lon + 0.0012, place.lat, place.grid_code)  # about 110 m east
        assert first["id"] not in report(api, far, category="infra.water")["duplicate_of"]
        assert first["id"] not in report(api, place, category="infra.road")["duplicate_of"]


class TestIdempotency:
    def test_a_retried_request_creates_one_incident(self, api, place) -> None:
        body = {"category": "infra.road", "description": "路面塌陷", "lon": place.lon, "lat": place.lat}
        headers = {"Idempotency-Key": "retry-123"}
        first = api.post("/v1/incidents", json=body, headers=headers)
        again = api.post("/v1/incidents", json=body, headers=headers)
        assert first.status_code == 201 and again.status_code == 200
        assert first.json()["id"] == again.json()["id"] and first.json()["receipt"] == again.json()["receipt"]

    def test_the_same_key_with_another_body_is_a_conflict(self, api, place) -> None:
        headers = {"Idempotency-Key": "retry-456"}
        body = {"category": "infra.road", "description": "一", "lon": place.lon, "lat": place.lat}
        assert api.post("/v1/incidents", json=body, headers=headers).status_code == 201
        other = api.post("/v1/incidents", json={**body, "description": "二"}, headers=headers)
        assert other.status_code == 409


class TestBadBodies:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"category": "infra.road", "description": "x" * 4001, "lon": 110.77, "lat": 35.14}, "description"),
            ({"category": "infra.road", "description": "", "lon": 110.77, "lat": 35.14}, "description"),
            ({"category": "infra.road", "description": "x"}, "需要经纬度"),
            ({"category": "infra.road", "description": "x", "lon": 110.77}, "同时"),
            ({"category": "infra.road", "description": "x", "lon": 210, "lat": 35.14}, "lon"),
            ({"category": "infra.road", "description": "x", "lon": 110.77, "lat": 35.14, "source": "微信"}, "source"),
        ],
    )
    def test_are_422_naming_the_problem(self, api, body, field) -> None:
        response = api.post("/v1/incidents", json=body)
        assert response.status_code == 422
        assert field in str(response.json())

    def test_unknown_category(self, api) -> None:
        response = api.post("/v1/incidents", json={"category": "nope", "description": "x", "lon": 110.77,
                                                   "lat": 35.14})
        assert response.status_code == 422 and "/v1/categories" in response.json()["detail"]

    def test_nothing_is_stored_for_a_bad_body(self, api, roles) -> None:
        before = api.get("/v1/incidents", params={"limit": 1}, headers=roles.dispatcher).json()["total"]
        api.post("/v1/incidents", json={"category": "nope", "description": "x", "lon": 110.77, "lat": 35.14})
        assert api.get("/v1/incidents", params={"limit": 1}, headers=roles.dispatcher).json()["total"] == before


def test_categories_are_a_two_level_tree_with_limits(api) -> None:
    tree = api.get("/v1/categories").json()
    names = {g["name"] for g in tree}
    assert {"安全隐患", "基础设施", "环境卫生", "矛盾纠纷", "民生服务", "治安", "其他"} == names
    leaves = [leaf for g in tree for leaf in g["children"]]
    assert {"墙体脱落/倾斜", "路灯", "供暖/大暖", "旱厕", "文明养犬"} <= {leaf["name"] for leaf in leaves}
    assert all(leaf["hours"] > 0 and "grid_worker" in leaf["handlers"] for leaf in leaves)
    dog = next(leaf for leaf in leaves if leaf["code"] == "dispute.dog")
    assert "police" in dog["handlers"]


def test_a_worker_lists_only_their_grid(api, roles) -> None:
    body = api.get("/v1/incidents", params={"limit": 100}, headers=roles.worker).json()
    assert body["total"] > 0 and {i["grid"]["code"] for i in body["items"]} == {roles.grid_code}
    assert api.get("/v1/incidents", params={"grid": "140821100015-01"}, headers=roles.worker).status_code == 403
    assert np.all([i["grid"]["code"] == roles.grid_code for i in body["items"]])
