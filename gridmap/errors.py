"""Domain errors. Each carries the HTTP status it maps to and a message meant for staff (Chinese).

The API registers one handler for the base class; the CLI prints ``message`` to stderr and
exits non-zero. Nothing here knows about FastAPI.
"""

from __future__ import annotations

from typing import Any


def size_text(n: int) -> str:
    """A byte count as messages say it: 64 KB, 512 MB, 1.5 GB."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n // size} {unit}" if n % size == 0 else f"{n / size:.1f} {unit}"
    return f"{n} 字节"


class GridmapError(Exception):
    status_code: int = 400
    code: str = "bad_request"
    retry_after: int | None = None
    """Seconds a client should wait before trying again (sent as ``Retry-After``), when it may."""

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "detail": self.message}
        if self.details is not None:
            body["problems"] = self.details
        return body


class NotFound(GridmapError):
    status_code = 404
    code = "not_found"


class InvalidInput(GridmapError):
    status_code = 422
    code = "invalid_input"


class PayloadTooLarge(GridmapError):
    status_code = 413
    code = "payload_too_large"


class Conflict(GridmapError):
    status_code = 409
    code = "conflict"


class PreconditionFailed(GridmapError):
    status_code = 412
    code = "precondition_failed"


class PreconditionRequired(GridmapError):
    status_code = 428
    code = "precondition_required"


class ImportRejected(GridmapError):
    """The data package has errors; nothing was written."""

    status_code = 422
    code = "import_rejected"


class PackageUnreadable(GridmapError):
    status_code = 422
    code = "package_unreadable"


class Unauthorized(GridmapError):
    status_code = 401
    code = "unauthorized"


class Forbidden(GridmapError):
    status_code = 403
    code = "forbidden"


class StoreUnavailable(GridmapError):
    """The store is busy (another writer holds its lock) or cannot be opened; worth retrying."""

    status_code = 503
    code = "store_unavailable"
    retry_after = 2


class RateLimited(GridmapError):
    """Too many requests from one client for a limited endpoint (public intake); ``retry_after`` says when."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"提交过于频繁，请 {retry_after} 秒后再试")
        self.retry_after = retry_after
