"""Request body limits counted on the bytes actually received, chunked bodies included.

A ``Content-Length`` header is only what the client promises, and a chunked body promises nothing.
So this pure ASGI middleware counts the bytes of every ``http.request`` message on its way to the
app and answers 413 as soon as the route's limit is passed; a declared length already over the
limit is refused before anything is read. Once a body is over its limit, whatever the app answers
(FastAPI turns a failed body read into a 400) is dropped and the 413 is sent instead.

Which routes have a limit of their own is said here (``ROUTE_LIMITS``, by method and path); how many
bytes each limit allows is a setting (``body_limit_*`` in ``gridmap/settings.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridmap.errors import PayloadTooLarge, size_text
from gridmap.settings import Settings

ROUTE_LIMITS: dict[tuple[str, str], str] = {
    ("POST", "/v1/incidents"): "body_limit_intake",
    ("POST", "/open311/v2/requests.json"): "body_limit_intake",
    ("POST", "/report"): "body_limit_intake",
    ("POST", "/v1/lookup/batch"): "body_limit_batch",
    ("POST", "/v1/admin/import"): "body_limit_import",
}
"""Routes whose body limit is not ``body_limit_default``: public intake is small, batches and imports large."""
PHOTO_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (("POST", re.compile(r"/v1/incidents/[^/]+/photos/?")),)
"""Routes that take photos (``body_limit_photos``), by method and a pattern of the path (it holds an id)."""
MULTIPART_PHOTO_ROUTES: frozenset[tuple[str, str]] = frozenset({("POST", "/open311/v2/requests.json"),
                                                                 ("POST", "/report"), ("POST", "/console/findings")})
"""Routes whose multipart form may carry photos (Open311's media): ``body_limit_photos`` when the body is
multipart, their own limit otherwise (a report as JSON or a urlencoded form stays small)."""
MULTIPART_PHOTO_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"/console/incidents/[^/]+/actions/?")),)
"""The same for routes whose path holds an id: the console's action forms (开始处置, 处置完成 with their
处置前/后 photos) are multipart; a urlencoded action keeps the default limit."""


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"请求体过大：此接口最多接受 {size_text(limit)}")


class _BodyTooLarge(Exception):
    """Raised from ``receive`` into the app when the body passes its limit; the app cannot read on."""


@dataclass
class _Guard:
    """One request's counting ``receive`` and a ``send`` that drops the app's answer once over the limit."""

    limit: int
    upstream_receive: Receive
    upstream_send: Send
    received: int = 0
    exceeded: bool = False
    started: bool = False

    async def receive(self) -> Message:
        if self.exceeded:
            raise _BodyTooLarge
        message = await self.upstream_receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.exceeded = True
                raise _BodyTooLarge
        return message

    async def send(self, message: Message) -> None:
        if self.exceeded and not self.started:
            return  # the 413 is sent instead, once the app is done
        if message["type"] == "http.response.start":
            self.started = True
        await self.upstream_send(message)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, default: int, routes: dict[tuple[str, str], int],
                 photos: int | None = None) -> None:
        self.app = app
        self.default = default
        self.routes = routes
        self.photos = photos if photos is not None else default

    @classmethod
    def options(cls, settings: Settings) -> dict:
        """Keyword arguments for ``app.add_middleware``: the limits in bytes, from the settings."""
        return {"default": settings.body_limit_default,
                "routes": {route: getattr(settings, name) for route, name in ROUTE_LIMITS.items()},
                "photos": settings.body_limit_photos}

    def limit_for(self, scope: Scope) -> int:
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        method = scope["method"]
        if any(method == m and pattern.fullmatch(path) for m, pattern in PHOTO_ROUTES):
            return self.photos
        if _multipart(scope) and ((method, path) in MULTIPART_PHOTO_ROUTES or any(
                method == m and pattern.fullmatch(path) for m, pattern in MULTIPART_PHOTO_PATTERNS)):
            return self.photos
        return self.routes.get((method, path), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _framing(scope)
        if declared is None and not chunked and scope.get("http_version") in ("1.0", "1.1"):
            await self.app(scope, receive, send)  # HTTP/1: no length and no chunks is no body (RFC 9112 6.3)
            return
        limit = self.limit_for(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, limit)
            return
        guard = _Guard(limit, receive, send)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            if not guard.exceeded or guard.started:
                raise
        if guard.exceeded and not guard.started:
            await _refuse(scope, receive, send, limit)


def _multipart(scope: Scope) -> bool:
    return any(name == b"content-type" and value.lower().startswith(b"multipart/form-data")
               for name, value in scope.get("headers", ()))


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The declared ``Content-Length`` (None when absent), and whether the body comes in chunks."""
    declared, chunked = None, False
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                chunked = True  # servers refuse a malformed length; count the bytes all the same
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    """413 and close the connection: the rest of the body is never read, so it cannot be reused."""
    error = too_large(limit)
    response = JSONResponse(error.to_dict(), status_code=error.status_code, headers={"Connection": "close"})
    await response(scope, receive, send)
