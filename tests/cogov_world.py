"""Shared fixtures of the co-governance tests (tests/test_cogov_*.py): the real app over a copy of the
sample county, on both store backends, with a token for every kind of caller.

Roles: ``worker`` a grid worker of 双塔社区 (the home community), ``community`` its 网格长 (no grid),
``outsider`` a grid worker of another community, ``planner``, ``dispatcher``, ``admin``, ``public``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from stores import open_test_store, store_settings

from gridmap import auth
from gridmap.api import create_app

ADMIN_TOKEN = "cogov-admin-token"
HOME = "140821100014"
"""双塔社区: the community whose records the tests write."""
OTHER = "140821100010"
"""崇相西社区: the outsider's community."""


@dataclass
class World:
    client: TestClient
    headers: dict[str, dict[str, str]]
    codes: dict[str, str]
    layers: dict[str, Any]
    home_grid: str
    db: Any = None
    made: dict[str, Any] = field(default_factory=dict)

    def as_(self, role: str, **extra: str) -> dict[str, str]:
        return {**self.headers[role], **extra}

    def post(self, path: str, role: str = "admin", *, expect: int | None = 201, **kwargs: Any) -> Any:
        answer = self.client.post(path, headers={**self.headers[role], **kwargs.pop("headers", {})}, **kwargs)
        if expect is not None:
            assert answer.status_code == expect, answer.text
        return answer

    def get(self, path: str, role: str = "admin", *, expect: int | None = 200, **kwargs: Any) -> Any:
        answer = self.client.get(path, headers=self.headers[role], **kwargs)
        if expect is not None:
            assert answer.status_code == expect, answer.text
        return answer


def _tokens(store: Any, layers: dict[str, Any]) -> tuple[dict[str, dict[str, str]], dict[str, str], str]:
    workers = layers["workers"]
    home = workers[(workers["community_code"] == HOME) & (workers["role"] == "专职网格员")].sort_values("code")
    codes = {
        "worker": home["code"].iat[0],
        "community": workers[(workers["community_code"] == HOME) & (workers["role"] == "网格长")]["code"].iat[0],
        "outsider": workers[(workers["community_code"] == OTHER) & (workers["grid_code"] != "")]["code"].iat[0],
    }
    headers: dict[str, dict[str, str]] = {"public": {}}
    for role, code in codes.items():
        headers[role] = {"Authorization": f"Bearer {auth.create_token(store, role='worker', worker_code=code)[1]}"}
    for role in ("planner", "dispatcher"):
        headers[role] = {"Authorization": f"Bearer {auth.create_token(store, role=role)[1]}"}
    headers["admin"] = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return headers, codes, home["grid_code"].iat[0]


def world_fixture(name: str) -> Any:
    """A module-scoped fixture: a writable copy of the sample county per test module and backend
    (``world = world_fixture("lists")`` in the module)."""

    @pytest.fixture(scope="module")
    def world(sample_db, copy_store, sample_layers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
        db = copy_store(sample_db, tmp_path_factory.mktemp(f"cogov-{name}"), "cogov.gpkg")
        headers, codes, grid = _tokens(open_test_store(db), sample_layers)
        settings = store_settings(db=db, load_sample_if_empty=False, admin_token=ADMIN_TOKEN)
        with TestClient(create_app(settings)) as client:
            yield World(client, headers, codes, sample_layers, grid, db)

    return world


def member_body(name: str = "李明", phone: str = "13912345679", *, community: str = HOME, grid: str | None = None,
                unit: str = "U026", skills: tuple[str, ...] = ("维修",)) -> dict[str, Any]:
    return {"name": name, "phone": phone, "unit_code": unit, "community_code": community, "grid_code": grid,
            "skills": list(skills), "registered_on": "2025-03-01"}


def need_body(title: str = "八家巷小区没有路灯", *, community: str = HOME, category: str = "道路亮化",
              households: int = 60, **place: Any) -> dict[str, Any]:
    return {"community_code": community, "title": title, "category": category, "description": "夜间出行不便",
            "households": households, "source": "居民提出", **place}


def version_of(w: World, path: str) -> str:
    return w.get(path).headers["ETag"]
