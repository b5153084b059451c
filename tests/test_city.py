"""City scale (issue #10): the city generator, and start-up that is cached per store revision."""

from __future__ import annotations

import importlib.util
import logging
import re
import shutil
import stat
import sys
import urllib.request
from pathlib import Path
from types import ModuleType

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from gridmap.api import create_app
from gridmap.coverage import cache as coverage_cache
from gridmap.coverage.cache import cache_path
from gridmap.coverage.live import LiveCoverage
from gridmap.errors import GridmapError
from gridmap.importer import check_package, import_package
from gridmap.incidents.categories import get_category
from gridmap.incidents.history import load_history
from gridmap.settings import SAMPLE_PACKAGE, Settings
from gridmap.store import GeoPackageStore
from gridmap.store.base import IncidentQuery

GENERATOR = Path(__file__).resolve().parent.parent / "geodata" / "build_city.py"
TOWNS = 3

pytestmark = pytest.mark.sqlite_only  # the GeoPackage file itself; PostGIS has its own tests


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


@pytest.fixture(scope="module")
def city_db(city) -> Path:
    """A store holding the city (imported once; tests that write copy it, the cache file comes along)."""
    path = city.out.parent / "city.gpkg"
    import_package(GeoPackageStore(path), city.out)
    start(path)
    return path


@pytest.fixture
def city_db_copy(city_db: Path, tmp_path: Path) -> Path:
    for source in city_db.parent.glob(city_db.name + "*"):
        shutil.copy(source, tmp_path / source.name)
    return tmp_path / city_db.name


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


# ------------------------------------------------------------------------------- start-up from the cache
def start(db: Path) -> LiveCoverage:
    """What a server does at start: the store, then its Coverage (app.state.coverage); the cache file
    it writes in the background is waited for."""
    live = LiveCoverage(GeoPackageStore(db))
    live.cache.wait()
    return live


def test_a_restart_with_an_unchanged_store_loads_the_cached_coverage(sample_db_copy: Path, caplog) -> None:
    first = start(sample_db_copy)
    assert (first.cache.builds, first.cache.loads) == (1, 0)
    path = cache_path(sample_db_copy, first.get().revision)
    written = path.stat().st_mtime_ns
    caplog.set_level(logging.INFO, logger="gridmap.coverage.cache")
    second = start(sample_db_copy)
    assert (second.cache.builds, second.cache.loads) == (0, 1)
    assert path.stat().st_mtime_ns == written
    assert any("loaded from" in r.getMessage() for r in caplog.records)
    point = (110.7693, 35.1425)
    assert second.get().lookup(*point) == first.get().lookup(*point)
    assert second.get().matcher.match("双塔社区丰林小区3号楼") == first.get().matcher.match("双塔社区丰林小区3号楼")


def test_the_cache_file_is_private_and_holds_no_incidents(sample_db_copy: Path) -> None:
    coverage = start(sample_db_copy).get()
    path = cache_path(sample_db_copy, coverage.revision)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    history = pd.read_csv(SAMPLE_PACKAGE / "incidents.csv", dtype=str, keep_default_na=False)
    phones = {v.encode() for v in history["reporter_phone"] if v}  # names are common: workers carry them too
    assert phones and not phones & set(re.findall(rb"1\d{10}", data))


def test_a_reimport_rebuilds_and_replaces_the_cache(city_db_copy: Path) -> None:
    before = start(city_db_copy)
    assert before.cache.loads == 1
    revision = before.get().revision
    report = import_package(GeoPackageStore(city_db_copy), SAMPLE_PACKAGE)
    assert report.revision != revision
    after = start(city_db_copy)
    assert (after.cache.builds, after.cache.loads) == (1, 0)
    assert after.get().revision == report.revision and len(after.get().grids) == 105
    assert cache_path(city_db_copy, report.revision).exists()
    assert not cache_path(city_db_copy, revision).exists()  # the old revision's file is gone
    assert start(city_db_copy).cache.loads == 1


def test_a_running_server_reloads_through_the_cache_after_an_import(city_db_copy: Path) -> None:
    live = start(city_db_copy)
    assert len(live.get().grids) == TOWNS * 105
    import_package(GeoPackageStore(city_db_copy), SAMPLE_PACKAGE)
    assert len(live.reload().grids) == 105
    assert (live.cache.builds, live.cache.loads) == (1, 1)
    live.cache.wait()
    assert start(city_db_copy).cache.loads == 1


@pytest.mark.parametrize("damage", ["flip_a_byte", "truncate", "garbage", "another_stores_secret"])
def test_a_damaged_or_foreign_cache_file_is_ignored_and_rebuilt(sample_db_copy: Path, tmp_path: Path, damage: str,
                                                                caplog) -> None:
    revision = start(sample_db_copy).get().revision
    path = cache_path(sample_db_copy, revision)
    data = bytearray(path.read_bytes())
    if damage == "flip_a_byte":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncate":
        data = data[: len(data) // 3]
    elif damage == "garbage":
        data = bytearray(b"\x80\x05not a cache at all")
    else:  # the same revision, cached by another installation with its own key
        other = tmp_path / "other" / sample_db_copy.name
        other.parent.mkdir()
        shutil.copy(sample_db_copy, other)
        start(other)
        data = bytearray(cache_path(other, revision).read_bytes())
    path.write_bytes(bytes(data))
    caplog.set_level(logging.WARNING, logger="gridmap.coverage.cache")
    again = start(sample_db_copy)
    assert (again.cache.builds, again.cache.loads) == (1, 0)
    assert any("ignored the coverage cache" in r.getMessage() for r in caplog.records)
    assert again.get().lookup(110.7693, 35.1425)["grid"]["code"] == "140821100015-07"
    assert start(sample_db_copy).cache.loads == 1  # rewritten whole


def test_a_cache_written_by_other_code_is_rebuilt(sample_db_copy: Path, monkeypatch) -> None:
    start(sample_db_copy)
    monkeypatch.setattr(coverage_cache, "fingerprint", lambda: "0" * 32)
    again = start(sample_db_copy)
    assert (again.cache.builds, again.cache.loads) == (1, 0)


def test_the_app_starts_from_the_cache(sample_db_copy: Path) -> None:
    settings = Settings(db=sample_db_copy, load_sample_if_empty=False)
    for expected in ((1, 0), (0, 1)):
        with TestClient(create_app(settings)) as client:
            cache = client.app.state.coverage.cache
            assert (cache.builds, cache.loads) == expected
            assert client.get("/v1/lookup", params={"lon": 110.7693, "lat": 35.1425}).json()["covered"] is True
            cache.wait()


@pytest.mark.slow
def test_a_server_stopped_right_after_it_started_still_leaves_its_cache(city_db_copy: Path) -> None:
    from servers import serving

    revision = GeoPackageStore(city_db_copy).revision()
    cache_path(city_db_copy, revision).unlink()
    with serving(city_db_copy) as base:  # built at start, written in the background (~1 s for 3 towns)
        assert urllib.request.urlopen(f"{base}/health", timeout=10).status == 200
    assert cache_path(city_db_copy, revision).exists()  # SIGTERM: the server finished writing first
    assert start(city_db_copy).cache.loads == 1


# ------------------------------------------------------------------------------------ history in batches
def test_a_history_loads_in_batches_with_the_same_records(city, city_db_copy: Path) -> None:
    from gridmap.incidents.history import history_rows

    live = start(city_db_copy)
    assert live.cache.loads == 1
    coverage, store = live.get(), live.store
    path = city.out / "incidents.csv"
    whole = list(history_rows(coverage, path, batch=10**9))
    assert list(history_rows(coverage, path, batch=997)) == whole
    assert len(whole) == TOWNS * 5400
    record, events = whole[5400 + 17]  # copy 1: placed in copy 1's grids and communities
    assert record["grid_code"].startswith("140821101") and record["community_code"].startswith("140821101")
    for i in range(0, len(whole), 1013):  # the rules of live intake, point by point
        record, _ = whole[i]
        answer = coverage.lookup(record["lon"], record["lat"])
        assert record["grid_code"] == (answer["grid"] or {}).get("code")
        assert record["community_code"] == (answer["community"] or {}).get("code")
        assert record["precinct_code"] == (answer["precinct"] or {}).get("code")
        category = get_category(record["category"])
        assert record["suggested_units"] == coverage.nearest_units(record["lon"], record["lat"], category.resources)
    assert load_history(store, coverage, path, batch=4000) == len(whole)
    assert store.query_incidents(IncidentQuery(), limit=1)[1] == len(whole)


def test_a_failing_history_load_leaves_no_incident_behind(city, city_db_copy: Path, tmp_path: Path) -> None:
    live = start(city_db_copy)
    broken = tmp_path / "incidents.csv"
    lines = (city.out / "incidents.csv").read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:2501]
    body[2400] = "nonsense.category" + body[2400][body[2400].index(","):]  # in the 5th batch
    broken.write_text("\n".join([header, *body]) + "\n", encoding="utf-8")
    with pytest.raises(GridmapError):
        load_history(live.store, live.get(), broken, batch=500)
    assert live.store.query_incidents(IncidentQuery(), limit=1)[1] == 0
