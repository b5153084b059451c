"""One JSON line per request, with a request id, and nothing of the residents in it.

The full run goes through a real `gridmap serve` process: reports with a planted name, phone, ID
number, room and free text, followed by their receipts in headers and query strings, staff
transitions with tokens, address lookups and Open311. Its stderr is then read line by line.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from servers import free_port, start_server
from stores import open_test_store, store_settings

from gridmap import auth
from gridmap.api import create_app

NAME = "欧阳娜娜"
PHONE = "13987654321"
ID_NUMBER = "14082119900101123X"
ROOM = "1902室"
FREE_TEXT = "楼道里堆满杂物邻居天天吵架"
NOTE = "已电话联系居民核实"
ADDRESS = f"临猗县双塔社区丰林小区3号楼2单元{ROOM}"
PLACE = {"lon": 110.7693, "lat": 35.1425}
FIELDS = {"time", "method", "route", "status", "duration_ms", "request_id", "role", "actor"}


# ------------------------------------------------------------------ a real server, its stderr read afterwards


def _call(base: str, method: str, path: str, *, body: dict | None = None, form: dict | None = None,
          headers: dict | None = None) -> tuple[int, dict, bytes]:
    data, sent = None, dict(headers or {})
    if body is not None:
        data, sent["Content-Type"] = json.dumps(body).encode(), "application/json"
    elif form is not None:
        data, sent["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    request = urllib.request.Request(base + path, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.slow
def test_a_full_run_logs_one_json_line_per_request_and_nothing_personal(sample_db, copy_store, tmp_path: Path) -> None:
    db = copy_store(sample_db, tmp_path, "logged.gpkg")
    store = open_test_store(db)
    dispatcher_id, dispatcher = auth.create_token(store, role="dispatcher")
    worker_code = store.read_layer("workers").query("grid_code != ''")["code"].iat[0]
    _, worker = auth.create_token(store, role="worker", worker_code=worker_code)
    store.close()
    port, log = free_port(), tmp_path / "stderr.log"
    server = start_server(db, port, log=log)
    base = f"http://127.0.0.1:{port}"
    secrets_sent: list[str] = [dispatcher, worker]
    calls = 0

    def call(*args, **kwargs) -> tuple[int, dict, bytes]:
        nonlocal calls
        calls += 1
        return _call(base, *args, **kwargs)

    try:
        report = {"category": "infra.streetlight", "description": f"{FREE_TEXT}，{NAME}，电话{PHONE}，身份证{ID_NUMBER}",
                  "address": ADDRESS, "reporter": {"name": NAME, "phone": PHONE}}
        status, headers, answer = call("POST", "/v1/incidents", body=report,
                                       headers={"X-Request-ID": "run-42", "Idempotency-Key": f"key-{PHONE}"})
        assert status == 201, answer
        assert headers["x-request-id"] == "run-42"
        first = json.loads(answer)
        status, _, answer = call("POST", "/v1/incidents", body={
            "category": "dispute.family", "description": FREE_TEXT, **PLACE, "reporter": {"name": NAME, "phone": PHONE}})
        assert status == 201, answer
        second = json.loads(answer)
        secrets_sent += [first["receipt"], second["receipt"]]

        # the reporter follows up: receipts in the query string, in the header, in a body
        for incident in (first, second):
            assert call("GET", f"/v1/incidents/{incident['id']}?receipt={incident['receipt']}")[0] == 200
            assert call("GET", f"/v1/incidents/{incident['id']}", headers={"X-Receipt": incident["receipt"]})[0] == 200
            call("GET", f"/v1/incidents/{incident['id']}/history?receipt={incident['receipt']}")
            call("POST", f"/v1/incidents/{incident['id']}/feedback",
                 body={"receipt": incident["receipt"], "rating": 5, "comment": f"{NAME}很满意"})
        # staff at work, with tokens
        staff = {"Authorization": f"Bearer {dispatcher}"}
        status, headers, _ = call("GET", f"/v1/incidents/{first['id']}", headers=staff)
        assert status == 200
        status, _, answer = call("POST", f"/v1/incidents/{first['id']}/transitions",
                                 body={"action": "accept", "note": f"{NOTE}{PHONE}"},
                                 headers={**staff, "If-Match": headers["etag"]})
        assert status == 200, answer
        assert call("GET", "/v1/incidents?limit=5", headers={"Authorization": f"Bearer {worker}"})[0] == 200
        # lookups by address (the room is in the query string) and in a batch body
        assert call("GET", "/v1/lookup?" + urllib.parse.urlencode({"address": ADDRESS}))[0] == 200
        assert call("POST", "/v1/lookup/batch", body=[ADDRESS, PLACE])[0] == 200
        # Open311: a form post with the reporter's name and phone, then reads
        status, _, answer = call("POST", "/open311/v2/requests.json", form={
            "service_code": "infra.streetlight", "lat": PLACE["lat"], "long": PLACE["lon"], "first_name": "娜娜",
            "last_name": "欧阳", "phone": PHONE, "description": f"{FREE_TEXT} {ID_NUMBER}", "address_string": ADDRESS})
        assert status == 201, answer
        (created,) = json.loads(answer)
        secrets_sent.append(created["token"])
        call("GET", f"/open311/v2/requests/{created['service_request_id']}.json")
        call("GET", "/open311/v2/requests.json?" + urllib.parse.urlencode({"service_code": "infra.streetlight"}))
        # a path that matches no route, with a phone number in it; an id that is not a sane token
        assert call("GET", f"/v1/residents/{PHONE}")[0] == 404
        status, headers, _ = call("GET", "/health", headers={"X-Request-ID": "x" * 65})
        generated = headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
    finally:
        server.terminate()
        server.wait(timeout=30)

    text = log.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    assert all(isinstance(line, dict) for line in lines)
    assert any(line.get("logger") == "uvicorn.error" for line in lines)  # uvicorn's own messages too
    requests = [line for line in lines if "request_id" in line]
    assert len(requests) >= calls
    assert all(FIELDS <= set(line) for line in requests)
    assert all(isinstance(line["duration_ms"], float | int) and line["duration_ms"] >= 0 for line in requests)
    routes = {line["route"] for line in requests}
    assert {"/v1/incidents", "/v1/incidents/{incident_id}", "/v1/incidents/{incident_id}/transitions",
            "/v1/lookup", "/open311/v2/requests.json", "/open311/v2/requests/{request_id}.json"} <= routes
    assert not [r for r in routes if "?" in r or str(first["id"]) in r or PHONE in r]
    assert {line["route"] for line in requests if line["status"] == 404 and line["method"] == "GET"} >= {"unmatched"}

    tagged = [line for line in requests if line["request_id"] == "run-42"]
    assert len(tagged) == 1 and tagged[0]["route"] == "/v1/incidents" and tagged[0]["status"] == 201
    assert tagged[0]["role"] == "public" and tagged[0]["actor"] is None
    assert [line["route"] for line in requests if line["request_id"] == generated] == ["/health"]
    moves = [line for line in requests if line["route"].endswith("/transitions")]
    assert [(m["role"], m["actor"]) for m in moves] == [("dispatcher", dispatcher_id)]
    assert {(line["role"], line["actor"]) for line in requests if line["route"] == "/v1/incidents"
            and line["method"] == "GET"} == {("worker", worker_code)}

    planted = [NAME, "娜娜", PHONE, ID_NUMBER, ROOM, FREE_TEXT, NOTE, "很满意", *secrets_sent]
    for value in planted:
        assert value not in text, value
        assert json.dumps(value)[1:-1] not in text, value  # nor \u-escaped
        assert urllib.parse.quote(value) not in text and urllib.parse.quote_plus(value) not in text, value


# ------------------------------------------------------------------ the same lines through the app in-process


@pytest.fixture(scope="module")
def logged(sample_db: Path) -> TestClient:
    with TestClient(create_app(store_settings(db=sample_db, load_sample_if_empty=False, admin_token="log-admin"))) as c:
        yield c


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [r.msg for r in caplog.records if r.name == "gridmap.access"]


def test_each_request_is_one_record_with_the_route_template(logged: TestClient, caplog) -> None:
    caplog.set_level(logging.INFO, logger="gridmap.access")
    response = logged.get("/v1/grids/140821100015-07?x=1")
    assert response.status_code == 200
    (line,) = _lines(caplog)
    assert set(line) == FIELDS
    assert line["route"] == "/v1/grids/{code}" and line["method"] == "GET" and line["status"] == 200
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["role"] == "public" and line["actor"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])


@pytest.mark.parametrize("sent, kept", [
    ("0f8fe1c2-7d2a-4b7e-9d7e-3c1e3a1f2b90", True),
    ("trace.01:abc_DEF", True),
    ("has space", False),
    ("中文标识", False),
    ("x" * 65, False),
    ("", False),
])
def test_a_sane_request_id_is_kept_and_echoed_anything_else_replaced(logged: TestClient, caplog, sent, kept) -> None:
    caplog.set_level(logging.INFO, logger="gridmap.access")
    response = logged.get("/health", headers={"X-Request-ID": sent.encode("utf-8")})
    echoed = response.headers["x-request-id"]
    assert (echoed == sent) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)
    assert _lines(caplog)[0]["request_id"] == echoed


def test_the_actor_is_named_by_role_and_code_never_by_token(logged: TestClient, caplog) -> None:
    caplog.set_level(logging.INFO, logger="gridmap.access")
    assert logged.get("/v1/incidents/stats", headers={"Authorization": "Bearer log-admin"}).status_code == 200
    assert logged.get("/v1/incidents/stats", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    assert logged.get("/v1/lookup?lon=110.7693&lat=35.1425", headers={"Authorization": "Bearer x"}).status_code == 200
    admin, refused, lookup = _lines(caplog)
    assert (admin["role"], admin["actor"]) == ("admin", "settings")
    assert refused["status"] == 401 and refused["role"] is None  # credentials that did not resolve: unknown
    assert lookup["role"] is None  # a route that never asks who is calling does not guess
    assert "log-admin" not in caplog.text and "wrong-token" not in caplog.text
