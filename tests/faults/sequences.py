"""What the fault tests set up through the API (sequences of leads, review requests of sales) and the one check
they all end with: every message reached the SMTP server exactly once, as the deliveries table says."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx2
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import MessageDelivery, WorkflowRun
from tests.conftest import Account
from tests.support.faults import FaultySmtp, eventually

REVIEW_LINK = "https://g.page/r/acme/review"


async def lead_sequence(
    client: httpx2.AsyncClient, owner: Account, *, steps: int, delay_hours: float, personalise: bool = False
) -> str:
    """A lead-nurturing config for every new lead: the first email at once, then ``steps - 1`` follow-ups."""
    templates = {f"step_{index}": f"Step {index} for {{{{name}}}} from {{{{company_name}}}}." for index in range(steps)}
    config = await client.post(
        "/v1/workflow-configs",
        headers=owner.headers,
        json={
            "name": "Fault-proof follow-up",
            "workflow_type": "lead_nurturing",
            "active": True,
            "triggers": {"lead_source": [], "tags": []},
            "actions": {
                "initial_delay_minutes": 0,
                "message_template": "step_0",
                "channel": "email",
                "subject": "Step {{first_name}}",
                "personalize": personalise,
                "follow_up": [
                    {"delay_hours": delay_hours, "message_template": f"step_{index}"} for index in range(1, steps)
                ],
            },
            "templates": templates,
        },
    )
    assert config.status_code == 201, config.text
    return str(config.json()["id"])


async def review_sequence(client: httpx2.AsyncClient, owner: Account, *, reminder_hours: float) -> None:
    """Every completed sale: the review request, one reminder, then the referral offer (three emails)."""
    company = await client.patch(
        "/v1/companies/current", headers=owner.headers, json={"settings": {"review_links": {"google": REVIEW_LINK}}}
    )
    assert company.status_code == 200, company.text
    config = await client.post(
        "/v1/workflow-configs",
        headers=owner.headers,
        json={
            "name": "Fault-proof review request",
            "workflow_type": "review_referral",
            "actions": {
                "delay_hours": 0,
                "platform": "google",
                "message_template": "ask",
                "subject": "How was it, {{first_name}}?",
                "reminders": [{"delay_hours": reminder_hours, "message_template": "remind"}],
                "referral": {
                    "message_template": "offer",
                    "subject": "A gift to share",
                    "offer": "$20 off",
                    "referrer_offer": "10% off",
                    "max_uses": 3,
                    "expires_in_days": 30,
                },
            },
            "templates": {
                "ask": "Hi {{first_name}}, would you review us? {{review_link}}",
                "remind": "Hi {{first_name}}, a reminder: {{review_link}}",
                "offer": "Share {{referral_code}}: friends get {{referral_offer}}.",
            },
        },
    )
    assert config.status_code == 201, config.text


async def add_lead(client: httpx2.AsyncClient, owner: Account, address: str, **extra: Any) -> str:
    created = await client.post(
        "/v1/leads",
        headers={**owner.headers, **extra.pop("headers", {})},
        json={"name": f"Lead {address.split('@')[0]}", "email": address, "source": "website_form", **extra},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def add_sale(client: httpx2.AsyncClient, owner: Account, address: str) -> str:
    customer = await client.post(
        "/v1/customers", headers=owner.headers, json={"name": f"Customer {address.split('@')[0]}", "email": address}
    )
    assert customer.status_code == 201, customer.text
    sale = await client.post(
        "/v1/sales",
        headers=owner.headers,
        json={"customer_id": customer.json()["id"], "service_name": "Boiler service", "amount": 240.0},
    )
    assert sale.status_code == 201, sale.text
    return str(sale.json()["id"])


async def runs_of(db: async_sessionmaker[AsyncSession], company_id: str) -> list[WorkflowRun]:
    async with db() as session:
        return list(await session.scalars(select(WorkflowRun).where(WorkflowRun.company_id == company_id)))


async def finished_runs(
    db: async_sessionmaker[AsyncSession], company_id: str, count: int, seconds: float
) -> list[WorkflowRun]:
    """The company's runs once ``count`` of them exist and none is still running."""

    async def finished() -> list[WorkflowRun] | None:
        runs = await runs_of(db, company_id)
        done = len(runs) == count and all(run.status not in ("pending", "running") for run in runs)
        return runs if done else None

    runs: list[WorkflowRun] = await eventually(finished, seconds, every=1.0)
    return runs


async def deliveries_of(db: async_sessionmaker[AsyncSession], company_id: str) -> list[MessageDelivery]:
    async with db() as session:
        return list(await session.scalars(select(MessageDelivery).where(MessageDelivery.company_id == company_id)))


def assert_each_sent_once(smtp: FaultySmtp, deliveries: list[MessageDelivery], per_recipient: int) -> Counter[str]:
    """Every delivery is ``sent`` and reached the server under its own Message-ID; the server got nothing else,
    and each recipient got ``per_recipient`` distinct messages. Returns the copies per Message-ID (a message
    resent after an unknown outcome arrives twice under one Message-ID: one message to its recipient)."""
    assert Counter(delivery.status for delivery in deliveries) == {"sent": len(deliveries)}, [
        (delivery.id, delivery.status, delivery.error) for delivery in deliveries if delivery.status != "sent"
    ]
    ids = [delivery.provider_message_id for delivery in deliveries]
    assert ids == [f"<{delivery.id}@acme.example.com>" for delivery in deliveries]
    copies = smtp.message_ids()
    assert set(copies) == set(ids), "a message was lost, or one reached the server that no delivery accounts for"
    by_recipient = Counter(delivery.recipient for delivery in deliveries)
    assert smtp.recipients() == by_recipient
    assert set(by_recipient.values()) == {per_recipient}
    return copies
