"""Request bodies are limited by the bytes actually read, and hostile bodies are a 4xx, never a 5xx.

A real server process is used where the in-process client cannot show the point: a chunked body
(no Content-Length) that keeps coming, and a declared length refused before the body is sent.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from servers import free_port, start_server, stop_server
from stores import store_settings

from gridmap.api import create_app
from gridmap.settings import Settings

ADMIN = "limits-admin-token"
REPORT = {"category": "infra.streetlight", "description": "路灯不亮", "lon": 110.7693, "lat": 35.1425}


@pytest.fixture(scope="module")
def server(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``gridmap serve`` over a copy of the sample county, with the default limits."""
    folder = tmp_path_factory.mktemp("limits")
    db = copy_store(sample_db, folder, "served.gpkg")
    port = free_port()
    env = {**os.environ, "GRIDMAP_ADMIN_TOKEN": ADMIN}
    process = start_server(db, port, log=folder / "server.log", env=env)
    try:
        yield port
    finally:
        stop_server(process)


def post_chunked(port: int, path: str, chunks: Iterable[bytes], content_type: str = "application/json",
                 ) -> tuple[int, dict, int]:
    """POST a chunked body (no Content-Length) until it ends or the server stops taking it.

    Returns the status, the JSON answer, and how many body bytes were sent before the server
    answered and closed the connection.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest("POST", path)
    connection.putheader("Content-Type", content_type)
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    sent = 0
    try:
        for chunk in chunks:
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        connection.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed while the body was still coming
    response = connection.getresponse()
    try:
        return response.status, json.loads(response.read()), sent
    finally:
        connection.close()


def zeros(total: int, size: int = 64 << 10) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b" " * size


@pytest.mark.slow
class TestARealServer:
    def test_a_small_chunked_report_is_accepted(self, server: int) -> None:
        body = json.dumps(REPORT, ensure_ascii=False).encode()
        status, answer, _ = post_chunked(server, "/v1/incidents", [body[:20], body[20:]])
        assert status == 201, answer

    def test_a_chunked_report_over_64_kb_is_refused_as_soon_as_the_limit_is_passed(self, server: int) -> None:
        endless = (b"[" if i == 0 else b" " * (64 << 10) for i in range(4096))  # 256 MB if it were all read
        status, answer, sent = post_chunked(server, "/v1/incidents", endless)
        assert status == 413
        assert answer == {"error": "payload_too_large", "detail": "请求体过大：此接口最多接受 64 KB"}
        assert sent < 64 << 20, "the server read on long after the limit"

    def test_a_chunked_open311_request_over_64_kb_is_refused(self, server: int) -> None:
        status, answer, _ = post_chunked(server, "/open311/v2/requests.json", zeros(1 << 20),
                                         content_type="application/x-www-form-urlencoded")
        assert status == 413 and answer["error"] == "payload_too_large"

    def test_a_chunked_batch_under_its_limit_is_read_whole(self, server: int) -> None:
        items = json.dumps([{"lon": 110.7693, "lat": 35.1425}] * 3000).encode()  # about 100 KB: over intake's
        chunks = [items[i:i + 4096] for i in range(0, len(items), 4096)]
        status, answer, _ = post_chunked(server, "/v1/lookup/batch", chunks)
        assert status == 200 and len(answer) == 3000

    def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(self, server: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
        connection.putrequest("POST", "/v1/incidents")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(10 << 20))
        connection.endheaders()  # and not one byte of the body
        started = time.monotonic()
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"] == "payload_too_large"
        assert time.monotonic() - started < 1.0, "the server waited for a body it was going to refuse"
        connection.close()


SMALL = Settings(body_limit_default=1 << 10, body_limit_intake=2 << 10, body_limit_batch=3 << 10,
                 body_limit_import=4 << 10)


@pytest.fixture
def small_limits(sample_db_copy: Path) -> Iterator[TestClient]:
    settings = store_settings(**{**SMALL.model_dump(), "db": sample_db_copy, "load_sample_if_empty": False,
                                 "admin_token": ADMIN, "intake_rate_per_minute": 0})
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(("path", "limit"), [
    ("/v1/incidents", "2 KB"),
    ("/open311/v2/requests.json", "2 KB"),
    ("/v1/lookup/batch", "3 KB"),
    ("/v1/admin/import", "4 KB"),
    ("/v1/admin/tokens", "1 KB"),
    ("/v1/incidents/1/transitions", "1 KB"),
])
def test_each_route_has_its_own_limit_counted_on_the_bytes_read(small_limits: TestClient, path: str,
                                                                   limit: str) -> None:
    size = int(limit.split()[0]) << 10
    auth = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}

    def chunked(n: int) -> Iterator[bytes]:  # a generator: sent without Content-Length
        yield b" " * n

    over = small_limits.post(path, content=chunked(size + 1), headers=auth)
    assert over.status_code == 413
    assert over.json() == {"error": "payload_too_large", "detail": f"请求体过大：此接口最多接受 {limit}"}
    at_limit = small_limits.post(path, content=chunked(size), headers=auth)
    assert at_limit.status_code != 413


def test_the_default_limits_are_those_of_the_issue() -> None:
    settings = Settings()
    assert settings.body_limit_intake == 64 << 10
    assert settings.body_limit_batch == 64 << 20
    assert settings.body_limit_import == 512 << 20
    assert settings.body_limit_default == 1 << 20


@pytest.fixture(scope="module")
def app_client(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = copy_store(sample_db, tmp_path_factory.mktemp("hostile"), "sample.gpkg")
    settings = store_settings(db=db, load_sample_if_empty=False, admin_token=ADMIN, intake_rate_per_minute=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


DEEP = 30_000  # 60 KB of brackets: inside intake's 64 KB, far past any parser's recursion
HOSTILE: dict[str, tuple[bytes, str]] = {
    "deep arrays": (b"[" * DEEP + b"]" * DEEP, "application/json"),
    "deep objects": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json"),
    "100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "NaN and Infinity": (b'{"category": "infra.streetlight", "description": "x", "lon": NaN, "lat": Infinity,'
                         b' "service_code": "infra.streetlight", "k": NaN, "radius_m": -Infinity}',
                         "application/json"),
    "a number past float": (b'{"lon": 1' + b"0" * 400 + b', "lat": 35}', "application/json"),
    "invalid UTF-8": (b'{"description": "\xff\xfe\xfd", "category": "infra.streetlight"}', "application/json"),
    "binary garbage as JSON": (bytes(range(256)) * 16, "application/json"),
    "binary garbage as a form": (bytes(range(256)) * 16, "application/x-www-form-urlencoded"),
    "a broken multipart form": (b"--x\r\nContent-Disposition: form-data\r\n\r\n\x00\xff", "multipart/form-data; boundary=x"),
    "multipart without boundary": (b"garbage", "multipart/form-data"),
    "CSV garbage": (bytes(range(256)) * 16, "text/csv"),
    "no content type": (bytes(range(256)) * 16, ""),
}


def body_operations(client: TestClient) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI that takes a body, path parameters filled with plausible values."""
    found = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method in operations:
            if method in ("post", "put", "patch", "delete"):
                found.append((method.upper(), path.replace("{incident_id}", "1").replace("{token_id}", "x")
                              .replace("{scenario_id}", "1").replace("{code}", "W0084")
                              .replace("{request_id}", "1")))
    return found


@pytest.mark.parametrize("role", ["public", "admin"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bodies_are_never_a_5xx_on_any_operation_that_takes_a_body(app_client: TestClient, name: str,
                                                                          role: str) -> None:
    body, content_type = HOSTILE[name]
    headers = {"Content-Type": content_type} if content_type else {}
    if role == "admin":
        headers["Authorization"] = f"Bearer {ADMIN}"
    operations = body_operations(app_client)
    assert ("POST", "/open311/v2/requests.json") in operations and ("POST", "/v1/lookup/batch") in operations
    wrong = {}
    for method, path in operations:
        response = app_client.request(method, path, content=body, headers=headers)
        json_answer = response.headers.get("content-type", "").startswith("application/json")
        refused = response.status_code >= 400
        if response.status_code >= 500 or (refused and json_answer and not {"error", "detail"} <= response.json().keys()):
            wrong[f"{method} {path}"] = f"{response.status_code} {response.text[:200]}"
    assert not wrong, wrong


@pytest.mark.parametrize("path", ["/v1/incidents", "/open311/v2/requests.json", "/v1/lookup/batch"])
def test_deep_json_is_refused_with_a_message_that_says_why(app_client: TestClient, path: str) -> None:
    response = app_client.post(path, content=b"[" * DEEP + b"]" * DEEP, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500
    assert response.json()["detail"].startswith(("请求体不是有效的 JSON", "请求体无法解析"))


def test_open311_says_nan_is_not_json(app_client: TestClient) -> None:
    response = app_client.post("/open311/v2/requests.json", content=b'{"service_code": "x", "lat": NaN}',
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json() == {"error": "invalid_input",
                               "detail": "请求体不是有效的 JSON：第 1 行第 30 列：NaN、Infinity 不是 JSON 数值"}


def test_an_open311_form_cannot_smuggle_a_file_as_a_field(app_client: TestClient) -> None:
    response = app_client.post("/open311/v2/requests.json", files={"description": ("a.txt", b"hello")},
                               data={"service_code": "infra.streetlight", "lat": "35.1425", "long": "110.7693"})
    assert response.status_code == 422 and "上传文件" in response.json()["detail"]


def test_unknown_paths_and_methods_answer_in_the_same_form(app_client: TestClient) -> None:
    missing = app_client.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.json() == {"error": "not_found", "detail": "没有这个地址"}
    wrong = app_client.delete("/v1/lookup")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
    assert "GET" in wrong.headers["allow"]


HUGE = str(2**70)
"""Past SQLite's INTEGER range: sqlite3 cannot even bind it."""


@pytest.mark.parametrize("path", [
    f"/v1/incidents/{HUGE}", f"/v1/incidents/{HUGE}/history", f"/v1/incidents?offset={HUGE}",
    f"/open311/v2/requests/{HUGE}.json", f"/v1/planning/scenarios/{HUGE}", f"/v1/planning/scenarios?offset={HUGE}",
    f"/maps/planner?scenario={HUGE}",
])
def test_ids_and_offsets_past_the_integer_range_are_4xx(app_client: TestClient, path: str) -> None:
    answer = app_client.get(path, headers={"Authorization": f"Bearer {ADMIN}"})
    assert answer.status_code in (404, 422), answer.text[:200]
    assert answer.json()["detail"]


def test_a_transition_on_a_huge_id_is_4xx(app_client: TestClient) -> None:
    answer = app_client.post(f"/v1/incidents/{HUGE}/transitions", json={"action": "accept"},
                             headers={"Authorization": f"Bearer {ADMIN}", "If-Match": '"1"'})
    assert answer.status_code == 422 and answer.json()["detail"]
