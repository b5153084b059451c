"""Server-rendered pages (sign-in, sign-out, refusals) from Jinja2 templates in ``templates/``.

The pages load nothing from anywhere (their style is inline), so they work on an intranet with no
internet and under the strict Content-Security-Policy the sign-in router sends. Rendering is
here; the routes that serve the pages are in ``gridmap/api/routers/session.py``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, select_autoescape

from gridmap.auth import Actor

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"

ROLE_NAMES: Final = {"admin": "管理员", "dispatcher": "指挥调度", "worker": "网格员", "planner": "规划人员"}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                       trim_blocks=True, lstrip_blocks=True)


def render(name: str, **context: Any) -> str:
    return _environment().get_template(name).render(**context)


def who(actor: Actor) -> str:
    """How a page names the signed-in actor: a role and a worker code, nothing personal."""
    role = ROLE_NAMES.get(actor.role, actor.role)
    return f"{role} {actor.worker_code}" if actor.worker_code else role


def with_session_bar(page: str, *, csrf: str, actor: Actor) -> str:
    """A map page (cached, shared by everyone with the same view) made personal after the cache:
    the session's CSRF token for page scripts and a sign-out button (a form: it needs no script)."""
    meta = render("csrf_meta.html", csrf=csrf)
    bar = render("session_bar.html", csrf=csrf, who=who(actor))
    page = page.replace("<head>", "<head>" + meta, 1)
    return page.replace("</body>", bar + "</body>", 1) if "</body>" in page else page + bar
