"""Fixtures for incident tests: a writable app over a copy of the sample county, and role tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import shapely
from fastapi.testclient import TestClient
from stores import open_test_store, store_settings

from gridmap import auth
from gridmap.api import create_app


@dataclass
class Roles:
    """Authorization headers per role, and the worker codes behind the worker tokens."""

    admin: dict
    dispatcher: dict
    planner: dict
    worker: dict
    mate: dict
    outsider: dict
    worker_code: str
    mate_code: str
    outsider_code: str
    grid_code: str


@dataclass
class Place:
    lon: float
    lat: float
    grid_code: str


FIXTURE_ADMIN_TOKEN = "incident-fixture-admin"
ADMIN = {"Authorization": f"Bearer {FIXTURE_ADMIN_TOKEN}"}


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def incident_db(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = copy_store(sample_db, tmp_path_factory.mktemp("incidents"), "incidents.gpkg")
    return target


@pytest.fixture(scope="module")
def api(incident_db: Path) -> Iterator[TestClient]:
    settings = store_settings(db=incident_db, load_sample_if_empty=False, admin_token=FIXTURE_ADMIN_TOKEN)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def place(sample_layers) -> Place:
    """A point well inside a grid of 双塔社区 that has a part-time worker too (far from its edges)."""
    grids = sample_layers["grids"]
    workers = sample_layers["workers"]
    staffed = set(workers.loc[workers["role"] == "兼职网格员", "grid_code"])
    grid = grids[(grids["community_code"] == "140821100014") & grids["code"].isin(staffed)].sort_values("code").iloc[0]
    inner = shapely.buffer(grid.geometry, -0.0006)
    p = shapely.point_on_surface(inner if not inner.is_empty else grid.geometry)
    return Place(p.x, p.y, grid["code"])


@pytest.fixture(scope="module")
def roles(incident_db: Path, sample_layers, place: Place) -> Roles:
    store = open_test_store(incident_db)
    workers = sample_layers["workers"]
    own = workers[workers["grid_code"] == place.grid_code]
    full_time = own[own["role"] == "专职网格员"]["code"].iat[0]
    mate = own[own["code"] != full_time]["code"].iat[0]
    outsider = workers[(workers["grid_code"] != "") & (workers["grid_code"] != place.grid_code)]["code"].iat[0]

    def token(role: str, worker: str | None = None) -> dict:
        return _bearer(auth.create_token(store, role=role, worker_code=worker)[1])

    return Roles(
        admin=token("admin"), dispatcher=token("dispatcher"), planner=token("planner"),
        worker=token("worker", full_time), mate=token("worker", mate), outsider=token("worker", outsider),
        worker_code=full_time, mate_code=mate, outsider_code=outsider, grid_code=place.grid_code,
    )


def report(api: TestClient, place: Place, category: str = "infra.streetlight", **extra) -> dict:
    """A resident's report; returns the incident as the dispatch centre reads it, plus the receipt."""
    body = {"category": category, "description": "路灯不亮", "lon": place.lon, "lat": place.lat,
            "reporter": {"name": "王小明", "phone": "13812345678"}, **extra}
    response = api.post("/v1/incidents", json=body)
    assert response.status_code == 201, response.text
    answer = response.json()
    full = api.get(f"/v1/incidents/{answer['id']}", headers=ADMIN)
    assert full.status_code == 200, full.text
    return {**full.json(), "receipt": answer["receipt"]}


def act(api: TestClient, incident: dict, action: str, headers: dict, note: str | None = None, **extra):
    current = api.get(f"/v1/incidents/{incident['id']}", headers=headers)
    version = current.json().get("version", incident.get("version"))
    return api.post(f"/v1/incidents/{incident['id']}/transitions",
                    json={"action": action, "note": note, **extra},
                    headers={**headers, "If-Match": f'"{version}"'})
