"""SMS through a Twilio-compatible HTTP API (``POST /Accounts/{sid}/Messages.json``)."""

from __future__ import annotations

import httpx2

from activities.messaging.outcome import ProviderUnavailable, SendResult
from core.config import Settings

OPT_OUT_LINE = "Reply STOP to opt out."

"""Per request; well inside the send activity's two-minute limit."""

# Not accepted, come back later (Twilio answers 429 when over its rate, 503 when it sheds load).
_RETRY_LATER = {429, 503}


def with_opt_out(text: str) -> str:
    """Carriers expect every marketing text to say how to stop them."""
    return f"{text.rstrip()}\n\n{OPT_OUT_LINE}"


async def send(settings: Settings, recipient: str, text: str) -> SendResult:
    """Post one message. Refused connection or 429/503: ``ProviderUnavailable`` (nothing was created, retry).
    Other 4xx: ``failed``. No answer after the request left, or a 5xx that may hide a created message: ``unknown``.
    """
    url = f"{settings.sms_api_url.rstrip('/')}/Accounts/{settings.sms_account_sid}/Messages.json"
    auth = (settings.sms_account_sid, settings.sms_auth_token.get_secret_value())
    form = {"To": recipient, "From": settings.sms_from, "Body": text}
    try:
        async with httpx2.AsyncClient(timeout=settings.sms_timeout_seconds) as http:
            response = await http.post(url, data=form, auth=auth)
    except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
        raise ProviderUnavailable(f"SMS API unreachable: {exc!r}") from exc
    except httpx2.TransportError as exc:
        return SendResult("unknown", None, f"no answer after the request was sent: {exc!r}")
    if response.status_code in _RETRY_LATER:
        raise ProviderUnavailable(f"SMS API asked to retry later: {response.status_code}")
    if response.is_success:
        return SendResult("sent", _sid(response))
    detail = f"{response.status_code} {response.text[:500]}"
    if response.status_code < 500:
        return SendResult("failed", None, f"SMS refused: {detail}")
    return SendResult("unknown", None, f"SMS API error, the message may exist: {detail}")


def _sid(response: httpx2.Response) -> str | None:
    """The provider's message id; an accepted message stays accepted even if the body is not what we expect."""
    try:
        body = response.json()
    except ValueError:
        return None
    sid = body.get("sid") if isinstance(body, dict) else None
    return str(sid) if sid else None
