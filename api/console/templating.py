"""Rendering console pages: one jinja2 environment, autoescaped, with the session's cookies applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.console.session import CONSOLE_PATH, csrf_token, ensure_csrf_cookie, set_session
from core.config import Settings

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.globals["console_path"] = CONSOLE_PATH


def apply_session(request: Request, response: Response) -> None:
    """Renewed tokens (this request refreshed the session) and the CSRF cookie, on any console response."""
    settings: Settings = request.app.state.settings
    renewed = getattr(request.state, "renewed_tokens", None)
    if renewed is not None:
        set_session(response, settings, renewed)
    ensure_csrf_cookie(request, response, settings)


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    values = {"csrf_token": csrf_token(request), **(context or {})}
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)
    apply_session(request, response)
    return response


def redirect(request: Request, url: str) -> Response:
    """After a form post: a full page goes to ``url`` (303); an htmx request is told to go there."""
    if request.headers.get("hx-request") == "true":
        response: Response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    apply_session(request, response)
    return response
