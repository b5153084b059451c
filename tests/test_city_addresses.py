"""Addresses across many counties (issue #10): one library holds every county of the store.

The city here is six copies of the sample town, two per county, over three real counties of 运城市: the
copies repeat community, road and compound names in other towns and counties (drawn from the same
pools), so an address is only found by the county, town or community it states. What each building
lies in is taken from the polygons with geopandas, not from the matcher.
"""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from test_city import load_generator

from gridmap.address import AddressMatcher
from gridmap.api import create_app
from gridmap.importer import import_package
from gridmap.settings import Settings
from gridmap.store import GeoPackageStore

TOWNS, PER_COUNTY = 6, 2
PER_TOWN = 12
"""Buildings asked for in each town (a fixed, seeded sample)."""

pytestmark = pytest.mark.sqlite_only  # the GeoPackage file itself; PostGIS has its own tests


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):
    return load_generator().build_city(TOWNS, tmp_path_factory.mktemp("counties") / "city", per_county=PER_COUNTY)


@pytest.fixture(scope="module")
def layers(city) -> dict[str, gpd.GeoDataFrame]:
    return {name: gpd.read_file(city.out / f"{name}.geojson")
            for name in ("regions", "grids", "buildings", "roads", "stations", "units")}


@pytest.fixture(scope="module")
def client(city) -> Iterator[TestClient]:
    db = city.out.parent / "city.gpkg"
    import_package(GeoPackageStore(db), city.out)
    with TestClient(create_app(Settings(db=db, load_sample_if_empty=False))) as c:
        yield c


@pytest.fixture(scope="module")
def places(layers) -> pd.DataFrame:
    """Each building with the grid, community, town and county it lies in (from the polygons)."""
    b, regions = layers["buildings"], layers["regions"]
    points = gpd.GeoDataFrame(b[["code", "address", "compound", "building_no", "road", "doorplate"]],
                              geometry=shapely.point_on_surface(b.geometry.values), crs=b.crs)
    grids = layers["grids"][["code", "community_code", "geometry"]].rename(columns={"code": "grid"})
    joined = gpd.sjoin(points, grids, predicate="covered_by").drop(columns="index_right")
    joined = joined.sort_values(["code", "grid"]).drop_duplicates("code")
    parent = dict(zip(regions["code"], regions["parent_code"], strict=True))
    joined["town"] = joined["community_code"].map(parent)
    joined["county"] = joined["town"].map(parent)
    return joined.set_index("code")


def ask(client: TestClient, address: str) -> dict:
    response = client.get("/v1/lookup", params={"address": address})
    assert response.status_code == 200, response.text
    return response.json()


def candidate_codes(answer: dict) -> set[str]:
    return {c["building"]["code"] for c in answer["match"]["candidates"] if c.get("building")}


def shared_compound(places: pd.DataFrame) -> pd.DataFrame:
    """Buildings whose compound name and number recur in another county."""
    compounds = places[places["compound"] != ""]
    counties = compounds.groupby(["compound", "building_no"])["county"].transform("nunique")
    return compounds[counties > 1].sort_values(["compound", "building_no", "county"])


# ------------------------------------------------------------------------------------- the city itself
def test_the_city_repeats_names_over_three_counties(city, places) -> None:
    assert len(city.counties) == 3
    assert places["county"].nunique() == 3 and places["town"].nunique() == TOWNS
    assert len(shared_compound(places)) > 0, "the test needs compound names held by two counties"


# ------------------------------------------------------------------------------------- the library
def test_each_building_is_filed_under_the_community_it_lies_in(layers, places) -> None:
    """Community names recur in other towns: the one a building's address names is the one it lies in."""
    library = AddressMatcher.from_layers(layers).lib
    filed = pd.Series({r.code: r.community_code for r in library.records})
    inside = places["community_code"]
    assert (filed[inside.index] == inside).mean() >= 0.99
    named = pd.Series({r.code: library.regions[r.community_code]["name"] for r in library.records
                       if r.community_code})
    assert all(named[code] in places.at[code, "address"] for code in named.index if code in places.index)


def test_the_library_knows_every_county_with_its_province_and_city(layers) -> None:
    library = AddressMatcher.from_layers(layers).lib
    counties = layers["regions"][layers["regions"]["level"] == "county"]
    assert set(library.counties) == set(counties["code"])
    for chain in library.counties.values():
        assert (chain.province, chain.city) == ("山西省", "运城市")
    assert library.county_code is None, "a city has no single county"


# ------------------------------------------------------------------------------------- full addresses
def test_addresses_of_every_town_answer_with_their_own_grid(client, places) -> None:
    sample = places.groupby("town", group_keys=False).apply(lambda g: g.sample(PER_TOWN, random_state=7))
    wrong = []
    for code, row in sample.iterrows():
        answer = ask(client, row["address"])
        got = (answer["match"]["building"] or {}).get("code"), (answer.get("grid") or {}).get("code")
        if got != (code, row["grid"]) or answer["match"]["ambiguous"]:
            wrong.append((row["address"], got, (code, row["grid"])))
    assert not wrong, wrong[:5]
    assert sample["county"].nunique() == 3


@pytest.mark.parametrize("style", ["county_town_community", "county_town", "town_community"])
def test_the_places_stated_choose_between_compounds_of_the_same_name(client, layers, places, style) -> None:
    """The same compound and building number in two counties: what the text states picks one."""
    name = dict(zip(layers["regions"]["code"], layers["regions"]["name"], strict=True))
    checked = 0
    for (compound, number), group in shared_compound(places).groupby(["compound", "building_no"]):
        for code, row in group.drop_duplicates("county").iterrows():
            county, town, community = name[row["county"]], name[row["town"]], name[row["community_code"]]
            prefix = {"county_town_community": county + town + community, "county_town": county + town,
                      "town_community": town + community}[style]
            answer = ask(client, f"{prefix}{compound}{number}号楼")
            assert answer["match"]["building"]["code"] == code, (prefix, compound, number)
            assert answer["grid"]["code"] == row["grid"]
            checked += 1
        if checked >= 12:
            break
    assert checked >= 4


# ------------------------------------------------------------------------------------- honest doubt
def test_an_address_without_county_held_by_two_counties_is_ambiguous(client, places) -> None:
    shared = shared_compound(places)
    (compound, number), group = next(iter(shared.groupby(["compound", "building_no"])))
    answer = ask(client, f"{compound}{number}号楼")
    assert answer["match"]["ambiguous"] is True
    listed = candidate_codes(answer) | {answer["match"]["building"]["code"]}
    assert set(places.loc[list(listed & set(places.index)), "county"]) >= set(group["county"].unique()[:2])


def test_a_community_name_held_by_several_towns_is_answered_at_community_level_with_each(client, layers) -> None:
    communities = layers["regions"][layers["regions"]["level"] == "community"]
    repeated = communities[communities["name"].duplicated(keep=False)].sort_values("name")
    name = repeated["name"].iloc[0]
    answer = ask(client, name)
    assert answer["match"]["level"] == "community" and answer["match"]["ambiguous"] is True
    listed = {c["community_code"] for c in answer["match"]["candidates"]}
    assert listed == set(repeated[repeated["name"] == name]["code"])


def test_a_county_named_alone_answers_with_that_county(client, layers) -> None:
    for code, name in layers["regions"][layers["regions"]["level"] == "county"][["code", "name"]].itertuples(index=False):
        answer = ask(client, f"山西省运城市{name}")
        assert (answer["match"]["level"], answer["county"]["code"]) == ("county", code), name
        assert answer["grid"] is None and answer["match"]["ambiguous"] is False


def test_a_county_outside_the_store_answers_nothing(client, layers) -> None:
    held = set(layers["regions"]["name"])
    other = next(n for n in ("永济市", "河津市", "芮城县", "平陆县", "夏县", "垣曲县") if n not in held)
    b = layers["buildings"].iloc[0]
    answer = ask(client, f"山西省运城市{other}{b['compound'] or b['road']}1号楼")
    assert answer["match"]["level"] == "none" and answer["grid"] is None


def recurring_doorplates(places: pd.DataFrame) -> pd.DataFrame:
    """Buildings outside compounds whose road and doorplate recur in another town."""
    plain = places[places["compound"] == ""]
    towns = plain.groupby(["road", "doorplate"])["town"].transform("nunique")
    return plain[towns > 1].sort_values(["road", "doorplate", "town"])


def test_a_doorplate_held_by_two_towns_is_ambiguous_until_the_town_is_stated(client, layers, places) -> None:
    name = dict(zip(layers["regions"]["code"], layers["regions"]["name"], strict=True))
    recurring = recurring_doorplates(places)
    assert len(recurring), "the test needs a road and doorplate held by two towns"
    (road, doorplate), group = next(iter(recurring.groupby(["road", "doorplate"])))
    assert ask(client, f"{road}{doorplate}")["match"]["ambiguous"] is True
    for code, row in group.drop_duplicates("town").iterrows():
        answer = ask(client, f"{name[row['county']]}{name[row['town']]}{road}{doorplate}")
        assert (answer["match"]["building"]["code"], answer["match"]["ambiguous"]) == (code, False)
        assert answer["grid"]["code"] == row["grid"]


def test_a_wrong_road_suffix_is_read_in_the_town_stated_even_when_another_town_has_that_road(
        client, layers, places) -> None:
    """八家巷 typed for 八家路 of town A, while town B has a real 八家巷: the stated town wins, as in a
    county with one town."""
    name = dict(zip(layers["regions"]["code"], layers["regions"]["name"], strict=True))
    plain = places[places["compound"] == ""]
    roads_by_town = plain.groupby("town")["road"].agg(set)
    checked = 0
    for code, row in plain.sample(frac=1.0, random_state=3).iterrows():
        stem = row["road"][:-1] if row["road"].endswith(("路", "街", "巷")) else None
        if not stem or row["road"].endswith(("大街",)):
            continue
        wrong = next((stem + s for s in ("路", "街", "巷") if stem + s != row["road"]
                      and stem + s not in roads_by_town[row["town"]]
                      and any(stem + s in roads for town, roads in roads_by_town.items() if town != row["town"])),
                     None)  # fmt: skip
        if wrong is None:
            continue
        answer = ask(client, f"{name[row['county']]}{name[row['town']]}{name[row['community_code']]}{wrong}"
                             f"{row['doorplate']}")
        assert (answer["match"]["building"] or {}).get("code") == code, (wrong, row["road"], row["doorplate"])
        checked += 1
        if checked == 5:
            break
    assert checked >= 2
