"""``POST /forms/{form_id}``: the public lead form a website posts to (no key in the page, only the form id).

Browsers get a redirect to the thank-you page (or an HTML page saying what to fix); scripts that send
``Accept: application/json`` get JSON. Every answer carries ``Access-Control-Allow-Origin: *`` so a page on
any origin may post with ``fetch()`` and a ``FormData`` body (a simple request: no preflight needed).
"""

from __future__ import annotations

import html
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import error_response
from schemas.lead_forms import MAX_FORM_BYTES, MAX_FORM_FIELDS, FormAccepted, LeadFormFields
from services import lead_forms
from services.errors import NotFound

log = logging.getLogger(__name__)

router = APIRouter(tags=["forms"])

FormId = Annotated[str, Path(max_length=40, description="the prefix of a lead_capture API key")]
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_OPEN_TO_ALL = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}
_FORM_SCHEMA = LeadFormFields.model_json_schema()
_RESPONSES: dict[int | str, dict[str, Any]] = {
    303: {"description": "To the key's thank-you page (when it has one and the client did not ask for JSON)"},
    400: {"description": "An HTML page saying what to fix (the same problems a JSON client gets as 422)"},
    404: {"description": "No such form, or its key was revoked"},
    413: {"description": "The form is too large"},
    415: {"description": "Not a form post"},
    422: {"description": "What to fix, by field (clients sending `Accept: application/json`)"},
    429: {"description": "Too many posts to this form from one address; see Retry-After"},
}


class _Refused(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "").lower()


def _what_to_fix(field_errors: dict[str, list[str]], headers: dict[str, str]) -> HTMLResponse:
    items = "".join(
        f"<li><b>{html.escape(field)}</b>: {html.escape(text)}</li>"
        for field, texts in field_errors.items()
        for text in texts
    )
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Your form was not sent</title></head>'
        f"<body><h1>Your form was not sent</h1><ul>{items}</ul>"
        "<p>Please go back, correct the form and send it again.</p></body></html>"
    )
    return HTMLResponse(body, status_code=status.HTTP_400_BAD_REQUEST, headers=headers)


def _problem(
    request: Request,
    status_code: int,
    message: str,
    *,
    field_errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    headers = {**_OPEN_TO_ALL, **(headers or {})}
    if _wants_json(request):
        json_status = 422 if field_errors else status_code
        return error_response(request, json_status, message, field_errors=field_errors, headers=headers)
    if field_errors:
        return _what_to_fix(field_errors, headers)
    return PlainTextResponse(message, status_code=status_code, headers=headers)


def _limited(receive: Receive) -> Receive:
    received = 0

    async def receive_at_most() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > MAX_FORM_BYTES:
            raise _Refused(413, f"The form is larger than {MAX_FORM_BYTES // 1024} KiB")
        return message

    return receive_at_most


async def _read_fields(request: Request) -> list[tuple[str, str]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in FORM_CONTENT_TYPES:
        raise _Refused(415, "Send the form as application/x-www-form-urlencoded or multipart/form-data")
    bounded = Request(request.scope, _limited(request.receive))
    try:
        form = await bounded.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FORM_BYTES)
    except HTTPException as exc:
        raise _Refused(400, str(exc.detail)) from exc
    return [(name, value) for name, value in form.multi_items() if isinstance(value, str)]


@router.post(
    "/forms/{form_id}",
    status_code=status.HTTP_201_CREATED,
    response_model=FormAccepted,
    responses=_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA}, "multipart/form-data": {}},
        }
    },
)
async def submit_lead_form(
    form_id: FormId, request: Request, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> Response:
    """A website's lead form: creates a lead (and its follow-up) like any other; no API key in the page."""
    client_ip = request.client.host if request.client else "unknown"
    try:
        fields = await _read_fields(request)
        outcome = await lead_forms.submit(session, temporal, settings, form_id, fields, client_ip)
    except _Refused as exc:
        return _problem(request, exc.status_code, exc.message)
    except NotFound:
        return _problem(request, 404, "This form does not exist or no longer accepts submissions")
    except lead_forms.TooManySubmissions as exc:
        return _problem(request, 429, exc.message, headers={"Retry-After": str(exc.retry_after)})
    except lead_forms.InvalidSubmission as exc:
        await session.rollback()
        return _problem(request, 400, exc.message, field_errors=exc.field_errors)
    if outcome.thank_you_url and not _wants_json(request):
        return RedirectResponse(outcome.thank_you_url, status_code=status.HTTP_303_SEE_OTHER, headers=_OPEN_TO_ALL)
    return JSONResponse(FormAccepted().model_dump(), status_code=status.HTTP_201_CREATED, headers=_OPEN_TO_ALL)
