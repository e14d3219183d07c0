"""Every error, rendered in the format of the surface that was called."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.console.errors import console_error_page, sign_in_redirect
from api.console.session import LoginRequired
from api.surfaces import Surface, surface_of
from schemas.common import readable_errors
from services.errors import DomainError, InvalidField, NotFound

log = logging.getLogger("api.errors")

# Where a value came from, not what it is: ("body", "actions", "follow_up", 0) names "actions.follow_up.0".
_LOCATION_KINDS = frozenset({"body", "query", "path", "header", "cookie"})
_CODE_BY_STATUS = {
    400: "bad_request",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "service_unavailable",
}


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def error_response(
    request: Request,
    status_code: int,
    message: str,
    *,
    extra: dict[str, Any] | None = None,
    field_errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    surface = surface_of(request.url.path)
    if surface is Surface.CONSOLE:
        return console_error_page(request, status_code, message, field_errors=field_errors, headers=headers)
    if surface is Surface.RESOURCES:
        body: dict[str, Any] = {"error": _CODE_BY_STATUS.get(status_code, "error"), "message": message}
        if field_errors:
            body["details"] = field_errors
        body.update(extra or {})
    else:
        detail: Any = message
        if field_errors:
            detail = [
                {"loc": field.split("."), "field": field, "msg": msg}
                for field, msgs in field_errors.items()
                for msg in msgs
            ]
        body = {"detail": detail}
    response = JSONResponse(jsonable_encoder(body), status_code=status_code, headers=headers)
    return response


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if isinstance(exc, LoginRequired):
        return sign_in_redirect(request, exc.next_url)
    if isinstance(exc, InvalidField):
        return error_response(request, 422, "Validation failed", field_errors={exc.field: [exc.message]})
    extra: dict[str, Any] = {}
    if isinstance(exc, NotFound):
        extra = {"resource_type": exc.resource_type, "resource_id": exc.resource_id}
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return error_response(request, exc.status_code, exc.message, extra=extra, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields: dict[str, list[str]] = defaultdict(list)
    for field, message in readable_errors(exc.errors(), skip=_LOCATION_KINDS):
        fields[field or "body"].append(message)
    return error_response(request, 422, "Validation failed", field_errors=dict(fields))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "Request failed"
    return error_response(request, exc.status_code, message, headers=getattr(exc, "headers", None))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    request_id = _request_id(request)
    log.error("unhandled error on %s %s (request %s)", request.method, request.url.path, request_id, exc_info=exc)
    message = "An unexpected error occurred"
    if surface_of(request.url.path) is Surface.ENDPOINTS:
        message = f"{message} (request id {request_id})"
    return error_response(request, 500, message, extra={"request_id": request_id}, headers={"X-Request-ID": request_id})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
