"""The sample county package: real boundary and codes, enough synthetic detail, and it validates clean."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gridmap.geo import gdf_gcj02_to_wgs84
from gridmap.importer import check_package
from gridmap.settings import SAMPLE_PACKAGE

SOURCES = Path(__file__).resolve().parent.parent / "geodata" / "sources"


@pytest.fixture(scope="module")
def checked():
    return check_package(SAMPLE_PACKAGE)


def test_validates_without_errors(checked) -> None:
    _, problems = checked
    assert [str(p) for p in problems if p.severity == "error"] == []


def test_county_boundary_is_the_real_one_in_wgs84(checked) -> None:
    layers, _ = checked
    county = layers["regions"].set_index("code").loc["140821"]
    source = json.loads((SOURCES / "cnmaps_amap_140821.geojson").read_text())
    real = gdf_gcj02_to_wgs84(gpd.GeoDataFrame(geometry=[shapely.geometry.shape(source)], crs=None)).geometry.iloc[0]
    assert shapely.hausdorff_distance(county.geometry, real) < 1e-6
    gcj = gpd.GeoDataFrame(geometry=[shapely.geometry.shape(source)], crs=4326)
    assert shapely.hausdorff_distance(county.geometry, gcj.geometry.iloc[0]) > 0.004  # not left in GCJ-02


def test_communities_carry_the_official_codes_and_names(checked) -> None:
    layers, _ = checked
    official = pd.read_csv(SOURCES / "linyi_140821_divisions.csv", dtype=str)
    official = official[(official["parent_code"] == "140821100") & official["name"].str.endswith("社区居民委员会")]
    expected = dict(zip(official["code"], official["name"].str.removesuffix("居民委员会")))
    regions = layers["regions"]
    communities = regions[regions["level"] == "community"]
    assert dict(zip(communities["code"], communities["name"])) == expected
    assert len(expected) == 13
    town = regions.set_index("code").loc["140821100"]
    assert town["name"] == "猗氏镇" and town["level"] == "town"


def test_counts(checked) -> None:
    layers, _ = checked
    assert len(layers["grids"]) >= 80
    assert len(layers["buildings"]) >= 3000
    assert (layers["stations"]["kind"] == "党群服务站").sum() == 64
    assert len(layers["units"]) == 72
    assert 3 <= len(layers["precincts"]) <= 4
    assert (layers["buildings"][["households", "population"]] > 0).all().all()


def test_every_grid_has_a_full_time_worker(checked) -> None:
    layers, _ = checked
    workers = layers["workers"]
    full_time = workers[workers["role"] == "专职网格员"]
    assert full_time["grid_code"].value_counts().reindex(layers["grids"]["code"]).eq(1).all()
    heads = workers[workers["role"] == "网格长"]
    assert set(heads["community_code"]) == set(layers["regions"].query("level == 'community'")["code"])


def test_named_compounds_are_in_their_communities(checked) -> None:
    layers, _ = checked
    b = layers["buildings"]
    names = dict(zip(layers["regions"]["code"], layers["regions"]["name"]))
    grid_community = dict(zip(layers["grids"]["code"], layers["grids"]["community_code"]))
    anchors = shapely.point_on_surface(b.geometry.values)
    tree = shapely.STRtree(layers["grids"].geometry.values)
    hit_b, hit_g = tree.query(anchors, predicate="covered_by")
    community_of = {b["code"].iat[i]: names[grid_community[layers["grids"]["code"].iat[j]]] for i, j in zip(hit_b, hit_g)}
    expected = {"八家巷小区": "葫芦岛社区", "丰林小区": "双塔社区", "圣慧小区": "双塔社区", "晟康小区": "双塔社区",
                "瑞祥小区": "神后堡社区", "润田巷": "渠南社区", "金荷苑": "涑水社区"}
    for compound, community in expected.items():
        codes = b.loc[b["compound"] == compound, "code"]
        assert len(codes), compound
        assert {community_of[c] for c in codes} == {community}, compound
        assert all(community in a for a in b.loc[b["compound"] == compound, "address"])


def test_units_include_the_named_ones(checked) -> None:
    layers, _ = checked
    assert {"临猗二中", "县果业服务中心", "县财政局", "县住建局"} <= set(layers["units"]["name"])
    assert layers["units"]["resources"].str.len().gt(0).all()


def test_built_up_area_is_a_county_seat(checked) -> None:
    layers, _ = checked
    communities = layers["regions"].query("level == 'community'")
    area_km2 = communities.to_crs(32649).area.sum() / 1e6
    assert 8 <= area_km2 <= 15
    assert communities.union_all().distance(shapely.Point(110.7693, 35.1425)) < 0.01
