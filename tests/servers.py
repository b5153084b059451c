"""Helpers for tests that run `gridmap serve` as a real process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from stores import PG_SECRET

from gridmap.store import is_database_url

START_TIMEOUT_S = 120.0
"""A cold start on a busy two-core machine loads the sample county and builds the indexes."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path | str, port: int, *, log: Path | None = None, env: Mapping[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> subprocess.Popen:
    """``gridmap serve --db DB --port PORT``, returned once ``/health`` answers.

    Its stdout and stderr go to ``log`` (appended) when given, else nowhere; if it exits or never
    answers, the error carries the log's tail.
    """
    command = [sys.executable, "-m", "gridmap", "serve", "--db", str(db), "--port", str(port), *args]
    environment = dict(env if env is not None else os.environ)
    if is_database_url(str(db)):  # server mode takes the receipt secret from the environment
        environment.setdefault("GRIDMAP_SECRET", PG_SECRET)
    with (log.open("ab") if log else open(os.devnull, "wb")) as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                tail = log.read_text(errors="replace")[-3000:] if log else ""
                raise RuntimeError(f"gridmap serve did not start:\n{tail}") from None
            time.sleep(0.2)


def stop_server(process: subprocess.Popen, timeout: float = 30) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def serving(db: Path, *, log: Path | None = None, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """A running server over ``db`` for the length of the block; yields its base URL."""
    port = free_port()
    process = start_server(db, port, log=log, env=env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)
