from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import SessionDep, SettingsDep
from schemas.auth import BearerToken, TokenRequest
from services import auth

router = APIRouter(tags=["auth"])

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def _token_request(request: Request) -> TokenRequest:
    """The spec sends JSON; OAuth2 clients (and Swagger's Authorize button) send a form. Both work."""
    content_type = request.headers.get("content-type", "")
    raw: Any
    if content_type.startswith(_FORM_TYPES):
        raw = dict(await request.form())
    else:
        try:
            raw = await request.json()
        except ValueError as exc:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body",), "msg": "Body must be JSON or an OAuth2 password form"}]
            ) from exc
    try:
        return TokenRequest.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc


_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": TokenRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": TokenRequest.model_json_schema()},
        },
    }
}


@router.post("/token", openapi_extra=_BODY_DOC)
async def issue_token(request: Request, session: SessionDep, settings: SettingsDep) -> BearerToken:
    """Sign in with username (or email) and password; JSON or OAuth2 password form."""
    body = await _token_request(request)
    issued = await auth.login(session, settings, body.username, body.password)
    return BearerToken(
        access_token=issued.access_token, refresh_token=issued.refresh_token, expires_in=issued.expires_in
    )
