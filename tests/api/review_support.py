"""Shared by the customer, sale, review and referral API tests: bodies, response shapes, seeding and polling."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx2
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from core.ids import new_id
from db.base import utcnow
from db.models import Lead, Referral, Sale
from db.session import transaction
from schemas.ids import to_api_id
from schemas.review_request import ReviewEvent, ReviewEventSignal
from services.review_requests import workflow_id_for
from tests.conftest import Account
from workflows.review_request import referral_expiry_workflow_id

# ---------------------------------------------------------------- response shapes

# The spec's Create/Get Customer keys; timezone and unsubscribed_at are the implementation's documented extras.
CUSTOMER_KEYS = {
    "id",
    "name",
    "email",
    "phone",
    "lead_id",
    "created_at",
    "updated_at",
    "lifetime_value",
    "tags",
    "custom_fields",
    "timezone",
    "unsubscribed_at",
}
CUSTOMER_DETAIL_KEYS = CUSTOMER_KEYS | {"sales", "reviews", "referrals"}
SALE_SUMMARY_KEYS = {"id", "service_id", "service_name", "amount", "status", "created_at"}
REVIEW_SUMMARY_KEYS = {"id", "platform", "rating", "status", "completed_at"}
REFERRAL_SUMMARY_KEYS = {"id", "code", "status", "times_used", "created_at"}
# The spec's Create Sale keys, plus updated_at.
SALE_KEYS = {
    "id",
    "customer_id",
    "customer_name",
    "service_id",
    "service_name",
    "amount",
    "status",
    "created_at",
    "updated_at",
    "payment_method",
    "notes",
    "referral_id",
}
REVIEW_KEYS = {
    "id",
    "customer_id",
    "customer_name",
    "sale_id",
    "platform",
    "rating",
    "content",
    "status",
    "request_sent_at",
    "completed_at",
    "review_url",
}
REFERRAL_KEYS = {
    "id",
    "customer_id",
    "customer_name",
    "code",
    "offer",
    "status",
    "created_at",
    "expires_at",
    "times_used",
    "max_uses",
}
REFERRAL_DETAIL_KEYS = REFERRAL_KEYS | {"uses"}
USE_KEYS = {"lead_id", "used_at", "converted"}
# /api: the spec's keys, plus review_url on a review and times_used/max_uses on a referral.
API_REVIEW_KEYS = {
    "id",
    "company_id",
    "customer_id",
    "sale_id",
    "rating",
    "content",
    "platform",
    "status",
    "review_url",
    "request_sent_at",
    "submitted_at",
    "verified_at",
    "created_at",
    "updated_at",
}
API_REFERRAL_KEYS = {
    "id",
    "company_id",
    "customer_id",
    "review_id",
    "code",
    "status",
    "offer",
    "times_used",
    "max_uses",
    "created_at",
    "updated_at",
    "expires_at",
}
V1_META = {"current_page", "per_page", "total_items", "total_pages"}
API_ENVELOPE = {"items", "total", "page", "limit"}

CODE_SYMBOLS = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def code_pattern(prefix: str) -> re.Pattern[str]:
    """A referral code: the customer's first name and eight unambiguous symbols (``ALICE-7KQ4M9XP``)."""
    return re.compile(rf"^{prefix}-[{CODE_SYMBOLS}]{{8}}$")


# ---------------------------------------------------------------- spec bodies

ALICE: dict[str, Any] = {
    "name": "Alice Brown",
    "email": "alice@example.com",
    "phone": "+1122334455",
    "tags": ["new"],
    "custom_fields": {"company": "XYZ Corp", "position": "Marketing Director"},
}
JANE: dict[str, Any] = {"name": "Jane Smith", "email": "jane@example.com", "phone": "+1234567890"}
REVIEW_LINK = "https://g.page/r/acme/review"
OFFER = "$20 off for new customers"
REFERRER_OFFER = "10% off next purchase"
REVIEW_CONFIG: dict[str, Any] = {
    "name": "Review & Referral",
    "workflow_type": "review_referral",
    "actions": {
        # Ten hours: nothing is sent while a test looks at the run.
        "delay_hours": 10,
        "message_template": "review_request",
        "subject": "How did we do, {{first_name}}?",
        "reminders": [{"delay_hours": 10, "message_template": "review_reminder"}],
        "referral": {
            "delay_hours": 10,
            "message_template": "referral_offer",
            "offer": OFFER,
            "referrer_offer": REFERRER_OFFER,
            "max_uses": 5,
            "expires_in_days": 30,
        },
    },
    "templates": {
        "review_request": "Hi {{first_name}}, how was {{service_name}}? {{review_link}}",
        "thank_you_review_request": "Thank you {{first_name}}! A review helps: {{review_link}}",
        "review_reminder": "A reminder, {{first_name}}: {{review_link}}",
        "referral_offer": "Share {{referral_code}}: friends get {{referral_offer}}.",
    },
}


# ---------------------------------------------------------------- API helpers


async def created(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_customer(client: httpx2.AsyncClient, account: Account, body: dict[str, Any]) -> dict[str, Any]:
    return await created(await client.post("/v1/customers", headers=account.headers, json=body))


async def create_sale(
    client: httpx2.AsyncClient, account: Account, customer_id: str, amount: float = 100.0, **fields: Any
) -> dict[str, Any]:
    body = {"customer_id": customer_id, "amount": amount, **fields}
    return await created(await client.post("/v1/sales", headers=account.headers, json=body))


async def set_sale_status(client: httpx2.AsyncClient, account: Account, sale_id: str, status: str) -> dict[str, Any]:
    response = await client.patch(f"/v1/sales/{sale_id}", headers=account.headers, json={"status": status})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_referral(
    client: httpx2.AsyncClient, account: Account, customer_id: str, **fields: Any
) -> dict[str, Any]:
    body = {"customer_id": customer_id, **fields}
    return await created(await client.post("/v1/referrals", headers=account.headers, json=body))


async def add_review_config(
    client: httpx2.AsyncClient, account: Account, actions: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The active review_referral config (ten-hour delays unless ``actions`` says otherwise)."""
    body = {**REVIEW_CONFIG, "actions": {**REVIEW_CONFIG["actions"], **(actions or {})}}
    return await created(await client.post("/v1/workflow-configs", headers=account.headers, json=body))


async def set_review_link(client: httpx2.AsyncClient, account: Account, link: str = REVIEW_LINK) -> None:
    response = await client.patch(
        "/v1/companies/current", headers=account.headers, json={"settings": {"review_links": {"google": link}}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["settings"]["review_links"] == {"google": link}


async def get_json(client: httpx2.AsyncClient, account: Account, url: str, **params: Any) -> dict[str, Any]:
    response = await client.get(url, headers=account.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def runs_of(client: httpx2.AsyncClient, account: Account, sale_id: str) -> list[dict[str, Any]]:
    """The company's workflow runs triggered by this sale."""
    listed = await get_json(client, account, "/v1/workflow-runs", per_page=100)
    return [run for run in listed["data"] if run["trigger_id"] == sale_id]


async def wait_for(
    client: httpx2.AsyncClient, account: Account, url: str, done: Callable[[dict[str, Any]], bool], seconds: float = 30
) -> dict[str, Any]:
    """Poll ``url`` until ``done(body)`` holds; fails (TimeoutError) after ``seconds``."""
    body: dict[str, Any] = {}
    async with asyncio.timeout(seconds):
        while True:
            body = await get_json(client, account, url)
            if done(body):
                return body
            await asyncio.sleep(0.2)


def api_id(canonical: str) -> str:
    """``cust_x`` as the ``/api`` surface spells it (``customer-x``)."""
    spelt = to_api_id(canonical)
    assert spelt is not None
    return spelt


async def review_events(temporal: Client, sale_id: str) -> list[ReviewEvent]:
    """Every ``review_event`` signal in the sale's review request history, decoded."""
    received = []
    async for event in temporal.get_workflow_handle(workflow_id_for(sale_id)).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attributes = event.workflow_execution_signaled_event_attributes
            assert attributes.signal_name == "review_event"
            [signal] = pydantic_data_converter.payload_converter.from_payloads(
                attributes.input.payloads, [ReviewEventSignal]
            )
            received.append(signal.event)
    return received


# ---------------------------------------------------------------- database helpers


async def add_leads(db: async_sessionmaker[AsyncSession], company_id: str, count: int) -> list[str]:
    """``count`` leads of the company, written directly (faster than the API, and no sequences start)."""
    ids = [new_id("lead") for _ in range(count)]
    async with transaction(db) as session:
        session.add_all(
            Lead(id=lead_id, company_id=company_id, name=f"Referred {n}", email=f"{lead_id}@example.com")
            for n, lead_id in enumerate(ids)
        )
    return ids


async def expire(db: async_sessionmaker[AsyncSession], referral_id: str) -> None:
    """Move the code's expiry into the past (its expiry timer has not written "expired" yet)."""
    async with transaction(db) as session:
        await session.execute(
            update(Referral).where(Referral.id == referral_id).values(expires_at=utcnow() - timedelta(minutes=1))
        )


@contextlib.asynccontextmanager
async def terminated_afterwards(temporal: Client, db: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Terminate the review requests and expiry timers the test started on the shared dev server."""
    try:
        yield
    finally:
        async with db() as session:
            sale_ids = list(await session.scalars(select(Sale.id)))
            referral_ids = list(await session.scalars(select(Referral.id)))
        workflow_ids = [workflow_id_for(s) for s in sale_ids] + [referral_expiry_workflow_id(r) for r in referral_ids]
        for workflow_id in workflow_ids:
            with contextlib.suppress(RPCError):  # never started, or already closed
                await temporal.get_workflow_handle(workflow_id).terminate("test finished")
