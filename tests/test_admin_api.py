"""Importing through the API: admin only, every problem listed, nothing written on failure."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from stores import open_test_store, store_settings

from gridmap.api import create_app

TOKEN = "s3cret-admin"


@pytest.fixture
def admin_client(sample_db_copy: Path):
    settings = store_settings(db=sample_db_copy, admin_token=TOKEN, load_sample_if_empty=False)
    with TestClient(create_app(settings)) as c:
        yield c


def zipped(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in folder.iterdir():
            archive.write(file, f"package/{file.name}")
    return buffer.getvalue()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_import_needs_the_admin_token(admin_client, tiny_package) -> None:
    assert admin_client.post("/v1/admin/import", content=zipped(tiny_package)).status_code == 401
    wrong = admin_client.post("/v1/admin/import", content=zipped(tiny_package), headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401


def test_import_replaces_the_data_and_lookups_follow_at_once(admin_client, tiny_package) -> None:
    response = admin_client.post("/v1/admin/import", content=zipped(tiny_package), headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["counts"]["grids"] == 4
    body = admin_client.get("/v1/lookup", params={"lon": 110.7475, "lat": 35.14}).json()
    assert body["grid"]["code"] == "140821100014-01"
    assert admin_client.get("/health").json()["grids"] == 4


def test_a_geopackage_body_is_accepted(admin_client, tiny_package, tmp_path) -> None:
    from gridmap.importer import import_package

    gpkg = tmp_path / "tiny.gpkg"
    import_package(open_test_store(gpkg), tiny_package)
    response = admin_client.post("/v1/admin/import", content=gpkg.read_bytes(), headers=AUTH)
    assert response.status_code == 200, response.text


def test_a_bad_package_is_422_with_every_problem_and_nothing_changes(admin_client, make_package, sample_db_copy):
    from shapely.geometry import Point

    def break_it(layers):
        layers["grids"].loc[0, "community_code"] = "999"
        layers["buildings"].loc[1, "code"] = "B001"
        layers["stations"].geometry = [Point(110.75, 35.13), None]

    before = open_test_store(sample_db_copy).revision()
    grids_before = admin_client.get("/health").json()["grids"]
    response = admin_client.post("/v1/admin/import", content=zipped(make_package(break_it)), headers=AUTH)
    assert response.status_code == 422
    body = response.json()
    messages = {(p["layer"], p["code"]) for p in body["problems"] if p["severity"] == "error"}
    assert {("grids", "140821100014-01"), ("buildings", "B001"), ("stations", "S02")} <= messages
    assert open_test_store(sample_db_copy).revision() == before
    assert admin_client.get("/health").json()["grids"] == grids_before


def test_garbage_is_422(admin_client) -> None:
    response = admin_client.post("/v1/admin/import", content=b"hello", headers=AUTH)
    assert response.status_code == 422 and "GeoPackage" in response.json()["detail"]


def test_unknown_source_crs_is_422(admin_client, tiny_package) -> None:
    response = admin_client.post("/v1/admin/import?source_crs=EPSG:0", content=zipped(tiny_package), headers=AUTH)
    assert response.status_code == 422 and "坐标系" in response.json()["detail"]


def test_without_a_configured_token_the_settings_token_is_not_accepted(sample_db_copy, tiny_package) -> None:
    with TestClient(create_app(store_settings(db=sample_db_copy, load_sample_if_empty=False))) as c:
        response = c.post("/v1/admin/import", content=zipped(tiny_package), headers=AUTH)
    assert response.status_code == 401 and "令牌无效" in response.json()["detail"]
