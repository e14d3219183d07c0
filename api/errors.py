"""Every error, rendered in the format of the surface that was called."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.console.errors import console_error_page, sign_in_redirect
from api.console.session import LoginRequired
from api.surfaces import Surface, surface_of
from schemas.common import EndpointsError, ResourcesError, readable_errors
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


# The database refused or dropped the connection, or the pool had none to give: the request's one transaction
# was rolled back, so a client may send it again (with its Idempotency-Key) once the database is back.
DATABASE_UNAVAILABLE = "The database is unavailable right now, so the request was not carried out; retry in a moment"


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    log.error(
        "database unavailable on %s %s (request %s): %s",
        request.method,
        request.url.path,
        _request_id(request),
        str(exc).splitlines()[0][:300],
    )
    return error_response(request, 503, DATABASE_UNAVAILABLE, headers={"Retry-After": "5"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for unavailable in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)


# The answers any route of a surface can give besides its own success, declared once per surface (applied to
# its router) so the OpenAPI documents say what a client must handle: the auth and role checks, the tenant
# scope (another company's record is a 404), the body cap, the rate limiter and a dependency being down.
_ERROR_ANSWERS = {
    400: "The body could not be read (malformed, or not the content type the route takes)",
    401: "No valid token or API key",
    403: "Your role (or your API key's scope) does not allow this",
    404: "No such record in your company",
    409: "Conflicts with the current state (a duplicate, or a record in a state that does not allow it)",
    413: "The request body is larger than the cap (BAS_MAX_BODY_BYTES)",
    422: "What to fix, by field",
    429: "Too many requests; retry after the Retry-After header's seconds",
    503: "A service this call needs (Temporal, the database) is unavailable; retry later",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds until a request is allowed", "schema": {"type": "string"}}}


def _error_responses(model: type[ResourcesError | EndpointsError]) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": model, "description": text, **({"headers": _RETRY_AFTER} if status == 429 else {})}
        for status, text in _ERROR_ANSWERS.items()
    }


RESOURCES_ERROR_RESPONSES = _error_responses(ResourcesError)
"""``responses=`` for the ``/v1`` router."""
ENDPOINTS_ERROR_RESPONSES = _error_responses(EndpointsError)
"""``responses=`` for the ``/token`` and ``/api`` routers."""
