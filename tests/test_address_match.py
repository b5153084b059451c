"""Matching hand-typed addresses against the sample county (geodata/linyi)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest

from gridmap.errors import InvalidInput

DATA = Path(__file__).resolve().parents[1] / "geodata" / "linyi"


@pytest.fixture(scope="session")
def linyi_layers():
    if not (DATA / "buildings.geojson").exists():
        pytest.skip("sample county geodata/linyi not built")
    return {n: gpd.read_file(DATA / f"{n}.geojson") for n in ("buildings", "regions", "grids", "roads", "stations", "units")}


@pytest.fixture(scope="session")
def matcher(linyi_layers):
    from gridmap.address import AddressMatcher

    return AddressMatcher.from_layers(linyi_layers)


def building(layers, name: str, community: str | None = None) -> str:
    """Code of the building with this standard name (and community), read from the data itself."""
    b = layers["buildings"]
    rows = b[b["name"] == name]
    if community is not None:
        rows = rows[rows["address"].str.contains(community)]
    assert len(rows) == 1, f"{name} {community}: {len(rows)} rows"
    return str(rows["code"].iloc[0])


# text typed by an operator → (standard building name, its community)
BUILDING_CASES = [
    ("山西省运城市临猗县猗氏镇中城社区双塔北路25号梧桐苑6号楼", "梧桐苑6号楼", "中城社区"),
    ("梧桐苑6号楼", "梧桐苑6号楼", "中城社区"),
    ("梧桐苑六号楼", "梧桐苑6号楼", "中城社区"),
    ("梧桐苑6栋", "梧桐苑6号楼", "中城社区"),
    ("梧桐苑6幢", "梧桐苑6号楼", "中城社区"),
    ("梧桐苑6#", "梧桐苑6号楼", "中城社区"),
    ("梧桐苑6号", "梧桐苑6号楼", "中城社区"),
    ("梧桐苑6-2-501", "梧桐苑6号楼", "中城社区"),
    ("梧桐苑6号楼二单元五零一", "梧桐苑6号楼", "中城社区"),
    ("中城社区梧桐苑6号楼3单元12层1203室", "梧桐苑6号楼", "中城社区"),
    ("临猗县梧桐苑6号楼", "梧桐苑6号楼", "中城社区"),
    ("中城梧桐苑6号楼", "梧桐苑6号楼", "中城社区"),
    ("双塔北路25号6号楼", "梧桐苑6号楼", "中城社区"),
    ("梧同苑6号楼", "梧桐苑6号楼", "中城社区"),  # homophone typo
    ("wutong yuan 6 hao lou", "梧桐苑6号楼", "中城社区"),
    ("wutongyuan 6#", "梧桐苑6号楼", "中城社区"),
    ("梧桐苑　６號樓", "梧桐苑6号楼", "中城社区"),
    ("兴盛花园8号楼", "兴盛花园8号楼", "葫芦岛社区"),
    ("葫芦岛社区文化路123号兴盛花园8号楼", "兴盛花园8号楼", "葫芦岛社区"),
    ("明珠小区2号楼", "明珠小区2号楼", "双塔社区"),
    ("丰林2号楼", "丰林小区2号楼", "双塔社区"),  # 小区 dropped
    ("fenglin xiaoqu 2 hao lou", "丰林小区2号楼", "双塔社区"),
    ("flxq 2#", "丰林小区2号楼", "双塔社区"),
    ("光荣1号楼", "光荣小区1号楼", "中城社区"),
    ("针只小区3号楼", "针织小区3号楼", "西郊社区"),  # homophone typo
    ("明株小区2号楼", "明珠小区2号楼", "双塔社区"),  # typo
    ("杏林新村十号楼", "杏林新村10号楼", "崇相西社区"),
    ("友谊街77号", "友谊街77号", "贵戚坊社区"),
    ("友谊路77号", "友谊街77号", "贵戚坊社区"),  # wrong road suffix
    ("贵戚坊社区友谊街七十七号", "友谊街77号", "贵戚坊社区"),
    ("八家巷165号", "八家巷165号", "合欢社区"),
    ("临猗县猗氏镇合欢社区八家巷165号", "八家巷165号", "合欢社区"),
    ("临化社区幸福小区3号楼", "幸福小区3号楼", "临化社区"),
    ("郇阳社区幸福小区3号楼", "幸福小区3号楼", "郇阳社区"),
    ("府前街337号幸福小区3号楼", "幸福小区3号楼", "郇阳社区"),
]


@pytest.mark.parametrize(("text", "name", "community"), BUILDING_CASES, ids=[c[0] for c in BUILDING_CASES])
def test_building_match(matcher, linyi_layers, text, name, community):
    r = matcher.match(text)
    assert r.level == "building", r
    assert r.building is not None and r.building.code == building(linyi_layers, name, community)
    assert not r.ambiguous
    assert r.address and r.address.endswith(name)
    assert 0.0 < r.score <= 1.0
    assert r.grid_code is not None


def test_unit_and_room_are_echoed_but_do_not_change_the_building(matcher):
    a = matcher.match("梧桐苑6号楼")
    b = matcher.match("梧桐苑6号楼2单元501")
    assert a.building == b.building
    assert b.parsed["unit"] == "2" and b.parsed["room"] == "501"
    c = matcher.match("梧桐苑7-6-1046")
    assert c.parsed["building"] == "7" and c.parsed["unit"] == "6" and c.parsed["room"] == "1046"


def test_stem_shared_by_two_compounds_is_ambiguous(matcher, linyi_layers):
    r = matcher.match("明珠2号楼")  # 明珠小区 and 明珠花园 both have a building 2
    assert r.ambiguous
    assert len({c.building.code for c in r.candidates if c.building}) >= 2


def test_same_compound_name_in_two_communities_is_ambiguous(matcher, linyi_layers):
    r = matcher.match("幸福小区3号楼")
    assert r.ambiguous
    codes = {c.building.code for c in r.candidates if c.building}
    assert building(linyi_layers, "幸福小区3号楼", "临化社区") in codes
    assert building(linyi_layers, "幸福小区3号楼", "郇阳社区") in codes


def test_building_number_alone_is_ambiguous_and_names_no_building(matcher):
    r = matcher.match("3号楼")
    assert r.ambiguous
    assert r.level in ("county", "town", "community")
    assert r.building is None
    r = matcher.match("双塔社区3号楼")
    assert r.ambiguous and r.level == "community" and r.building is None


def test_compound_level(matcher, linyi_layers):
    r = matcher.match("梧桐苑")
    assert r.level == "compound"
    b = linyi_layers["buildings"]
    members = set(b[(b["compound"] == "梧桐苑") & b["address"].str.contains("中城社区")]["code"])
    assert set(r.buildings) == members
    assert r.building is not None and r.building.code in members


def test_a_doorplate_the_library_lacks_answers_the_road_not_a_building(matcher, linyi_layers):
    """(Where on the road it should be: tests/test_house_numbers.py.)"""
    b = linyi_layers["buildings"]
    doors = set(b[b["road"] == "友谊街"]["doorplate"])
    missing = next(f"{n}号" for n in range(1, 2000) if f"{n}号" not in doors)
    r = matcher.match(f"友谊街{missing}")
    assert r.level == "road"
    assert r.building is None
    roads = linyi_layers["roads"]
    assert r.code == roads.loc[roads["name"] == "友谊街", "code"].iat[0]


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("山西省运城市临猗县", "county"),
        ("临猗县", "county"),
        ("山西省运城市临猗县猗氏镇", "town"),
        ("猗氏镇双塔社区", "community"),
        ("双塔社区", "community"),
        ("北京市朝阳区建国路88号", "none"),
        ("广东省深圳市南山区深南大道9988号", "none"),
        ("山西省运城市盐湖区解放路1号", "none"),
        ("临猗县北辛乡某某村12号", "county"),
        ("完全不相干的文字", "none"),
    ],
)
def test_admin_levels_and_outside(matcher, text, level):
    r = matcher.match(text)
    assert r.level == level, r
    if level in ("county", "town", "community"):
        assert r.code and r.code.startswith("140821")
    if level == "none":
        assert r.building is None


def test_community_level_codes(matcher, linyi_layers):
    regions = linyi_layers["regions"]
    code = regions[regions["name"] == "双塔社区"]["code"].iloc[0]
    assert matcher.match("双塔社区").code == code
    assert matcher.match("双塔").code == code


def test_pinyin_initials(matcher, linyi_layers):
    r = matcher.match("wty 6 hao lou")  # 梧桐苑 by its initials
    assert r.building is not None and r.building.code == building(linyi_layers, "梧桐苑6号楼", "中城社区")


def test_aliases_layer(linyi_layers):
    import pandas as pd

    from gridmap.address import AddressMatcher

    target = building(linyi_layers, "梧桐苑6号楼", "中城社区")
    layers = dict(linyi_layers)
    layers["aliases"] = pd.DataFrame({"alias": ["老电影院宿舍"], "target_code": [target]})
    m = AddressMatcher.from_layers(layers)
    r = m.match("老电影院宿舍")
    assert r.building is not None and r.building.code == target


@pytest.mark.parametrize("bad", ["", "   ", "丰林\x00小区", "字" * 201])
def test_bad_input_raises(matcher, bad):
    with pytest.raises(InvalidInput):
        matcher.match(bad)


def test_candidates_shape(matcher):
    r = matcher.match("幸福小区3号楼")
    assert 1 <= len(r.candidates) <= 5
    for c in r.candidates:
        assert c.level in ("building", "compound", "road", "community", "town", "county")
        assert 0.0 <= c.score <= 1.0
    body = r.model_dump()
    assert set(body["parsed"]) >= {"compound", "building", "unit", "room"}


def test_match_many_tolerates_bad_rows(matcher):
    out = matcher.match_many(["梧桐苑6号楼", "", "梧桐苑6号楼"])
    assert out[0].level == "building" and out[1].level == "none" and out[2].building == out[0].building


def test_never_raises_on_arbitrary_text(matcher):
    import random

    rng = random.Random(5)
    alphabet = "丰林小区号楼栋单元室路街巷社区镇县市省-#0123456789ABCxyz 　，。一二三十百豐號"
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        try:
            r = matcher.match(text)
        except InvalidInput:
            continue
        assert r.level in ("building", "compound", "road", "community", "town", "county", "none")
        assert 0.0 <= r.score <= 1.0


# Places the library does not hold (issue #12): plausible names written by hand, in real communities. A
# name like a neighbour's (和平小区 / 河畔小区, 胜利家园 / 盛世家园) must never come back as that neighbour's
# building unflagged: the answer is flagged, and its level and candidates say what is known.
INVENTED = ["和平小区2号楼", "胜利家园1号楼", "中城社区红旗小区2号楼", "建设新村1号楼", "电业局家属院2号楼",
            "红旗小区5号楼", "光明小区1号楼", "团结小区3号楼", "人民小区2号楼", "双塔社区向阳小区4号楼",
            "新华家园6号楼", "东方花园2号楼", "西郊社区友谊小区1号楼", "朝阳新村3号楼", "兴隆家园2号楼",
            "育才小区1号楼", "翠柳小区3号楼", "天福家园5号楼"]


@pytest.mark.parametrize("text", INVENTED)
def test_a_compound_the_library_does_not_hold_is_never_a_confident_building(matcher, linyi_layers, text):
    compounds = set(linyi_layers["buildings"]["compound"].dropna())
    named = text.split("社区")[-1].split("号楼")[0].rstrip("0123456789")
    assert named not in compounds  # the premise: this place is not in the library
    r = matcher.match(text)
    assert r.ambiguous or r.level not in ("building", "compound"), r


def _held_out_cases(buildings) -> list[tuple[str, str]]:
    """(compound, building number) of every compound whose distinctive part another compound shares or
    spells with two characters swapped (万和公寓 / 万和家园, 华兴小区 / 兴华家园): removed from the library,
    each must not come back as its sibling's building."""
    from gridmap.address.library import stem

    names = sorted(set(buildings["compound"].dropna()) - {""})
    stems: dict[str, list[str]] = {}
    for name in names:
        stems.setdefault(stem(name, "compound"), []).append(name)
    cases = []
    for name in names:
        own = stem(name, "compound")
        swapped = "".join(sorted(own))
        if len(stems[own]) > 1 or any(s != own and "".join(sorted(s)) == swapped for s in stems):
            number = sorted(buildings.loc[buildings["compound"] == name, "building_no"].dropna(), key=str)[0]
            cases.append((name, number))
    return cases


def test_a_held_out_compound_is_never_answered_as_its_siblings_building(linyi_layers):
    """Remove one compound of a family from the library and ask for its building: the text's other ending
    (家园 where 公寓, 花园 and 苑 are known) or swapped stem must not land on a sibling's building unflagged
    (issue #12). Every 8th case, to keep the test short (a library is built per case)."""
    from gridmap.address import AddressMatcher

    b = linyi_layers["buildings"]
    cases = _held_out_cases(b)
    assert len(cases) >= 40
    for gone, number in cases[::8]:
        held_out = AddressMatcher.from_layers({**linyi_layers, "buildings": b[b["compound"] != gone]})
        r = held_out.match(f"{gone}{number}号楼")
        assert r.ambiguous or r.level not in ("building", "compound"), (gone, r.level, r.address, r.score)


@pytest.mark.parametrize(("typed", "meant"), [("风林小区3号楼", "丰林小区3号楼"), ("明株小区2号楼", "明珠小区2号楼")])
def test_a_homophone_in_the_name_still_finds_the_building(matcher, typed, meant):
    r = matcher.match(typed)
    assert r.level == "building" and not r.ambiguous and r.building.name == meant


def test_an_unknown_compound_falls_back_to_the_community_and_says_what_was_not_found(matcher, linyi_layers):
    r = matcher.match("中城社区红旗小区2号楼")
    regions = linyi_layers["regions"]
    community = regions.loc[regions["name"] == "中城社区", "code"].iloc[0]
    assert (r.level, r.code, r.community_code, r.building, r.grid_code) == ("community", community, community,
                                                                          None, None)
    assert r.unmatched == ["红旗小区", "2号楼"] and not r.ambiguous
    assert r.candidates and all(c.level in ("building", "compound") for c in r.candidates)  # look-alikes to pick


def test_without_a_stated_place_an_unknown_compound_is_no_answer_with_candidates(matcher):
    r = matcher.match("和平小区2号楼")
    assert (r.level, r.building, r.code, r.score) == ("none", None, None, 0.0)
    assert r.unmatched == ["和平小区", "2号楼"] and r.candidates


def test_a_known_compound_leaves_nothing_unmatched(matcher):
    assert matcher.match("中城社区光荣小区1号楼").unmatched == []


# Unknown names made from a known one (issue #12), one group per general cause; names written here, none of
# them the open-world evaluation's. Each came back as the known compound's building, unflagged, before.
NEAR_KNOWN = [
    # another compound ending, also one the stems keep (里, 府, 湾): 丁香小区 is known, 丁香里 is not
    ("丁香里2号楼", "丁香里"), ("兴盛府7号楼", "兴盛府"), ("南城湾8号楼", "南城湾"), ("供电里3号楼", "供电里"),
    # the two-character distinctive part read backwards, in the community stated (its bonus lifted 0.75 over
    # the flag): 光荣小区 and 同心小区 are known
    ("中城社区荣光小区2号楼", "荣光小区"), ("中城社区心同小区5号楼", "心同小区"),
    # 第 in a name, not an ordinal (normalising dropped it, leaving 和谐 + the mark 门), and a longer name glued
    # to a known one
    ("和谐门第5号楼", "和谐门第"), ("检察院门第5号楼", "检察院门第"), ("双塔社区长青门第4号楼", "长青门第"),
    # alike by sound only, no character of the known name (紫荆小区, 同心小区) typed
    ("子京小区3号楼", "子京小区"), ("铜欣小区2号楼", "铜欣小区"),
]


@pytest.mark.parametrize(("text", "typed"), NEAR_KNOWN)
def test_a_name_made_from_a_known_one_is_not_that_compound(matcher, linyi_layers, text, typed):
    """The rules, not the names: another ending after a known stem, a reversed stem, a longer name, a
    likeness of sound alone all may be a place the library does not hold; the answer is the place stated
    (or none), with the compound as typed in ``unmatched`` and the look-alikes as candidates."""
    assert typed not in set(linyi_layers["buildings"]["compound"].dropna())  # the premise
    r = matcher.match(text)
    assert r.ambiguous or r.level not in ("building", "compound"), (r.level, r.address, r.score)
    assert r.unmatched[:1] == [typed] and r.candidates


@pytest.mark.parametrize(("typed", "meant"), [
    ("丰林小区第3栋", "丰林小区3号楼"),  # an ordinal 第 after a compound ending is still dropped
    ("双塔社区风林小区3号楼", "丰林小区3号楼"),  # a homophone keeps a character of the name: a slip
    ("水局利家属院1号楼", "水利局家属院1号楼"),  # a swap inside a longer name garbles it: a slip
])
def test_slips_in_a_known_name_still_find_the_building(matcher, typed, meant):
    r = matcher.match(typed)
    assert r.level == "building" and not r.ambiguous and r.building.name == meant, (r.level, r.address, r.score)
