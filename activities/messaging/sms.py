"""SMS through a Twilio-compatible HTTP API: ``POST /Accounts/{sid}/Messages.json`` to send, and the same path's
``GET`` (the account's message list, newest first) to find out whether a message of ours exists after its
answer was lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2

from activities.messaging.outcome import OutcomeUnresolved, ProviderUnavailable, SendResult
from core.config import Settings

OPT_OUT_LINE = "Reply STOP to opt out."

# Not accepted, come back later (Twilio answers 429 when over its rate, 503 when it sheds load).
_RETRY_LATER = {429, 503}

# What Twilio says about a message it will not deliver; any other status is a message it took.
_NOT_DELIVERED = {"failed", "undelivered", "canceled"}

LOOKUP_PAGES = 5
"""Pages of the recipient's messages read, newest first, before giving up the search (a page holds 50)."""
# The provider's clock and ours may differ by a little; a message created this much before ours still counts.
_CLOCK_SKEW = timedelta(minutes=5)


def with_opt_out(text: str) -> str:
    """Carriers expect every marketing text to say how to stop them."""
    return f"{text.rstrip()}\n\n{OPT_OUT_LINE}"


def _messages_url(settings: Settings) -> str:
    return f"{settings.sms_api_url.rstrip('/')}/Accounts/{settings.sms_account_sid}/Messages.json"


def _auth(settings: Settings) -> tuple[str, str]:
    return settings.sms_account_sid, settings.sms_auth_token.get_secret_value()


async def send(settings: Settings, recipient: str, text: str) -> SendResult:
    """Post one message. Refused connection or 429/503: ``ProviderUnavailable`` (nothing was created, retry).
    Other 4xx: ``failed``. No answer after the request left, or a 5xx that may hide a created message: ``unknown``.
    """
    form = {"To": recipient, "From": settings.sms_from, "Body": text}
    try:
        async with httpx2.AsyncClient(timeout=settings.sms_timeout_seconds) as http:
            response = await http.post(_messages_url(settings), data=form, auth=_auth(settings))
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


async def find_sent(settings: Settings, recipient: str, text: str, since: datetime) -> SendResult | None:
    """The provider's word on a message of ours to ``recipient`` with exactly ``text``, created at or after
    ``since``: ``sent`` (with its sid) or ``failed`` if the provider has it, ``None`` if it has no such message.

    Raises ``OutcomeUnresolved`` when the list cannot be read: the message may exist, so nothing may be resent.
    """
    query: dict[str, Any] | None = {"To": recipient, "From": settings.sms_from, "PageSize": 50}
    url = _messages_url(settings)
    not_before = since.replace(tzinfo=since.tzinfo or UTC) - _CLOCK_SKEW
    try:
        async with httpx2.AsyncClient(timeout=settings.sms_timeout_seconds) as http:
            for _ in range(LOOKUP_PAGES):
                response = await http.get(url, params=query, auth=_auth(settings))
                response.raise_for_status()
                page = response.json()
                for message in page.get("messages") or []:
                    created = _created(message)
                    if created is not None and created < not_before:
                        return None  # newest first: everything further is older than our message
                    if message.get("body") == text:
                        return _found(message)
                next_page = page.get("next_page_uri")
                if not next_page:
                    return None
                # Twilio's next page is a path from the API's root, with the query already in it.
                url, query = str(httpx2.URL(settings.sms_api_url).join(next_page)), None
    except (httpx2.HTTPError, ValueError, AttributeError) as exc:
        raise OutcomeUnresolved(f"could not read the SMS API's message list: {exc!r}") from exc
    raise OutcomeUnresolved(f"no match in the {LOOKUP_PAGES} newest pages of messages to the recipient")


def _created(message: dict[str, Any]) -> datetime | None:
    """Twilio writes dates as RFC 2822 (``Wed, 18 Aug 2010 20:01:40 +0000``)."""
    raw = message.get("date_created")
    if not raw:
        return None
    try:
        return parsedate_to_datetime(str(raw))
    except (TypeError, ValueError):
        return None


def _found(message: dict[str, Any]) -> SendResult:
    sid = str(message.get("sid") or "") or None
    status = str(message.get("status") or "")
    if status in _NOT_DELIVERED:
        return SendResult("failed", sid, f"the SMS API reports the message {status}")
    return SendResult("sent", sid)


def _sid(response: httpx2.Response) -> str | None:
    """The provider's message id; an accepted message stays accepted even if the body is not what we expect."""
    try:
        body = response.json()
    except ValueError:
        return None
    sid = body.get("sid") if isinstance(body, dict) else None
    return str(sid) if sid else None
