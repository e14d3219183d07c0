"""The console's session: the API's own tokens in HttpOnly cookies, and CSRF protection for every form.

The cookies carry exactly what an API client holds (an access token and a one-use refresh token), so the
console is subject to the same checks as the API: an inactive user, a signed-out session or another
company's record is refused in the same services, by the same code.

- ``bas_access``: the access token; expires with it.
- ``bas_refresh``: the refresh token, persistent until it expires, so a browser restart keeps the session.
  Only full page loads refresh (never htmx fragments), because a refresh token works once and two parallel
  fragment requests would otherwise race each other into the reuse detector and sign the user out.
- ``bas_csrf``: a random value; every POST must echo it in the ``csrf_token`` field or the ``X-CSRF-Token``
  header (double submit). A page on another site can neither read it nor set it.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep, SettingsDep
from core.config import Settings
from core.request_context import CallerContext, set_caller
from db.models import User
from services import auth
from services.auth import IssuedTokens
from services.errors import AuthenticationFailed, DomainError

log = logging.getLogger(__name__)

ACCESS_COOKIE = "bas_access"
REFRESH_COOKIE = "bas_refresh"
CSRF_COOKIE = "bas_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CONSOLE_PATH = "/app"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(DomainError):
    """No usable session: pages send the browser to the sign-in page, fragments tell htmx to go there."""

    status_code = 401
    code = "authentication_error"

    def __init__(self, next_url: str) -> None:
        super().__init__("Sign in to continue")
        self.next_url = next_url


class CsrfRejected(DomainError):
    status_code = 403
    code = "permission_error"

    def __init__(self) -> None:
        super().__init__("This form has expired or did not come from this site; reload the page and try again")


def _secure(settings: Settings) -> bool:
    return settings.environment != "development"


def set_session(response: Response, settings: Settings, tokens: IssuedTokens) -> None:
    common = {"httponly": True, "samesite": "lax", "secure": _secure(settings), "path": "/"}
    response.set_cookie(ACCESS_COOKIE, tokens.access_token, max_age=tokens.expires_in, **common)  # type: ignore[arg-type]
    response.set_cookie(
        REFRESH_COOKIE,
        tokens.refresh_token,
        max_age=settings.refresh_token_days * 86400,
        **common,  # type: ignore[arg-type]
    )


def clear_session(response: Response) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(name, path="/")


def csrf_token(request: Request) -> str:
    """The page's CSRF value: the cookie's, or a fresh one that ``ensure_csrf_cookie`` will set."""
    token: str | None = getattr(request.state, "csrf_token", None)
    if token is None:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        request.state.csrf_token = token
    return token


def ensure_csrf_cookie(request: Request, response: Response, settings: Settings) -> None:
    token = csrf_token(request)
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(settings), path=CONSOLE_PATH
        )


async def verify_csrf(request: Request) -> None:
    """Refuse a state-changing request whose token does not match the cookie (any method but GET/HEAD)."""
    if request.method in SAFE_METHODS:
        return
    expected = request.cookies.get(CSRF_COOKIE)
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        presented = field if isinstance(field, str) else None
    # Bytes: str compare_digest raises on non-ASCII text, and the form field is whatever was posted.
    if not expected or not presented or not hmac.compare_digest(expected.encode(), presented.encode()):
        log.warning("console: CSRF check failed for %s %s", request.method, request.url.path)
        raise CsrfRejected()


CsrfChecked = Depends(verify_csrf)


def _is_fragment(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


async def _refresh(request: Request, session: AsyncSession, settings: Settings) -> User | None:
    refresh_token = request.cookies.get(REFRESH_COOKIE)
    if not refresh_token or _is_fragment(request) or request.method not in SAFE_METHODS:
        return None
    try:
        tokens = await auth.refresh(session, settings, refresh_token)
    except AuthenticationFailed:
        return None
    request.state.renewed_tokens = tokens  # written to the response by the console middleware
    return tokens.user


async def get_console_user(request: Request, session: SessionDep, settings: SettingsDep) -> User:
    """The signed-in person, from the cookies; a page without a session goes to the sign-in page."""
    set_caller(CallerContext(ip_address=request.client.host if request.client else None))
    access = request.cookies.get(ACCESS_COOKIE)
    if access:
        try:
            return await auth.user_from_access_token(session, settings, access)
        except AuthenticationFailed:
            pass
    user = await _refresh(request, session, settings)
    if user is None:
        raise LoginRequired(_here(request))
    return user


ConsoleUser = Annotated[User, Depends(get_console_user, scope="function")]


def login_url(next_url: str) -> str:
    return f"{CONSOLE_PATH}/login?next={quote(next_url, safe='')}"


def safe_next(next_url: str | None) -> str:
    """Only a path inside the console: ``next`` must not turn sign-in into an open redirect."""
    if next_url and next_url.startswith(f"{CONSOLE_PATH}/") and not next_url.startswith("//"):
        return next_url
    return f"{CONSOLE_PATH}/"
