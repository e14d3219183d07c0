"""The console's session: cookies carrying the API's tokens, CSRF on every form, sign-out here or everywhere."""

from __future__ import annotations

import httpx2
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from tests.console.conftest import csrf_of, sign_up


async def test_pages_need_a_session_and_send_the_browser_to_sign_in(browser: httpx2.AsyncClient) -> None:
    page = await browser.get("/app/?start_date=2026-01-01")
    assert page.status_code == 303
    assert page.headers["location"] == "/app/login?next=%2Fapp%2F%3Fstart_date%3D2026-01-01"
    fragment = await browser.get("/app/", headers={"HX-Request": "true"})
    assert fragment.status_code == 204 and fragment.headers["HX-Redirect"].startswith("/app/login")
    assert (await browser.get("/")).headers["location"] == "/app/"


async def test_sign_up_lands_on_the_dashboard_with_http_only_cookies(browser: httpx2.AsyncClient) -> None:
    form = await browser.get("/app/signup")
    answer = await browser.post(
        "/app/signup",
        data={
            "csrf_token": csrf_of(form),
            "company_name": "Acme Inc",
            "name": "Olive",
            "email": "olive@example.com",
            "password": "correct horse battery",
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/app/"
    cookies = answer.headers.get_list("set-cookie")
    for name in ("bas_access", "bas_refresh"):
        cookie = next(c for c in cookies if c.startswith(name + "="))
        assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    dashboard = await browser.get("/app/")
    assert dashboard.status_code == 200
    assert "<h1>Dashboard</h1>" in dashboard.text and "Olive (admin)" in dashboard.text
    assert 'data-chart="chart-leads_over_time"' in dashboard.text


async def test_sign_up_errors_are_shown_next_to_the_fields(browser: httpx2.AsyncClient) -> None:
    form = await browser.get("/app/signup")
    answer = await browser.post(
        "/app/signup",
        data={"csrf_token": csrf_of(form), "company_name": "", "name": "O", "email": "nope", "password": "short"},
    )
    assert answer.status_code == 422
    assert 'id="e-email"' in answer.text and 'id="e-password"' in answer.text and 'id="e-company_name"' in answer.text
    assert 'value="nope"' in answer.text  # what was typed is kept, except the password
    assert "bas_access" not in answer.headers.get("set-cookie", "")


async def test_a_form_post_without_the_csrf_token_is_refused(browser: httpx2.AsyncClient) -> None:
    await browser.get("/app/login")  # sets the CSRF cookie
    answer = await browser.post("/app/login", data={"email": "a@example.com", "password": "x"})
    assert answer.status_code == 403
    assert "did not come from this site" in answer.text and answer.headers["content-type"].startswith("text/html")
    forged = await browser.post("/app/login", data={"csrf_token": "forged", "email": "a@example.com", "password": "x"})
    assert forged.status_code == 403


async def test_wrong_password_is_a_page_not_a_json_error(browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "wrong@example.com")
    browser.cookies.delete("bas_access")
    browser.cookies.delete("bas_refresh")
    form = await browser.get("/app/login")
    answer = await browser.post(
        "/app/login",
        data={"csrf_token": csrf_of(form), "email": "wrong@example.com", "password": "not it", "next": "/app/"},
    )
    assert answer.status_code == 401 and "Incorrect email or password" in answer.text


async def test_sign_in_honours_next_but_never_leaves_the_console(browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "next@example.com")
    for next_url, landing in (
        ("/app/?start_date=2026-01-01", "/app/?start_date=2026-01-01"),
        ("https://evil.example/", "/app/"),
        ("//evil.example/app/", "/app/"),
    ):
        browser.cookies.clear()
        form = await browser.get("/app/login")
        answer = await browser.post(
            "/app/login",
            data={
                "csrf_token": csrf_of(form),
                "email": "next@example.com",
                "password": "correct horse battery",
                "next": next_url,
            },
        )
        assert answer.status_code == 303 and answer.headers["location"] == landing


async def test_a_browser_restart_keeps_the_session_through_the_refresh_cookie(browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "restart@example.com")
    old_refresh = browser.cookies.get("bas_refresh")
    browser.cookies.delete("bas_access")  # a session cookie's lifetime has passed; the persistent one remains
    page = await browser.get("/app/")
    assert page.status_code == 200
    assert browser.cookies.get("bas_access") and browser.cookies.get("bas_refresh") != old_refresh
    # A fragment never refreshes (refresh tokens work once; parallel fragments would race).
    browser.cookies.delete("bas_access")
    fragment = await browser.get("/app/", headers={"HX-Request": "true"})
    assert fragment.status_code == 204 and "HX-Redirect" in fragment.headers


async def test_sign_out_revokes_this_browsers_refresh_token(browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "out@example.com")
    refresh = browser.cookies.get("bas_refresh")
    page = await browser.get("/app/")
    answer = await browser.post("/app/logout", data={"csrf_token": csrf_of(page)})
    assert answer.status_code == 303 and answer.headers["location"] == "/app/login"
    assert not browser.cookies.get("bas_access")
    reused = await browser.post("/v1/auth/refresh", json={"refresh_token": refresh})
    assert reused.status_code == 401


async def test_sign_out_everywhere_ends_api_tokens_too(browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "everywhere@example.com")
    api_login = await browser.post(
        "/token", json={"username": "everywhere@example.com", "password": "correct horse battery"}
    )
    api_headers = {"Authorization": f"Bearer {api_login.json()['access_token']}"}
    assert (await browser.get("/api/users/me", headers=api_headers)).status_code == 200
    page = await browser.get("/app/")
    answer = await browser.post("/app/logout-everywhere", data={"csrf_token": csrf_of(page)})
    assert answer.status_code == 303
    assert (await browser.get("/api/users/me", headers=api_headers)).status_code == 401
    refreshed = await browser.post("/v1/auth/refresh", json={"refresh_token": api_login.json()["refresh_token"]})
    assert refreshed.status_code == 401
    # A new sign-in works again at once.
    form = await browser.get("/app/login")
    again = await browser.post(
        "/app/login",
        data={"csrf_token": csrf_of(form), "email": "everywhere@example.com", "password": "correct horse battery"},
    )
    assert again.status_code == 303
    assert (await browser.get("/app/")).status_code == 200


async def test_the_console_shares_the_per_user_rate_limit_with_the_api(
    settings: Settings, temporal_dev: WorkflowEnvironment
) -> None:
    """The session cookie carries the user's access token, so pages count against the same hourly budget."""
    app = create_app(settings.model_copy(update={"rate_limit_per_user_hour": 3}), temporal_client=temporal_dev.client)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="https://testserver") as browser,
    ):
        await sign_up(browser, "limited@example.com")
        pages = [(await browser.get("/app/")).status_code for _ in range(4)]
        assert pages == [200, 200, 200, 429]
        token = browser.cookies.get("bas_access")
        api = await browser.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 429 and "retry-after" in api.headers
