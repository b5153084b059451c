"""Which grid worker covers this address: GET /v1/lookup?address=, the batch endpoint and the CLI."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gridmap.address import FIELDS


def building(sample_layers, compound: str, number: str, community: str | None = None):
    b = sample_layers["buildings"]
    rows = b[(b["compound"] == compound) & (b["building_no"] == number)]
    if community:
        rows = rows[rows["address"].str.contains(community)]
    assert len(rows) == 1, (compound, number, community, len(rows))
    return rows.iloc[0]


def grid_of(client, b) -> str:
    """The grid covering a building, asked by a point inside it (the point lookup is tested elsewhere)."""
    p = b.geometry.representative_point()
    return client.get("/v1/lookup", params={"lon": p.x, "lat": p.y}).json()["grid"]["code"]


def ask(client, address: str):
    response = client.get("/v1/lookup", params={"address": address})
    return response.status_code, response.json()


class TestSingleAddress:
    @pytest.mark.parametrize(
        "typed",
        [
            "山西省运城市临猗县猗氏镇双塔社区{road}{door}丰林小区3号楼",
            "临猗县双塔社区丰林小区3号楼2单元501",
            "丰林小区三号楼",
            "丰林小区3栋",
            "丰林3号楼",
            "丰林小区3-2-501",
            "ＦＥＮＧＬＩＮ ＸＩＡＯＱＵ ３ ＨＡＯ ＬＯＵ".lower(),
            "豐林小區3號樓",
        ],
    )
    def test_building_level_answers_name_the_building_and_its_grid(self, client, sample_layers, typed) -> None:
        target = building(sample_layers, "丰林小区", "3")
        status, body = ask(client, typed.format(road=target["road"], door=target["doorplate"]))
        assert status == 200
        match = body["match"]
        assert match["level"] == "building" and not match["ambiguous"]
        assert match["building"]["code"] == target["code"]
        assert match["address"] == target["address"]
        assert body["grid"]["code"] == grid_of(client, target)
        assert body["covered"] and body["workers"] and body["station"]["distance_m"] >= 0

    def test_unit_floor_and_room_are_echoed_but_do_not_move_the_answer(self, client, sample_layers) -> None:
        _, plain = ask(client, "丰林小区3号楼")
        _, detailed = ask(client, "丰林小区3号楼2单元5层501室")
        assert detailed["match"]["building"] == plain["match"]["building"]
        assert detailed["grid"] == plain["grid"]
        parsed = detailed["match"]["parsed"]
        assert set(parsed) == set(FIELDS)
        assert (parsed["building"], parsed["unit"], parsed["floor"], parsed["room"]) == ("3", "2", "5", "501")

    def test_compound_level(self, client, sample_layers) -> None:
        status, body = ask(client, "猗氏镇涑水社区金荷苑")
        assert status == 200 and body["match"]["level"] == "compound"
        compound = sample_layers["buildings"].query("compound == '金荷苑'")
        assert body["match"]["building"]["code"] in set(compound["code"])
        assert body["community"]["name"] == "涑水社区"
        assert body["grid"]["code"] in {g["code"] for g in body["grids"]}

    def test_road_and_doorplate(self, client, sample_layers) -> None:
        b = sample_layers["buildings"]
        house = b[(b["compound"] == "") & (b["road"].str.endswith("路"))].iloc[0]
        status, body = ask(client, f"{house['road']}{house['doorplate']}")
        assert status == 200
        assert body["match"]["building"]["code"] == house["code"]
        assert body["grid"]["code"] == grid_of(client, house)

    def test_community_level_lists_every_grid_and_the_staff(self, client, sample_layers) -> None:
        status, body = ask(client, "双塔社区")
        assert status == 200 and body["match"]["level"] == "community"
        grids = sample_layers["grids"]
        assert {g["code"] for g in body["grids"]} == set(grids.loc[grids["community_code"] == "140821100014", "code"])
        assert {"网格长", "专职网格员"} <= {w["role"] for w in body["workers"]}
        assert body["grid"] is None and body["covered"] is False

    def test_a_compound_the_library_does_not_hold_answers_its_community_and_says_so(self, client, sample_layers):
        """Issue #12: never a look-alike's building (and so never a look-alike's grid worker)."""
        status, body = ask(client, "双塔社区向阳小区4号楼")
        assert status == 200
        match = body["match"]
        assert (match["level"], match["building"], match["unmatched"]) == ("community", None, ["向阳小区", "4号楼"])
        assert body["grid"] is None and body["covered"] is False
        grids = sample_layers["grids"]
        assert {g["code"] for g in body["grids"]} == set(grids.loc[grids["community_code"] == "140821100014", "code"])
        assert match["candidates"]  # the look-alikes, for staff to choose from

    def test_town_level(self, client, sample_layers) -> None:
        _, body = ask(client, "山西省运城市临猗县猗氏镇")
        assert body["match"]["level"] == "town" and body["town"]["name"] == "猗氏镇"
        assert len(body["grids"]) == len(sample_layers["grids"])
        assert {w["role"] for w in body["workers"]} <= {"网格长", "社区民警"}

    def test_the_same_compound_name_in_two_communities_is_ambiguous(self, client, sample_layers) -> None:
        b = sample_layers["buildings"]
        communities = b[b["compound"] == "幸福小区"]["address"].str.extract(r"猗氏镇(.+?社区)")[0].unique()
        assert len(communities) == 2
        _, body = ask(client, "幸福小区1号楼")
        assert body["match"]["ambiguous"] is True
        seen = {c["community_code"] for c in body["match"]["candidates"]}
        assert len(seen) == 2
        assert all(c["grid_code"] for c in body["match"]["candidates"] if c["building"])
        _, named = ask(client, f"{communities[0]}幸福小区1号楼")
        assert named["match"]["ambiguous"] is False and named["community"]["name"] == communities[0]

    def test_a_building_number_without_a_compound_is_not_guessed(self, client) -> None:
        _, body = ask(client, "3号楼")
        assert body["match"]["level"] != "building" or body["match"]["ambiguous"]

    @pytest.mark.parametrize(
        ("typed", "level"),
        [("北京市朝阳区建国路88号", "none"), ("广东省深圳市南山区科技园", "none"), ("山西省运城市临猗县", "county")],
    )
    def test_addresses_elsewhere_never_fail(self, client, typed, level) -> None:
        status, body = ask(client, typed)
        assert status == 200 and body["match"]["level"] == level
        assert body["match"]["parsed"]["province"] in ("北京市", "广东省", "山西省")

    def test_parsing_fills_in_higher_levels(self, client) -> None:
        _, body = ask(client, "盐湖区解放路100号")
        parsed = body["match"]["parsed"]
        assert (parsed["province"], parsed["city"], parsed["county"]) == ("山西省", "运城市", "盐湖区")

    @pytest.mark.parametrize(
        ("typed", "message"),
        [("", "不能为空"), ("   ", "不能为空"), ("丰" * 201, "过长"), ("丰林\x00小区", "控制字符")],
    )
    def test_bad_input_is_a_422_with_a_message(self, client, typed, message) -> None:
        status, body = ask(client, typed)
        assert status == 422 and message in body["detail"]


class TestBatch:
    def test_json_list_of_addresses_and_points_in_order(self, client, sample_layers) -> None:
        target = building(sample_layers, "丰林小区", "3")
        items = ["丰林小区3号楼", {"lon": 110.7693, "lat": 35.1425}, {"address": "金荷苑"}, {"lon": "x"}, ""]
        response = client.post("/v1/lookup/batch", json=items)
        assert response.status_code == 200
        answers = response.json()
        assert len(answers) == 5
        assert answers[0]["match"]["building"]["code"] == target["code"]
        assert answers[1]["grid"]["code"] == client.get("/v1/lookup?lon=110.7693&lat=35.1425").json()["grid"]["code"]
        assert answers[2]["community"]["name"] == "涑水社区"
        assert answers[3] == {"row": 3, "error": answers[3]["error"]} and "经纬度" in answers[3]["error"]
        assert "不能为空" in answers[4]["error"]

    def test_csv_in_csv_out_with_columns_appended(self, client) -> None:
        body = "id,address\n1,丰林小区3号楼\n2,双塔社区\n3,北京市朝阳区\n"
        response = client.post("/v1/lookup/batch", content=body.encode(), headers={"content-type": "text/csv"})
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert [r["id"] for r in rows] == ["1", "2", "3"]
        assert rows[0]["match_level"] == "building" and rows[0]["grid_code"] and rows[0]["worker_phones"]
        assert rows[1]["match_level"] == "community" and rows[1]["grid_code"] == ""
        assert rows[2]["match_level"] == "none" and rows[2]["ambiguous"] == "false"

    def test_csv_as_an_uploaded_file(self, client) -> None:
        files = {"file": ("in.csv", "address\n金荷苑\n".encode(), "text/csv")}
        response = client.post("/v1/lookup/batch", files=files)
        assert response.status_code == 200
        assert list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))[0]["community"] == "涑水社区"

    def test_csv_without_an_address_column_is_422(self, client) -> None:
        response = client.post("/v1/lookup/batch", content=b"name\nx\n", headers={"content-type": "text/csv"})
        assert response.status_code == 422 and "address" in response.json()["detail"]

    def test_more_than_100000_rows_is_413(self, client) -> None:
        response = client.post("/v1/lookup/batch", json=["x"] * 100_001)
        assert response.status_code == 413 and "100000" in response.json()["detail"]

    def test_not_a_list_is_422(self, client) -> None:
        assert client.post("/v1/lookup/batch", json={"address": "x"}).status_code == 422
        assert client.post("/v1/lookup/batch", content=b"{oops", headers={"content-type": "application/json"}
                           ).status_code == 422


class TestCommandLine:
    def run(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gridmap", "lookup", *map(str, args)],
                              capture_output=True, text=True, timeout=120)

    def test_lookup_an_address(self, sample_db) -> None:
        result = self.run("丰林小区3号楼", "--db", sample_db, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["match"]["level"] == "building"
        text = self.run("丰林小区3号楼", "--db", sample_db).stdout
        assert "丰林小区3号楼" in text and "专职网格员" in text

    def test_csv_batch_writes_the_file_and_a_summary(self, sample_db, tmp_path: Path) -> None:
        src = tmp_path / "in.csv"
        src.write_text("address\n丰林小区3号楼\n金荷苑\n北京市朝阳区\n幸福小区1号楼\n", encoding="utf-8")
        result = self.run("--csv", src, "--out", tmp_path / "out.csv", "--db", sample_db)
        assert result.returncode == 0, result.stderr
        rows = list(csv.DictReader(open(tmp_path / "out.csv", encoding="utf-8-sig")))
        assert [r["match_level"] for r in rows] == ["building", "compound", "none", "building"]
        assert "building 2" in result.stdout and "有歧义 1" in result.stdout and "未匹配 1" in result.stdout

    def test_bad_address_exits_non_zero(self, sample_db) -> None:
        result = self.run("   ", "--db", sample_db)
        assert result.returncode == 1 and "不能为空" in result.stderr
