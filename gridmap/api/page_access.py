"""How a map page refuses: a browser without a session is sent to /login (and back afterwards), a
browser whose role may not see the page gets the Chinese refusal page; API clients get the 401/403."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gridmap.auth import Actor
from gridmap.errors import Forbidden, Unauthorized
from gridmap.sessions import home_of
from gridmap.web import render, who


def refused_page(request: Request, actor: Actor, check: Callable[[Actor], None]) -> Response | None:
    """None when ``check(actor)`` passes; else the browser's answer, or the error raised for API clients."""
    browser = "text/html" in request.headers.get("accept", "")
    try:
        check(actor)
    except Unauthorized:
        if not browser:
            raise
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303,
                                headers={"Cache-Control": "no-store"})
    except Forbidden as exc:
        if not browser:
            raise
        html = render("refused.html", message=exc.message, who=who(actor), home=home_of(actor))
        return HTMLResponse(html, status_code=403, headers={"Cache-Control": "no-store"})
    return None
