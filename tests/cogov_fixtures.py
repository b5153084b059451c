"""Shared setup of the co-governance tests (issue #13 §3–5): the app over a copy of the sample county
(either backend), tokens for every kind of caller, and records of §1–2 (members, needs, projects,
registrations) put straight into the store, so these tests do not depend on those endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from stores import store_settings

from gridmap import auth
from gridmap.api import create_app
from gridmap.cogov import kinds
from gridmap.store.base import EntityQuery, Store

ADMIN_TOKEN = "cogov-admin-token"
HOME = "140821100014"
"""双塔社区: the community most tests work in."""
OTHER = "140821100010"
"""崇相西社区: another community, for the 403s."""


@dataclass
class Cogov:
    client: TestClient
    store: Store
    headers: dict[str, dict[str, str]]
    codes: dict[str, str]
    """worker: a grid worker of HOME; mate: another worker of that grid; community: HOME's 网格长 (no
    grid); outsider: a grid worker of OTHER."""

    @property
    def coverage(self) -> Any:
        return self.client.app.state.coverage.get()

    def worker(self, code: str) -> dict[str, Any]:
        workers = self.coverage.workers
        return workers[workers["code"] == code].iloc[0].to_dict()

    def units(self, community: str) -> list[str]:
        units = self.coverage.units
        return sorted(units.loc[units["community_code"] == community, "code"])

    def stations(self, community: str) -> list[str]:
        stations = self.coverage.stations
        return sorted(stations.loc[stations["community_code"] == community, "code"])

    def insert(self, kind: str, record: dict[str, Any], *, at: str = "2026-03-01T08:00:00.000Z") -> dict[str, Any]:
        """A record of §1–2 as their services store it (straight into the store)."""
        return self.store.insert_entities(kind, [record], actor="test", at=at)[0]

    def member(self, community: str = HOME, *, registered_on: str = "2026-01-15", name: str = "王建国",
               status: str = "active") -> str:
        """A registered Party member; their code (``M`` + their number, as registrations gives it)."""
        _, total = self.store.query_entities(EntityQuery(kind=kinds.MEMBER))
        code = kinds.member_code(total + 1)
        stored = self.insert(kinds.MEMBER, {
            "key": code, "name": name, "phone": "13912345678", "unit_code": self.units(community)[0],
            "community_code": community, "grid_code": None, "skills": ["维修"], "registered_on": registered_on,
            "status": status})
        assert stored["n"] == total + 1
        return code

    def need(self, community: str = HOME, *, category: str = "道路亮化", households: int = 12,
             status: str = kinds.NEED_COLLECTED, at: str = "2026-03-01T08:00:00.000Z") -> int:
        return self.insert(kinds.NEED, {
            "title": "小区没有路灯", "category": category, "description": "夜间出行不便", "households": households,
            "source": "居民提出", "community_code": community, "grid_code": None, "status": status,
            "collected_at": at}, at=at)["n"]

    def project(self, community: str = HOME, *, needs: tuple[int, ...] = (), status: str = kinds.PROJECT_PLANNED,
                households_benefited: int | None = None, at: str = "2026-03-02T08:00:00.000Z") -> int:
        return self.insert(kinds.PROJECT, {
            "title": "安装路灯", "community_code": community, "needs": list(needs),
            "lead_unit_code": self.units(community)[0], "status": status,
            kinds.HOUSEHOLDS_BENEFITED: households_benefited}, at=at)["n"]

    def post(self, path: str, body: dict[str, Any], role: str = "admin", **kw: Any) -> Any:
        return self.client.post(path, json=body, headers={**self.headers[role], **kw.pop("headers", {})}, **kw)

    def get(self, path: str, role: str = "admin", **kw: Any) -> Any:
        return self.client.get(path, headers={**self.headers[role], **kw.pop("headers", {})}, **kw)

    def total(self, kind: str) -> int:
        return self.store.query_entities(EntityQuery(kind=kind))[1]


def _codes(layers: dict) -> dict[str, str]:
    workers = layers["workers"]
    home = workers[workers["community_code"] == HOME]
    part_time = set(home.loc[home["role"] == "兼职网格员", "grid_code"])
    grid = min(g for g in home.loc[home["role"] == "专职网格员", "grid_code"] if g in part_time)
    return {
        "worker": home[(home["grid_code"] == grid) & (home["role"] == "专职网格员")]["code"].iat[0],
        "mate": home[(home["grid_code"] == grid) & (home["role"] == "兼职网格员")]["code"].iat[0],
        "community": home[(home["grid_code"] == "") & (home["role"] == "网格长")]["code"].iat[0],
        "outsider": workers[(workers["community_code"] == OTHER) & (workers["grid_code"] != "")]["code"].iat[0],
    }


def cogov_world(db: Any, layers: dict) -> Iterator[Cogov]:
    """The app over the store ``db`` with a token per caller; yields, then closes the app."""
    settings = store_settings(db=db, load_sample_if_empty=False, admin_token=ADMIN_TOKEN)
    with TestClient(create_app(settings)) as client:
        store = client.app.state.store
        codes = _codes(layers)
        headers: dict[str, dict[str, str]] = {"public": {}}
        for role, code in codes.items():
            headers[role] = {"Authorization": f"Bearer {auth.create_token(store, role='worker', worker_code=code)[1]}"}
        for role in ("planner", "dispatcher"):
            headers[role] = {"Authorization": f"Bearer {auth.create_token(store, role=role)[1]}"}
        headers["admin"] = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        yield Cogov(client, store, headers, codes)


def world_fixture(name: str) -> Any:
    """A module-scoped ``world``: the app over this module's own copy of the sample county."""

    @pytest.fixture(scope="module")
    def world(sample_db: Any, copy_store: Any, sample_layers: dict,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cogov]:
        db = copy_store(sample_db, tmp_path_factory.mktemp(name), f"{name}.gpkg")
        yield from cogov_world(db, sample_layers)

    return world
