"""Delivering one domain event to one webhook: a signed POST to a checked address, every attempt recorded.

Each attempt resolves the URL again and refuses any address that is not public (``core.net``), so a DNS
record changed after registration cannot turn a webhook against the platform's own network. The request then
goes to the very address that was checked (the original host travels in ``Host`` and, for https, in SNI, so
the certificate is still verified against the name) and redirects are never followed.

Signature: ``X-BAS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx2
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from core.config import Settings
from core.net import IPAddress, UnresolvableHost, UnsafeTarget, resolve_public, split_target
from db.base import utcnow
from db.models import DomainEvent, Webhook, WebhookDelivery
from db.session import transaction
from schemas.webhook_delivery import (
    SETTLED,
    AttemptInput,
    AttemptRefusal,
    AttemptResult,
    DeliveryResult,
    DeliveryStatus,
    GiveUpInput,
)

log = logging.getLogger(__name__)

USER_AGENT = "BAS-Webhooks/1.0"
ATTEMPT_LOG_SIZE = 20
MAX_ERROR = 500
GONE_REASON = "the receiver answered 410 Gone"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-BAS-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_body(event: DomainEvent) -> bytes:
    """The compact JSON a receiver gets: ``{"id", "event", "timestamp", "data"}``."""
    created = event.created_at if event.created_at.tzinfo else event.created_at.replace(tzinfo=UTC)
    document = {
        "id": event.id,
        "event": event.type,
        "timestamp": created.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "data": event.payload,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class _Request:
    url: str
    secret: str
    event_type: str
    body: bytes


@dataclass(frozen=True)
class _Answer:
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    @activity.defn
    async def attempt_delivery(self, input: AttemptInput) -> AttemptResult:
        """POST the event once; 2xx settles the delivery, anything else is recorded and raised for a retry."""
        async with self._sessions() as session:
            delivery = await session.get(WebhookDelivery, input.delivery_id)
            if delivery is not None and delivery.status in SETTLED:
                return _attempt_result(delivery)  # an earlier attempt (or another run) settled it
            request = await _load_request(session, delivery)
        if request is None:
            raise _refusal(
                f"delivery {input.delivery_id}: the webhook was deleted or disabled", AttemptRefusal.inactive
            )
        try:
            addresses = await resolve_public(request.url, self._settings.webhook_allowed_networks)
        except UnresolvableHost as exc:
            # DNS can fail for a while (the receiver's or ours): retried like a receiver that is down.
            answer = _Answer(None, str(exc), 0)
        except UnsafeTarget as exc:
            await self._record_attempt(input.delivery_id, _Answer(None, f"refused: {exc}", 0))
            raise _refusal(str(exc), AttemptRefusal.unsafe_target) from exc
        else:
            answer = await self._post(request, addresses[0], input.delivery_id)
        delivery = await self._record_attempt(input.delivery_id, answer)
        if answer.status_code is not None and 200 <= answer.status_code < 300:
            log.info(
                "webhook delivery %s (%s) delivered: %d after %d attempt(s)",
                input.delivery_id,
                request.event_type,
                answer.status_code,
                delivery.attempts,
            )
            return _attempt_result(delivery)
        why = answer.error or f"the receiver answered {answer.status_code}"
        log.warning("webhook delivery %s attempt %d failed: %s", input.delivery_id, delivery.attempts, why)
        if answer.status_code == 410:
            raise _refusal(GONE_REASON, AttemptRefusal.gone)
        # Benign: an expected failure, logged above in one line, not as a traceback per attempt.
        raise ApplicationError(why, type="DeliveryFailed", category=ApplicationErrorCategory.BENIGN)

    @activity.defn
    async def record_given_up(self, input: GiveUpInput) -> DeliveryResult:
        """Settle a delivery that will not be attempted again, and disable its webhook if it keeps failing."""
        async with transaction(self._sessions) as session:
            delivery = await session.get(WebhookDelivery, input.delivery_id, with_for_update=True)
            if delivery is None:
                # Deleted with its webhook: nothing is left to record.
                return DeliveryResult(status=DeliveryStatus.cancelled, attempts=0)
            if delivery.status in SETTLED:
                return _delivery_result(delivery)  # a retried attempt whose first try committed
            delivery.status = input.outcome
            delivery.last_error = input.reason[:MAX_ERROR]
            webhook = await session.get(Webhook, delivery.webhook_id, with_for_update=True)
            if webhook is not None and input.outcome != DeliveryStatus.cancelled:
                self._count_failure(webhook, input)
        log.warning(
            "webhook delivery %s given up as %s after %d attempt(s): %s",
            input.delivery_id,
            input.outcome,
            delivery.attempts,
            input.reason,
        )
        return _delivery_result(delivery)

    def _count_failure(self, webhook: Webhook, input: GiveUpInput) -> None:
        webhook.consecutive_failures = (webhook.consecutive_failures or 0) + 1
        reason: str | None = None
        if input.outcome == DeliveryStatus.gone:
            reason = GONE_REASON
        elif webhook.consecutive_failures >= input.disable_after_failures:
            reason = f"{webhook.consecutive_failures} deliveries in a row failed; the last: {input.reason}"
        if reason is not None and webhook.active:
            webhook.active = False
            webhook.disabled_reason = reason[:MAX_ERROR]
            log.warning("webhook %s of %s disabled: %s", webhook.id, webhook.company_id, reason)

    async def _post(self, request: _Request, address: IPAddress, delivery_id: str) -> _Answer:
        """One request to the checked ``address``; never raises for the receiver's or the network's faults."""
        target = _pin(request.url, address)
        timestamp = int(time.time())
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-BAS-Event": request.event_type,
            "X-BAS-Delivery": delivery_id,
            "X-BAS-Signature": sign(request.secret, timestamp, request.body),
            **target.credentials,
        }
        started = time.monotonic()
        try:
            # trust_env=False: a proxy from the environment would connect to the name, not the checked address.
            async with httpx2.AsyncClient(
                timeout=self._settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
            ) as http:
                response = await http.post(
                    target.url, content=request.body, headers=headers, extensions=target.extensions
                )
        except httpx2.TimeoutException:
            timeout = self._settings.webhook_timeout_seconds
            return _Answer(None, f"no answer within {timeout:g}s", _elapsed_ms(started))
        except httpx2.HTTPError as exc:
            return _Answer(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR], _elapsed_ms(started))
        redirect = f"the receiver answered {response.status_code} (redirects are not followed)"
        return _Answer(response.status_code, redirect if response.is_redirect else None, _elapsed_ms(started))

    async def _record_attempt(self, delivery_id: str, answer: _Answer) -> WebhookDelivery:
        async with transaction(self._sessions) as session:
            delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
            if delivery is None:
                raise _refusal(f"delivery {delivery_id} was deleted with its webhook", AttemptRefusal.inactive)
            now = utcnow()
            entry = {
                # Temporal's clock (when this attempt started), the one its retry backoff runs on.
                "at": activity.info().started_time.astimezone(UTC).isoformat(),
                "status_code": answer.status_code,
                "error": answer.error,
                "duration_ms": answer.duration_ms,
            }
            delivery.attempts = (delivery.attempts or 0) + 1
            delivery.attempt_log = [*(delivery.attempt_log or []), entry][-ATTEMPT_LOG_SIZE:]
            delivery.response_status = answer.status_code
            succeeded = answer.status_code is not None and 200 <= answer.status_code < 300
            if succeeded:
                delivery.status = DeliveryStatus.delivered
                delivery.delivered_at = now
                delivery.last_error = None
                webhook = await session.get(Webhook, delivery.webhook_id, with_for_update=True)
                if webhook is not None:
                    webhook.consecutive_failures = 0
            else:
                delivery.last_error = answer.error or f"the receiver answered {answer.status_code}"
        return delivery


@dataclass(frozen=True)
class _Pinned:
    url: str
    """The webhook's URL with the checked address in place of the host name (and no credentials)."""
    host_header: str
    extensions: dict[str, Any]
    credentials: dict[str, str]
    """An ``Authorization`` header when the URL carried ``user:password@``."""


def _pin(url: str, address: IPAddress) -> _Pinned:
    """Connect to ``address`` while the receiver still sees (and TLS still verifies) the URL's own host.

    Credentials in the URL become basic auth, so they never sit in a URL that an HTTP client might log.
    """
    parts = urlsplit(url)
    scheme, host, port = split_target(url)
    literal = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    credentials = {}
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        credentials["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
    return _Pinned(
        url=parts._replace(netloc=f"{literal}:{port}", fragment="").geturl(),
        host_header=parts.netloc.rpartition("@")[2],
        extensions={"sni_hostname": host} if scheme == "https" else {},
        credentials=credentials,
    )


def _refusal(message: str, refusal: AttemptRefusal) -> ApplicationError:
    """An error no retry can fix; benign, as the delivery's own log lines already say what happened."""
    return ApplicationError(message, type=refusal, non_retryable=True, category=ApplicationErrorCategory.BENIGN)


async def _load_request(session: AsyncSession, delivery: WebhookDelivery | None) -> _Request | None:
    """What to send, or None when there is no longer anyone to send it to."""
    if delivery is None:
        return None
    webhook = await session.get(Webhook, delivery.webhook_id)
    event = await session.get(DomainEvent, delivery.event_id)
    if webhook is None or not webhook.active or event is None:
        return None
    return _Request(url=webhook.url, secret=webhook.secret, event_type=event.type, body=event_body(event))


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _attempt_result(delivery: WebhookDelivery) -> AttemptResult:
    return AttemptResult(
        delivery_id=delivery.id,
        status=DeliveryStatus(delivery.status),
        attempts=delivery.attempts,
        response_status=delivery.response_status,
    )


def _delivery_result(delivery: WebhookDelivery) -> DeliveryResult:
    return DeliveryResult(
        status=DeliveryStatus(delivery.status), attempts=delivery.attempts, response_status=delivery.response_status
    )
