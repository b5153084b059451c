"""Sign-in for browsers (issue #9 §2): /login, the session cookie, expiry, revocation, /logout, CSRF,
open redirects and brute force, through the real app over a copy of the sample county.

Each "browser" is its own TestClient (its own cookie jar) on one running app; tokens are created
in the app's store as ``gridmap token create`` does, so they take effect at once.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from stores import query_raw, store_settings
from typer.testing import CliRunner

from gridmap import auth, sessions
from gridmap.api import create_app

ADMIN = "settings-admin-token-for-sessions"
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture(scope="module")
def db(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = copy_store(sample_db, tmp_path_factory.mktemp("sessions"), "sample.gpkg")
    return target


@pytest.fixture(scope="module")
def make_app(db: Path) -> Iterator[Callable[..., FastAPI]]:
    """Apps over the same store with their own settings; each is started once (lifespan) and kept."""
    running: list[TestClient] = []

    def make(**overrides) -> FastAPI:
        settings = store_settings(db=db, load_sample_if_empty=False, **{"admin_token": ADMIN, **overrides})
        client = TestClient(create_app(settings))
        client.__enter__()
        running.append(client)
        return client.app

    yield make
    for client in running:
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def app(make_app) -> FastAPI:
    return make_app()


@pytest.fixture
def browser(app) -> Callable[..., TestClient]:
    """A new browser (empty cookie jar) on the running app."""
    return lambda base_url="http://testserver", target=None: TestClient(target or app, base_url=base_url)


@pytest.fixture(scope="module")
def workers(app) -> dict[str, str]:
    """A grid worker, another grid's worker, and a community-level worker (网格长, no grid)."""
    frame = app.state.coverage.get().workers
    staff = frame[frame["grid_code"].fillna("") != ""]
    first = staff.iloc[0]
    other = staff[staff["grid_code"] != first["grid_code"]].iloc[0]
    community = frame[frame["grid_code"].fillna("") == ""].iloc[0]
    return {"own": first["code"], "other": other["code"], "community": community["code"]}


def new_token(app: FastAPI, role: str, worker: str | None = None) -> tuple[str, str]:
    return auth.create_token(app.state.store, role=role, worker_code=worker, label="test")


def sign_in(client: TestClient, token: str, next_: str = "", **headers: str):
    return client.post("/login", data={"token": token, "next": next_}, headers=headers, follow_redirects=False)


def set_cookie(response) -> str:
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith(sessions.COOKIE_NAME + "=")]
    assert len(cookies) == 1, response.headers
    return cookies[0]


def cookie_value(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


# -- the sign-in page -----------------------------------------------------------------------------

def test_the_sign_in_page_is_chinese_self_contained_and_posts_the_token(browser):
    page = browser().get("/login", params={"next": "/maps/planner"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "登录" in html and "令牌" in html
    assert re.search(r'<form method="post" action="/login"', html)
    assert 'name="token"' in html and 'type="password"' in html
    assert '<input type="hidden" name="next" value="/maps/planner">' in html
    # nothing loaded from anywhere: no scripts, no stylesheets, no absolute URLs
    assert "<script" not in html and "<link" not in html and not re.search(r"https?://", html)
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "form-action 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"


def test_an_unsafe_next_is_not_echoed_into_the_form(browser):
    html = browser().get("/login", params={"next": "https://evil.example/"}).text
    assert '<input type="hidden" name="next" value="">' in html and "evil" not in html


# -- signing in -----------------------------------------------------------------------------------

def test_a_worker_signs_in_and_lands_on_their_own_map(app, browser, workers):
    _, token = new_token(app, "worker", workers["own"])
    response = sign_in(browser(), token)
    assert response.status_code == 303
    assert response.headers["location"] == f"/maps/worker/{workers['own']}"


@pytest.mark.parametrize(("role", "home"), [("dispatcher", "/maps/dispatcher"), ("planner", "/maps/planner"),
                                            ("admin", "/maps/dispatcher")])
def test_each_role_lands_on_its_home(app, browser, role, home):
    _, token = new_token(app, role)
    assert sign_in(browser(), token).headers["location"] == home


def test_the_settings_admin_token_signs_in_too(browser):
    response = sign_in(browser(), ADMIN)
    assert response.status_code == 303 and response.headers["location"] == "/maps/dispatcher"


def test_a_pasted_token_may_carry_spaces_or_the_bearer_prefix(app, browser):
    _, token = new_token(app, "planner")
    assert sign_in(browser(), f"  Bearer {token}\n").status_code == 303


def test_the_cookie_holds_a_session_id_only_httponly_samesite_strict(app, browser, db):
    token_id, token = new_token(app, "dispatcher")
    response = sign_in(browser(), token)
    header = set_cookie(response)
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in header.split(";")[1:]}
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "samesite=strict"
    assert attributes["path"] == "Path=/"
    assert "secure" not in attributes  # plain HTTP here: a Secure cookie would never come back
    assert int(attributes["max-age"].split("=")[1]) == 12 * 3600
    value = cookie_value(header)
    assert token not in str(response.headers) and token_id not in value and len(value) >= 40
    # the store keeps only the hash of the session id, and nothing of the token itself
    dump = repr(query_raw(db, "SELECT * FROM sessions"))
    assert value not in dump and token not in dump
    assert hashlib.sha256(value.encode()).hexdigest() in dump


def test_over_https_the_cookie_is_secure(app, browser):
    _, token = new_token(app, "dispatcher")
    header = set_cookie(sign_in(browser("https://testserver"), token))
    assert "secure" in [part.strip().lower() for part in header.split(";")]


def test_cookie_secure_setting_forces_the_flag_on_plain_http(app, make_app, browser):
    forced = make_app(cookie_secure=True)
    _, token = new_token(app, "dispatcher")
    header = set_cookie(sign_in(browser(target=forced), token))
    assert "secure" in [part.strip().lower() for part in header.split(";")]


def test_a_wrong_token_shows_the_page_again_with_a_chinese_error_and_no_cookie(browser):
    response = sign_in(browser(), "gm_nothing_here", "/maps/planner")
    assert response.status_code == 401
    assert "令牌无效或已撤销" in response.text and 'name="token"' in response.text
    assert '<input type="hidden" name="next" value="/maps/planner">' in response.text
    assert not response.headers.get_list("set-cookie")


def test_failures_say_nothing_about_whether_a_token_exists(app, browser):
    revoked_id, revoked = new_token(app, "dispatcher")
    auth.revoke_token(app.state.store, revoked_id)
    live_id, live = new_token(app, "dispatcher")
    pages = {sign_in(browser(), guess).text
             for guess in ("gm_00000000_nothing", revoked, f"gm_{live_id}_wrongsecret", live[:-1], ADMIN[:-1], "")}
    assert len(pages) == 1  # the same page for an unknown, revoked, malformed, near-miss or empty token


def test_a_token_of_a_worker_who_is_gone_cannot_sign_in(app, browser):
    _, token = new_token(app, "worker", "W9999")
    response = sign_in(browser(), token)
    assert response.status_code == 403 and "W9999" in response.text
    assert not response.headers.get_list("set-cookie")


def test_a_form_posted_from_another_site_cannot_sign_anyone_in(app, browser):
    _, token = new_token(app, "dispatcher")
    response = sign_in(browser(), token, Origin="https://evil.example")
    assert response.status_code == 403 and not response.headers.get_list("set-cookie")
    assert sign_in(browser(), token, Origin="http://testserver").status_code == 303


# -- where to go next -----------------------------------------------------------------------------

def test_next_takes_a_local_path_with_its_query(app, browser):
    _, token = new_token(app, "dispatcher")
    response = sign_in(browser(), token, "/maps/planner?radius=300")
    assert response.headers["location"] == "/maps/planner?radius=300"


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/maps", "/\\evil.example", "\\\\evil.example", "http:/evil.example",
    "javascript:alert(1)", "/maps/x\r\nSet-Cookie: a=b", "evil.example", "/login", "/logout", " //evil.example",
])
def test_next_is_never_an_open_redirect(app, browser, target):
    _, token = new_token(app, "planner")
    response = sign_in(browser(), token, target)
    assert response.status_code == 303 and response.headers["location"] == "/maps/planner"


# -- sessions on later requests --------------------------------------------------------------------

def test_the_session_signs_in_later_requests_until_logout(app, browser, workers):
    _, token = new_token(app, "worker", workers["own"])
    client = browser()
    sign_in(client, token)
    own = f"/maps/worker/{workers['own']}"
    assert client.get(own, headers=JSON).status_code == 200
    # GET /logout only asks: it changes nothing (a link or an <img> cannot sign anyone out)
    confirm = client.get("/logout")
    assert confirm.status_code == 200 and 'action="/logout"' in confirm.text and "确认退出" in confirm.text
    assert client.get(own, headers=JSON).status_code == 200
    # POST without the CSRF token is refused; with it (as the form sends it) the session ends
    assert client.post("/logout", follow_redirects=False).status_code == 403
    assert client.get(own, headers=JSON).status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', confirm.text).group(1)
    old = client.cookies.get(sessions.COOKIE_NAME)
    response = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert 'Max-Age=0' in set_cookie(response) or "expires=" in set_cookie(response).lower()
    assert client.get(own, headers=JSON).status_code == 401
    # the old cookie, kept by someone, is dead on the server
    replay = browser()
    replay.cookies.set(sessions.COOKIE_NAME, old)
    assert replay.get(own, headers=JSON).status_code == 401
    assert replay.get(own, headers=HTML, follow_redirects=False).headers["location"].startswith("/login?next=")


def test_logout_without_a_session_just_goes_to_the_sign_in_page(browser):
    client = browser()
    assert client.get("/logout", follow_redirects=False).headers["location"] == "/login"
    assert client.post("/logout", follow_redirects=False).headers["location"] == "/login"


def test_revoking_the_token_ends_its_sessions_at_once(app, browser, db):
    from gridmap.cli import app as cli

    token_id, token = new_token(app, "dispatcher")
    client = browser()
    sign_in(client, token)
    assert client.get("/maps/planner", headers=JSON).status_code == 200
    result = CliRunner().invoke(cli, ["token", "revoke", token_id, "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert client.get("/maps/planner", headers=JSON).status_code == 401


def test_sessions_expire(make_app, browser, app):
    lifetime = 0.3  # seconds
    short = make_app(session_hours=lifetime / 3600)
    _, token = new_token(app, "planner")
    client = browser(target=short)
    response = sign_in(client, token)
    signed_in = time.monotonic()  # the session was opened before this answer came: it ends before signed_in + lifetime
    assert "Max-Age=1" in set_cookie(response)
    while time.monotonic() < signed_in + lifetime + 0.05:  # wait past the expiry, then look
        time.sleep(0.05)
    assert client.get("/maps/planner", headers=JSON).status_code == 401


def test_expiry_is_exact(app):
    store = app.state.store
    start = datetime(2025, 3, 1, 8, tzinfo=UTC)
    _, token = new_token(app, "planner")
    actor = auth.verify_token(store, token)
    session_id, session = sessions.open_session(store, actor, token=token, lifetime=timedelta(hours=12), now=start)
    assert session.expires_at == start + timedelta(hours=12)
    last = start + timedelta(hours=12, microseconds=-1)
    assert sessions.find_session(store, session_id, now=last).actor == actor
    assert sessions.find_session(store, session_id, now=start + timedelta(hours=12)) is None


def test_a_changed_admin_token_ends_the_sessions_it_opened(app, make_app, browser):
    client = browser()
    sign_in(client, ADMIN)
    assert client.get("/maps/dispatcher", headers=JSON).status_code == 200
    rotated = make_app(admin_token="a-new-admin-token")  # the same store, restarted with a new setting
    moved = browser(target=rotated)
    moved.cookies.set(sessions.COOKIE_NAME, client.cookies.get(sessions.COOKIE_NAME))
    assert moved.get("/maps/dispatcher", headers=JSON).status_code == 401


def test_a_session_of_a_worker_who_is_gone_is_refused(app, browser):
    store = app.state.store
    _, token = new_token(app, "worker", "W9999")
    actor = auth.Actor("worker", "W9999", auth.verify_token(store, token).token_id)
    session_id, _ = sessions.open_session(store, actor, token=token, lifetime=timedelta(hours=1))
    client = browser()
    client.cookies.set(sessions.COOKIE_NAME, session_id)
    response = client.get("/v1/incidents", headers=JSON)
    assert response.status_code == 403 and "W9999" in response.json()["detail"]


def test_bearer_wins_over_the_cookie(app, browser, workers):
    _, worker_token = new_token(app, "worker", workers["own"])
    _, dispatcher_token = new_token(app, "dispatcher")
    client = browser()
    sign_in(client, worker_token)
    assert client.get("/maps/dispatcher", headers=JSON).status_code == 403
    bearer = {**JSON, "Authorization": f"Bearer {dispatcher_token}"}
    assert client.get("/maps/dispatcher", headers=bearer).status_code == 200
    wrong = {**JSON, "Authorization": "Bearer gm_wrong"}
    assert client.get(f"/maps/worker/{workers['own']}", headers=wrong).status_code == 401


def test_an_unknown_cookie_is_no_sign_in(browser):
    client = browser()
    client.cookies.set(sessions.COOKIE_NAME, "x" * 43)
    assert client.get("/maps/planner", headers=JSON).status_code == 401
    client.cookies.set(sessions.COOKIE_NAME, "x" * 5000)
    assert client.get("/maps/planner", headers=JSON).status_code == 401
    assert client.get("/maps/public", headers=JSON).status_code == 200


# -- CSRF -----------------------------------------------------------------------------------------

def _reported(client: TestClient, headers: dict[str, str]) -> tuple[int, str]:
    """A fresh public report (status 上报) and its ETag, read with ``headers``."""
    report = {"category": "infra.streetlight", "description": "路灯不亮", "lon": 110.7693, "lat": 35.1425}
    created = TestClient(client.app).post("/v1/incidents", json=report)  # a resident, without cookies
    assert created.status_code == 201, created.text
    incident = created.json()["id"]
    read = client.get(f"/v1/incidents/{incident}", headers=headers)
    assert read.status_code == 200 and read.json()["status"] == "reported", read.text
    return incident, read.headers["etag"]


def test_a_cookie_post_needs_the_csrf_token(app, browser):
    _, token = new_token(app, "dispatcher")
    client = browser()
    sign_in(client, token)
    page = client.get("/maps/dispatcher", headers=HTML)
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text).group(1)
    incident, etag = _reported(client, JSON)  # reading needs no CSRF token
    body = {"action": "accept", "note": "受理"}
    refused = client.post(f"/v1/incidents/{incident}/transitions", json=body, headers={"If-Match": etag})
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden" and "CSRF" in refused.json()["detail"]
    wrong = client.post(f"/v1/incidents/{incident}/transitions", json=body,
                        headers={"If-Match": etag, sessions.CSRF_HEADER: csrf[:-2] + "xx"})
    assert wrong.status_code == 403
    assert client.get(f"/v1/incidents/{incident}").headers["etag"] == etag  # nothing happened
    done = client.post(f"/v1/incidents/{incident}/transitions", json=body,
                       headers={"If-Match": etag, sessions.CSRF_HEADER: csrf})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "accepted"


def test_bearer_requests_need_no_csrf_token(app, browser):
    _, token = new_token(app, "dispatcher")
    client = browser()
    bearer = {"Authorization": f"Bearer {token}"}
    incident, etag = _reported(client, bearer)
    done = client.post(f"/v1/incidents/{incident}/transitions", json={"action": "accept"},
                       headers={**bearer, "If-Match": etag})
    assert done.status_code == 200, done.text


def test_each_session_has_its_own_csrf_token(app, browser):
    _, token = new_token(app, "dispatcher")
    first, second = browser(), browser()
    sign_in(first, token)
    sign_in(second, token)
    get = lambda c: re.search(r'name="csrf" value="([^"]+)"', c.get("/logout").text).group(1)
    assert get(first) != get(second)


# -- brute force ----------------------------------------------------------------------------------

def test_repeated_failures_are_throttled_per_client_even_for_the_right_token(make_app, browser, app):
    limited = make_app(login_failure_limit="3/minute")
    _, token = new_token(app, "dispatcher")
    client = browser(target=limited)
    assert [sign_in(client, f"gm_guess_{i}").status_code for i in range(3)] == [401, 401, 401]
    refused = sign_in(client, token)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "次数过多" in refused.text and not refused.headers.get_list("set-cookie")
    assert sign_in(client, "gm_guess_again").status_code == 429


# -- the session logic on its own ----------------------------------------------------------------

@pytest.mark.parametrize(("target", "safe"), [
    ("/maps/worker/W0002", "/maps/worker/W0002"), ("/maps/planner?radius=300&x=%2F%2F", "/maps/planner?radius=300&x=%2F%2F"),
    ("/", "/"), (None, None), ("", None), ("maps", None), ("//x", None), ("/\\x", None), ("https://x/", None),
    ("/a\nb", None), ("/a\x7fb", None), ("/login?next=/x", None), ("/" + "a" * 3000, None),
])
def test_safe_next(target, safe):
    assert sessions.safe_next(target) == safe


def test_home_of_each_role():
    assert sessions.home_of(auth.Actor("worker", "W 1/2")) == "/maps/worker/W%201%2F2"
    assert sessions.home_of(auth.Actor("planner")) == "/maps/planner"
    assert sessions.home_of(auth.Actor("dispatcher")) == sessions.home_of(auth.Actor("admin")) == "/maps/dispatcher"
