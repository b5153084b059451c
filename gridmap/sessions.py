"""Browser sign-in: server-side sessions opened with a token, their CSRF tokens, where to land.

Maps are opened in a browser, where a link cannot carry an ``Authorization`` header. Staff paste
their token once on ``/login``; the server keeps a session and the browser a cookie holding only
the session's random id, never the token. The store keeps a hash of that id, so neither a copy of
the store nor the cookie jar holds anything that works as a token elsewhere.

A session is valid while it has not ended (``/logout``), not expired (``GRIDMAP_SESSION_HOURS``)
and the token behind it is still valid: a revoked token, or a changed ``GRIDMAP_ADMIN_TOKEN``,
ends its sessions on the next request. Requests authenticated by the cookie that change state
must repeat the session's CSRF token in ``X-CSRF-Token`` (a cross-site form cannot read it).

The policy is written in docs/security.md, "Sign-in and sessions". Nothing here knows about HTTP.
"""

from __future__ import annotations

import hmac
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote, urlsplit

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from gridmap.auth import SETTINGS_TOKEN_ID, Actor, token_hash
from gridmap.errors import Forbidden
from gridmap.store.base import Store

COOKIE_NAME: Final = "gridmap_session"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing, so need no CSRF token."""
MAX_ID_LENGTH: Final = 128
"""A cookie longer than any id we issue is not looked up."""


@dataclass(frozen=True)
class Session:
    actor: Actor
    csrf: str
    created_at: datetime
    expires_at: datetime


def _stamp(at: datetime) -> str:
    """Fixed-width UTC time with microseconds: sorts as text, and tiny lifetimes stay exact."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def open_session(store: Store, actor: Actor, *, token: str, lifetime: timedelta,
                 now: datetime | None = None) -> tuple[str, Session]:
    """A new session for ``actor`` (who signed in with ``token``): returns (session id, session).

    The id goes into the cookie and nowhere else; only its hash is stored. ``token`` is kept as a
    hash too, so the session dies with the token (or with a changed ``GRIDMAP_ADMIN_TOKEN``).
    """
    now = now or datetime.now(UTC)
    session_id = secrets.token_urlsafe(32)
    session = Session(actor, secrets.token_urlsafe(32), now, now + lifetime)
    store.purge_sessions(before=_stamp(now))
    store.insert_session({
        "id_hash": token_hash(session_id), "csrf": session.csrf, "role": actor.role,
        "worker_code": actor.worker_code, "token_id": actor.token_id or "", "token_hash": token_hash(token),
        "created_at": _stamp(now), "expires_at": _stamp(session.expires_at),
    })
    return session_id, session


def find_session(store: Store, session_id: str | None, *, admin_token: str | None = None,
                 now: datetime | None = None) -> Session | None:
    """The live session with this id; None when unknown, ended, expired or its token is no longer valid."""
    if not session_id or len(session_id) > MAX_ID_LENGTH:
        return None
    row = store.find_session(token_hash(session_id))
    if row is None or row["ended_at"] is not None:
        return None
    expires_at = _parse(row["expires_at"])
    if (now or datetime.now(UTC)) >= expires_at:
        return None
    if row["token_id"] == SETTINGS_TOKEN_ID:
        live = bool(admin_token) and hmac.compare_digest(token_hash(admin_token or ""), row["token_hash"])
    else:
        live = bool(row["token_live"])
    if not live:
        return None
    actor = Actor(row["role"], row["worker_code"], row["token_id"])
    return Session(actor, row["csrf"], _parse(row["created_at"]), expires_at)


def end_session(store: Store, session_id: str | None, *, now: datetime | None = None) -> bool:
    """End the session (logout); False when there was none to end."""
    if not session_id or len(session_id) > MAX_ID_LENGTH:
        return False
    return store.end_session(token_hash(session_id), at=_stamp(now or datetime.now(UTC)))


def check_csrf(session: Session, presented: str | None) -> None:
    """A state-changing request made with the session cookie must repeat the session's CSRF token."""
    if not presented or not hmac.compare_digest(presented.encode(), session.csrf.encode()):
        raise Forbidden(f"请求缺少有效的 CSRF 令牌（请在 {CSRF_HEADER} 中提供页面给出的令牌，或使用 Bearer 令牌）")


# where to go after signing in -------------------------------------------------------------------

def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None: ``next`` must not be an open redirect.

    Refused: anything with a scheme or host (``https://x``, ``//x``), backslashes (browsers read
    ``/\\x`` as ``//x``), control characters, and the sign-in pages themselves.
    """
    if not target or len(target) > 2000 or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout"):
        return None
    return target


def home_of(actor: Actor) -> str:
    """The page each role lands on after signing in."""
    if actor.role == "worker" and actor.worker_code:
        return f"/maps/worker/{quote(actor.worker_code, safe='')}"
    if actor.role == "planner":
        return "/maps/planner"
    return "/maps/dispatcher"


# brute force ------------------------------------------------------------------------------------

class LoginThrottle:
    """Failed sign-ins per client address in a moving window (``limits``); past the limit every
    attempt, right or wrong, is refused until the window moves on, so guessing stays slow."""

    def __init__(self, limit: str) -> None:
        self._item = parse(limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again; None when it may try now."""
        if self._limiter.test(self._item, client):
            return None
        reset, _ = self._limiter.get_window_stats(self._item, client)
        return max(1, math.ceil(reset - time.time()))

    def failed(self, client: str) -> None:
        self._limiter.hit(self._item, client)
