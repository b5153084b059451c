"""`gridmap serve` as a real process: a fresh store gets the sample county, --empty gets nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from servers import free_port

pytestmark = pytest.mark.slow


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@contextmanager
def serving(*args: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "gridmap", "serve", "--port", str(port), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                get_json(f"{base}/health")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(process.stdout.read().decode()) from None
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_fresh_store_is_served_with_the_sample_county(tmp_path: Path) -> None:
    db = tmp_path / "fresh.gpkg"
    with serving("--db", str(db)) as base:
        assert get_json(f"{base}/health")["grids"] >= 80
        answer = get_json(f"{base}/v1/lookup?lon=110.7693&lat=35.1425")
        assert answer["county"]["name"] == "临猗县" and answer["town"]["name"] == "猗氏镇"
    assert db.exists()


def test_empty_flag_serves_an_empty_store(tmp_path: Path) -> None:
    with serving("--db", str(tmp_path / "empty.gpkg"), "--empty") as base:
        assert get_json(f"{base}/health")["grids"] == 0
        assert get_json(f"{base}/v1/lookup?lon=110.7693&lat=35.1425")["covered"] is False
