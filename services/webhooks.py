"""Webhooks a company registers: where its events go, which ones, and the secret that signs them.

Delivering (signing, retrying, turning off a receiver that keeps failing) is ``services.webhook_dispatch``
and ``DeliverWebhookWorkflow``; this module manages the registrations and shows what was delivered.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from core import net
from core.config import Settings
from core.ids import new_id
from db import events as db_events
from db.base import utcnow
from db.models import User, Webhook, WebhookDelivery
from schemas.common import Page, PageRequest
from schemas.webhook_delivery import DeliveryStatus
from schemas.webhooks import TEST_EVENT, WebhookCreate, WebhookFilter, WebhookUpdate
from services import audit, webhook_dispatch
from services.errors import Conflict, InvalidField, ServiceUnavailable
from services.paging import paginate
from services.tenancy import owned

log = logging.getLogger(__name__)

TARGET_TYPE = "webhook"
GENERATED_SECRET_PREFIX = "whsec_"  # noqa: S105 (says where a secret came from; not a secret)


def _new_secret() -> str:
    return f"{GENERATED_SECRET_PREFIX}{secrets.token_urlsafe(32)}"


def _audited(webhook: Webhook) -> dict[str, Any]:
    """What the audit log records of a webhook: everything but the secret."""
    return {
        "url": webhook.url,
        "events": list(webhook.events),
        "description": webhook.description,
        "active": webhook.active,
        "disabled_reason": webhook.disabled_reason,
    }


async def _deliverable_url(settings: Settings, url: str) -> str:
    """The URL if deliveries may go there, else InvalidField("url"): checked again before every delivery."""
    url = url.strip()
    if settings.environment == "production" and urlsplit(url).scheme != "https":
        raise InvalidField("url", "webhook URLs must use https://")
    try:
        await net.resolve_public(url, settings.webhook_allowed_networks)
    except net.UnsafeTarget as exc:
        raise InvalidField("url", f"webhooks cannot be delivered to this URL: {exc}") from exc
    return url


async def get(session: AsyncSession, actor: User, webhook_id: str) -> Webhook:
    return await owned(session, actor, Webhook, webhook_id, TARGET_TYPE)


async def list_webhooks(session: AsyncSession, actor: User, filters: WebhookFilter, page: PageRequest) -> Page[Webhook]:
    statement = select(Webhook).where(Webhook.company_id == actor.company_id)
    if filters.active is not None:
        statement = statement.where(Webhook.active == filters.active)
    return await paginate(
        session,
        statement,
        page,
        sortable={"created_at": Webhook.created_at, "updated_at": Webhook.updated_at, "url": Webhook.url},
        default_sort="created_at",
        tie_breaker=Webhook.id,
    )


async def create(session: AsyncSession, settings: Settings, actor: User, body: WebhookCreate) -> Webhook:
    """Register a webhook; without a secret in the body one is generated (the caller shows it once)."""
    webhook = Webhook(
        id=new_id("hook"),
        company_id=actor.company_id,
        url=await _deliverable_url(settings, body.url),
        events=body.events,
        secret=body.secret or _new_secret(),
        description=body.description,
        active=True,
        consecutive_failures=0,
    )
    session.add(webhook)
    await session.flush()
    created = audit.changed({}, _audited(webhook))
    audit.record(session, actor.company_id, actor, "webhook.created", TARGET_TYPE, webhook.id, created)
    log.info("user %s registered webhook %s for %s in %s", actor.id, webhook.id, webhook.events, actor.company_id)
    return webhook


async def update(
    session: AsyncSession, settings: Settings, actor: User, webhook_id: str, body: WebhookUpdate
) -> Webhook:
    """Change the fields sent; ``active: true`` also forgets why the platform had turned the webhook off."""
    webhook = await get(session, actor, webhook_id)
    before = _audited(webhook)
    if body.url is not None:
        webhook.url = await _deliverable_url(settings, body.url)
    if body.events is not None:
        webhook.events = body.events
    if "description" in body.model_fields_set:
        webhook.description = body.description
    if body.active is not None:
        webhook.active = body.active
        if body.active:
            # A person vouches for the receiver again: it gets a fresh count before the next automatic disable.
            webhook.disabled_reason = None
            webhook.consecutive_failures = 0
    changes = audit.changed(before, _audited(webhook))
    if changes:
        await session.flush()
        audit.record(session, actor.company_id, actor, "webhook.updated", TARGET_TYPE, webhook.id, changes)
        log.info("user %s changed webhook %s: %s", actor.id, webhook.id, sorted(changes))
    return webhook


async def delete(session: AsyncSession, actor: User, webhook_id: str) -> None:
    """Remove the webhook and its delivery history; a delivery still retrying finds it gone and stops."""
    webhook = await get(session, actor, webhook_id)
    before = _audited(webhook)
    await session.delete(webhook)
    await session.flush()
    audit.record(
        session,
        actor.company_id,
        actor,
        "webhook.deleted",
        TARGET_TYPE,
        webhook_id,
        audit.changed(before, dict.fromkeys(before)),
    )
    log.info("user %s deleted webhook %s in %s", actor.id, webhook_id, actor.company_id)


async def rotate_secret(session: AsyncSession, actor: User, webhook_id: str) -> Webhook:
    """A new secret signs every attempt from now on, retries of earlier events included; the old one is gone."""
    webhook = await get(session, actor, webhook_id)
    webhook.secret = _new_secret()
    await session.flush()
    audit.record(session, actor.company_id, actor, "webhook.secret_rotated", TARGET_TYPE, webhook.id)
    log.info("user %s rotated the secret of webhook %s", actor.id, webhook.id)
    return webhook


async def list_deliveries(
    session: AsyncSession, actor: User, webhook_id: str, status: DeliveryStatus | None, page: PageRequest
) -> Page[WebhookDelivery]:
    webhook = await get(session, actor, webhook_id)
    statement = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
    if status is not None:
        statement = statement.where(WebhookDelivery.status == status)
    return await paginate(
        session,
        statement,
        page,
        sortable={"created_at": WebhookDelivery.created_at, "delivered_at": WebhookDelivery.delivered_at},
        default_sort="created_at",
        tie_breaker=WebhookDelivery.id,
    )


async def send_test(
    session: AsyncSession, client: Client, settings: Settings, actor: User, webhook_id: str
) -> WebhookDelivery:
    """Send a ``webhook.test`` event to this one webhook, through the same signed, retried delivery as any event."""
    webhook = await get(session, actor, webhook_id)
    if not webhook.active:
        raise Conflict(f"Webhook {webhook.id} is disabled; re-enable it (active: true) before sending a test")
    event = db_events.record(
        session,
        webhook.company_id,
        TEST_EVENT,
        webhook.id,
        {"webhook_id": webhook.id, "message": "A test event sent from the webhook settings"},
    )
    # Already dispatched: the outbox relay must not fan a test out to the company's other webhooks.
    event.dispatched_at = utcnow()
    delivery = WebhookDelivery(
        id=new_id("whd"),
        webhook_id=webhook.id,
        event_id=event.id,
        event_type=TEST_EVENT,
        status=DeliveryStatus.pending,
        attempts=0,
        attempt_log=[],
    )
    session.add(delivery)
    await session.flush()
    # Committed before the workflow starts: its first attempt reads the delivery row.
    await session.commit()
    try:
        await webhook_dispatch.start_delivery(client, settings, delivery.id, webhook.company_id, webhook.id)
    except RPCError as exc:
        # The relay never retries a test (its event is dispatched), so the row says why nothing was sent.
        delivery.status = DeliveryStatus.failed
        delivery.last_error = f"could not start the delivery on Temporal: {exc.message}"
        await session.commit()
        log.error("test delivery %s to webhook %s not started: %s", delivery.id, webhook.id, exc.message)
        raise ServiceUnavailable("Temporal is not reachable; the test event was not sent") from exc
    log.info("user %s sent a test event %s to webhook %s (delivery %s)", actor.id, event.id, webhook.id, delivery.id)
    return delivery
