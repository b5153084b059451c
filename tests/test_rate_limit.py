"""Abuse limits: public reports per client address, 429 with Retry-After, staff never limited."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from stores import open_test_store, store_settings

from gridmap import auth
from gridmap.api import create_app
from gridmap.api.ratelimit import client_key
from gridmap.settings import Settings

REPORT = {"category": "infra.streetlight", "description": "路灯不亮", "lon": 110.7693, "lat": 35.1425}
OPEN311 = {"service_code": "infra.streetlight", "lat": "35.1425", "long": "110.7693", "description": "路灯不亮"}
BURST = 2
WINDOW_S = 3


@pytest.fixture
def db(sample_db, copy_store, tmp_path: Path) -> Path:
    target = copy_store(sample_db, tmp_path, "limited.gpkg")
    return target


@pytest.fixture
def app(db: Path):
    """A tiny window, so recovery is seconds away: 2 reports in any 3 seconds (40 a minute)."""
    return create_app(store_settings(db=db, load_sample_if_empty=False, intake_burst=BURST,
                               intake_rate_per_minute=BURST * 60 / WINDOW_S))


@pytest.fixture
def resident(app) -> Iterator[TestClient]:
    with TestClient(app, client=("198.51.100.7", 5000)) as c:
        yield c


def test_defaults_are_ten_a_minute_with_a_burst_of_twenty() -> None:
    fields = Settings.model_fields
    assert fields["intake_rate_per_minute"].default == 10 and fields["intake_burst"].default == 20


def test_past_the_burst_a_public_report_is_refused_with_retry_after(resident: TestClient) -> None:
    for _ in range(BURST):
        assert resident.post("/v1/incidents", json=REPORT).status_code == 201
    refused = resident.post("/v1/incidents", json=REPORT)
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= WINDOW_S
    assert refused.json() == {"error": "rate_limited", "detail": f"提交过于频繁，请 {wait} 秒后再试"}
    assert re.fullmatch(r"提交过于频繁，请 \d+ 秒后再试", refused.json()["detail"])


def test_open311_posts_share_the_same_budget(resident: TestClient) -> None:
    assert resident.post("/open311/v2/requests.json", data=OPEN311).status_code == 201
    assert resident.post("/v1/incidents", json=REPORT).status_code == 201
    refused = resident.post("/open311/v2/requests.json", data=OPEN311)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"] == "rate_limited"


def test_staff_and_other_clients_are_not_held_up(app, resident: TestClient, db: Path) -> None:
    for _ in range(BURST + 1):
        resident.post("/v1/incidents", json=REPORT)
    assert resident.post("/v1/incidents", json=REPORT).status_code == 429
    staff = {"Authorization": f"Bearer {auth.create_token(open_test_store(db), role='dispatcher')[1]}"}
    for _ in range(BURST + 2):
        assert resident.post("/v1/incidents", json=REPORT, headers=staff).status_code == 201
    neighbour = TestClient(app, client=("198.51.100.8", 5000))
    assert neighbour.post("/v1/incidents", json=REPORT).status_code == 201


def test_a_client_that_waits_retry_after_gets_through(resident: TestClient) -> None:
    for _ in range(BURST):
        assert resident.post("/v1/incidents", json=REPORT).status_code == 201
    refused = resident.post("/v1/incidents", json=REPORT)
    assert refused.status_code == 429
    time.sleep(int(refused.headers["retry-after"]))
    assert resident.post("/v1/incidents", json=REPORT).status_code == 201


def test_reads_are_not_limited(resident: TestClient) -> None:
    for _ in range(BURST + 3):
        assert resident.get("/open311/v2/services.json").status_code == 200
    assert resident.post("/v1/incidents", json=REPORT).status_code == 201


def test_zero_turns_the_limit_off(db: Path) -> None:
    settings = store_settings(db=db, load_sample_if_empty=False, intake_rate_per_minute=0, intake_burst=1)
    with TestClient(create_app(settings)) as c:
        assert all(c.post("/v1/incidents", json=REPORT).status_code == 201 for _ in range(4))


@pytest.mark.parametrize("host, key", [
    ("198.51.100.7", "198.51.100.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # the same household's /64: one budget
    ("::ffff:198.51.100.7", "198.51.100.7"),
    ("testclient", "testclient"),
    (None, "unknown"),
])
def test_clients_are_told_apart_by_address_and_ipv6_by_their_64(host, key) -> None:
    assert client_key(host) == key
