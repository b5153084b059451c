"""Sign-in in a real browser (issue #9 acceptance): Debian's Chromium, driven by Playwright, against
`gridmap serve` in its own process, every request to a non-loopback address blocked.

A worker signs in on /login, lands on their own map and sees it drawn; another worker's map and
the dispatcher map are refused; after signing out, their own map sends them back to /login.
Screenshots land in tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from browsers import ARGS, CHROMIUM, Offline
from servers import serving
from stores import open_test_store

from gridmap import auth
from gridmap.sessions import COOKIE_NAME

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not CHROMIUM.exists():  # .ci/run installs it; elsewhere: apt-get install chromium
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' brings Playwright")


@pytest.fixture(scope="module")
def cast(sample_layers) -> dict[str, str]:
    workers = sample_layers["workers"]
    staff = workers[workers["grid_code"].fillna("") != ""]
    own = staff.iloc[0]
    other = staff[staff["grid_code"] != own["grid_code"]].iloc[0]
    return {"own": own["code"], "own_name": own["name"], "other": other["code"]}


@pytest.fixture(scope="module")
def served(sample_db, copy_store, tmp_path_factory: pytest.TempPathFactory, cast) -> Iterator[dict[str, str]]:
    """``gridmap serve`` over a copy of the sample county, with a worker token made as the CLI makes it."""
    folder = tmp_path_factory.mktemp("login_server")
    db = copy_store(sample_db, folder, "sample.gpkg")
    store = open_test_store(db)
    _, token = auth.create_token(store, role="worker", worker_code=cast["own"], label="browser test")
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}
    with serving(db, log=folder / "server.log", env=env) as base:
        yield {"base": base, "token": token}


@pytest.fixture
def phone(served) -> Iterator[Offline]:
    """A phone-sized page whose requests to anywhere but this machine are aborted (and remembered)."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield Offline(browser, width=390, height=780)
        browser.close()


def test_a_worker_signs_in_sees_only_their_map_and_signs_out(served, phone, cast):
    page = phone.page
    base, token = served["base"], served["token"]
    own = f"{base}/maps/worker/{cast['own']}"

    # Sign in on the page, as a worker pasting the token from `gridmap token create`.
    page.goto(f"{base}/login")
    assert "登录" in page.title() and page.locator("form[action='/login'] input[name=token]").count() == 1
    phone.shot("login_page")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(own)
    page.wait_for_function("window.gridmap && window.gridmap.ready", timeout=20_000)
    overlays = page.evaluate("Object.keys(window.gridmap.overlays)")
    assert "我负责的网格" in overlays and "楼栋与住户" in overlays
    drawn = page.evaluate("""() => { let n = 0; const g = window.gridmap.overlays['我负责的网格'];
        (function walk(l) { if (l.eachLayer) l.eachLayer(walk); else if (l._map) n += 1; })(g); return n; }""")
    assert drawn >= 1
    assert cast["own_name"] in page.locator(".gm-card").inner_text()
    assert page.locator("form.gm-session button").is_visible()
    phone.shot("login_worker_map")

    # The cookie is the session id only, out of reach of page scripts, never sent cross-site.
    cookies = [c for c in page.context.cookies() if c["name"] == COOKIE_NAME]
    assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    assert token not in cookies[0]["value"] and cookies[0]["path"] == "/"
    assert COOKIE_NAME not in page.evaluate("document.cookie")

    # Another worker's map and the dispatcher map are refused, with nothing of the map in the page.
    for refused in (f"{base}/maps/worker/{cast['other']}", f"{base}/maps/dispatcher"):
        response = page.goto(refused)
        assert response.status == 403
        assert "无权查看" in page.content() and page.evaluate("typeof window.gridmap") == "undefined"
    phone.shot("login_refused")

    # Sign out with the button on the map; the own map then sends the browser back to /login.
    page.goto(own)
    page.wait_for_function("window.gridmap && window.gridmap.ready", timeout=20_000)
    page.click("form.gm-session button")
    page.wait_for_url(f"{base}/login")
    assert not [c for c in page.context.cookies() if c["name"] == COOKIE_NAME]
    response = page.goto(own)
    assert urlparse(page.url).path == "/login" and "next=%2Fmaps%2Fworker%2F" in page.url
    assert response.status == 200 and page.evaluate("typeof window.gridmap") == "undefined"
    phone.shot("login_after_logout")

    # Signing in from there returns to the page that asked for it.
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(own)

    phone.check_offline()


def test_a_wrong_token_stays_on_the_sign_in_page_with_a_chinese_error(served, phone):
    page = phone.page
    page.goto(f"{served['base']}/login")
    page.fill("input[name=token]", "gm_00000000_not-a-token")
    page.click("button[type=submit]")
    page.locator(".error").wait_for()
    assert "令牌无效或已撤销" in page.locator(".error").inner_text()
    assert urlparse(page.url).path == "/login" and not page.context.cookies()
    phone.shot("login_wrong_token")


def test_the_public_map_opens_without_sign_in(served, phone, sample_layers):
    page = phone.page
    page.set_viewport_size({"width": 1200, "height": 800})
    page.goto(f"{served['base']}/maps/public")
    page.wait_for_function("window.gridmap && window.gridmap.ready", timeout=20_000)
    overlays = page.evaluate("Object.keys(window.gridmap.overlays)")
    assert "网格" in overlays and any(o.startswith("公开事件（") for o in overlays)
    assert not [o for o in overlays if o.startswith(("楼栋", "派出所", "共建单位", "事件热力图"))]
    drawn = page.evaluate("""() => { let n = 0; const g = window.gridmap.overlays['网格'];
        (function walk(l) { if (l.eachLayer) l.eachLayer(walk); else if (l._map) n += 1; })(g); return n; }""")
    assert drawn == len(sample_layers["grids"])
    assert page.locator("form.gm-session").count() == 0  # nobody is signed in
    phone.shot("public_map")
    assert not phone.errors, phone.errors
