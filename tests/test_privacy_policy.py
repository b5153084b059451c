"""The privacy policy of docs/security.md, as enforced by gridmap.access on every incident output.

Public reads (Open311) are redacted and never show sensitive categories; staff reads follow the
role's scope; the reporter reads their time line with the receipt; the channel sets `source`.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from incident_fixtures import ADMIN, Place, act, api, incident_db, place, report, roles  # noqa: F401
from pyproj import Geod
from stores import open_test_store, store_settings

from gridmap import auth
from gridmap.access import coarse_address, redact_text, round_position
from gridmap.api import create_app

GEOD = Geod(ellps="WGS84")
PLANTED = {"name": "韩秀英", "phone": "13987654321", "id_number": "140821198804150027", "room": "1502室"}


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


def planted_report(api: TestClient, place: Place, category: str, **extra) -> dict:
    body = {"category": category, "lon": place.lon, "lat": place.lat,
            "description": f"我是{PLANTED['name']}，电话{PLANTED['phone']}，身份证{PLANTED['id_number']}，"
                           f"邮箱 hanxy@example.com，住丰林小区3号楼2单元{PLANTED['room']}",
            "address": f"临猗县双塔社区丰林小区3号楼2单元{PLANTED['room']}",
            "reporter": {"name": PLANTED["name"], "phone": PLANTED["phone"]}, **extra}
    response = api.post("/v1/incidents", json=body)
    assert response.status_code == 201, response.text
    return response.json()


class TestRedaction:
    def test_phone_id_and_email_numbers_in_free_text_are_masked(self) -> None:
        text = redact_text("张三 13912345678，座机 0359-4013156，身份证 14082119880415002X，邮箱 zs@example.com")
        assert "139****5678" in text and "13912345678" not in text
        assert "4013156" not in text and "140821198804150" not in text and "zs@example.com" not in text

    def test_unit_and_room_numbers_and_the_reporters_name_are_masked_ordinary_numbers_kept(self) -> None:
        text = redact_text("我是韩秀英，丰林小区3号楼2单元501，7-6-1046，路灯坏了3天，2026-01-05", names=("韩秀英",))
        assert text == "我是韩**，丰林小区3号楼*单元*，*，路灯坏了3天，2026-01-05"

    def test_unit_floor_and_room_leave_the_address(self) -> None:
        assert coarse_address("临猗县丰林小区3号楼2单元501") == "临猗县丰林小区3号楼"
        assert coarse_address("府前街224号丰林小区7-6-1046") == "府前街224号丰林小区7号楼"
        assert coarse_address("双塔北路12号5号楼1502室") == "双塔北路12号5号楼"
        assert coarse_address("丰林小区3号楼502") == "丰林小区3号楼"

    def test_rounded_positions_are_about_a_hundred_metres_off_at_most(self) -> None:
        for lon, lat in [(110.7693, 35.1425), (110.77237, 35.15525), (110.7700, 35.1400)]:
            rounded = round_position(lon, lat)
            assert metres((lon, lat), rounded) <= 75
            assert round_position(*rounded) == rounded


class TestPublicReads:
    def test_open311_redacts_a_public_category(self, api, place) -> None:
        created = planted_report(api, place, "sanitation.cleaning")
        [read] = api.get(f"/open311/v2/requests/{created['id']}.json").json()
        text = str(read)
        assert not any(value in text for value in PLANTED.values())
        assert "139****4321" in read["description"] and "2单元" not in read["address"]
        exact = (place.lon, place.lat)
        assert (read["long"], read["lat"]) != exact and metres(exact, (read["long"], read["lat"])) <= 75

    def test_sensitive_categories_do_not_exist_for_the_public(self, api, place) -> None:
        created = planted_report(api, place, "dispute.family")
        assert api.get(f"/open311/v2/requests/{created['id']}.json").status_code == 404
        assert api.get("/open311/v2/requests.json", params={"service_code": "dispute.family"}).json() == []
        listed = api.get("/open311/v2/requests.json").json()
        assert listed and all(not r["service_code"].startswith(("dispute.", "security.")) for r in listed)
        assert str(created["id"]) not in {r["service_request_id"] for r in listed}

    def test_the_categories_say_which_are_sensitive(self, api) -> None:
        leaves = {c["code"]: c for g in api.get("/v1/categories").json() for c in g["children"]}
        assert leaves["dispute.family"]["sensitive"] and leaves["service.elderly"]["sensitive"]
        assert leaves["security.public_order"]["sensitive"] and leaves["service.mental_health"]["sensitive"]
        assert not leaves["infra.streetlight"]["sensitive"] and leaves["infra.streetlight"]["public_asset"]


class TestStaffScopes:
    def test_a_community_level_worker_reads_every_grid_of_their_community(self, api, place, sample_layers) -> None:
        workers, grids = sample_layers["workers"], sample_layers["grids"]
        community = grids.loc[grids["code"] == place.grid_code, "community_code"].iat[0]
        head = workers[(workers["grid_code"] == "") & (workers["community_code"] == community)]["code"].iat[0]
        stranger = workers[(workers["grid_code"] == "") & (workers["community_code"] != community)]["code"].iat[0]
        store = open_test_store(api.app.state.settings.db)
        head_h = {"Authorization": f"Bearer {auth.create_token(store, role='worker', worker_code=head)[1]}"}
        other_h = {"Authorization": f"Bearer {auth.create_token(store, role='worker', worker_code=stranger)[1]}"}
        incident = report(api, place)
        assert api.get(f"/v1/incidents/{incident['id']}", headers=head_h).status_code == 200
        assert api.get(f"/v1/incidents/{incident['id']}", headers=other_h).status_code == 403
        listed = api.get("/v1/incidents", params={"limit": 500}, headers=head_h).json()
        own = set(grids.loc[grids["community_code"] == community, "code"])
        assert listed["total"] > 0 and {i["grid"]["code"] for i in listed["items"]} <= own
        assert place.grid_code in {i["grid"]["code"] for i in listed["items"]}

    def test_incidents_outside_every_grid_are_for_dispatchers_only(self, api, roles, sample_layers) -> None:
        minx, miny, maxx, maxy = sample_layers["grids"].total_bounds
        outside = report(api, Place(maxx + 0.02, (miny + maxy) / 2, ""))
        assert outside["grid"] is None
        for who in (roles.worker, roles.planner):
            assert api.get(f"/v1/incidents/{outside['id']}", headers=who).status_code == 403
        assert api.get(f"/v1/incidents/{outside['id']}", headers=roles.dispatcher).status_code == 200
        started = act(api, outside, "accept", roles.worker)
        assert started.status_code == 403

    def test_a_token_of_a_worker_who_left_is_refused_everywhere(self, tmp_path, make_package) -> None:
        db = tmp_path / "left.gpkg"
        from gridmap.importer import import_package

        store = open_test_store(db)
        import_package(store, make_package(lambda layers: None))
        _, token = auth.create_token(store, role="worker", worker_code="W01")
        import_package(store, make_package(lambda layers: layers.update(
            workers=layers["workers"][layers["workers"]["code"] != "W01"])))
        headers = {"Authorization": f"Bearer {token}"}
        with TestClient(create_app(store_settings(db=db, load_sample_if_empty=False))) as client:
            for path in ("/v1/incidents", "/v1/incidents/1", "/v1/incidents/stats"):
                answer = client.get(path, headers=headers)
                assert answer.status_code == 403 and "W01" in answer.json()["detail"]


class TestTheReporter:
    def test_reads_status_changes_and_public_replies_not_staff_notes(self, api, place, roles) -> None:
        incident = report(api, place)
        assert act(api, incident, "accept", roles.dispatcher, note="内部备注：此人多次来电").status_code == 200
        replied = act(api, incident, "dispatch", roles.dispatcher, note="派给专职网格员", reply="已派网格员上门查看")
        assert replied.status_code == 200
        timeline = api.get(f"/v1/incidents/{incident['id']}/history",
                           headers={"X-Receipt": incident["receipt"]}).json()
        assert [e["to_status"] for e in timeline] == ["reported", "accepted", "dispatched"]
        assert timeline[-1]["reply"] == "已派网格员上门查看"
        text = str(timeline)
        assert "内部备注" not in text and "dispatcher" not in text and "actor" not in timeline[0]
        staff = api.get(f"/v1/incidents/{incident['id']}/history", headers=roles.dispatcher).json()
        assert "内部备注：此人多次来电" in str(staff) and staff[-1]["actor"].startswith("dispatcher")

    def test_feedback_is_given_once(self, api, place, roles) -> None:
        incident = report(api, place)
        for action in ("accept", "dispatch", "start", "resolve"):
            assert act(api, incident, action, roles.dispatcher).status_code == 200
        receipt = {"X-Receipt": incident["receipt"]}
        first = api.post(f"/v1/incidents/{incident['id']}/feedback", json={"rating": 5}, headers=receipt)
        assert first.status_code == 200 and first.json()["rating"] == 5
        again = api.post(f"/v1/incidents/{incident['id']}/feedback", json={"rating": 1}, headers=receipt)
        assert again.status_code == 409
        assert api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()["rating"] == 5


class TestWrites:
    def test_a_transition_without_if_match_is_428_and_changes_nothing(self, api, place, roles) -> None:
        incident = report(api, place)
        answer = api.post(f"/v1/incidents/{incident['id']}/transitions", json={"action": "accept"},
                          headers=roles.dispatcher)
        assert answer.status_code == 428 and "If-Match" in answer.json()["detail"]
        assert api.get(f"/v1/incidents/{incident['id']}", headers=ADMIN).json()["status"] == "reported"

    def test_the_public_cannot_choose_source_or_priority(self, api, place) -> None:
        body = {"category": "infra.road", "description": "路面塌陷", "lon": place.lon, "lat": place.lat}
        for extra in ({"source": "网格员巡查"}, {"priority": "urgent"}, {"source": "12345热线"}):
            refused = api.post("/v1/incidents", json={**body, **extra})
            assert refused.status_code == 403, extra
        created = api.post("/v1/incidents", json=body).json()
        stored = api.get(f"/v1/incidents/{created['id']}", headers=ADMIN).json()
        assert stored["source"] == "居民上报" and stored["priority"] == "normal"

    def test_dispatchers_set_channel_and_priority_and_workers_report_patrol_findings(self, api, place, roles) -> None:
        body = {"category": "infra.road", "description": "路面塌陷", "lon": place.lon, "lat": place.lat}
        hotline = api.post("/v1/incidents", json={**body, "source": "12345热线", "priority": "urgent"},
                           headers=roles.dispatcher).json()
        assert (hotline["source"], hotline["priority"]) == ("12345热线", "urgent")
        patrol = api.post("/v1/incidents", json=body, headers=roles.worker).json()
        assert patrol["source"] == "网格员巡查" and patrol["priority"] == "normal"

    def test_reports_far_outside_the_county_are_refused(self, api) -> None:
        far = api.post("/v1/incidents", json={"category": "infra.road", "description": "x", "lon": 116.40,
                                              "lat": 39.90})
        assert far.status_code == 422 and "服务范围" in far.json()["detail"]


class TestReceipts:
    def test_a_receipt_with_non_ascii_characters_is_refused_not_an_error(self, api, place) -> None:
        incident = report(api, place)
        for path in (f"/v1/incidents/{incident['id']}", f"/v1/incidents/{incident['id']}/history"):
            assert api.get(path, params={"receipt": "回执码"}).status_code == 403
        answer = api.post(f"/v1/incidents/{incident['id']}/feedback", json={"rating": 5, "receipt": "回执码"})
        assert answer.status_code == 403
