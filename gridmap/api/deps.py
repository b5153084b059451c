"""Dependencies shared by routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from gridmap.access import check_actor
from gridmap.auth import ANONYMOUS, PUBLIC, Actor, authenticate
from gridmap.coverage.service import Coverage
from gridmap.errors import Forbidden, Unauthorized
from gridmap.sessions import COOKIE_NAME, CSRF_HEADER, SAFE_METHODS, check_csrf, find_session
from gridmap.settings import Settings
from gridmap.store.base import Store
from gridmap.versions.model import parse_day

# Dependencies are ``async def`` on purpose: FastAPI runs plain ``def`` dependencies in a thread
# pool, which costs more than the lookups they serve.


def coverage_of(request: Request) -> Coverage:
    """The current coverage index (rebuilt when the store's content changed), one per request: a new
    index swapped in while a request runs is used from the next request on, so the actor's check, the
    answer and its ETag all come from the same package."""
    coverage = getattr(request.state, "coverage", None)
    if coverage is None:
        coverage = request.state.coverage = request.app.state.coverage.get()
    return coverage


async def coverage_at(request: Request) -> tuple[Coverage, dict[str, Any] | None]:
    """``?at=YYYY-MM-DD``: the index of the boundary version in force that day, and that version (id,
    effective_from, label); without ``at``, today's index as ``coverage_of`` gives it, and None."""
    day = parse_day(request.query_params.get("at"))
    if day is None:
        return coverage_of(request), None
    coverage, version = await run_in_threadpool(request.app.state.versions.at, day)
    return coverage, (version.to_dict() if version is not None else None)


def version_header(version: dict[str, Any] | None) -> dict[str, str]:
    """``X-Boundary-Version``: which version answered a lookup asked ``at`` a date."""
    return {} if version is None else {"X-Boundary-Version": str(version["id"])}


async def get_coverage(request: Request) -> Coverage:
    return coverage_of(request)


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_actor(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer <token>；不带则为公众")] = None,
) -> Actor:
    """The Bearer token's actor; without one, the signed-in session's (cookie); else the public.

    Bearer wins when both are sent. A request made with the session cookie that changes state
    must carry the session's CSRF token in ``X-CSRF-Token`` (403 otherwise). A stale cookie
    (ended, expired, revoked token) counts as no sign-in. ``request.state.session`` is the session.
    """
    return await actor_of(request, authorization, request.headers.get(CSRF_HEADER))


async def actor_of(request: Request, authorization: str | None, csrf: str | None) -> Actor:
    """``get_actor`` with the CSRF token as presented: the header, or a form field of a page's form
    (the console's forms post without script; ``gridmap/api/routers/console.py``)."""
    settings = request.app.state.settings
    if authorization or COOKIE_NAME not in request.cookies:
        actor = await run_in_threadpool(authenticate, request.app.state.store, authorization,
                                        admin_token=settings.admin_token)
    else:
        session = await run_in_threadpool(find_session, request.app.state.store, request.cookies[COOKIE_NAME],
                                          admin_token=settings.admin_token)
        if session is not None and request.method not in SAFE_METHODS:
            check_csrf(session, csrf)
        request.state.session = session
        actor = session.actor if session is not None else ANONYMOUS
    request.state.actor = actor = check_actor(actor, coverage_of(request))  # named in the request log
    return actor


async def require_admin(actor: Annotated[Actor, Depends(get_actor)]) -> Actor:
    if actor.role == PUBLIC:
        raise Unauthorized("需要管理令牌：Authorization: Bearer <token>（GRIDMAP_ADMIN_TOKEN 或 admin 角色令牌）")
    if actor.role != "admin":
        raise Forbidden("只有管理员可以使用管理接口")
    return actor


MAX_ROW_ID = 2**63 - 1
"""SQLite's INTEGER range: a larger id or offset names no row (and sqlite3 refuses to bind it)."""
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="编号")]
Offset = Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="跳过的条数")]

CoverageDep = Annotated[Coverage, Depends(get_coverage)]
StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
AdminDep = Depends(require_admin)
ActorDep = Annotated[Actor, Depends(get_actor)]
