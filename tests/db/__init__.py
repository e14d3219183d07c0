"""Seeding shared by the backup and restore tests: companies with real rows made through the API.

``populate`` gives a company leads with interactions and live follow-up runs, a customer with a sale (and its
review request run), a review, a referral, a use of it and a sale it brought, generated content with engagement
figures and workflow configs: a row in nearly every table a backup holds, written by the code that writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

import httpx2
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError

from core.config import Settings
from db.backup import scope_digests
from db.base import Base
from schemas.backups import TableDigest
from tests.api.review_support import add_review_config, create_customer, create_referral, create_sale, created
from tests.conftest import Account, register

LEAD_CONFIG: dict[str, Any] = {
    "name": "Everyone",
    "workflow_type": "lead_nurturing",
    "active": True,
    "triggers": {"lead_source": [], "tags": []},
    # Ten hours: the runs stay live while a test backs up and restores.
    "actions": {"initial_delay_minutes": 600, "message_template": "hello", "channel": "email"},
    "templates": {"hello": "Hello {{name}}"},
}
RUN_STATE_COLUMNS = ("status", "error", "completed_at")
"""What a restore changes on a run the backup had as live (it marks it stopped), so compared separately."""


@dataclass(frozen=True)
class Seeded:
    account: Account
    lead_ids: list[str]
    customer_id: str
    content_id: str


async def add_lead(client: httpx2.AsyncClient, account: Account, name: str) -> str:
    body = {"name": name, "email": f"{uuid.uuid4().hex[:10]}@example.com", "source": "website_form"}
    lead: dict[str, Any] = await created(await client.post("/v1/leads", headers=account.headers, json=body))
    return str(lead["id"])


async def populate(
    client: httpx2.AsyncClient, settings: Settings, db: async_sessionmaker[AsyncSession], company: str = "Acme Inc"
) -> Seeded:
    """A company with a row in nearly every table, through the API (runs start on Temporal; no worker needed)."""
    settings.content_generation_wait_seconds = 0.05  # answer 202 at once: the draft is not what is tested
    account = await register(client, company)
    await created(await client.post("/v1/workflow-configs", headers=account.headers, json=LEAD_CONFIG))
    await add_review_config(client, account)
    lead_ids = [await add_lead(client, account, name) for name in ("Lead One", "Lead Two")]
    for lead_id in lead_ids:
        body = {"type": "call", "direction": "outbound", "content": "Left a voicemail", "metadata": {"minutes": 2}}
        await created(await client.post(f"/v1/leads/{lead_id}/interactions", headers=account.headers, json=body))
    customer = await create_customer(
        client, account, {"name": "Alice Brown", "email": f"alice-{uuid.uuid4().hex[:6]}@example.com"}
    )
    await create_sale(client, account, customer["id"], amount=120.5, service_name="Deep clean")
    review = {"customer_id": customer["id"], "rating": 5, "content": "Spotless", "platform": "google"}
    await created(await client.post("/api/review-referral/reviews", headers=account.headers, json=review))
    referral = await create_referral(client, account, customer["id"])
    use = await client.post(
        "/api/review-referral/referrals/use",
        headers=account.headers,
        json={"code": referral["code"], "lead_id": lead_ids[1]},
    )
    assert use.status_code == 200, use.text
    # A sale that names the referral: sales -> referrals -> reviews -> sales is the cycle a restore must untie.
    friend = await create_customer(
        client, account, {"name": "Bob Green", "email": f"bob-{uuid.uuid4().hex[:6]}@example.com"}
    )
    referred = await create_sale(client, account, friend["id"], amount=80, referral_code=referral["code"])
    assert referred["referral_id"] == referral["id"]
    generated = await client.post(
        "/v1/content/generate", headers=account.headers, json={"type": "blog", "title": "Spring cleaning tips"}
    )
    assert generated.status_code in (201, 202), generated.text
    content_id = str(generated.json()["id"])
    for day in ("2025-06-01", "2025-06-02"):
        metrics = {"recorded_on": day, "views": 10, "clicks": 2}
        response = await client.post(f"/v1/content/{content_id}/metrics", headers=account.headers, json=metrics)
        assert response.status_code == 200, response.text
    await outbox_settled(db)
    return Seeded(account, lead_ids, customer["id"], content_id)


async def outbox_settled(db: async_sessionmaker[AsyncSession]) -> None:
    """Wait until the API's outbox relay has dispatched every event: it writes ``dispatched_at`` in the background,
    and a checksum taken while it does would be of a moving table."""
    events = Base.metadata.tables["domain_events"]
    async with asyncio.timeout(15):
        while True:
            async with db() as session:
                waiting = await session.scalar(select(func.count()).where(events.c.dispatched_at.is_(None)))
            if not waiting:
                return
            await asyncio.sleep(0.1)


async def digests(db: async_sessionmaker[AsyncSession], company_id: str | None) -> dict[str, TableDigest]:
    """Every backed-up table's rows and checksum, recomputed from the database; runs without their state."""
    found = await scope_digests(db, company_id)
    return {name: digest for name, digest in found.items() if name != "workflow_runs"}


async def runs(db: async_sessionmaker[AsyncSession], company_id: str) -> list[dict[str, Any]]:
    """The company's ``workflow_runs`` rows in id order."""
    table = Base.metadata.tables["workflow_runs"]
    async with db() as session:
        rows = await session.execute(select(table).where(table.c.company_id == company_id).order_by(table.c.id))
        return [dict(row) for row in rows.mappings()]


def without_state(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{name: value for name, value in row.items() if name not in RUN_STATE_COLUMNS} for row in rows]


async def terminate_company_workflows(temporal: Client, company_id: str) -> None:
    """Leave nothing of the test running on the shared dev server."""
    async for execution in temporal.list_workflows(f"CompanyId = '{company_id}' AND ExecutionStatus = 'Running'"):
        with contextlib.suppress(RPCError):  # closed meanwhile
            await temporal.get_workflow_handle(execution.id, run_id=execution.run_id).terminate("test finished")
