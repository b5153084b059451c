"""双报到 (issue #13 §1): units and Party members register at communities, service teams, bulk import,
on both store backends, for every kind of caller (docs/security.md, "Staff-maintained records")."""

from __future__ import annotations

import io
import re

import pytest
from cogov_world import HOME, OTHER, World, member_body, world_fixture

from gridmap.cogov import kinds

world = world_fixture("registrations")


def _count(w: World, path: str, **params: str) -> int:
    return w.get(path, params=params).json()["total"]


# units ------------------------------------------------------------------------------------------------

def test_a_unit_registers_at_several_communities_once_each(world: World) -> None:
    body = {"unit_code": "U027", "community_code": HOME, "registered_on": "2025-03-01",
            "contact": {"name": "王芳", "phone": "13912340001"}}
    first = world.post("/v1/registrations/units", "community", json=body).json()
    assert (first["unit_name"], first["community_name"], first["registered_on"]) == ("县文化馆", "双塔社区", "2025-03-01")
    world.post("/v1/registrations/units", json={**body, "community_code": OTHER})
    again = world.post("/v1/registrations/units", "worker", json=body, expect=409)
    assert "已在此社区报到" in again.json()["detail"]

    listed = world.get("/v1/registrations/units", params={"unit": "U027"}).json()
    assert sorted(r["community_code"] for r in listed["items"]) == sorted([HOME, OTHER]) and listed["total"] == 2
    home = world.get("/v1/registrations/units", "worker", params={"unit": "U027"}).json()
    assert [r["community_code"] for r in home["items"]] == [HOME], "a worker lists their own community's"
    got = world.get(f"/v1/registrations/units/{first['id']}", "worker")
    assert got.headers["ETag"] == '"1"' and got.json()["contact_phone"] == "13912340001"
    history = world.get(f"/v1/registrations/units/{first['id']}/history").json()
    assert [(h["action"], h["actor"]) for h in history] == [("create", f"worker:{world.codes['community']}")]


def test_a_unit_must_exist_in_the_units_layer_and_the_community_in_the_package(world: World) -> None:
    unknown = world.post("/v1/registrations/units", json={"unit_code": "U999", "community_code": HOME,
                                                          "registered_on": "2025-03-01"}, expect=422)
    assert "U999" in unknown.json()["detail"]
    nowhere = world.post("/v1/registrations/units", json={"unit_code": "U026", "community_code": "999",
                                                          "registered_on": "2025-03-01"}, expect=422)
    assert "社区编码 999 不存在" in nowhere.json()["detail"]


def test_the_contact_of_a_unit_is_masked_for_planners(world: World) -> None:
    made = world.post("/v1/registrations/units", json={"unit_code": "U028", "community_code": HOME,
                                                       "registered_on": "2025-03-02",
                                                       "contact": {"name": "赵建国", "phone": "13800001234"}}).json()
    seen = world.get(f"/v1/registrations/units/{made['id']}", "planner").json()
    assert (seen["contact_name"], seen["contact_phone"]) == ("赵**", "138****1234")
    assert "13800001234" not in world.get("/v1/registrations/units", "planner").text


# members ----------------------------------------------------------------------------------------------

def test_a_member_gets_a_code_and_is_found_by_community_grid_and_skill(world: World) -> None:
    made = world.post("/v1/registrations/members", "worker",
                      json=member_body("周敏", "13911110001", grid=world.home_grid, skills=("法律咨询", "调解"))).json()
    assert made["code"] == kinds.member_code(made["id"]) and re.fullmatch(r"M\d{5}", made["code"])
    assert made["grid_code"] == world.home_grid and made["skills"] == ["法律咨询", "调解"]
    other = world.post("/v1/registrations/members", json=member_body("孙丽", "13911110002", community=OTHER,
                                                                     unit="U001", skills=("法律咨询",))).json()
    assert other["code"] == kinds.member_code(made["id"] + 1)

    lawyers = world.get("/v1/members", params={"skill": "法律咨询"}).json()["items"]
    assert {m["code"] for m in lawyers} >= {made["code"], other["code"]}
    assert all("法律咨询" in m["skills"] for m in lawyers)
    in_grid = world.get("/v1/members", params={"grid": world.home_grid}).json()["items"]
    assert made["code"] in {m["code"] for m in in_grid} and all(m["grid_code"] == world.home_grid for m in in_grid)
    in_home = world.get("/v1/members", params={"community": HOME, "skill": "法律咨询", "limit": 500}).json()
    assert made["code"] in {m["code"] for m in in_home["items"]} and other["code"] not in {
        m["code"] for m in in_home["items"]}
    assert all(m["community_code"] == HOME and "法律咨询" in m["skills"] for m in in_home["items"])
    got = world.get(f"/v1/members/{made['code']}").json()
    assert got["code"] == made["code"] and got["phone"] == "13911110001"


def test_members_registering_at_the_same_time_get_distinct_codes(world: World) -> None:
    """Codes are predicted from the count; writers racing for the same numbers retry on the taken key."""
    from concurrent.futures import ThreadPoolExecutor

    def register(i: int) -> dict:
        return world.post("/v1/registrations/members", json=member_body(f"同时{i}", f"1390000{i:04d}")).json()

    with ThreadPoolExecutor(max_workers=6) as pool:
        made = list(pool.map(register, range(12)))
    assert len({m["code"] for m in made}) == 12
    assert all(m["code"] == kinds.member_code(m["id"]) for m in made)
    for m in made:
        assert world.get(f"/v1/members/{m['code']}").json()["name"] == m["name"]


def test_a_member_is_placed_in_a_grid_of_their_own_community(world: World) -> None:
    wrong = world.post("/v1/registrations/members", json=member_body(grid="140821100010-01"), expect=422)
    assert "不属于社区" in wrong.json()["detail"]


def test_phones_are_personal_data(world: World) -> None:
    """Own community: as stored; planners: masked with the name; another community's worker: not listed, 403."""
    made = world.post("/v1/registrations/members", json=member_body("钱小红", "13922223333")).json()
    path = f"/v1/members/{made['code']}"
    for role in ("worker", "community", "dispatcher", "admin"):
        assert world.get(path, role).json()["phone"] == "13922223333", role
    planner = world.get(path, "planner").json()
    assert (planner["phone"], planner["name"]) == ("139****3333", "钱**")
    total = world.get("/v1/members", "planner", params={"limit": 1}).json()["total"]
    newest = world.get("/v1/members", "planner", params={"limit": 5, "offset": max(0, total - 5)})
    assert made["code"] in {m["code"] for m in newest.json()["items"]} and "13922223333" not in newest.text
    assert "13922223333" not in world.get(f"{path}/history", "planner").text
    world.get(path, "outsider", expect=403)
    world.get(f"{path}/history", "outsider", expect=403)
    listed = world.get("/v1/members", "outsider", params={"community": HOME}).json()
    assert listed == {"items": [], "total": 0}
    world.get(path, "public", expect=401)
    world.get("/v1/members", "public", expect=401)


def test_who_may_register(world: World) -> None:
    world.post("/v1/registrations/members", "public", json=member_body(), expect=401)
    world.post("/v1/registrations/members", "planner", json=member_body(), expect=403)
    world.post("/v1/registrations/members", "outsider", json=member_body(), expect=403)
    world.post("/v1/registrations/members", "outsider", json=member_body(community=OTHER, unit="U001"))
    world.post("/v1/registrations/units", "outsider", expect=403,
               json={"unit_code": "U029", "community_code": HOME, "registered_on": "2025-03-01"})


# teams ------------------------------------------------------------------------------------------------

def test_a_service_team_is_made_of_members_of_its_community(world: World) -> None:
    a = world.post("/v1/registrations/members", json=member_body("吴刚", "13933330001", skills=("维修", "电工"))).json()
    b = world.post("/v1/registrations/members", json=member_body("郑洁", "13933330002", skills=("医疗",))).json()
    stranger = world.post("/v1/registrations/members", json=member_body("冯涛", "13933330003", community=OTHER,
                                                                        unit="U001")).json()
    team = world.post("/v1/teams", "worker", json={"name": "丰林小区党员服务队", "community_code": HOME,
                                                   "station_code": "S028", "members": [a["code"], b["code"]]}).json()
    assert team["code"] == kinds.team_code(team["id"]) and team["station_name"] == "丰林小区党群服务站"
    assert team["members"] == [a["code"], b["code"]]
    assert world.get(f"/v1/teams/{team['code']}", "community").json()["code"] == team["code"]
    assert team["code"] in {t["code"] for t in world.get("/v1/teams", params={"station": "S028"}).json()["items"]}
    world.get(f"/v1/teams/{team['code']}", "outsider", expect=403)
    assert world.get(f"/v1/teams/{team['code']}/history").json()[0]["action"] == "create"

    foreign = world.post("/v1/teams", json={"name": "x", "community_code": HOME, "members": [stranger["code"]]},
                         expect=422)
    assert stranger["code"] in foreign.json()["detail"]
    world.post("/v1/teams", json={"name": "x", "community_code": HOME, "members": ["M99999"]}, expect=422)
    station = world.post("/v1/teams", json={"name": "x", "community_code": HOME, "station_code": "S001",
                                            "members": [a["code"]]}, expect=422)
    assert "S001" in station.json()["detail"]
    world.post("/v1/teams", "planner", json={"name": "x", "community_code": HOME, "members": [a["code"]]},
               expect=403)


# bulk import ------------------------------------------------------------------------------------------

MEMBER_HEADER = "姓名,手机,单位编码,社区编码,网格编码,技能,报到日期"


def _csv(*rows: str, header: str = MEMBER_HEADER, encoding: str = "utf-8") -> bytes:
    return "\n".join((header, *rows)).encode(encoding)


def _xlsx(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _import(w: World, what: str, data: bytes, role: str = "admin", *, expect: int = 201, **params: str):
    kind = "text/csv" if not data.startswith(b"PK") else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return w.post(f"/v1/registrations/{what}/import", role, content=data, params=params,
                  headers={"Content-Type": kind}, expect=expect)


def test_members_are_imported_from_a_gbk_csv(world: World) -> None:
    before = _count(world, "/v1/members")
    data = _csv(f"陈志远,13944440001,U026,{HOME},{world.home_grid},维修、电工,2025/3/5",
                "",  # blank lines are skipped, as Excel users leave them
                f"林晓燕,13944440002,U030,{HOME},,医疗；心理疏导,2025年3月6日", encoding="gbk")
    done = _import(world, "members", data, "worker").json()
    assert done["total"] == 2 and _count(world, "/v1/members") == before + 2
    first, second = done["items"]
    assert (first["name"], first["skills"], first["registered_on"]) == ("陈志远", ["维修", "电工"], "2025-03-05")
    assert (second["skills"], second["registered_on"], second["grid_code"]) == (["医疗", "心理疏导"], "2025-03-06", None)
    assert second["code"] == kinds.member_code(first["id"] + 1)


def test_a_table_may_come_as_a_form_upload(world: World) -> None:
    data = _csv(f"罗军,13944440003,U026,{HOME},,维修,2025-03-07")
    done = world.post("/v1/registrations/members/import", "community",
                      files={"file": ("党员报到.csv", data, "text/csv")}).json()
    assert [m["name"] for m in done["items"]] == ["罗军"]
    world.post("/v1/registrations/members/import", data={"other": "x"}, expect=422)


def test_units_are_imported_from_xlsx_with_excel_dates(world: World) -> None:
    from datetime import datetime

    data = _xlsx([["单位编码", "社区编码", "报到日期", "联系人", "联系电话"],
                  ["U030", HOME, datetime(2025, 3, 8), "刘伟", 13955550001],
                  ["U031", HOME, "2025-03-09", None, None]])
    done = _import(world, "units", data, "community").json()
    assert [(r["unit_code"], r["registered_on"]) for r in done["items"]] == [("U030", "2025-03-08"), ("U031", "2025-03-09")]
    assert done["items"][0]["contact_phone"] == "13955550001"


@pytest.mark.parametrize(("row", "column", "words"), [
    (f"王五,13944449999,U999,{HOME},,,2025-03-01", "C 列（单位编码）", "U999"),
    (f"王五,13944449999,U026,{HOME},140821100010-01,,2025-03-01", "E 列（网格编码）", "不属于社区"),
    (f"王五,13944449999,U026,{HOME},,,三月一日", "G 列（报到日期）", "无法识别"),
    (f",13944449999,U026,{HOME},,,2025-03-01", "A 列（姓名）", "不能为空"),
    (f"王五,139,U026,{HOME},,,2025-03-01", "B 列（手机）", "至少 5 个字符"),
    ("王五,13944449999,U026,999,,,2025-03-01", "D 列（社区编码）", "不存在"),
])
def test_a_bad_member_row_names_its_row_and_column_and_nothing_is_written(world: World, row: str, column: str,
                                                                          words: str) -> None:
    before = _count(world, "/v1/members")
    data = _csv(f"好人,13944448888,U026,{HOME},,,2025-03-01", f"好人二,13944448887,U026,{HOME},,,2025-03-01", row)
    answer = _import(world, "members", data, expect=422).json()
    assert answer["detail"].startswith(f"第 4 行 {column}") and words in answer["detail"], answer["detail"]
    assert "未导入任何记录" in answer["detail"]
    assert answer["problems"][0]["row"] == 4 and answer["problems"][0]["column"] == column[0]
    assert _count(world, "/v1/members") == before


def test_every_bad_row_is_listed(world: World) -> None:
    data = _csv(f"甲,13944447777,U999,{HOME},,,2025-03-01", f"乙,13944447776,U026,{HOME},,,2025-03-01",
                f"丙,13944447775,U026,{HOME},,,bad")
    answer = _import(world, "members", data, expect=422).json()
    assert [(p["row"], p["column"]) for p in answer["problems"]] == [(2, "C"), (4, "G")]


def test_a_missing_column_is_named(world: World) -> None:
    answer = _import(world, "members", _csv(f"甲,U026,{HOME},2025-03-01", header="姓名,单位编码,社区编码,报到日期"),
                     expect=422).json()
    assert "缺少列" in answer["detail"] and "手机" in answer["detail"]


def test_a_unit_twice_in_a_file_or_already_registered_is_refused_whole(world: World) -> None:
    before = _count(world, "/v1/registrations/units")
    twice = _csv(f"U032,{HOME},2025-03-01", f"U032,{HOME},2025-03-02", header="单位编码,社区编码,报到日期")
    answer = _import(world, "units", twice, expect=422).json()
    assert answer["detail"].startswith("第 3 行 A 列（单位编码）：与第 2 行重复")
    world.post("/v1/registrations/units", json={"unit_code": "U025", "community_code": HOME,
                                                 "registered_on": "2025-03-01"})
    taken = _csv(f"U024,{HOME},2025-03-01", f"U025,{HOME},2025-03-02", header="单位编码,社区编码,报到日期")
    assert "第 3 行 A 列（单位编码）：该单位已在此社区报到" in _import(world, "units", taken, expect=422).json()["detail"]
    assert _count(world, "/v1/registrations/units") == before + 1


def test_a_row_of_another_community_is_forbidden_and_nothing_is_written(world: World) -> None:
    before = _count(world, "/v1/members")
    data = _csv(f"甲,13944446666,U026,{HOME},,,2025-03-01", f"乙,13944446665,U001,{OTHER},,,2025-03-01")
    answer = _import(world, "members", data, "worker", expect=403).json()
    assert answer["detail"].startswith("第 3 行 D 列（社区编码）")
    assert _count(world, "/v1/members") == before
    _import(world, "members", data, "planner", expect=403)
    _import(world, "members", data, "public", expect=401)


# corrections ------------------------------------------------------------------------------------------

def _patch(w: World, path: str, body: dict, role: str = "admin", *, version: str | None = "current",
           expect: int = 200):
    headers = dict(w.headers[role])
    if version == "current":
        headers["If-Match"] = w.get(path).headers["ETag"]
    elif version is not None:
        headers["If-Match"] = version
    answer = w.client.patch(path, json=body, headers=headers)
    assert answer.status_code == expect, answer.text
    return answer


def test_a_member_moves_grid_and_learns_a_skill_with_the_current_version(world: World) -> None:
    made = world.post("/v1/registrations/members", json=member_body("何平", "13988880001")).json()
    path = f"/v1/members/{made['code']}"
    grids = world.layers["grids"]
    grid = sorted(grids.loc[grids["community_code"] == HOME, "code"])[1]
    moved = _patch(world, path, {"grid_code": grid, "skills": ["维修", "法律咨询"]}, "worker").json()
    assert (moved["code"], moved["grid_code"], moved["skills"], moved["version"]) == (made["code"], grid,
                                                                                     ["维修", "法律咨询"], 2)
    _patch(world, path, {"skills": ["医疗"]}, version=None, expect=428)
    _patch(world, path, {"skills": ["医疗"]}, version='"1"', expect=412)
    _patch(world, path, {"grid_code": "140821100010-01"}, expect=422)
    _patch(world, path, {"status": "withdrawn"}, "outsider", expect=403)
    _patch(world, path, {"status": "withdrawn"}, "planner", expect=403)
    _patch(world, path, {"status": "withdrawn"}, "public", expect=401)
    _patch(world, path, {}, expect=422)
    _patch(world, "/v1/members/M99999", {"status": "withdrawn"}, version='"1"', expect=404)
    history = world.get(f"{path}/history", "community").json()
    assert [h["action"] for h in history] == ["create", "update"]
    assert (history[1]["before"]["grid_code"], history[1]["after"]["grid_code"]) == (None, grid)
    assert history[1]["actor"] == f"worker:{world.codes['worker']}"
    gone = _patch(world, path, {"status": "withdrawn", "grid_code": ""}).json()
    assert (gone["status"], gone["grid_code"], gone["skills"]) == ("withdrawn", None, ["维修", "法律咨询"])


def test_a_unit_contact_and_a_team_are_corrected(world: World) -> None:
    made = world.post("/v1/registrations/units", json={"unit_code": "U023", "community_code": HOME,
                                                       "registered_on": "2025-03-01"}).json()
    path = f"/v1/registrations/units/{made['id']}"
    changed = _patch(world, path, {"contact": {"name": "马丽", "phone": "13900009999"}}, "community").json()
    assert (changed["contact_name"], changed["contact_phone"], changed["status"]) == ("马丽", "13900009999", "active")
    assert world.get(path, "planner").json()["contact_phone"] == "139****9999"
    assert _patch(world, path, {"status": "withdrawn"}).json()["status"] == "withdrawn"

    a = world.post("/v1/registrations/members", json=member_body("甲一", "13988880011")).json()
    b = world.post("/v1/registrations/members", json=member_body("乙二", "13988880012")).json()
    team = world.post("/v1/teams", json={"name": "服务队", "community_code": HOME, "members": [a["code"]]}).json()
    tpath = f"/v1/teams/{team['code']}"
    grown = _patch(world, tpath, {"members": [a["code"], b["code"]], "station_code": "S027"}, "worker").json()
    assert (grown["members"], grown["station_name"]) == ([a["code"], b["code"]], "圣慧小区党群服务站")
    _patch(world, tpath, {"station_code": "S001"}, expect=422)
    _patch(world, tpath, {"members": ["M99999"]}, expect=422)
