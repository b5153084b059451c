"""Operating gridmap: one JSON log line per request, request ids, and Prometheus metrics.

**The request log** (logger ``gridmap.access``) has one line per request: time, method, the route
*template* (``/v1/incidents/{incident_id}``, never the path as sent and never the query string,
where receipts travel), status, duration, request id, and the actor's role and code (a worker
code or a token id, never the token). Bodies, headers, names, phones, receipts and free text are
never read here, so they cannot reach the log. ``gridmap serve`` writes these lines, and uvicorn's
own messages, to stderr as JSON (``gridmap.logs.log_config``); uvicorn's access log stays off,
since it prints the query string.

**Request ids**: ``X-Request-ID`` from the client when it is a short plain token (letters, digits,
``._:-``, at most 64), else a new one; echoed on the response and in the log line, so a resident's
complaint ("request 3f2a… failed") can be found without anyone reading their data.

**Metrics** (``GET /metrics``, Prometheus text format, for loopback callers and admin tokens):
requests and latency per route template, method and status; incidents by status and open overdue
incidents, counted at scrape time from the store; the coverage index's revision; store write
latency (the store reports each write transaction's duration to ``observe_writes``). Each app
has its own registry, so several apps in one process (tests) do not mix their figures.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridmap.api.deps import ActorDep
from gridmap.auth import PUBLIC
from gridmap.errors import Forbidden, GridmapError, Unauthorized
from gridmap.incidents.workflow import STATUS_LABELS
from gridmap.logs import ACCESS_LOGGER
from gridmap.store.base import IncidentQuery

REQUEST_ID_HEADER: Final = "X-Request-ID"
_SANE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
UNMATCHED: Final = "unmatched"
"""Route label of a request no route answered (404): the path itself is never a label."""
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
"""Request latency buckets (s): lookups take microseconds, sitings up to a minute."""
WRITE_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
"""Store write buckets (s): a durable commit is milliseconds; seconds mean writers are queueing."""

access_log = logging.getLogger(ACCESS_LOGGER)


# ---------------------------------------------------------------- request ids and route templates


def request_id_of(scope: Scope) -> str:
    """The client's ``X-Request-ID`` when it is a sane short token, else a new random one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(text):
                return text
            break
    return secrets.token_hex(16)


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (``/v1/incidents/{incident_id}``)."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    return getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED


def _has_credentials(scope: Scope) -> bool:
    return any(name in (b"authorization", b"cookie") for name, _ in scope.get("headers", ()))


def actor_fields(scope: Scope) -> tuple[str | None, str | None]:
    """(role, code) of the actor the request was served as; the code is a worker code or a token id.

    A route that never asked who is calling logs ``public`` when no credentials came with the
    request, and ``None`` (unknown) when some did: resolving them here would cost a store read on
    every lookup.
    """
    actor = scope.get("state", {}).get("actor")
    if actor is not None:
        return actor.role, (actor.worker_code or actor.token_id) if actor.role != PUBLIC else None
    return (None, None) if _has_credentials(scope) else (PUBLIC, None)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------- metrics


class StateCollector:
    """Figures read at scrape time: incidents by status, open overdue, the coverage index's revision."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def describe(self) -> list[Metric]:
        return []  # nothing to read at registration: the store is opened later, by the lifespan

    def collect(self) -> Iterator[Metric]:
        store = getattr(self.state, "store", None)
        if store is None:
            return
        up = GaugeMetricFamily("gridmap_store_up", "1 when the store answered this scrape's queries")
        try:
            by_status = GaugeMetricFamily("gridmap_incidents", "Incidents by status", labels=["status"])
            for status in STATUS_LABELS:
                count = store.query_incidents(IncidentQuery(statuses=(status,)), limit=0, columns="fid")[1]
                by_status.add_metric([status], count)
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            overdue = store.query_incidents(IncidentQuery(overdue_at=now), limit=0, columns="fid")[1]
        except GridmapError:  # busy or unreadable: say so rather than fail the scrape
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield by_status
        yield GaugeMetricFamily("gridmap_incidents_open_overdue", "Open incidents past their due time",
                                value=overdue)
        coverage = getattr(self.state, "coverage", None)
        if coverage is not None:
            info = InfoMetricFamily("gridmap_index", "The store revision the coverage index was built from")
            info.add_metric([], {"revision": coverage.get().revision or ""})
            yield info


class Metrics:
    """One app's Prometheus registry and the metrics the middleware and the store feed."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("gridmap_http_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("gridmap_http_request_duration_seconds",
                                 "HTTP request latency by route template, method and status",
                                 ["route", "method", "status"], buckets=REQUEST_BUCKETS,
                                 registry=self.registry)
        self.store_writes = Histogram("gridmap_store_write_duration_seconds",
                                      "Store write transactions, from asking for the write lock to commit",
                                      buckets=WRITE_BUCKETS, registry=self.registry)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method if method in _METHODS else "OTHER", str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def watch_state(self, state: Any) -> None:
        self.registry.register(StateCollector(state))

    def render(self) -> bytes:
        return generate_latest(self.registry)


# ---------------------------------------------------------------- the middleware


class RequestObservability:
    """Pure ASGI middleware: request id in and out, then one log line and the request metrics."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, at = time.perf_counter(), _now_iso()
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500  # unless a response starts: an exception escaped to the server error handler

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            self.metrics.observe_request(route, scope["method"], status, seconds)
            role, code = actor_fields(scope)
            access_log.info({"time": at, "method": scope["method"], "route": route, "status": status,
                             "duration_ms": round(seconds * 1000, 2), "request_id": request_id,
                             "role": role, "actor": code})


# ---------------------------------------------------------------- /metrics

router = APIRouter(tags=["operations"])


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@router.get("/metrics", response_class=Response, summary="运行指标（Prometheus 文本格式）：仅本机或管理员令牌",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, 401: {"description": "非本机且未带令牌"},
                       403: {"description": "非本机且不是管理员"}})
async def metrics(request: Request, actor: ActorDep) -> Response:
    """Behind a reverse proxy on the same host, let the proxy pass ``X-Forwarded-For`` (uvicorn
    trusts it from 127.0.0.1) or block ``/metrics`` there: otherwise every caller looks local."""
    if not (is_loopback(request.client.host if request.client else None) or actor.role == "admin"):
        if actor.role == PUBLIC:
            raise Unauthorized("运行指标只对本机或管理员令牌开放：Authorization: Bearer <token>")
        raise Forbidden("运行指标只对本机或管理员令牌开放")
    body = await run_in_threadpool(request.app.state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def register(app: FastAPI) -> None:
    """The middleware, this app's registry and ``/metrics``; ``watch_store`` once the store is open."""
    metrics = Metrics()
    metrics.watch_state(app.state)
    app.state.metrics = metrics
    app.add_middleware(RequestObservability, metrics=metrics)
    app.include_router(router)


def watch_store(app: FastAPI) -> None:
    """Time the store's write transactions (from the lifespan, once the store is open)."""
    observe = getattr(app.state.store, "observe_writes", None)
    if observe is not None:
        observe(app.state.metrics.store_writes.observe)
