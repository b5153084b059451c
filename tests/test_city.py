"""City scale (issue #10): the city generator, and start-up that is cached per store revision."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gridmap.importer import check_package
from gridmap.settings import SAMPLE_PACKAGE

GENERATOR = Path(__file__).resolve().parent.parent / "geodata" / "build_city.py"
TOWNS = 3


def load_generator() -> ModuleType:
    """geodata/ is not a package: the generator is loaded from its file, as the benches do."""
    if "build_city" not in sys.modules:
        spec = importlib.util.spec_from_file_location("build_city", GENERATOR)
        module = importlib.util.module_from_spec(spec)
        sys.modules["build_city"] = module
        spec.loader.exec_module(module)
    return sys.modules["build_city"]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):
    return load_generator().build_city(TOWNS, tmp_path_factory.mktemp("city") / "city")


@pytest.fixture(scope="module")
def checked(city):
    return check_package(city.out)


# ------------------------------------------------------------------------------------------- generator
def test_the_city_imports_with_no_errors_and_no_warnings(checked) -> None:
    _, problems = checked
    assert [str(p) for p in problems] == []


def test_every_copy_has_the_sample_counts(city, checked) -> None:
    layers, _ = checked
    sample, _ = check_package(SAMPLE_PACKAGE)
    for name in ("grids", "buildings", "workers", "stations", "precincts", "units", "roads"):
        assert len(layers[name]) == TOWNS * len(sample[name]), name
    incidents = pd.read_csv(city.out / "incidents.csv", dtype=str)
    assert len(incidents) == TOWNS * len(pd.read_csv(SAMPLE_PACKAGE / "incidents.csv", dtype=str))


def test_codes_are_unique_in_every_layer(checked) -> None:
    layers, _ = checked
    for name, frame in layers.items():
        assert frame["code"].is_unique, name


def test_towns_are_real_towns_of_real_yuncheng_counties(city, checked) -> None:
    layers, _ = checked
    divisions = pd.read_csv(GENERATOR.parent / "sources" / "yuncheng_1408_divisions.csv", dtype=str)
    official = dict(zip(divisions["code"], divisions["name"]))
    regions = layers["regions"]
    for level in ("county", "town"):
        rows = regions[regions["level"] == level]
        assert all(official.get(code) == name for code, name in zip(rows["code"], rows["name"])), level
    town = regions.set_index("code").loc["140821100"]
    assert (town["name"], town["parent_code"]) == ("猗氏镇", "140821")  # copy 0 is the sample town


def test_copy_zero_is_the_sample_town(checked) -> None:
    layers, _ = checked
    sample, _ = check_package(SAMPLE_PACKAGE)
    for name in ("grids", "buildings", "stations", "units", "roads"):
        copy0 = layers[name].iloc[: len(sample[name])].reset_index(drop=True)
        assert copy0.drop(columns="geometry").equals(sample[name].drop(columns="geometry")), name
        assert shapely.equals_exact(copy0.geometry.values, sample[name].geometry.values, 1e-9).all(), name


def town_of(code: str) -> str:
    return code[:9]


def copy_of(frame: pd.DataFrame) -> pd.Series:
    """Which copy each row belongs to: the generator writes copy after copy, in the sample's order."""
    return pd.Series(range(len(frame)), index=frame.index) // (len(frame) // TOWNS)


def test_every_copys_grids_lie_inside_its_town_and_copies_do_not_overlap(checked) -> None:
    layers, _ = checked
    regions = layers["regions"]
    towns = regions[regions["level"] == "town"].set_index("code").geometry
    grids = layers["grids"]
    for code, group in grids.groupby(grids["community_code"].map(town_of)):
        outline = towns.loc[code]
        assert shapely.covers(outline, group.geometry.values).all(), code
    assert not any(a.intersects(b) for i, a in enumerate(towns) for b in towns.iloc[i + 1:])
    counties = regions[regions["level"] == "county"].set_index("code").geometry
    assert all(counties.loc[t[:6]].covers(g) for t, g in towns.items())


def test_each_copy_has_its_own_addresses_names_and_people(checked) -> None:
    layers, _ = checked
    buildings = layers["buildings"]
    addresses = buildings.groupby(copy_of(buildings))["address"].apply(set)
    assert len(addresses) == TOWNS
    assert all(not (a & b) for i, a in enumerate(addresses) for b in addresses.iloc[i + 1:])
    regions = layers["regions"]
    communities = regions[regions["level"] == "community"]
    by_town = communities.groupby(communities["parent_code"])["name"].apply(frozenset)
    assert by_town.nunique() == TOWNS  # community names differ between copies
    roads = layers["roads"]
    assert roads.groupby(copy_of(roads))["name"].apply(frozenset).nunique() == TOWNS
    compounds = buildings.groupby(copy_of(buildings))["compound"].apply(frozenset)
    assert compounds.nunique() == TOWNS
    workers = layers["workers"]
    assert workers["phone"].nunique() > 0.99 * len(workers)


def test_addresses_name_the_copys_county_town_community_road_and_compound(checked) -> None:
    layers, _ = checked
    regions = layers["regions"].set_index("code")
    grids = layers["grids"]
    b = layers["buildings"]
    anchor = shapely.point_on_surface(b.geometry.values)
    hit_b, hit_g = shapely.STRtree(grids.geometry.values).query(anchor, predicate="covered_by")
    community = pd.Series(grids["community_code"].to_numpy()[hit_g], index=hit_b).groupby(level=0).first()
    for i in range(0, len(b), 997):
        code = community.loc[i]
        town, county = regions.loc[code, "parent_code"], code[:6]
        expected = ("山西省运城市" + regions.loc[county, "name"] + regions.loc[town, "name"] + regions.loc[code, "name"]
                    + b["road"].iat[i] + b["doorplate"].iat[i] + b["compound"].iat[i])
        assert b["address"].iat[i].startswith(expected)


def test_incidents_move_with_their_town(city, checked) -> None:
    layers, _ = checked
    incidents = pd.read_csv(city.out / "incidents.csv", dtype=str, keep_default_na=False)
    points = gpd.points_from_xy(incidents["lon"].astype(float), incidents["lat"].astype(float))
    regions = layers["regions"]
    towns = regions[regions["level"] == "town"].reset_index(drop=True)
    hit_p, hit_t = shapely.STRtree(towns.geometry.values).query(points, predicate="covered_by")
    assert len(hit_p) == len(incidents)
    copy = hit_p // (len(incidents) // TOWNS)
    assert (towns["code"].to_numpy()[hit_t] == towns["code"].to_numpy()[copy]).all()


def test_the_generator_is_deterministic_and_a_smaller_city_is_a_prefix_of_a_larger_one(city, tmp_path) -> None:
    generator = load_generator()
    first, second = generator.build_city(2, tmp_path / "first"), generator.build_city(2, tmp_path / "second")
    for path in sorted(first.out.iterdir()):
        assert path.read_bytes() == (second.out / path.name).read_bytes(), path.name
    for name in ("buildings.geojson", "workers.csv", "incidents.csv"):
        read = gpd.read_file if name.endswith(".geojson") else lambda p: pd.read_csv(p, dtype=str)
        small, large = read(first.out / name), read(city.out / name)
        assert small.equals(large.iloc[: len(small)]), name
