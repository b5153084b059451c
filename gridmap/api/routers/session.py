"""Sign-in and sign-out for browsers: ``/login`` turns a pasted token into a session cookie.

The session logic is ``gridmap.sessions``; the pages are ``gridmap.web`` templates. Every answer
here is ``Cache-Control: no-store`` and the pages run under a Content-Security-Policy that allows
nothing but their own inline style and forms posting to this site.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gridmap.access import check_actor
from gridmap.api.deps import coverage_of
from gridmap.auth import verify_token
from gridmap.errors import Forbidden, Unauthorized
from gridmap.sessions import (
    COOKIE_NAME, CSRF_HEADER, LoginThrottle, Session, check_csrf, end_session, find_session, home_of,
    open_session, safe_next,
)
from gridmap.settings import Settings
from gridmap.web import render, who

router = APIRouter(tags=["session"])

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
NO_STORE = {"Cache-Control": "no-store"}
MAX_TOKEN_LENGTH = 512


def secure_cookie(request: Request, settings: Settings) -> bool:
    """``Secure`` when the browser reached us over HTTPS. ``request.url.scheme`` is https either
    directly or, behind a TLS-terminating proxy, when uvicorn trusts that proxy's
    X-Forwarded-Proto (``--forwarded-allow-ips``, loopback by default); GRIDMAP_COOKIE_SECURE forces it."""
    return settings.cookie_secure if settings.cookie_secure is not None else request.url.scheme == "https"


def _page(html: str, status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(html, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})})


def _login_page(settings: Settings, *, next_: str | None, error: str | None = None, status_code: int = 200,
                headers: dict[str, str] | None = None) -> HTMLResponse:
    html = render("login.html", next=next_, error=error, hours=f"{settings.session_hours:g}")
    return _page(html, status_code, headers)


def _same_origin(request: Request) -> bool:
    """A form posted from another site (login CSRF) carries its own Origin; browsers always send
    Origin on POST. Hosts are compared, not schemes, so a TLS-terminating proxy needs no setup."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser form (curl, scripts): nothing to forge
    return origin.split("://", 1)[-1] == request.url.netloc


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def current_session(request: Request) -> Session | None:
    settings: Settings = request.app.state.settings
    return await run_in_threadpool(find_session, request.app.state.store, request.cookies.get(COOKIE_NAME),
                                   admin_token=settings.admin_token)


@router.get("/login", response_class=HTMLResponse, summary="登录页：粘贴令牌登录（工作地图需要登录）")
async def login_page(
    request: Request,
    next: Annotated[str | None, Query(description="登录后返回的本站路径", max_length=2000)] = None,  # noqa: A002
) -> Response:
    return _login_page(request.app.state.settings, next_=safe_next(next))


@router.post("/login", response_class=HTMLResponse, status_code=303,
             summary="用令牌登录：设置会话 Cookie（只含会话编号）并跳转到 next 或本角色的地图",
             responses={401: {"description": "令牌无效或已撤销（登录页与错误提示）"},
                        403: {"description": "来自其他网站的登录请求，或令牌绑定的网格员已不存在"},
                        429: {"description": "失败次数过多，稍后再试"}})
async def login(
    request: Request,
    token: Annotated[str, Form(description="gridmap token create 打印的令牌")] = "",
    next: Annotated[str, Form(description="登录后返回的本站路径")] = "",  # noqa: A002
) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    target = safe_next(next)
    if not _same_origin(request):
        return _login_page(settings, next_=target, error="登录请求来自其他网站，已拒绝。", status_code=403)
    throttle: LoginThrottle = state.login_throttle
    wait = throttle.retry_after(_client(request))
    if wait is not None:
        return _login_page(settings, next_=target, status_code=429, headers={"Retry-After": str(wait)},
                           error=f"登录失败次数过多，请 {wait} 秒后再试。")
    pasted = token.strip().removeprefix("Bearer ").strip()
    try:
        if not pasted or len(pasted) > MAX_TOKEN_LENGTH:
            raise Unauthorized("令牌无效或已撤销")
        actor = await run_in_threadpool(verify_token, state.store, pasted, admin_token=settings.admin_token)
        check_actor(actor, coverage_of(request))
    except Unauthorized:
        throttle.failed(_client(request))
        return _login_page(settings, next_=target, status_code=401,
                           error="令牌无效或已撤销。请检查是否完整粘贴，或向管理员申请新令牌。")
    except Forbidden as exc:
        return _login_page(settings, next_=target, status_code=403, error=exc.message)
    lifetime = timedelta(hours=settings.session_hours)
    session_id, _ = await run_in_threadpool(open_session, state.store, actor, token=pasted, lifetime=lifetime)
    response = RedirectResponse(target or home_of(actor), status_code=303, headers=NO_STORE)
    response.set_cookie(COOKIE_NAME, session_id, max_age=max(1, int(lifetime.total_seconds())), path="/",
                        httponly=True, samesite="strict", secure=secure_cookie(request, settings))
    return response


@router.get("/logout", response_class=HTMLResponse, summary="退出登录确认页（GET 不会退出，需点击确认）")
async def logout_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return RedirectResponse("/login", status_code=303, headers=NO_STORE)
    html = render("logout.html", csrf=session.csrf, who=who(session.actor), home=home_of(session.actor))
    return _page(html)


@router.post("/logout", status_code=303, summary="退出登录：结束会话并清除 Cookie（需要会话的 CSRF 令牌）",
             responses={403: {"description": "缺少或错误的 CSRF 令牌"}})
async def logout(
    request: Request,
    csrf: Annotated[str, Form(description="页面给出的 CSRF 令牌（也可放在 X-CSRF-Token 头）")] = "",
) -> Response:
    session = await current_session(request)
    if session is not None:
        if not _same_origin(request):
            raise Forbidden("退出请求来自其他网站，已拒绝")
        check_csrf(session, csrf or request.headers.get(CSRF_HEADER))
        await run_in_threadpool(end_session, request.app.state.store, request.cookies.get(COOKIE_NAME))
    response = RedirectResponse("/login", status_code=303, headers=NO_STORE)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict",
                           secure=secure_cookie(request, request.app.state.settings))
    return response


def register(app: FastAPI, settings: Settings) -> None:
    """The sign-in routes and their per-process brute-force throttle."""
    app.state.login_throttle = LoginThrottle(settings.login_failure_limit)
    app.include_router(router)
