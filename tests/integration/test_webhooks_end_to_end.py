"""Issue 8's delivery through the real parts: API writes -> the events outbox -> the API's relay -> Temporal
dev server -> worker -> a signed POST to a receiver on 127.0.0.1, one per event, including the events
the worker itself records (an automated email's interaction, the run's ``workflow_run.completed``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from core.config import Settings
from core.ids import new_id
from db.models import Company, DomainEvent, Webhook, WebhookDelivery
from db.session import transaction
from services.webhook_dispatch import dispatch_pending, run_relay
from tests.conftest import Account
from tests.support.smtp_server import SmtpServer
from tests.support.webhook_receiver import Received, WebhookReceiver, readme_verify

SECRET = "an end-to-end signing secret"
SUBSCRIBED = ["lead.created", "interaction.created", "customer.created", "sale.created", "workflow_run.completed"]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The receiver listens on loopback, which deliveries may reach only when allowed; a brisk relay."""
    return settings.model_copy(
        update={"webhook_allowed_networks": ["127.0.0.0/8"], "webhook_relay_interval_seconds": 0.2}
    )


async def _post(client: httpx2.AsyncClient, owner: Account, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, headers=owner.headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _subscribed_events(db: async_sessionmaker[AsyncSession], company_id: str) -> list[DomainEvent]:
    async with db() as session:
        rows = await session.scalars(
            select(DomainEvent).where(DomainEvent.company_id == company_id, DomainEvent.type.in_(SUBSCRIBED))
        )
        return list(rows)


def _body(request: Received) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(request.body)
    return document


@pytest.mark.usefixtures("worker")
async def test_every_subscribed_event_reaches_the_receiver_once_signed(
    client: httpx2.AsyncClient,
    owner: Account,
    db: async_sessionmaker[AsyncSession],
    receiver: WebhookReceiver,
    smtp: SmtpServer,
) -> None:
    webhook = await _post(
        client, owner, "/api/webhooks", {"url": f"{receiver.url}/bas-events", "events": SUBSCRIBED, "secret": SECRET}
    )
    await client.patch(
        "/v1/companies/current", headers=owner.headers, json={"postal_address": "1 Main Street, Springfield"}
    )
    # One message at once and nothing after it: the run completes within a second or two.
    await _post(
        client,
        owner,
        "/v1/workflow-configs",
        {
            "name": "Welcome",
            "workflow_type": "lead_nurturing",
            "active": True,
            "triggers": {"lead_source": ["website_form"], "tags": []},
            "actions": {"initial_delay_minutes": 0, "message_template": "welcome", "channel": "email"},
            "templates": {"welcome": "Hello {{name}}, thank you for your interest in {{company_name}}."},
        },
    )

    followed = await _post(
        client, owner, "/v1/leads", {"name": "Wendy Web", "email": "wendy@example.com", "source": "website_form"}
    )
    called = await _post(
        client, owner, "/v1/leads", {"name": "Carl Call", "email": "carl@example.com", "source": "referral"}
    )
    await _post(
        client,
        owner,
        f"/v1/leads/{called['id']}/interactions",
        {"type": "call", "direction": "outbound", "content": "Left a voicemail", "channel": "manual"},
    )
    customer = await _post(client, owner, "/v1/customers", {"name": "Cora Customer", "email": "cora@example.com"})
    sale = await _post(
        client, owner, "/v1/sales", {"customer_id": customer["id"], "amount": 120.0, "status": "pending"}
    )
    await smtp.wait_for("wendy@example.com", 1)

    async with asyncio.timeout(30):
        # The run's own event is recorded by the worker when the run finishes; wait for its delivery.
        [run_delivery] = await receiver.wait_for(lambda r: r.headers["x-bas-event"] == "workflow_run.completed")
        events = await _subscribed_events(db, owner.company_id)
        received = await receiver.wait_for(lambda r: True, count=len(events))
    await asyncio.sleep(0.5)  # a second relay pass or a retried start would show up now as a duplicate

    assert sorted(event.type for event in events) == sorted([*SUBSCRIBED, "lead.created", "interaction.created"])
    assert len(receiver.received) == len(events)
    by_event = {_body(request)["id"]: request for request in received}
    assert by_event.keys() == {event.id for event in events}
    assert len({request.headers["x-bas-delivery"] for request in received}) == len(events)
    for event in events:
        request = by_event[event.id]
        assert request.method == "POST" and request.path == "/bas-events"
        assert request.headers["x-bas-event"] == event.type
        assert readme_verify(SECRET.encode(), request.headers["x-bas-signature"], request.body, now=time.time())
        assert _body(request)["event"] == event.type
        assert _body(request)["data"] == event.payload
        assert _body(request)["timestamp"].endswith("Z")

    lead_created = {_body(r)["data"]["id"]: _body(r)["data"] for r in received if _body(r)["event"] == "lead.created"}
    assert lead_created[followed["id"]]["email"] == "wendy@example.com"
    assert lead_created[called["id"]]["source"] == "referral"
    interactions = [_body(r)["data"] for r in received if _body(r)["event"] == "interaction.created"]
    assert sorted((i["lead_id"], i["channel"]) for i in interactions) == sorted(
        [(called["id"], "manual"), (followed["id"], "automated_workflow")]
    )
    assert [_body(r)["data"]["id"] for r in received if _body(r)["event"] == "sale.created"] == [sale["id"]]
    run = _body(run_delivery)["data"]
    assert (run["workflow_type"], run["status"], run["entity_id"], run["error"]) == (
        "lead_nurturing",
        "completed",
        followed["id"],
        None,
    )

    # What the management API shows: every delivery delivered on its first attempt.
    listed = await client.get(f"/api/webhooks/{webhook['id']}/deliveries", headers=owner.headers)
    assert listed.status_code == 200, listed.text
    deliveries = listed.json()["items"]
    assert len(deliveries) == len(events)
    assert {(d["status"], d["attempts"], d["response_status"]) for d in deliveries} == {("delivered", 1, 200)}


async def _seed_outbox(db: async_sessionmaker[AsyncSession], receiver: WebhookReceiver) -> dict[str, str]:
    """Two companies' webhooks and one event; only ``subscribed`` (Acme's, active, subscribed) should get it."""
    ids = {name: new_id("hook") for name in ("subscribed", "other_event", "disabled", "other_company")}
    acme, other = new_id("cmp"), new_id("cmp")
    ids["event"], ids["company"] = new_id("evt"), acme
    async with transaction(db) as session:
        session.add_all([Company(id=acme, name="Acme Inc"), Company(id=other, name="Other Co")])
        await session.flush()
        url = f"{receiver.url}/hook"
        session.add_all(
            [
                Webhook(id=ids["subscribed"], company_id=acme, url=url, events=["lead.created"], secret=SECRET),
                Webhook(id=ids["other_event"], company_id=acme, url=url, events=["sale.created"], secret=SECRET),
                Webhook(
                    id=ids["disabled"], company_id=acme, url=url, events=["lead.created"], secret=SECRET, active=False
                ),
                Webhook(id=ids["other_company"], company_id=other, url=url, events=["lead.created"], secret=SECRET),
            ]
        )
        session.add(
            DomainEvent(
                id=ids["event"], company_id=acme, type="lead.created", entity_id="lead_1", payload={"id": "lead_1"}
            )
        )
    return ids


@pytest.mark.usefixtures("worker")
async def test_relays_racing_or_redoing_a_pass_deliver_each_event_once_to_its_subscribers_only(
    settings: Settings, db: async_sessionmaker[AsyncSession], temporal_client: Client, receiver: WebhookReceiver
) -> None:
    """Two API replicas relay the same outbox at once; then one redoes the pass as after a crash."""
    ids = await _seed_outbox(db, receiver)
    connected = iter([None, None, temporal_client])  # Temporal comes up on the third pass

    relays = [
        asyncio.create_task(run_relay(db, lambda: next(connected, temporal_client), settings)),
        asyncio.create_task(run_relay(db, lambda: temporal_client, settings)),
    ]
    async with asyncio.timeout(20):
        await receiver.wait_for(lambda r: True)
    for relay in relays:
        relay.cancel()
    await asyncio.gather(*relays, return_exceptions=True)
    assert all(relay.cancelled() for relay in relays)

    # A crash after the workflows started but before the event was marked dispatched: the next pass redoes it.
    async with transaction(db) as session:
        event = await session.get(DomainEvent, ids["event"])
        assert event is not None and event.dispatched_at is not None
        event.dispatched_at = None
    assert await dispatch_pending(db, temporal_client, settings) == 1
    await asyncio.sleep(1)  # time for a second delivery, were one started

    assert [(r.headers["x-bas-event"], _body(r)["id"]) for r in receiver.received] == [("lead.created", ids["event"])]
    async with db() as session:
        deliveries = list(await session.scalars(select(WebhookDelivery)))
    assert [(d.webhook_id, d.status, d.attempts) for d in deliveries] == [(ids["subscribed"], "delivered", 1)]
    assert receiver.received[0].headers["x-bas-delivery"] == deliveries[0].id
