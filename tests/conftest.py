"""Shared fixtures: a tiny hand-made package (for import rules) and the sample county (for answers)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pgcluster import Cluster, bin_dir, new_folder
from shapely.geometry import Point, box
from stores import PG_SECRET, close_opened, open_test_store

from gridmap.bootstrap import load_sample
from gridmap.settings import SAMPLE_PACKAGE, Settings
from gridmap.store import GeoPackageStore, is_database_url

WGS84 = "EPSG:4326"

# Tests send far more reports from one client than a resident would: the public intake limit is off
# unless a test sets its own (tests/test_rate_limit.py). Servers started by tests inherit this.
os.environ.setdefault("GRIDMAP_INTAKE_RATE_PER_MINUTE", "0")


def tiny_layers() -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    """Two communities side by side, each split into two grids, a building or two in every grid."""
    a, b = "140821100014", "140821100016"
    regions = gpd.GeoDataFrame(
        {
            "code": ["140821", "140821100", a, b],
            "name": ["临猗县", "猗氏镇", "双塔社区", "葫芦岛社区"],
            "level": ["county", "town", "community", "community"],
            "parent_code": ["", "140821", "140821100", "140821100"],
        },
        geometry=[
            box(110.70, 35.10, 110.84, 35.20),
            box(110.72, 35.11, 110.82, 35.18),
            box(110.74, 35.12, 110.77, 35.16),
            box(110.77, 35.12, 110.80, 35.16),
        ],
        crs=WGS84,
    )
    grids = gpd.GeoDataFrame(
        {
            "code": [f"{a}-01", f"{a}-02", f"{b}-01", f"{b}-02"],
            "name": ["双塔社区第1网格", "双塔社区第2网格", "葫芦岛社区第1网格", "葫芦岛社区第2网格"],
            "community_code": [a, a, b, b],
        },
        geometry=[
            box(110.740, 35.12, 110.755, 35.16),
            box(110.755, 35.12, 110.770, 35.16),
            box(110.770, 35.12, 110.785, 35.16),
            box(110.785, 35.12, 110.800, 35.16),
        ],
        crs=WGS84,
    )
    centres = [(110.7475, 35.14), (110.7625, 35.14), (110.7775, 35.14), (110.7925, 35.14), (110.7925, 35.15)]
    buildings = gpd.GeoDataFrame(
        {
            "code": [f"B{i:03d}" for i in range(1, 6)],
            "name": ["丰林小区1号楼", "丰林小区2号楼", "八家巷小区1号楼", "八家巷小区2号楼", "双塔北路14号"],
            "address": [
                "山西省运城市临猗县猗氏镇双塔社区双塔北路12号丰林小区1号楼",
                "山西省运城市临猗县猗氏镇双塔社区双塔北路12号丰林小区2号楼",
                "山西省运城市临猗县猗氏镇葫芦岛社区八家巷3号八家巷小区1号楼",
                "山西省运城市临猗县猗氏镇葫芦岛社区八家巷3号八家巷小区2号楼",
                "山西省运城市临猗县猗氏镇葫芦岛社区双塔北路14号",
            ],
            "road": ["双塔北路", "双塔北路", "八家巷", "八家巷", "双塔北路"],
            "doorplate": ["12号", "12号", "3号", "3号", "14号"],
            "compound": ["丰林小区", "丰林小区", "八家巷小区", "八家巷小区", ""],
            "building_no": ["1", "2", "1", "2", ""],
            "households": [24, 36, 18, 30, 2],
            "population": [70, 101, 50, 88, 5],
        },
        geometry=[box(x - 0.0003, y - 0.0002, x + 0.0003, y + 0.0002) for x, y in centres],
        crs=WGS84,
    )
    workers = pd.DataFrame(
        {
            "code": ["W01", "W02", "W03", "W04", "W05", "W06"],
            "name": ["张伟", "李娜", "王强", "刘洋", "陈静", "赵敏"],
            "phone": ["13800000001", "13800000002", "13800000003", "13800000004", "13800000005", "13800000006"],
            "role": ["专职网格员", "专职网格员", "专职网格员", "专职网格员", "网格长", "网格长"],
            "grid_code": [f"{a}-01", f"{a}-02", f"{b}-01", f"{b}-02", "", ""],
            "community_code": [a, a, b, b, a, b],
        }
    )
    stations = gpd.GeoDataFrame(
        {
            "code": ["S01", "S02"],
            "name": ["丰林小区党群服务站", "葫芦岛社区党群服务中心"],
            "kind": ["党群服务站", "党群服务中心"],
            "community_code": [a, b],
            "address": ["山西省运城市临猗县猗氏镇双塔社区双塔北路12号", "山西省运城市临猗县猗氏镇葫芦岛社区八家巷1号"],
        },
        geometry=[Point(110.75, 35.13), Point(110.79, 35.15)],
        crs=WGS84,
    )
    precincts = gpd.GeoDataFrame(
        {"code": ["P01"], "name": ["猗氏派出所"], "phone": ["0359-4022110"]},
        geometry=[box(110.72, 35.11, 110.82, 35.18)],
        crs=WGS84,
    )
    units = gpd.GeoDataFrame(
        {
            "code": ["U01"],
            "name": ["临猗二中"],
            "category": ["学校"],
            "resources": ["志愿者;会议室"],
            "community_code": [a],
        },
        geometry=[Point(110.745, 35.15)],
        crs=WGS84,
    )
    return {
        "regions": regions,
        "grids": grids,
        "buildings": buildings,
        "workers": workers,
        "stations": stations,
        "precincts": precincts,
        "units": units,
    }


def write_package(layers: dict[str, gpd.GeoDataFrame | pd.DataFrame], folder: Path) -> Path:
    """Write layers as a package folder: GeoJSON for spatial layers, CSV for tables."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in layers.items():
        if isinstance(frame, gpd.GeoDataFrame):
            frame.to_file(folder / f"{name}.geojson", driver="GeoJSON")
        else:
            frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.fixture
def tiny_package(tmp_path: Path) -> Path:
    return write_package(tiny_layers(), tmp_path / "tiny")


@pytest.fixture
def make_package(tmp_path: Path) -> Callable[[Callable[[dict], None]], Path]:
    """A tiny package changed by ``mutate(layers)`` before it is written."""
    counter = iter(range(1000))

    def make(mutate: Callable[[dict], None]) -> Path:
        layers = tiny_layers()
        mutate(layers)
        return write_package(layers, tmp_path / f"pkg{next(counter)}")

    return make


# Both stores (issue #11) ---------------------------------------------------------------------------
# Every test that takes the sample store (``sample_db``, ``sample_db_copy``, ``client``, ``copy_store``)
# runs once on the GeoPackage store and once on PostGIS, in a throwaway cluster that this session
# starts (tests/pgcluster.py). ``@pytest.mark.sqlite_only`` keeps a test to the GeoPackage file (its
# format, its file modes, SQLite's query plans); ``--store sqlite|postgis`` runs one backend only.
BACKENDS = ("sqlite", "postgis")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--store", choices=("both", *BACKENDS), default=os.environ.get("GRIDMAP_TEST_STORE", "both"),
                     help="which store backends the store tests run on (default both)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the PostGIS variant of ``sqlite_only`` tests and the variants of backends not chosen."""
    chosen = config.getoption("--store")
    keep, drop = [], []
    for item in items:
        backend = getattr(item, "callspec", None) and item.callspec.params.get("backend")
        wrong = backend is not None and chosen != "both" and backend != chosen
        if wrong or (backend == "postgis" and item.get_closest_marker("sqlite_only")):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A PostgreSQL cluster with PostGIS for this test process; in CI its absence is a failure."""
    if bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL with PostGIS is not installed (.ci/run installs it)")
        pytest.skip("PostgreSQL with PostGIS is not installed: apt-get install postgresql-15-postgis-3")
    cluster = Cluster.start_new(new_folder())
    cluster.make_template()
    yield cluster
    cluster.stop("immediate")
    shutil.rmtree(cluster.folder, ignore_errors=True)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _server_mode_secret(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """PostGIS tests run with GRIDMAP_SECRET set, as server mode is deployed (servers they start inherit it)."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("backend") == "postgis":
        monkeypatch.setenv("GRIDMAP_SECRET", PG_SECRET)
    yield
    close_opened()


class StoreCopier:
    """Copies of a store: a file copy, or a database made from the original as a template."""

    def __init__(self, cluster: Cluster | None) -> None:
        self.cluster = cluster

    def __call__(self, source: str | Path, folder: Path, name: str = "sample.gpkg") -> str | Path:
        if not is_database_url(source):
            target = folder / name
            shutil.copy(source, target)
            return target
        assert self.cluster is not None
        return self.cluster.copy_database(str(source).rsplit("/", 1)[1])

    def empty(self, folder: Path, name: str = "store.gpkg") -> str | Path:
        """A new, empty store of the same backend."""
        return folder / name if self.cluster is None else self.cluster.new_database()


@pytest.fixture(scope="session")
def _pristine_sample(backend: str, tmp_path_factory: pytest.TempPathFactory,
                     request: pytest.FixtureRequest) -> str | Path:
    """The sample county with its year of incidents, loaded once per backend; only ever copied."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("sample") / "sample.gpkg"
        load_sample(GeoPackageStore(path), SAMPLE_PACKAGE)
        return path
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    url = cluster.new_database()
    store = open_test_store(url)
    load_sample(store, SAMPLE_PACKAGE)
    store.close()
    return url


@pytest.fixture(scope="session")
def copy_store(backend: str, request: pytest.FixtureRequest) -> StoreCopier:
    """``copy_store(source, folder, name)``: a copy of a store of the backend under test."""
    return StoreCopier(request.getfixturevalue("pg_cluster") if backend == "postgis" else None)


@pytest.fixture(scope="session")
def sample_db(_pristine_sample: str | Path, copy_store: StoreCopier,
              tmp_path_factory: pytest.TempPathFactory) -> str | Path:
    """The sample county (a file path, or a PostGIS URL), shared by the session: tests that write copy it."""
    return copy_store(_pristine_sample, tmp_path_factory.mktemp("shared"))


@pytest.fixture
def sample_db_copy(_pristine_sample: str | Path, copy_store: StoreCopier, tmp_path: Path) -> str | Path:
    return copy_store(_pristine_sample, tmp_path)


@pytest.fixture(scope="session")
def sample_layers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    """The sample county's layers as the store gives them back (the same on both backends)."""
    path = tmp_path_factory.mktemp("layers") / "sample.gpkg"
    load_sample(GeoPackageStore(path), SAMPLE_PACKAGE)
    return GeoPackageStore(path).read_layers()


@pytest.fixture(scope="session")
def client(sample_db: str | Path) -> Iterator[TestClient]:
    """The real app over the sample county (read-only use: tests that write get their own)."""
    from gridmap.api import create_app

    settings = Settings(db=sample_db, load_sample_if_empty=False, admin_token="test-admin-token",
                        secret=PG_SECRET if is_database_url(sample_db) else None)
    with TestClient(create_app(settings)) as c:
        yield c
