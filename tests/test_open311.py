"""Open311 GeoReport v2: an existing client can list services, report and follow a request."""

from __future__ import annotations

from incident_fixtures import ADMIN, api, incident_db, place  # noqa: F401

from gridmap.incidents.categories import CATEGORIES


def test_services_are_the_leaf_categories(api) -> None:
    services = api.get("/open311/v2/services.json").json()
    assert {s["service_code"] for s in services} == set(CATEGORIES)
    assert all(s["type"] == "realtime" and s["metadata"] is False for s in services)


def test_a_form_encoded_request_is_created_and_readable(api, place) -> None:
    form = {"service_code": "infra.streetlight", "lat": str(place.lat), "long": str(place.lon),
            "description": "路灯坏了", "first_name": "小明", "last_name": "王", "phone": "13900001111"}
    created = api.post("/open311/v2/requests.json", data=form)
    assert created.status_code == 201
    [answer] = created.json()
    request_id = answer["service_request_id"]
    [read] = api.get(f"/open311/v2/requests/{request_id}.json").json()
    assert read["status"] == "open" and read["service_code"] == "infra.streetlight"
    assert read["lat"] == place.lat and read["long"] == place.lon  # a street light keeps its place
    assert read["agency_responsible"] == place.grid_code
    assert "13900001111" not in str(read) and "小明" not in str(read)
    status = api.get(f"/v1/incidents/{request_id}", headers={"X-Receipt": answer["token"]}).json()
    assert status["status"] == "reported" and status["reporter"]["phone"] == "139****1111"
    assert api.get(f"/v1/incidents/{request_id}", headers=ADMIN).json()["source"] == "Open311"


def test_a_json_request_by_address(api) -> None:
    created = api.post("/open311/v2/requests.json", json={"service_code": "dispute.dog",
                                                         "address_string": "丰林小区3号楼", "description": "狗吠"})
    assert created.status_code == 201


def test_listing_by_status(api) -> None:
    closed = api.get("/open311/v2/requests.json", params={"status": "closed"}).json()
    assert closed and {r["status"] for r in closed} == {"closed"}
    opened = api.get("/open311/v2/requests.json", params={"status": "open", "service_code": "infra.heating"}).json()
    assert {r["status"] for r in opened} <= {"open"} and {r["service_code"] for r in opened} <= {"infra.heating"}


def test_bad_requests(api) -> None:
    assert api.post("/open311/v2/requests.json", data={"lat": "35", "long": "110"}).status_code == 422
    assert api.post("/open311/v2/requests.json", data={"service_code": "nope", "lat": "35.14",
                                                        "long": "110.77"}).status_code == 422
    assert api.post("/open311/v2/requests.json", data={"service_code": "infra.road", "lat": "95",
                                                        "long": "110.77"}).status_code == 422
    assert api.post("/open311/v2/requests.json", data={"service_code": "infra.road", "description": "x" * 4001,
                                                        "lat": "35.14", "long": "110.77"}).status_code == 422
    assert api.get("/open311/v2/requests/999999.json").status_code == 404
    assert api.get("/open311/v2/requests.json", params={"status": "maybe"}).status_code == 422
