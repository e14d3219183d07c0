"""The outbox relay: domain events fan out to the webhooks subscribed to them, one workflow per delivery.

``domain_events`` is a transactional outbox: an event is recorded in the same commit as the change it
describes, with ``dispatched_at`` null. The relay (a loop in every API process) picks those up, oldest first:

1. in one transaction, a ``webhook_deliveries`` row for each active webhook of the company subscribed to the
   event type (the ``(webhook_id, event_id)`` unique constraint makes a second relay's insert a no-op);
2. after that commit, one ``DeliverWebhookWorkflow`` per delivery, ID ``webhook-delivery/{delivery_id}``
   (a workflow that exists already, running or finished, is left alone);
3. the event is marked dispatched.

A crash between the steps only means the next pass redoes them; several API replicas may relay at once.
Webhook deliveries have no ``workflow_runs`` row: a run's own ``workflow_run.*`` event would otherwise
describe the delivery of a ``workflow_run.*`` event, forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.config import Settings
from core.ids import new_id
from db.base import utcnow
from db.models import DomainEvent, Webhook, WebhookDelivery
from db.session import transaction
from schemas.temporal import QueueKind, run_attributes
from schemas.webhook_delivery import DeliverWebhookInput, DeliveryStatus
from workflows.webhooks import DeliverWebhookWorkflow

log = logging.getLogger(__name__)


def delivery_workflow_id(delivery_id: str) -> str:
    return f"webhook-delivery/{delivery_id}"


def delivery_input(settings: Settings, delivery_id: str, company_id: str, webhook_id: str) -> DeliverWebhookInput:
    """The workflow's input, with today's retry settings (workflow code cannot read settings)."""
    return DeliverWebhookInput(
        delivery_id=delivery_id,
        company_id=company_id,
        webhook_id=webhook_id,
        first_retry_seconds=settings.webhook_first_retry_seconds,
        retry_hours=settings.webhook_retry_hours,
        timeout_seconds=settings.webhook_timeout_seconds,
        disable_after_failures=settings.webhook_disable_after_failures,
    )


async def start_delivery(client: Client, settings: Settings, delivery_id: str, company_id: str, webhook_id: str) -> str:
    """Start the ``DeliverWebhookWorkflow`` of a committed delivery row; returns its workflow id.

    Idempotent: a workflow already started for this delivery (running or finished) is not started again,
    so a delivery is never sent twice by the relay redoing a step.
    """
    workflow_id = delivery_workflow_id(delivery_id)
    try:
        await client.start_workflow(
            DeliverWebhookWorkflow.run,
            delivery_input(settings, delivery_id, company_id, webhook_id),
            id=workflow_id,
            task_queue=settings.task_queue(QueueKind.MAIN),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=run_attributes(company_id, webhook_id, None),
            static_summary=f"Webhook delivery {delivery_id} to webhook {webhook_id}",
        )
    except WorkflowAlreadyStartedError:
        log.debug("%s was started already", workflow_id)
    return workflow_id


RELAY_BATCH = 100
"""Events per relay pass; a full pass is followed by the next one at once, so a burst drains without waiting."""


async def _unheard(session: AsyncSession, events: Sequence[DomainEvent]) -> set[str]:
    """The events no active webhook subscribes to and no earlier pass left a pending delivery for."""
    webhooks = await session.scalars(
        select(Webhook).where(Webhook.company_id.in_({event.company_id for event in events}), Webhook.active.is_(True))
    )
    subscribed: dict[str, set[str]] = {}
    for webhook in webhooks:
        subscribed.setdefault(webhook.company_id, set()).update(webhook.events or [])
    left_pending = set(
        await session.scalars(
            select(WebhookDelivery.event_id).where(
                WebhookDelivery.event_id.in_([event.id for event in events]),
                WebhookDelivery.status == DeliveryStatus.pending,
            )
        )
    )
    return {
        event.id
        for event in events
        if event.type not in subscribed.get(event.company_id, set()) and event.id not in left_pending
    }


async def dispatch_pending(
    sessions: async_sessionmaker[AsyncSession], client: Client, settings: Settings, batch: int = RELAY_BATCH
) -> int:
    """Fan out up to ``batch`` undispatched events (oldest first); returns how many events were dispatched."""
    async with sessions() as session:
        events = list(
            await session.scalars(
                select(DomainEvent)
                .where(DomainEvent.dispatched_at.is_(None))
                .order_by(DomainEvent.created_at, DomainEvent.id)
                .limit(batch)
            )
        )
        unheard = await _unheard(session, events) if events else set()
    if unheard:
        # Most events have no subscriber: one statement for all of them, not three transactions each.
        async with transaction(sessions) as session:
            await session.execute(
                update(DomainEvent)
                .where(DomainEvent.id.in_(unheard), DomainEvent.dispatched_at.is_(None))
                .values(dispatched_at=utcnow())
            )
    for event in events:
        if event.id in unheard:
            continue
        deliveries = await _fan_out(sessions, event)
        for delivery in deliveries:
            await start_delivery(client, settings, delivery.id, event.company_id, delivery.webhook_id)
        async with transaction(sessions) as session:
            await session.execute(
                update(DomainEvent)
                .where(DomainEvent.id == event.id, DomainEvent.dispatched_at.is_(None))
                .values(dispatched_at=utcnow())
            )
        if deliveries:
            log.info("event %s %s dispatched to %d webhook(s)", event.id, event.type, len(deliveries))
    return len(events)


async def _fan_out(sessions: async_sessionmaker[AsyncSession], event: DomainEvent) -> Sequence[WebhookDelivery]:
    """The event's pending deliveries, created first for every subscribed webhook that has none yet.

    Pending ones made by an earlier pass are returned too: that pass may have crashed before starting them.
    """
    try:
        async with transaction(sessions) as session:
            await _create_deliveries(session, event)
    except IntegrityError:
        # Another relay inserted one of the rows between our read and our commit; its rows stand for ours.
        log.info("event %s was being fanned out by another relay as well", event.id)
    async with sessions() as session:
        return list(
            await session.scalars(
                select(WebhookDelivery).where(
                    WebhookDelivery.event_id == event.id, WebhookDelivery.status == DeliveryStatus.pending
                )
            )
        )


async def _create_deliveries(session: AsyncSession, event: DomainEvent) -> None:
    webhooks = await session.scalars(
        select(Webhook).where(Webhook.company_id == event.company_id, Webhook.active.is_(True))
    )
    # The subscription list is JSON: filtered here, the same way on SQLite and PostgreSQL.
    subscribed = [webhook for webhook in webhooks if event.type in (webhook.events or [])]
    if not subscribed:
        return
    existing = set(
        await session.scalars(
            select(WebhookDelivery.webhook_id).where(
                WebhookDelivery.event_id == event.id,
                WebhookDelivery.webhook_id.in_([webhook.id for webhook in subscribed]),
            )
        )
    )
    for webhook in subscribed:
        if webhook.id not in existing:
            session.add(
                WebhookDelivery(
                    id=new_id("whd"),
                    webhook_id=webhook.id,
                    event_id=event.id,
                    event_type=event.type,
                    status=DeliveryStatus.pending,
                )
            )


async def run_relay(
    sessions: async_sessionmaker[AsyncSession], client_getter: Callable[[], Client | None], settings: Settings
) -> None:
    """Dispatch the outbox every ``webhook_relay_interval_seconds`` until cancelled.

    ``client_getter`` answers ``None`` while Temporal is not connected yet: the relay waits quietly (the
    events stay in the outbox). Any other failure is one log line and a retry on the next pass.
    """
    failing_since: str | None = None
    while True:
        client = client_getter()
        backlog = False
        if client is not None:
            try:
                backlog = await dispatch_pending(sessions, client, settings) == RELAY_BATCH
                if failing_since is not None:
                    log.info("webhook relay recovered (it was failing: %s)", failing_since)
                    failing_since = None
            except Exception as exc:  # the database or Temporal is down; both recover on their own
                reason = f"{type(exc).__name__}: {exc}"
                if reason != failing_since:  # one line per new reason, not one per pass
                    log.warning(
                        "webhook relay pass failed (%s); retrying every %.0fs",
                        reason,
                        settings.webhook_relay_interval_seconds,
                    )
                failing_since = reason
        if not backlog:
            await asyncio.sleep(settings.webhook_relay_interval_seconds)
