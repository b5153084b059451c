"""Fuzzing the whole OpenAPI with schemathesis: no answer is a 5xx, every answer fits its own schema.

Every operation in the schema when the test runs is fuzzed (new endpoints are picked up without
editing this file), with data that fits the schema and data that does not, as the public and as
an admin, over a writable copy of the sample county. Two checks apply: ``not_a_server_error`` and
``response_schema_conformance`` (each documented status, including the error shape every 4xx
shares, see ``gridmap.api.errors``). Other schemathesis checks are left out on purpose:
``status_code_conformance`` would demand every possible 4xx be listed per operation, which says
nothing about robustness, and the negative-data checks assume the server rejects values it may
legitimately clamp or ignore (e.g. an unknown ``status`` filter that matches nothing).

Failures are collected over all operations and reported together, with the request to replay.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.python import asgi
from stores import store_settings

from gridmap.api import create_app

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "fuzz-admin-token"
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}
"""Examples per operation, per role and mode: about 40 requests an operation, under 2 minutes in all."""
CHECKS = [not_a_server_error, response_schema_conformance]
PLANNING_TIME_LIMIT_S = 2
"""Siting runs stop at ``time_limit_s`` (up to 60 s): fuzzed bodies are capped at this so that the fuzz
fits in CI. The bounds themselves are tested in tests/planning; every other field is fuzzed as generated."""


@pytest.fixture
def fuzz_schema(sample_db_copy: Path, tmp_path: Path):
    settings = store_settings(db=sample_db_copy, load_sample_if_empty=False, admin_token=ADMIN_TOKEN,
                        intake_rate_per_minute=0,  # the limiter has its own tests; here it would hide intake
                        import_tmp_dir=tmp_path / "uploads")
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    yield schema
    asgi.shutdown_lifespans()  # closes the store of this app


def _cap_planning(case) -> None:
    if isinstance(case.body, dict) and "time_limit_s" in case.body:
        value = case.body["time_limit_s"]
        if isinstance(value, int | float) and not isinstance(value, bool) and value > PLANNING_TIME_LIMIT_S:
            case.body["time_limit_s"] = PLANNING_TIME_LIMIT_S
    if isinstance(case.body, dict) and case.operation.path.startswith("/v1/planning"):
        case.body.setdefault("time_limit_s", PLANNING_TIME_LIMIT_S)


def _replay(case) -> str:
    body = case.body if not isinstance(case.body, bytes) else case.body[:200]
    return (f"{case.method} {case.formatted_path} query={case.query} headers={case.headers} "
            f"body={json.dumps(body, ensure_ascii=False, default=str)[:500]}")


def fuzz(schema, headers: dict[str, str]) -> tuple[dict[str, str], int, int]:
    """Failures by operation and mode (the first found: hypothesis stops there), operations, requests."""
    failures: dict[str, str] = {}
    operations = requests = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode, examples in EXAMPLES.items():
            @hypothesis.settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                                 phases=[Phase.explicit, Phase.generate],
                                 suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:
                nonlocal requests
                _cap_planning(case)
                requests += 1
                try:
                    case.call_and_validate(headers=headers, checks=CHECKS)
                except Exception as exc:
                    failures.setdefault(f"{operation.label} [{mode}]", f"{_replay(case)}\n    {str(exc)[:1500]}")
                    raise

            try:
                run()
            except (Exception, BaseExceptionGroup):  # recorded above with the request; on to the next
                continue
    return failures, operations, requests


@pytest.mark.parametrize("role", ["public", "admin"])
def test_no_operation_answers_5xx_or_breaks_its_schema(fuzz_schema, role: str) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if role == "admin" else {}
    started = time.monotonic()
    failures, operations, requests = fuzz(fuzz_schema, headers)
    assert operations >= 30, "the schema lost its operations"
    assert requests >= 10 * operations, "the fuzz hardly ran"
    said = "\n".join(f"{where}: {what}" for where, what in failures.items())
    assert not failures, (f"{len(failures)} failing operation(s) as {role}, {requests} requests "
                          f"in {time.monotonic() - started:.0f} s:\n{said}")
