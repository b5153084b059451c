"""Normalising and parsing addresses typed any way, from anywhere in China (no sample data needed)."""

from __future__ import annotations

import pytest

from gridmap.address import FIELDS, ParsedAddress, check_address, normalize, parse
from gridmap.errors import InvalidInput


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("丰林小区三号楼", "丰林小区3号楼"),
        ("双塔北路十二号", "双塔北路12号"),
        ("二单元", "2单元"),
        ("一〇一室", "101室"),
        ("五楼", "5楼"),
        ("一千零四十六室", "1046室"),
        ("豐林小區３號樓", "丰林小区3号楼"),  # traditional + full width
        ("臨猗縣猗氏鎮", "临猗县猗氏镇"),
        ("丰林 小区 3 号楼，2 单元", "丰林小区3号楼2单元"),
        ("丰林小区（东区）", "丰林小区东区"),
        ("七—六—一〇四六", "7-6-1046"),
        ("3#楼", "3#"),
        ("第三栋", "3栋"),
        ("丰林小区第三栋", "丰林小区3栋"),  # 第 after a generic ending: an ordinal
        ("人民路第5号", "人民路5号"),
        ("2单元第3层", "2单元3层"),
        ("3门第2层", "3门2层"),
        ("和谐门第5号楼", "和谐门第5号楼"),  # 第 in a name (门第) is kept
        ("状元及第3号楼", "状元及第3号楼"),
        ("a座", "A座"),
        ("五一路", "五一路"),  # a road named after a date keeps its name
        ("八家巷小区", "八家巷小区"),  # numerals in a name are not numbers
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_parsed_keys_are_exactly_the_contract():
    d = parse("丰林小区3号楼").to_dict()
    assert tuple(d) == FIELDS == (
        "province", "city", "county", "town", "community", "road", "doorplate",
        "compound", "building", "unit", "floor", "room",
    )  # fmt: skip
    assert isinstance(parse("x"), ParsedAddress)


CASES = [
    (
        "山西省运城市临猗县猗氏镇双塔社区双塔北路12号丰林小区3号楼",
        dict(province="山西省", city="运城市", county="临猗县", town="猗氏镇", community="双塔社区",
             road="双塔北路", doorplate="12号", compound="丰林小区", building="3"),
    ),
    ("丰林小区三号楼二单元五零一", dict(compound="丰林小区", building="3", unit="2", room="501")),
    ("丰林小区3号楼2单元5楼501", dict(compound="丰林小区", building="3", unit="2", floor="5", room="501")),
    ("丰林小区3号楼2单元501室", dict(compound="丰林小区", building="3", unit="2", room="501")),
    ("丰林小区7-6-1046", dict(compound="丰林小区", building="7", unit="6", room="1046")),
    ("丰林小区3-501", dict(compound="丰林小区", building="3", room="501")),
    ("八家巷小区12号", dict(compound="八家巷小区", building="12")),  # bare 号 inside a compound
    ("润田巷3号楼", dict(compound="润田巷", building="3")),  # 巷 followed by a building: a compound
    ("润田巷12号", dict(road="润田巷", doorplate="12号")),
    ("双塔北路12号院", dict(road="双塔北路", doorplate="12号")),
    ("王村新村3栋", dict(compound="王村新村", building="3")),
    ("金荷苑5幢3单元301", dict(compound="金荷苑", building="5", unit="3", room="301")),
    ("丰林小区A座2单元501室", dict(compound="丰林小区", building="A", unit="2", room="501")),
    ("丰林小区3#楼", dict(compound="丰林小区", building="3")),
    ("丰林小区3#2单元", dict(compound="丰林小区", building="3", unit="2")),
    ("梧桐苑十一号楼", dict(compound="梧桐苑", building="11")),
    ("猗氏镇双塔社区丰林3号楼", dict(town="猗氏镇", community="双塔社区", compound="丰林", building="3")),
    ("豐林小區三號樓", dict(compound="丰林小区", building="3")),
    # elsewhere in China
    ("北京市朝阳区建国路88号", dict(province="北京市", city="北京市", county="朝阳区", road="建国路", doorplate="88号")),
    ("盐湖区解放路1号", dict(province="山西省", city="运城市", county="盐湖区", road="解放路", doorplate="1号")),
    ("山西运城盐湖区", dict(province="山西省", city="运城市", county="盐湖区")),
    ("运城盐湖区", dict(province="山西省", city="运城市", county="盐湖区")),
    ("广东省深圳市南山区科技园南区深南大道9988号",
     dict(province="广东省", city="深圳市", county="南山区", doorplate="9988号")),
    ("浙江省杭州市西湖区文三路90号东部软件园2号楼",
     dict(province="浙江省", city="杭州市", county="西湖区", road="文三路", doorplate="90号", compound="东部软件园",
          building="2")),
    ("上海市浦东新区张江路100弄5号601室",
     dict(province="上海市", city="上海市", county="浦东新区", road="张江路", room="601")),
    ("临猗县城关镇某某村12号", dict(province="山西省", city="运城市", county="临猗县", town="城关镇", community="某某村",
                          doorplate="12号")),
    ("新疆维吾尔自治区乌鲁木齐市天山区", dict(province="新疆维吾尔自治区", city="乌鲁木齐市", county="天山区")),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_parse(text, expected):
    got = parse(text).to_dict()
    for key, value in expected.items():
        assert got[key] == value, (key, got)
    # nothing invented beyond what the table above names, except building/unit/room echo checks
    for key in ("unit", "floor", "room"):
        if key not in expected:
            assert got[key] is None, (key, got)


def test_short_names_of_places_are_not_read_into_street_names():
    assert parse("山西路12号").to_dict()["province"] is None
    assert parse("山西路12号").road == "山西路"
    assert parse("长安花园3号楼").county is None
    assert parse("长安花园3号楼").compound == "长安花园"


def test_ambiguous_county_name_leaves_higher_levels_empty():
    p = parse("朝阳区建国路88号")  # 朝阳区 is in Beijing and in Changchun
    assert p.county == "朝阳区"
    assert p.province is None and p.city is None


@pytest.mark.parametrize("bad", ["", "   ", "\u3000\t", "a" * 201, "丰林\x00小区", "\x01\x02\x03", "丰林\ufffd小区", "，。！"])
def test_check_address_rejects(bad):
    with pytest.raises(InvalidInput) as exc:
        check_address(bad)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in exc.value.message)  # a message staff can read


def test_check_address_accepts_and_rejects_non_text():
    assert check_address("丰林小区3号楼") == "丰林小区3号楼"
    assert check_address("x" * 200)
    with pytest.raises(InvalidInput):
        check_address(b"\xe4\xb8\xb0")  # type: ignore[arg-type]


def test_every_generic_ending_lets_an_ordinal_follow():
    """``normalize`` drops 第 before a number only after a character in ``ORDINAL_AFTER``; every generic ending
    the parser and the library know must end in one, or 小区第3栋-like text would keep its 第."""
    from gridmap.address.library import _REGION_SUFFIXES
    from gridmap.address.normalize import ORDINAL_AFTER
    from gridmap.address.parse import COMPOUND_SUFFIXES, ROAD_SUFFIXES

    endings = (*COMPOUND_SUFFIXES, *ROAD_SUFFIXES, *_REGION_SUFFIXES, "号", "栋", "幢", "座", "单元", "层", "室", "期")
    assert {e for e in endings if e[-1] not in ORDINAL_AFTER} == set()
    assert all(normalize(f"某{e}第3号") == f"某{e}3号" for e in endings)
