"""`/metrics`: Prometheus text for loopback callers and admin tokens; figures checked against the store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from stores import open_test_store, query_raw, store_settings

from gridmap import auth
from gridmap.api import create_app

LOCAL = ("127.0.0.1", 40000)
REMOTE = ("203.0.113.9", 40000)
ADMIN = {"Authorization": "Bearer metrics-admin"}
REPORT = {"category": "infra.streetlight", "description": "路灯不亮", "lon": 110.7693, "lat": 35.1425}


@pytest.fixture(scope="module")
def db(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = copy_store(sample_db, tmp_path_factory.mktemp("metrics"), "metrics.gpkg")
    return target


@pytest.fixture(scope="module")
def app(db: Path):
    return create_app(store_settings(db=db, load_sample_if_empty=False, admin_token="metrics-admin"))


@pytest.fixture(scope="module")
def local(app) -> Iterator[TestClient]:
    with TestClient(app, client=LOCAL) as c:
        yield c


@pytest.fixture(scope="module")
def remote(app, local) -> TestClient:
    return TestClient(app, client=REMOTE)  # the app is already started by ``local``


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


# ------------------------------------------------------------------ who may read them


@pytest.mark.parametrize("client_address", [("127.0.0.1", 1), ("::1", 1)])
def test_loopback_callers_read_metrics_without_a_token(app, local, client_address) -> None:
    response = TestClient(app, client=client_address).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE gridmap_http_requests_total counter" in response.text


def test_other_callers_need_an_admin_token(remote: TestClient, db: Path) -> None:
    anonymous = remote.get("/metrics")  # the public: 401, a token would help (docs/security.md)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"
    dispatcher = auth.create_token(open_test_store(db), role="dispatcher")[1]
    refused = remote.get("/metrics", headers={"Authorization": f"Bearer {dispatcher}"})
    assert refused.status_code == 403
    assert refused.json() == {"error": "forbidden", "detail": "运行指标只对本机或管理员令牌开放"}
    assert "gridmap_" not in anonymous.text + refused.text
    assert remote.get("/metrics", headers=ADMIN).status_code == 200


# ------------------------------------------------------------------ what they say


def test_requests_are_counted_and_timed_per_route_template_and_status(local: TestClient) -> None:
    before = local.get("/metrics").text
    for incident_id in (1, 2, 3):
        local.get(f"/v1/incidents/{incident_id}", headers=ADMIN)
    local.get("/v1/incidents/999999", headers=ADMIN)
    local.get("/no/such/page")
    after = local.get("/metrics").text
    route = "/v1/incidents/{incident_id}"

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("gridmap_http_requests_total", route=route, method="GET", status="200") == 3
    assert grew("gridmap_http_requests_total", route=route, method="GET", status="404") == 1
    assert grew("gridmap_http_request_duration_seconds_count", route=route, method="GET", status="200") == 3
    assert grew("gridmap_http_request_duration_seconds_bucket", route=route, method="GET", status="200",
                le="+Inf") == 3
    assert grew("gridmap_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert not [k for k in samples(after) if any(v.startswith("/v1/incidents/9") or v == "/no/such/page"
                                                 for _, v in k[1])]  # raw paths never become labels


def test_incidents_by_status_and_open_overdue_match_the_store(local: TestClient, db: Path) -> None:
    local.post("/v1/incidents", json=REPORT)
    text = local.get("/metrics").text
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    counts = dict(query_raw(db, "SELECT status, count(*) FROM incidents GROUP BY status"))
    [(overdue,)] = query_raw(db, "SELECT count(*) FROM incidents WHERE due_at < ? AND status NOT IN "
                                 "('resolved', 'verified', 'closed', 'cancelled')", (now,))
    for status, count in counts.items():
        assert value(text, "gridmap_incidents", status=status) == count
    assert value(text, "gridmap_incidents", status="accepted") == counts.get("accepted", 0)
    assert value(text, "gridmap_incidents_open_overdue") == overdue > 0
    assert value(text, "gridmap_store_up") == 1


def test_the_index_revision_is_exposed(local: TestClient, db: Path) -> None:
    text = local.get("/metrics").text
    assert value(text, "gridmap_index_info", revision=open_test_store(db).revision()) == 1


def test_store_write_latency_is_observed_for_each_write_transaction(local: TestClient) -> None:
    before = value(local.get("/metrics").text, "gridmap_store_write_duration_seconds_count")
    for _ in range(3):
        assert local.post("/v1/incidents", json=REPORT).status_code == 201
    text = local.get("/metrics").text
    assert value(text, "gridmap_store_write_duration_seconds_count") >= before + 3
    assert value(text, "gridmap_store_write_duration_seconds_sum") > 0


def test_each_app_keeps_its_own_figures(db: Path) -> None:
    settings = store_settings(db=db, load_sample_if_empty=False)
    first, second = create_app(settings), create_app(settings)
    with TestClient(first, client=LOCAL) as a, TestClient(second, client=LOCAL) as b:
        for _ in range(4):
            a.get("/health")
        b.get("/health")
        health = {"route": "/health", "method": "GET", "status": "200"}
        assert value(a.get("/metrics").text, "gridmap_http_requests_total", **health) == 4
        assert value(b.get("/metrics").text, "gridmap_http_requests_total", **health) == 1
