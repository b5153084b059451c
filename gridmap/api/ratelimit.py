"""Abuse limits on public intake: reports per client address, in a moving window (``limits``).

``intake_rate_per_minute`` (sustained) and ``intake_burst`` (at once) become one rule: at most
``burst`` reports in any window of ``burst / rate`` minutes (defaults: 20 in any 2 minutes, so
10 a minute on average and 20 at once). ``limits`` is the library behind slowapi, kept up to
date; its moving window counts exactly (a fixed window lets through twice the burst across a
window edge, and a sliding-window counter only estimates, so neither gives a test or a resident
a definite answer), it keeps at most ``burst`` timestamps per active client, and a refused
attempt is not counted, so a client who waits ``Retry-After`` seconds gets through.

The storage is in memory, per server process: with ``gridmap serve --workers N`` a client may
send N times as much. Staff (any token or sign-in that is not the public) are never limited.

Clients are told apart by address as the server sees it (uvicorn takes ``X-Forwarded-For`` only
from a trusted proxy, 127.0.0.1 by default); IPv6 clients by their /64 network, since one
household is usually given a whole /64.
"""

from __future__ import annotations

import ipaddress
import math
import time
from typing import Final

from fastapi import Depends, FastAPI, Request
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from gridmap.api.deps import ActorDep
from gridmap.auth import PUBLIC
from gridmap.errors import RateLimited
from gridmap.settings import Settings

IPV6_PREFIX: Final = 64


def client_key(host: str | None) -> str:
    """The client a limit counts against: an IPv4 address, an IPv6 /64, or the raw name (tests)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


class IntakeLimiter:
    """Counts public submissions per client; one per app (tests build apps with their own limits)."""

    def __init__(self, *, per_minute: float, burst: int) -> None:
        self.enabled = per_minute > 0
        window_s = max(1, round(burst * 60 / per_minute)) if self.enabled else 1
        self.item = RateLimitItemPerSecond(burst, window_s, namespace="gridmap-intake")
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    @classmethod
    def from_settings(cls, settings: Settings) -> IntakeLimiter:
        return cls(per_minute=settings.intake_rate_per_minute, burst=settings.intake_burst)

    def wait(self, client: str) -> int | None:
        """Count one submission from ``client``: None when allowed, else the seconds until one more is."""
        if not self.enabled or self._limiter.hit(self.item, client):
            return None
        reset_at, _ = self._limiter.get_window_stats(self.item, client)
        return max(1, math.ceil(reset_at - time.time()))


async def limit_public_intake(request: Request, actor: ActorDep) -> None:
    """Route dependency of the public intake endpoints: 429 with ``Retry-After`` past the limit."""
    if actor.role != PUBLIC:
        return
    limiter: IntakeLimiter = request.app.state.intake_limiter
    wait = limiter.wait(client_key(request.client.host if request.client else None))
    if wait is not None:
        raise RateLimited(wait)


IntakeLimit = Depends(limit_public_intake)
"""``dependencies=[IntakeLimit]`` on a public intake route."""


RATE_LIMITED: Final = {429: {"description": "提交过于频繁（按客户端地址限流），请按 Retry-After 秒数后再试"}}
"""OpenAPI ``responses`` entry of a limited route."""


def register(app: FastAPI, settings: Settings) -> None:
    app.state.intake_limiter = IntakeLimiter.from_settings(settings)
