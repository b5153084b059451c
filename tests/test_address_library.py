"""The standard address library as data staff maintain (#12 §3): the aliases and addresses layers of the
package, aliases and standard addresses added and corrected through the API (audited, in effect at
once, in every process), suggestions as one types, and the texts nothing was found for."""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from stores import open_test_store, store_settings

from gridmap import auth
from gridmap.api import create_app
from gridmap.coverage import library_edits
from gridmap.settings import SAMPLE_PACKAGE

ADMIN = "library-admin-token-0123456789abcdef"
STAFF = {"Authorization": f"Bearer {ADMIN}"}
UNKNOWN = "临猗县双塔社区瑞雪花园2号楼"
"""A compound that is in no layer of the sample county (invented for these tests, as are the other
names below: 纺织厂家属院, 碧云家园, 翠湖名邸 …)."""


@pytest.fixture(scope="module")
def db(_pristine_sample, copy_store, tmp_path_factory):
    return copy_store(_pristine_sample, tmp_path_factory.mktemp("library"), "library.gpkg")


@pytest.fixture(scope="module")
def api(db) -> Iterator[TestClient]:
    with TestClient(create_app(store_settings(db=db, load_sample_if_empty=False, admin_token=ADMIN))) as client:
        yield client


@pytest.fixture(scope="module")
def layers(sample_layers):
    return sample_layers


def _lookup(client: TestClient, text: str) -> dict:
    answer = client.get("/v1/lookup", params={"address": text})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _add(client: TestClient, **body) -> dict:
    answer = client.post("/v1/addresses", json=body, headers=STAFF)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _patch(client: TestClient, entry: dict, **changes):
    return client.patch(f"/v1/addresses/{entry['id']}", json=changes,
                        headers={**STAFF, "If-Match": f'"{entry["version"]}"'})


def _compound_buildings(layers, name: str) -> gpd.GeoDataFrame:
    b = layers["buildings"]
    return b[b["compound"] == name].sort_values("code")


# the package's layers -----------------------------------------------------------------------------

class TestPackageLayers:
    def test_the_sample_county_has_aliases_and_standard_addresses(self, layers):
        aliases, addresses = layers["aliases"], layers["addresses"]
        assert len(aliases) >= 20 and set(aliases.columns) >= {"alias", "target_code", "note"}
        assert len(addresses) >= 10 and set(addresses["building_code"]) <= set(layers["buildings"]["code"])

    def test_an_alias_of_the_package_finds_its_target(self, api, layers):
        row = layers["aliases"][layers["aliases"]["target_code"] == "实验小学家属院"].iloc[0]
        match = _lookup(api, f"临猗县{row['alias']}")["match"]
        expected = set(_compound_buildings(layers, "实验小学家属院")["code"])
        assert match["level"] in ("compound", "building") and match["building"]["code"] in expected

    def test_an_old_street_name_finds_the_street(self, api, layers):
        roads = layers["roads"].set_index("code")["name"]
        row = layers["aliases"][layers["aliases"]["target_code"].str.startswith("R")].iloc[0]
        match = _lookup(api, f"临猗县{row['alias']}")["match"]
        assert match["level"] == "road" and match["address"].endswith(roads[row["target_code"]])

    def test_a_back_gate_doorplate_leads_to_its_compound(self, api, layers):
        gate = layers["addresses"].iloc[0]
        answer = _lookup(api, f"临猗县{gate['road']}{gate['doorplate']}")
        own = set(_compound_buildings(layers, gate["compound"])["code"])
        assert answer["match"]["building"]["code"] in own, answer["match"]


# staff edits ----------------------------------------------------------------------------------------

class TestAliasEdits:
    def test_an_unknown_name_is_not_found_until_staff_add_it(self, api, layers):
        before = _lookup(api, "临猗县猗氏镇纺织厂家属院")["match"]
        assert before["level"] not in ("building", "compound")
        target = _compound_buildings(layers, "法院小区")
        entry = _add(api, type="alias", alias="纺织厂家属院", target_code="法院小区", note="俗称")
        assert entry["applied"] and entry["version"] == 1
        after = _lookup(api, "临猗县猗氏镇纺织厂家属院")["match"]
        assert after["level"] == "compound" and after["building"]["code"] in set(target["code"])

    def test_a_correction_is_in_effect_at_once_and_the_old_target_is_gone(self, api, layers):
        entry = _add(api, type="alias", alias="老粮站", target_code="140821100015")
        assert _lookup(api, "临猗县老粮站")["community"]["code"] == "140821100015"
        corrected = _patch(api, entry, target_code="140821100016")
        assert corrected.status_code == 200, corrected.text
        assert corrected.json()["version"] == 2 and corrected.headers["ETag"] == '"2"'
        assert _lookup(api, "临猗县老粮站")["community"]["code"] == "140821100016"
        retired = _patch(api, corrected.json(), retired=True)
        assert retired.status_code == 200 and retired.json()["applied"] is False
        assert _lookup(api, "临猗县老粮站")["match"]["level"] in ("county", "town", "none")

    def test_every_change_is_in_the_history_with_before_and_after(self, api):
        entry = _add(api, type="alias", alias="老邮局", target_code="U005")
        _patch(api, entry, note="旧称")
        history = api.get(f"/v1/addresses/{entry['id']}/history", headers=STAFF).json()
        assert [h["action"] for h in history] == ["create", "update"]
        assert history[0]["before"] is None and history[0]["after"]["target_code"] == "U005"
        assert history[1]["before"]["note"] is None and history[1]["after"]["note"] == "旧称"
        assert all(h["actor"].startswith("admin:") and h["at"] for h in history)

    def test_versions_are_required_and_checked(self, api):
        entry = _add(api, type="alias", alias="老车站", target_code="R057")
        missing = api.patch(f"/v1/addresses/{entry['id']}", json={"note": "x"}, headers=STAFF)
        assert missing.status_code == 428
        _patch(api, entry, note="旧称")
        stale = _patch(api, entry, note="俗称")
        assert stale.status_code == 412 and "版本" in stale.json()["detail"]

    @pytest.mark.parametrize(("body", "message"), [
        ({"type": "alias", "alias": "某某", "target_code": "NOPE"}, "不在地址库"),
        ({"type": "alias", "alias": "某", "target_code": "U005"}, "别名应为"),
        ({"type": "alias", "alias": "某某某"}, "缺少必填字段"),
        ({"type": "address", "road": "府前街", "doorplate": "无号", "building_code": "B000001"}, "门牌"),
        ({"type": "address", "road": "府前街", "doorplate": "901号", "building_code": "B999999"}, "不存在"),
    ])
    def test_an_edit_the_library_cannot_take_is_refused_and_nothing_is_stored(self, api, body, message):
        before = api.get("/v1/addresses/entries", headers=STAFF).json()["total"]
        answer = api.post("/v1/addresses", json=body, headers=STAFF)
        assert answer.status_code == 422 and message in answer.json()["detail"]
        assert api.get("/v1/addresses/entries", headers=STAFF).json()["total"] == before

    def test_a_name_already_kept_is_a_conflict(self, api):
        _add(api, type="alias", alias="老影院", target_code="U027")
        again = api.post("/v1/addresses", json={"type": "alias", "alias": "老影院", "target_code": "U008"},
                         headers=STAFF)
        assert again.status_code == 409


class TestStandardAddressEdits:
    def test_a_new_doorplate_finds_its_building_at_once(self, api, layers):
        building = layers["buildings"].sort_values("code").iloc[100]
        numbers = {int(p.rstrip("号")) for p in layers["buildings"].loc[layers["buildings"]["road"] == "府前街",
                                                                          "doorplate"] if p.rstrip("号").isdigit()}
        free = max(numbers) + 1001
        text = f"临猗县府前街{free}号"
        assert _lookup(api, text)["match"]["building"] is None or \
            _lookup(api, text)["match"]["building"]["code"] != building["code"]
        _add(api, type="address", road="府前街", doorplate=f"{free}号", building_code=building["code"])
        answer = _lookup(api, text)
        assert answer["match"]["building"]["code"] == building["code"]
        assert answer["grid"]["code"] == _lookup(api, building["address"])["grid"]["code"]

    def test_a_new_compound_building_is_found_by_its_name(self, api, layers):
        assert _lookup(api, UNKNOWN)["match"]["unmatched"]
        building = layers["buildings"][layers["buildings"]["address"].str.contains("双塔社区")].sort_values("code").iloc[3]
        _add(api, type="address", road=building["road"], doorplate=building["doorplate"].replace("号", "-2号"),
             compound="瑞雪花园", building_no="2", building_code=building["code"])
        match = _lookup(api, UNKNOWN)["match"]
        assert match["level"] == "building" and match["building"]["code"] == building["code"]
        assert match["unmatched"] == []


class TestOtherProcesses:
    def test_an_edit_made_through_one_process_is_answered_by_another(self, db, api, monkeypatch):
        monkeypatch.setattr(library_edits, "EDIT_POLL_S", 0.0)
        settings = store_settings(db=db, load_sample_if_empty=False, admin_token=ADMIN)
        with TestClient(create_app(settings)) as other:
            assert _lookup(other, "临猗县猗氏镇老面粉厂")["match"]["level"] not in ("building", "compound")
            _add(api, type="alias", alias="老面粉厂", target_code="U052")
            match = _lookup(other, "临猗县猗氏镇老面粉厂")["match"]
            assert match["level"] == "building"
            assert match["building"]["code"] == _lookup(api, "临猗县猗氏镇老面粉厂")["match"]["building"]["code"]

    def test_a_new_process_applies_every_edit_made_before_it_started(self, db, api):
        _add(api, type="alias", alias="老棉厂", target_code="U012")
        settings = store_settings(db=db, load_sample_if_empty=False, admin_token=ADMIN)
        with TestClient(create_app(settings)) as fresh:
            assert _lookup(fresh, "临猗县老棉厂")["match"]["building"] == _lookup(api, "临猗县老棉厂")["match"]["building"]


# suggestions as one types ---------------------------------------------------------------------------

class TestTypeahead:
    def test_names_beginning_with_the_text_come_first_with_their_grids(self, api, layers):
        items = api.get("/v1/addresses", params={"q": "丰林"}).json()["items"]
        assert items and items[0]["text"] == "丰林小区" and len(items) <= 10
        assert all(i["text"].startswith("丰林") for i in items)
        own = _compound_buildings(layers, "丰林小区")
        grids = _grids_of(layers, own)
        assert {g["code"] for g in items[0]["grids"]} == grids

    def test_a_building_number_narrows_to_the_building(self, api, layers):
        items = api.get("/v1/addresses", params={"q": "丰林小区3"}).json()["items"]
        expected = _compound_buildings(layers, "丰林小区")
        expected = expected[expected["building_no"].astype(str).str.startswith("3")]
        assert {i["code"] for i in items} == set(expected["code"])
        for item in items:
            one = expected[expected["code"] == item["code"]]
            assert {g["code"] for g in item["grids"]} == _grids_of(layers, one)

    def test_names_containing_the_text_and_pinyin_initials(self, api):
        inside = api.get("/v1/addresses", params={"q": "林小区"}).json()["items"]
        assert any(i["text"] == "丰林小区" for i in inside)
        sounds = api.get("/v1/addresses", params={"q": "flxq"}).json()["items"]
        assert sounds and sounds[0]["text"] == "丰林小区"

    def test_at_most_ten_and_an_added_alias_is_suggested(self, api):
        assert len(api.get("/v1/addresses", params={"q": "小区"}).json()["items"]) == 10
        _add(api, type="alias", alias="蓝天幼儿园旧址", target_code="U066")
        items = api.get("/v1/addresses", params={"q": "蓝天幼"}).json()["items"]
        assert items and items[0]["text"].startswith("蓝天幼儿园旧址（")

    @pytest.mark.parametrize("q", ["", "   ", "x" * 51])
    def test_empty_or_long_text_is_refused(self, api, q):
        assert api.get("/v1/addresses", params={"q": q}).status_code == 422


def _grids_of(layers, buildings: gpd.GeoDataFrame) -> set[str]:
    """The grids the buildings' points fall in, by an independent spatial join."""
    points = gpd.GeoDataFrame(geometry=buildings.geometry.representative_point(), crs=buildings.crs)
    joined = gpd.sjoin(points, layers["grids"][["code", "geometry"]], predicate="intersects")
    return set(joined["code"])


# what was not found ---------------------------------------------------------------------------------

class TestUnmatched:
    def test_not_found_texts_are_counted_for_staff_most_frequent_first(self, api):
        often, once = "临猗县双塔社区碧云家园5号楼", "临猗县双塔社区碧云家园6号楼"
        expected = "".join(_lookup(api, often)["match"]["unmatched"])
        assert expected.startswith("碧云")
        for _ in range(2):
            _lookup(api, often)
        api.post("/v1/lookup/batch", json=[once])
        page = api.get("/v1/addresses/unmatched", headers=STAFF).json()
        counts = {(i["text"], i["community_code"]): i["count"] for i in page["items"]}
        assert counts[(expected, "140821100014")] == 3
        assert counts[("".join(_lookup(api, once)["match"]["unmatched"]), "140821100014")] == 1
        assert page["items"][0]["count"] >= 3

    def test_a_name_the_parser_did_not_take_for_a_compound_is_counted_without_personal_numbers(self, api):
        answer = _lookup(api, "临猗县双塔社区翠湖名邸6号楼 电话13912345678 身份证140821198804150027")
        assert answer["match"]["level"] in ("community", "town", "county", "none")
        page = api.get("/v1/addresses/unmatched", params={"limit": 500}, headers=STAFF).json()
        texts = [i["text"] for i in page["items"]]
        assert any("翠湖名邸" in t for t in texts)
        assert not any("13912345678" in t or "198804150027" in t for t in texts)

    def test_placed_addresses_are_not_counted(self, api, layers):
        before = api.get("/v1/addresses/unmatched", params={"limit": 500}, headers=STAFF).json()["total"]
        _lookup(api, layers["buildings"].sort_values("code").iloc[7]["address"])
        assert api.get("/v1/addresses/unmatched", params={"limit": 500}, headers=STAFF).json()["total"] == before

    def test_since_leaves_out_earlier_days(self, api):
        _lookup(api, "临猗县双塔社区碧云家园5号楼")
        assert api.get("/v1/addresses/unmatched", params={"since": "2999-01-01"}, headers=STAFF).json()["total"] == 0
        assert api.get("/v1/addresses/unmatched", params={"since": "昨天"}, headers=STAFF).status_code == 422


# who may ----------------------------------------------------------------------------------------------

class TestRoles:
    @pytest.fixture(scope="class")
    def tokens(self, db, layers) -> dict[str, dict[str, str]]:
        store = open_test_store(db)
        worker = layers["workers"].sort_values("code").iloc[0]["code"]
        out = {"public": {}}
        for role in ("planner", "dispatcher"):
            out[role] = {"Authorization": f"Bearer {auth.create_token(store, role=role)[1]}"}
        out["worker"] = {"Authorization": f"Bearer {auth.create_token(store, role='worker', worker_code=worker)[1]}"}
        return out

    @pytest.mark.parametrize(("role", "status"), [("public", 401), ("worker", 403), ("planner", 403),
                                                  ("dispatcher", 201)])
    def test_only_the_command_centre_and_admins_edit_the_library(self, api, tokens, role, status):
        body = {"type": "alias", "alias": f"角色测试{role}", "target_code": "U001"}
        assert api.post("/v1/addresses", json=body, headers=tokens[role]).status_code == status

    @pytest.mark.parametrize(("role", "status"), [("public", 401), ("worker", 403), ("dispatcher", 200)])
    def test_not_found_texts_are_for_staff(self, api, tokens, role, status):
        assert api.get("/v1/addresses/unmatched", headers=tokens[role]).status_code == status

    def test_suggestions_are_for_everyone(self, api):
        assert api.get("/v1/addresses", params={"q": "丰林"}).status_code == 200


def test_the_sample_package_holds_the_layers(tmp_path):
    assert (SAMPLE_PACKAGE / "aliases.csv").is_file() and (SAMPLE_PACKAGE / "addresses.geojson").is_file()
