"""Fixtures for station planning: the sample county's planner (built once per session); the app and tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from stores import open_test_store, store_settings

from gridmap import auth
from gridmap.api import create_app
from gridmap.coverage.service import Coverage
from gridmap.planning.service import Planner


@pytest.fixture(scope="session")
def sample_coverage(sample_layers, sample_db: Path) -> Coverage:
    return Coverage.from_layers(sample_layers, revision=open_test_store(sample_db).revision())


@pytest.fixture(scope="session")
def planner(sample_coverage: Coverage, sample_layers) -> Planner:
    return Planner(sample_coverage, roads=sample_layers["roads"], candidates=sample_layers.get("candidates"))


@dataclass
class PlanningApi:
    """The real app over a copy of the sample county (siting runs write scenarios), with role tokens."""

    client: TestClient
    db: Path
    admin: dict
    planner: dict
    other_planner: dict
    dispatcher: dict
    worker: dict
    planner_label: str
    other_planner_label: str


@pytest.fixture(scope="module")
def planning_api(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlanningApi]:
    db = copy_store(sample_db, tmp_path_factory.mktemp("planning"), "planning.gpkg")
    store = open_test_store(db)
    worker_code = store.read_layer("workers").query("grid_code != ''")["code"].iat[0]

    def token(role: str, worker: str | None = None) -> tuple[dict, str]:
        token_id, token = auth.create_token(store, role=role, worker_code=worker)
        return {"Authorization": f"Bearer {token}"}, f"{role}:{worker or token_id}"

    (planner, planner_label), (other, other_label) = token("planner"), token("planner")
    settings = store_settings(db=db, load_sample_if_empty=False, admin_token="test-admin-token")
    with TestClient(create_app(settings)) as client:
        yield PlanningApi(client, db, {"Authorization": "Bearer test-admin-token"}, planner, other,
                          token("dispatcher")[0], token("worker", worker_code)[0], planner_label, other_label)
