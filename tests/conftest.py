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
from packages import tiny_layers, write_package
from pgcluster import Cluster, bin_dir, new_folder
from stores import PG_SECRET, close_opened, open_test_store

from gridmap.bootstrap import load_sample
from gridmap.settings import SAMPLE_PACKAGE, Settings
from gridmap.store import GeoPackageStore, is_database_url

WGS84 = "EPSG:4326"

# Tests send far more reports from one client than a resident would: the public intake limit is off
# unless a test sets its own (tests/test_rate_limit.py). Servers started by tests inherit this.
os.environ.setdefault("GRIDMAP_INTAKE_RATE_PER_MINUTE", "0")


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
