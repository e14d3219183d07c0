"""Sign up, sign in, sign out (here or everywhere)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.console.forms import field_errors
from api.console.session import REFRESH_COOKIE, ConsoleUser, CsrfChecked, clear_session, safe_next, set_session
from api.console.templating import redirect, render
from api.deps import SessionDep, SettingsDep
from schemas.auth import RegisterRequest
from services import auth
from services.errors import AuthenticationFailed, Conflict

router = APIRouter()


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", {"next": safe_next(next)})


@router.post("/login", dependencies=[CsrfChecked])
async def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str | None, Form()] = None,
) -> Response:
    try:
        tokens = await auth.login(session, settings, email, password)
    except AuthenticationFailed as exc:
        context = {"next": safe_next(next), "email": email, "error": exc.message}
        return render(request, "login.html", context, status_code=401)
    response = redirect(request, safe_next(next))
    set_session(response, settings, tokens)
    return response


@router.get("/signup")
async def signup_page(request: Request) -> HTMLResponse:
    return render(request, "signup.html", {"values": {}, "errors": {}})


@router.post("/signup", dependencies=[CsrfChecked])
async def signup(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    company_name: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    values = {"company_name": company_name, "name": name, "email": email}
    try:
        body = RegisterRequest(company_name=company_name, name=name, email=email, password=password)
        tokens = await auth.register(session, settings, body)
    except ValidationError as exc:
        return render(request, "signup.html", {"values": values, "errors": field_errors(exc)}, 422)
    except Conflict as exc:
        return render(request, "signup.html", {"values": values, "errors": {"email": [exc.message]}}, 409)
    response = redirect(request, safe_next(None))
    set_session(response, settings, tokens)
    return response


@router.post("/logout", dependencies=[CsrfChecked])
async def logout(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Sign out in this browser: its refresh token is revoked, not just forgotten."""
    refresh_token = request.cookies.get(REFRESH_COOKIE)
    if refresh_token:
        await auth.sign_out(session, settings, refresh_token)
    response = redirect(request, "/app/login")
    clear_session(response)
    return response


@router.post("/logout-everywhere", dependencies=[CsrfChecked])
async def logout_everywhere(request: Request, user: ConsoleUser, session: SessionDep) -> Response:
    """End every session of this user, in every browser and API client."""
    await auth.sign_out_everywhere(session, user)
    response = redirect(request, "/app/login")
    clear_session(response)
    return response
