"""Errors on console pages: an HTML page a person can act on, or the sign-in page when the session is gone."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from api.console.session import login_url
from api.console.templating import render

_HEADINGS = {
    400: "That did not work",
    401: "Please sign in",
    403: "Not for your role",
    404: "Not found",
    409: "That conflicts with the current state",
    413: "That is too large",
    422: "Please check what you entered",
    429: "Too many requests",
    503: "Temporarily unavailable",
}


def console_error_page(
    request: Request,
    status_code: int,
    message: str,
    *,
    field_errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    details = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in (field_errors or {}).items())
    context = {
        "heading": _HEADINGS.get(status_code, "Something went wrong"),
        "message": f"{message}: {details}" if details else message,
    }
    response = render(request, "error.html", context, status_code=status_code)
    response.headers.update(headers or {})
    return response


def sign_in_redirect(request: Request, next_url: str) -> Response:
    """Pages are sent to the sign-in page; an htmx fragment tells the browser to load it instead."""
    target = login_url(next_url)
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
