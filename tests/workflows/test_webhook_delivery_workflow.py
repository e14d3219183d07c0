"""``DeliverWebhookWorkflow`` on the time-skipping server with the REAL activities: the test's database and a
real HTTP receiver on 127.0.0.1. A day of retries passes in a few seconds; the attempt log's ``at`` is
Temporal's clock, so the backoff between attempts can be read from it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.webhooks import WebhookActivities, sign
from core.config import Settings
from core.ids import new_id
from db.models import Company, DomainEvent, Webhook, WebhookDelivery
from db.session import transaction
from schemas.temporal import QueueKind, task_queue
from schemas.webhook_delivery import DeliveryResult, DeliveryStatus
from services.webhook_dispatch import delivery_input, delivery_workflow_id
from tests.support.webhook_receiver import WebhookReceiver, readme_verify
from tests.workflows.doubles import RESULT_TIMEOUT, end
from workflows.webhooks import DeliverWebhookWorkflow

SECRET = "whsec_test_secret"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def loopback(settings: Settings) -> Settings:
    """Deliveries may reach 127.0.0.1 (where the receiver listens); the default allows public addresses only."""
    settings.webhook_allowed_networks = ["127.0.0.0/8"]
    return settings


@dataclass(frozen=True)
class Seeded:
    company_id: str
    webhook_id: str


async def seed_webhook(db: async_sessionmaker[AsyncSession], url: str) -> Seeded:
    seeded = Seeded(company_id=new_id("cmp"), webhook_id=new_id("hook"))
    async with transaction(db) as session:
        session.add(Company(id=seeded.company_id, name="Acme Inc"))
        await session.flush()
        session.add(
            Webhook(id=seeded.webhook_id, company_id=seeded.company_id, url=url, events=["lead.created"], secret=SECRET)
        )
    return seeded


async def seed_delivery(db: async_sessionmaker[AsyncSession], seeded: Seeded) -> tuple[str, str]:
    """A ``lead.created`` event and its pending delivery; (delivery id, event id)."""
    event_id, delivery_id = new_id("evt"), new_id("whd")
    async with transaction(db) as session:
        session.add(
            DomainEvent(
                id=event_id,
                company_id=seeded.company_id,
                type="lead.created",
                entity_id="lead_1",
                payload={"id": "lead_1", "name": "Jane Doe", "source": "website_form"},
                created_at=datetime(2025, 6, 1, 12, 0, tzinfo=UTC),
                dispatched_at=datetime.now(UTC),
            )
        )
        await session.flush()
        session.add(
            WebhookDelivery(id=delivery_id, webhook_id=seeded.webhook_id, event_id=event_id, event_type="lead.created")
        )
    return delivery_id, event_id


async def load_delivery(db: async_sessionmaker[AsyncSession], delivery_id: str) -> WebhookDelivery:
    async with db() as session:
        delivery = await session.get(WebhookDelivery, delivery_id)
    assert delivery is not None
    return delivery


async def load_webhook(db: async_sessionmaker[AsyncSession], webhook_id: str) -> Webhook:
    async with db() as session:
        webhook = await session.get(Webhook, webhook_id)
    assert webhook is not None
    return webhook


@asynccontextmanager
async def delivering(
    env: WorkflowEnvironment, settings: Settings, db: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Client]:
    """A worker with the real webhook activities on the test's own main queue."""
    activities = WebhookActivities(db, settings)
    async with Worker(
        env.client,
        task_queue=task_queue(settings.task_queue_prefix, QueueKind.MAIN),
        workflows=[DeliverWebhookWorkflow],
        activities=[activities.attempt_delivery, activities.record_given_up],
    ):
        yield env.client


async def deliver(client: Client, settings: Settings, seeded: Seeded, delivery_id: str) -> DeliveryResult:
    """Run the delivery's workflow to its end (no search attributes: the time-skipping server has none)."""
    handle: WorkflowHandle[DeliverWebhookWorkflow, DeliveryResult] = await client.start_workflow(
        DeliverWebhookWorkflow.run,
        delivery_input(settings, delivery_id, seeded.company_id, seeded.webhook_id),
        id=f"{delivery_workflow_id(delivery_id)}/{uuid.uuid4().hex[:6]}",
        task_queue=settings.task_queue(QueueKind.MAIN),
    )
    try:
        async with asyncio.timeout(RESULT_TIMEOUT):
            return await handle.result()
    finally:
        await end(handle)


def gaps(delivery: WebhookDelivery) -> list[float]:
    moments = [datetime.fromisoformat(entry["at"]) for entry in delivery.attempt_log]
    return [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(moments)]


async def test_a_receiver_failing_three_times_gets_the_event_once_after_growing_backoffs(
    temporal_time_skipping: WorkflowEnvironment,
    loopback: Settings,
    db: async_sessionmaker[AsyncSession],
    receiver: WebhookReceiver,
) -> None:
    receiver.script.answers = [500, 500, 500]
    seeded = await seed_webhook(db, f"{receiver.url}/hooks/bas?source=test")
    delivery_id, event_id = await seed_delivery(db, seeded)

    async with delivering(temporal_time_skipping, loopback, db) as client:
        result = await deliver(client, loopback, seeded, delivery_id)

    assert result == DeliveryResult(status=DeliveryStatus.delivered, attempts=4, response_status=200)
    delivery = await load_delivery(db, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 4, 200)
    assert delivery.delivered_at is not None and delivery.last_error is None
    assert [entry["status_code"] for entry in delivery.attempt_log] == [500, 500, 500, 200]
    assert all(entry["duration_ms"] >= 0 for entry in delivery.attempt_log)
    first_retry = loopback.webhook_first_retry_seconds
    assert gaps(delivery) == pytest.approx([first_retry, 2 * first_retry, 4 * first_retry], abs=2)
    assert (await load_webhook(db, seeded.webhook_id)).consecutive_failures == 0

    assert len(receiver.received) == 4
    delivered = receiver.received[-1]
    assert (delivered.method, delivered.path) == ("POST", "/hooks/bas")
    assert delivered.headers["content-type"] == "application/json"
    assert delivered.headers["user-agent"] == "BAS-Webhooks/1.0"
    assert delivered.headers["x-bas-event"] == "lead.created"
    assert delivered.headers["host"] == f"127.0.0.1:{receiver.port}"
    # Every attempt carries the same delivery id, so a receiver can drop the duplicates of one it took.
    assert {request.headers["x-bas-delivery"] for request in receiver.received} == {delivery_id}
    assert json.loads(delivered.body) == {
        "id": event_id,
        "event": "lead.created",
        "timestamp": "2025-06-01T12:00:00Z",
        "data": {"id": "lead_1", "name": "Jane Doe", "source": "website_form"},
    }
    assert b", " not in delivered.body and b'": ' not in delivered.body  # compact JSON
    signature = delivered.headers["x-bas-signature"]
    assert readme_verify(SECRET.encode(), signature, delivered.body, now=time.time())
    assert not readme_verify(b"another secret", signature, delivered.body, now=time.time())
    assert not readme_verify(SECRET.encode(), signature, delivered.body, now=time.time() + 301)
    assert signature == sign(SECRET, int(signature.split(",")[0].removeprefix("t=")), delivered.body)


async def test_a_receiver_failing_for_a_whole_day_is_given_up_and_disabled_after_repeated_failures(
    temporal_time_skipping: WorkflowEnvironment,
    loopback: Settings,
    db: async_sessionmaker[AsyncSession],
    receiver: WebhookReceiver,
) -> None:
    receiver.script.default = 500
    loopback.webhook_disable_after_failures = 2
    seeded = await seed_webhook(db, f"{receiver.url}/hook")
    first, _ = await seed_delivery(db, seeded)

    async with delivering(temporal_time_skipping, loopback, db) as client:
        result = await deliver(client, loopback, seeded, first)

        assert result.status == DeliveryStatus.failed
        delivery = await load_delivery(db, first)
        assert delivery.status == "failed" and delivery.delivered_at is None
        assert delivery.attempts == len(receiver.received) > 20
        assert len(delivery.attempt_log) == 20  # the most recent ones
        assert max(gaps(delivery)) == pytest.approx(3600, abs=2)  # the backoff stops growing at an hour
        last_at = datetime.fromisoformat(delivery.attempt_log[-1]["at"])
        started = last_at - timedelta(seconds=sum(gaps(delivery)))
        assert last_at - started < timedelta(hours=24)
        webhook = await load_webhook(db, seeded.webhook_id)
        assert (webhook.active, webhook.consecutive_failures, webhook.disabled_reason) == (True, 1, None)

        # A shorter retry window keeps the second one quick; the count is what disables the webhook.
        loopback.webhook_retry_hours = 0.5
        second, _ = await seed_delivery(db, seeded)
        assert (await deliver(client, loopback, seeded, second)).status == DeliveryStatus.failed
        webhook = await load_webhook(db, seeded.webhook_id)
        assert (webhook.active, webhook.consecutive_failures) == (False, 2)
        assert webhook.disabled_reason is not None
        assert webhook.disabled_reason.startswith("2 deliveries in a row failed")

        # A disabled webhook gets nothing more: its next delivery is cancelled without a request.
        requests_so_far = len(receiver.received)
        third, _ = await seed_delivery(db, seeded)
        assert (await deliver(client, loopback, seeded, third)).status == DeliveryStatus.cancelled
    assert len(receiver.received) == requests_so_far
    assert (await load_delivery(db, third)).attempts == 0


async def test_a_410_disables_the_webhook_at_once(
    temporal_time_skipping: WorkflowEnvironment,
    loopback: Settings,
    db: async_sessionmaker[AsyncSession],
    receiver: WebhookReceiver,
) -> None:
    receiver.script.default = 410
    seeded = await seed_webhook(db, f"{receiver.url}/hook")
    delivery_id, _ = await seed_delivery(db, seeded)

    async with delivering(temporal_time_skipping, loopback, db) as client:
        result = await deliver(client, loopback, seeded, delivery_id)

    assert result == DeliveryResult(status=DeliveryStatus.gone, attempts=1, response_status=410)
    assert len(receiver.received) == 1
    webhook = await load_webhook(db, seeded.webhook_id)
    assert (webhook.active, webhook.disabled_reason) == (False, "the receiver answered 410 Gone")
    assert (await load_delivery(db, delivery_id)).last_error == "the receiver answered 410 Gone"


async def test_a_loopback_target_is_refused_without_a_request_unless_its_network_is_allowed(
    temporal_time_skipping: WorkflowEnvironment,
    settings: Settings,
    db: async_sessionmaker[AsyncSession],
    receiver: WebhookReceiver,
) -> None:
    assert settings.webhook_allowed_networks == []
    seeded = await seed_webhook(db, f"{receiver.url}/hook")
    delivery_id, _ = await seed_delivery(db, seeded)

    async with delivering(temporal_time_skipping, settings, db) as client:
        result = await deliver(client, settings, seeded, delivery_id)

    assert result.status == DeliveryStatus.refused
    assert receiver.received == []
    delivery = await load_delivery(db, delivery_id)
    assert delivery.status == "refused"
    assert delivery.last_error is not None and "127.0.0.1" in delivery.last_error
    assert [entry["status_code"] for entry in delivery.attempt_log] == [None]
    assert (await load_webhook(db, seeded.webhook_id)).consecutive_failures == 1
