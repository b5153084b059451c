"""`gridmap export OUT.gpkg`: the file for GIS users holds every spatial layer and incidents as
anonymised points, and none of the personal data planted in the reports."""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from fastapi.testclient import TestClient
from stores import open_test_store, query_raw, store_settings

from gridmap import auth
from gridmap.access import PLANNER_INCIDENT_FIELDS
from gridmap.api import create_app
from gridmap.schema import LAYERS

LON, LAT = 110.7693, 35.1425
PLANTED = {
    "name": "欧阳淑芬",
    "phone": "13912345678",
    "phone in text": "15987654321",
    "id number": "142701199001011234",
    "room": "2单元501室",
    "description": "楼道里有人吵闹",
}


def gridmap(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gridmap", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def planted_db(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The sample county plus reports that carry a name, phones, an ID number and a room number."""
    db = copy_store(sample_db, tmp_path_factory.mktemp("export"), "store.gpkg")
    staff = {"Authorization": f"Bearer {auth.create_token(open_test_store(db), role='dispatcher')[1]}"}
    with TestClient(create_app(store_settings(db=db, load_sample_if_empty=False))) as client:
        for category in ("infra.streetlight", "dispute.neighbour", "service.elderly"):
            body = {"category": category, "lon": LON, "lat": LAT,
                    "description": f"{PLANTED['description']}，请联系{PLANTED['phone in text']}，"
                                   f"身份证{PLANTED['id number']}",
                    "address": f"双塔社区丰林小区3号楼{PLANTED['room']}",
                    "reporter": {"name": PLANTED["name"], "phone": PLANTED["phone"]}}
            answer = client.post("/v1/incidents", json=body, headers=staff)
            assert answer.status_code == 201, answer.text
    return db


@pytest.fixture(scope="module")
def exported(planted_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gis") / "for-gis.gpkg"
    result = gridmap("export", out, "--db", planted_db)
    assert result.returncode == 0, result.stderr
    assert "已导出" in result.stdout
    return out


def test_every_spatial_layer_of_the_store_is_in_the_export(exported: Path, planted_db: Path) -> None:
    layers = dict(pyogrio.list_layers(exported))
    store = open_test_store(planted_db)
    for name, layer in LAYERS.items():
        if not layer.spatial or (layer.optional and not len(store.read_layer(name))):
            continue
        assert name in layers, name
        assert len(gpd.read_file(exported, layer=name)) == len(store.read_layer(name)), name
    assert "workers" not in layers  # a table of people is not a map layer


def test_incidents_are_the_planners_anonymised_points(exported: Path, planted_db: Path) -> None:
    points = gpd.read_file(exported, layer="incidents")
    # the planner sees incidents inside the grids: all of them in the sample county
    [(in_grids,)] = query_raw(planted_db, "SELECT count(*) FROM incidents WHERE grid_code IN (SELECT code FROM grids)")
    [(total,)] = query_raw(planted_db, "SELECT count(*) FROM incidents")
    assert len(points) == in_grids and in_grids > 1000 and total - in_grids < total / 100
    assert list(points.columns) == [*PLANNER_INCIDENT_FIELDS, "geometry"]
    assert set(points.geom_type) == {"Point"}


def test_no_personal_data_is_anywhere_in_the_file(exported: Path, planted_db: Path) -> None:
    content = exported.read_bytes()
    found = {what: value for what, value in PLANTED.items() if value.encode() in content}
    assert found == {}
    secret = open_test_store(planted_db).secret()
    assert secret.encode() not in content


def test_the_export_is_private_to_its_owner(exported: Path) -> None:
    assert oct(stat.S_IMODE(exported.stat().st_mode)) == "0o600"


def test_one_layer_is_still_exported_with_out(planted_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "grids.geojson"
    result = gridmap("export", "grids", "--out", out, "--db", planted_db)
    assert result.returncode == 0, result.stderr
    assert len(gpd.read_file(out)) == len(open_test_store(planted_db).read_layer("grids"))


def test_a_target_that_is_not_a_geopackage_is_refused(planted_db: Path, tmp_path: Path) -> None:
    result = gridmap("export", "grids", "--db", planted_db)
    assert result.returncode == 2 and "--out" in result.stderr
    assert not (Path.cwd() / "grids").exists()
