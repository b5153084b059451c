"""An acknowledged report (a 201) survives the server being killed with SIGKILL at any moment."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from servers import free_port, start_server
from stores import open_test_store, query_raw

from gridmap import auth
from gridmap.store import is_database_url

pytestmark = pytest.mark.slow


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_acknowledged_incidents_survive_kill_9(sample_db, copy_store, tmp_path: Path) -> None:
    db = copy_store(sample_db, tmp_path, "durable.gpkg")
    token = auth.create_token(open_test_store(db), role="dispatcher")[1]
    port = free_port()
    server = start_server(db, port)
    acknowledged: dict[int, dict] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            body = {"category": "infra.streetlight", "description": f"durable-{n}-{i}",
                    "lon": 110.7693 + 0.0001 * n, "lat": 35.1425 + 0.00001 * i}
            try:
                status, answer = post(f"http://127.0.0.1:{port}/v1/incidents", body)
            except (OSError, urllib.error.URLError):
                return  # the server is gone: this request was never acknowledged
            if status == 201:
                with lock:
                    acknowledged[answer["id"]] = body
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(server.pid, signal.SIGKILL)  # mid-way: writers are still sending
    server.wait(timeout=30)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acknowledged) >= 60

    if not is_database_url(str(db)):  # PostgreSQL recovers from its WAL by itself
        assert query_raw(db, "PRAGMA integrity_check") == [("ok",)]
    server = start_server(db, port)
    try:
        for incident_id, body in acknowledged.items():
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/incidents/{incident_id}",
                                             headers={"Authorization": f"Bearer {token}"})
            stored = json.loads(urllib.request.urlopen(request, timeout=10).read())
            assert stored["description"] == body["description"]
            assert stored["category"]["code"] == body["category"]
            assert (stored["location"]["lon"], stored["location"]["lat"]) == (body["lon"], body["lat"])
            assert stored["status"] == "reported" and stored["grid"] is not None
            history_request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/incidents/{incident_id}/history",
                headers={"Authorization": f"Bearer {token}"})
            assert [e["action"] for e in json.loads(urllib.request.urlopen(history_request).read())] == ["report"]
    finally:
        server.terminate()
        server.wait(timeout=30)
