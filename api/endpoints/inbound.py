"""Public lead-nurturing routes for people and providers who hold no token: unsubscribe, inbound email and SMS.

The unsubscribe link is authorised by its signed token, the webhooks by the signed per-company key in the
path (and Twilio's signature when ``BAS_SMS_AUTH_TOKEN`` is set). Opt-outs are recorded even while Temporal
is unreachable; the send activity checks the suppression list before every message.
"""

from __future__ import annotations

import html
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.deps import CurrentUser, OptionalTemporal, SessionDep, SettingsDep
from schemas.leads import InboundEmail, InboundResult, InboundSms, InboundWebhooks
from services import opt_outs
from services.errors import PermissionDenied

router = APIRouter(prefix="/lead-nurturing", tags=["inbound"])

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}
button{{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}}</style></head>
<body><h1>{html.escape(title)}</h1>{body}</body></html>"""
    return HTMLResponse(document, status_code=status_code)


def _link_not_found() -> HTMLResponse:
    return _page(
        "Link not found",
        "<p>This unsubscribe link is not valid, or the subscription no longer exists.</p>",
        status_code=404,
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe_page(token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """The unsubscribe link: a confirmation page (a GET changes nothing, so link scanners cannot unsubscribe)."""
    subscription = await opt_outs.subscription_for_token(session, settings, token)
    if subscription is None:
        return _link_not_found()
    company = html.escape(subscription.company.name)
    return _page(
        "Unsubscribe",
        f"<p>Stop receiving emails from {company}?</p>"
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>',
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(
    token: str, session: SessionDep, settings: SettingsDep, temporal: OptionalTemporal
) -> HTMLResponse:
    """Unsubscribe: the page's button and RFC 8058 one-click (body ``List-Unsubscribe=One-Click``) both land here."""
    subscription = await opt_outs.subscription_for_token(session, settings, token)
    if subscription is None:
        return _link_not_found()
    await opt_outs.unsubscribe(session, temporal, subscription.contact)
    company = html.escape(subscription.company.name)
    return _page("You are unsubscribed", f"<p>You will not receive any more emails from {company}.</p>")


async def _email_fields(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = await request.json()
        except json.JSONDecodeError as exc:
            raise RequestValidationError([{"loc": ("body",), "msg": "body is not valid JSON"}]) from exc
        return data if isinstance(data, dict) else {}
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str)}


_EMAIL_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": InboundEmail.model_json_schema(by_alias=True)},
            "application/x-www-form-urlencoded": {"schema": InboundEmail.model_json_schema(by_alias=True)},
            "multipart/form-data": {"schema": InboundEmail.model_json_schema(by_alias=True)},
        },
    }
}


@router.post("/inbound/{inbound_key}/email", response_model_exclude_none=True, openapi_extra=_EMAIL_BODY)
async def inbound_email(
    inbound_key: str, request: Request, session: SessionDep, settings: SettingsDep, temporal: OptionalTemporal
) -> InboundResult:
    """An email to the company's inbound address (JSON or inbound-parse form): a reply stops the lead's sequences."""
    company_id = opt_outs.company_for_inbound_key(settings, inbound_key)
    try:
        message = InboundEmail.model_validate(await _email_fields(request))
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    return await opt_outs.receive_email(session, temporal, company_id, message)


@router.post(
    "/inbound/{inbound_key}/sms",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}, "description": "empty TwiML"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": InboundSms.model_json_schema(by_alias=True)}},
        }
    },
)
async def inbound_sms(
    inbound_key: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: OptionalTemporal,
    x_twilio_signature: Annotated[str | None, Header()] = None,
) -> Response:
    """An SMS in Twilio's webhook format: STOP (and synonyms) opts out, START opts in, anything else is a reply."""
    company_id = opt_outs.company_for_inbound_key(settings, inbound_key)
    form = await request.form()
    params = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    # Behind a proxy the URL Twilio signed is the public one, not the one this process sees.
    public_url = settings.public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        public_url += f"?{request.url.query}"
    if not opt_outs.valid_twilio_request(settings, [public_url, str(request.url)], params, x_twilio_signature):
        raise PermissionDenied("Invalid Twilio signature")
    try:
        message = InboundSms.model_validate(dict(params))
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    await opt_outs.receive_sms(session, temporal, company_id, message)
    return Response(EMPTY_TWIML, media_type="application/xml")


@router.get("/inbound-webhooks")
async def inbound_webhooks(user: CurrentUser, settings: SettingsDep) -> InboundWebhooks:
    """The URLs to give your email and SMS providers for replies and opt-outs (admins and managers)."""
    return opt_outs.inbound_urls(settings, user)
