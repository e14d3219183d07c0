"""``/api/privacy``: erasing and exporting a person, on SQLite and PostgreSQL, with a real worker on Temporal.

The person (Ana) is a lead with a running follow-up, a customer with a completed sale whose review request is
running, the holder of a referral code another lead used, and a user of someone else's code. Erasure stops both
workflows, deletes every personal row, keeps the sale on an anonymous customer and suppresses the address.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from api.main import create_app
from core.config import Settings
from core.ids import new_id
from db.models import (
    AuditEntry,
    Customer,
    DomainEvent,
    IdempotencyRecord,
    Interaction,
    Lead,
    MessageDelivery,
    Referral,
    ReferralUse,
    Review,
    Sale,
    Suppression,
    WorkflowAction,
    WorkflowRun,
)
from db.session import transaction
from schemas.lead_follow_up import LeadEvent
from schemas.review_request import ReviewEvent
from services import lead_follow_up, review_requests
from services.privacy import email_fingerprint
from tests.api.lead_support import create_lead, signals
from tests.api.review_support import add_review_config, create_customer, create_referral, review_events
from tests.conftest import Account, register
from workflows.review_request import referral_expiry_workflow_id

ANA = "ana.person@example.com"
ANA_NAME = "Ana Person"
TYPED = "  ANA.Person@Example.COM "
"""How the admin types the address: erasure and export match it case-insensitively."""
ZERO = {
    "leads": 0,
    "customers": 0,
    "interactions": 0,
    "deliveries": 0,
    "referral_uses": 0,
    "reviews": 0,
    "referrals": 0,
    "events": 0,
    "workflow_actions": 0,
}
WELCOME: dict[str, Any] = {
    "name": "Welcome",
    "workflow_type": "lead_nurturing",
    "active": True,
    "triggers": {"lead_source": [], "tags": []},
    # The first message goes at once (recorded: no SMTP configured); the follow-up waits 100 hours, so the
    # sequence is live when the erasure comes.
    "actions": {
        "initial_delay_minutes": 0,
        "message_template": "hello",
        "channel": "email",
        "subject": "Welcome, {{name}}",
        "follow_up": [{"delay_hours": 100, "message_template": "again"}],
    },
    "templates": {"hello": "Hello {{name}}, thanks for asking.", "again": "Still interested, {{name}}?"},
}


async def wait_until(db: async_sessionmaker[AsyncSession], statement: Any, seconds: float = 30) -> Any:
    """Poll until ``statement`` finds a row; returns it."""
    async with asyncio.timeout(seconds):
        while True:
            async with db() as session:
                row = await session.scalar(statement)
            if row is not None:
                return row
            await asyncio.sleep(0.2)


def delivered_to(lead_id: str, status: str) -> Any:
    return select(MessageDelivery).where(MessageDelivery.lead_id == lead_id, MessageDelivery.status == status)


@contextlib.asynccontextmanager
async def terminated_afterwards(temporal: Client, db: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """End every run and referral timer the test started on the shared dev server."""
    try:
        yield
    finally:
        async with db() as session:
            workflow_ids = set(await session.scalars(select(WorkflowRun.temporal_workflow_id)))
            workflow_ids |= {referral_expiry_workflow_id(r) for r in await session.scalars(select(Referral.id))}
        for workflow_id in workflow_ids:
            with contextlib.suppress(RPCError):  # already closed
                await temporal.get_workflow_handle(workflow_id).terminate("test finished")


async def post_json(client: httpx2.AsyncClient, account: Account, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(url, headers=account.headers, json=body)
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


async def export(client: httpx2.AsyncClient, account: Account, email: str = TYPED) -> dict[str, Any]:
    response = await client.get("/api/privacy/export", headers=account.headers, params={"email": email})
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def texts(session: AsyncSession, company_id: str) -> list[str]:
    """Every text and JSON value of the tables that copy personal data around, lowercased."""
    values: list[Any] = []
    values += await session.scalars(select(DomainEvent.payload).where(DomainEvent.company_id == company_id))
    values += await session.scalars(
        select(IdempotencyRecord.response_body).where(IdempotencyRecord.company_id == company_id)
    )
    for row in await session.execute(
        select(MessageDelivery.recipient, MessageDelivery.subject, MessageDelivery.body, MessageDelivery.error).where(
            MessageDelivery.company_id == company_id
        )
    ):
        values += list(row)
    values += await session.scalars(
        select(WorkflowAction.details).join(WorkflowRun).where(WorkflowRun.company_id == company_id)
    )
    values += await session.scalars(select(AuditEntry.changes).where(AuditEntry.company_id == company_id))
    return [json.dumps(value, ensure_ascii=False).lower() for value in values]


async def count(session: AsyncSession, *conditions: Any) -> int:
    return await session.scalar(select(func.count()).where(*conditions)) or 0


async def test_erasure_stops_the_workflows_deletes_the_person_and_keeps_the_sale(
    client: httpx2.AsyncClient,
    owner: Account,
    db: async_sessionmaker[AsyncSession],
    temporal_client: Client,
    worker: None,
) -> None:
    async with terminated_afterwards(temporal_client, db):
        config = await post_json(client, owner, "/v1/workflow-configs", WELCOME)
        carl = await create_customer(client, owner, {"name": "Carl Other", "email": "carl@example.com"})
        carl_code = await create_referral(client, owner, carl["id"])

        # Ana the lead: created with an Idempotency-Key (its stored response names her), her first message sent.
        ana_lead = await create_lead(
            client, owner, {"name": ANA_NAME, "email": ANA, "phone": "+14155550111", "notes": "met at the fair"}
        )
        keyed = await client.post(
            "/v1/leads",
            headers={**owner.headers, "Idempotency-Key": "ana-again"},
            json={"name": ANA_NAME, "email": ANA, "custom_fields": {"budget": 5000}},
        )
        assert keyed.status_code == 200 and keyed.json()["id"] == ana_lead["id"], keyed.text  # merged
        await wait_until(db, delivered_to(ana_lead["id"], "recorded"))
        await post_json(
            client,
            owner,
            f"/v1/leads/{ana_lead['id']}/interactions",
            {"type": "call", "direction": "outbound", "content": "Called Ana Person about the quote"},
        )
        await post_json(
            client, owner, "/api/review-referral/referrals/use", {"code": carl_code["code"], "lead_id": ana_lead["id"]}
        )
        # She unsubscribed once, stored in another letter case: erasure leaves exactly one entry.
        async with transaction(db) as session:
            session.add(
                Suppression(
                    id=new_id("sup"),
                    company_id=owner.company_id,
                    channel="email",
                    address="Ana.Person@Example.com",
                    reason="unsubscribe",
                )
            )

        # Ana the customer, with a completed sale (its review request waits ten hours) and her own referral code.
        await add_review_config(client, owner)
        ana = await create_customer(client, owner, {"name": ANA_NAME, "email": ANA, "phone": "+14155550111"})
        # Linked as a conversion would, without converting the lead (which would stop her follow-up itself).
        async with transaction(db) as session:
            await session.execute(update(Customer).where(Customer.id == ana["id"]).values(lead_id=ana_lead["id"]))
        sold = await client.post(
            "/v1/sales",
            headers={**owner.headers, "Idempotency-Key": "ana-sale"},
            json={"customer_id": ana["id"], "amount": 250.0, "service_name": "Deep clean", "notes": "Ana paid cash"},
        )
        assert sold.status_code == 201, sold.text
        sale = sold.json()
        ana_code = await create_referral(client, owner, ana["id"])

        # Bob, another person: a lead with his own first message, who used Ana's code.
        bob = await create_lead(client, owner, {"name": "Bob Stays", "email": "bob@example.com"})
        await wait_until(db, delivered_to(bob["id"], "recorded"))
        await post_json(
            client, owner, "/api/review-referral/referrals/use", {"code": ana_code["code"], "lead_id": bob["id"]}
        )
        # Another company with the same address: untouched by this company's erasure.
        other = await register(client, "Other Co")
        elsewhere = await create_lead(client, other, {"name": ANA_NAME, "email": ANA})

        follow_up = temporal_client.get_workflow_handle(lead_follow_up.workflow_id_for(ana_lead["id"], config["id"]))
        review_request = temporal_client.get_workflow_handle(review_requests.workflow_id_for(sale["id"]))
        for handle in (follow_up, review_request):
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

        # ---- the export: everything, as one document
        document = await export(client, owner)
        assert document["email"] == ANA and document["company_id"] == owner.company_id
        datetime.fromisoformat(document["exported_at"])
        [lead] = document["leads"]
        assert (lead["id"], lead["name"], lead["notes"], lead["custom_fields"]) == (
            ana_lead["id"],
            ANA_NAME,
            "met at the fair",
            {"budget": 5000},
        )
        assert sorted(i["channel"] for i in lead["interactions"]) == ["automated_workflow", "manual"]
        [message] = lead["deliveries"]
        assert (message["recipient"], message["subject"], message["body"]) == (
            ANA,
            f"Welcome, {ANA_NAME}",
            f"Hello {ANA_NAME}, thanks for asking.",
        )
        [used] = lead["referral_uses"]
        assert used["referral_id"] == carl_code["id"]
        [customer] = document["customers"]
        assert (customer["id"], customer["lead_id"], customer["lifetime_value"]) == (ana["id"], ana_lead["id"], 250.0)
        [sold_row] = customer["sales"]
        assert (sold_row["id"], sold_row["amount"], sold_row["notes"]) == (sale["id"], 250.0, "Ana paid cash")
        [review] = customer["reviews"]
        assert (review["sale_id"], review["status"]) == (sale["id"], "requested")
        [issued] = customer["referrals"]
        assert issued["code"] == ana_code["code"] and [u["lead_id"] for u in issued["uses"]] == [bob["id"]]
        assert document["other_deliveries"] == []
        runs = {(run["workflow_type"], run["trigger_id"], run["status"]) for run in document["workflow_runs"]}
        assert runs == {("lead_nurturing", ana_lead["id"], "running"), ("review_referral", sale["id"], "running")}
        assert [(s["address"], s["reason"]) for s in document["suppressions"]] == [
            ("Ana.Person@Example.com", "unsubscribe")
        ]
        event_types = {event["type"] for event in document["events"]}
        assert {"lead.created", "customer.created", "sale.created", "referral.created", "referral.used"} <= event_types
        for event in document["events"]:
            datetime.fromisoformat(event["created_at"])

        # ---- the erasure
        response = await client.post("/api/privacy/erase", headers=owner.headers, json={"email": TYPED})
        assert response.status_code == 200, response.text
        answer = response.json()
        # The two stopped runs each write a closing event naming their lead or sale; one that lands before the
        # deletion is erased too.
        exported_events = len(document["events"])
        assert exported_events <= answer["erased"].pop("events") <= exported_events + 2
        assert answer == {
            "success": True,
            "erased": {
                "leads": 1,
                "customers": 1,
                "interactions": 2,
                "deliveries": 1,
                "referral_uses": 1,
                "reviews": 1,
                "referrals": 1,
                "workflow_actions": 1,  # the send_email entry naming her address and subject
            },
            "sales_kept": 1,
            "suppressed": True,
        }

        # Both workflows were told and ended.
        for handle in (follow_up, review_request):
            await asyncio.wait_for(handle.result(), timeout=30)
            assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        assert [s.event for s in await signals(temporal_client, ana_lead["id"], config["id"])] == [LeadEvent.deleted]
        assert await review_events(temporal_client, sale["id"]) == [ReviewEvent.erased]

        async with db() as session:
            company = owner.company_id
            assert await count(session, Lead.company_id == company, func.lower(Lead.email) == ANA) == 0
            assert await count(session, Interaction.lead_id == ana_lead["id"]) == 0
            assert await count(session, ReferralUse.lead_id == ana_lead["id"]) == 0
            assert await count(session, Referral.id == ana_code["id"]) == 0
            assert await count(session, ReferralUse.referral_id == ana_code["id"]) == 0  # Bob's use of her code
            assert await count(session, Review.customer_id == ana["id"]) == 0
            person_ids = {ana_lead["id"], ana["id"], sale["id"], ana_code["id"], review["id"]}
            assert await count(session, DomainEvent.entity_id.in_(person_ids)) == 0
            keys = set(await session.scalars(select(IdempotencyRecord.key)))
            assert not keys & {"ana-again", "ana-sale"}
            for text in await texts(session, company):
                assert ANA not in text and ANA_NAME.lower() not in text, text
            # The sale stays, on an anonymous customer; revenue figures keep it.
            kept = await session.get(Customer, ana["id"])
            assert kept is not None
            assert (kept.name, kept.email, kept.phone, kept.lead_id, kept.tags, kept.custom_fields) == (
                "Erased customer",
                None,
                None,
                None,
                ["erased"],
                {},
            )
            assert kept.unsubscribed_at is not None and float(kept.lifetime_value) == 250.0
            kept_sale = await session.get(Sale, sale["id"])
            assert kept_sale is not None
            assert (kept_sale.customer_id, float(kept_sale.amount), kept_sale.notes) == (ana["id"], 250.0, None)
            # Exactly one suppression entry, reason erased, the first opt-out's row kept.
            entries = list(
                await session.execute(
                    select(Suppression.channel, Suppression.address, Suppression.reason).where(
                        Suppression.company_id == company, func.lower(Suppression.address) == ANA
                    )
                )
            )
            assert [tuple(entry) for entry in entries] == [("email", ANA, "erased")]
            # Her phone number too: a re-import with only the number must not reach her by SMS.
            [sms] = await session.execute(
                select(Suppression.address, Suppression.reason).where(
                    Suppression.company_id == company, Suppression.channel == "sms"
                )
            )
            assert tuple(sms) == ("+14155550111", "erased")
            # The audit log names her by a fingerprint, never by the address.
            [erased] = await session.scalars(select(AuditEntry).where(AuditEntry.action == "person.erased"))
            assert (erased.company_id, erased.actor_id, erased.target_type, erased.target_id) == (
                company,
                owner.user_id,
                "person",
                None,
            )
            assert erased.changes["email_sha256"] == hashlib.sha256(ANA.encode()).hexdigest()[:16]
            assert erased.changes["email_sha256"] == email_fingerprint(TYPED)
            assert erased.changes["erased"] == response.json()["erased"]
            [exported] = await session.scalars(select(AuditEntry).where(AuditEntry.action == "person.exported"))
            assert exported.changes["email_sha256"] == erased.changes["email_sha256"]

            # Another person's data stands: Bob, his first message and Carl's referral (her use of it is gone,
            # its count stays: it is Carl's tally).
            assert await count(session, Lead.id == bob["id"]) == 1
            assert await count(session, Interaction.lead_id == bob["id"]) == 1
            assert await count(session, MessageDelivery.lead_id == bob["id"]) == 1
            carls = await session.get(Referral, carl_code["id"])
            assert carls is not None and carls.times_used == 1
            # The other company still holds its own record of the address.
            assert await count(session, Lead.id == elsewhere["id"], Lead.email == ANA) == 1
            assert await count(session, Suppression.company_id == other.company_id) == 0
            assert any(ANA in text for text in await texts(session, other.company_id))

        # Nothing left to export but the suppression entry that keeps her from being messaged.
        after = await export(client, owner)
        assert {key: value for key, value in after.items() if isinstance(value, list) and value} == {
            "suppressions": [
                {
                    "channel": "email",
                    "address": ANA,
                    "reason": "erased",
                    "created_at": after["suppressions"][0]["created_at"],
                }
            ]
        }
        assert (await export(client, other))["leads"][0]["id"] == elsewhere["id"]

        # Imported again, she is a new lead; the send path refuses the address.
        again = await create_lead(client, owner, {"name": "Ana Again", "email": ANA})
        assert again["id"] != ana_lead["id"]
        refused = await wait_until(db, delivered_to(again["id"], "suppressed"))
        assert refused.error == "email address is on the suppression list (erased)"
        async with db() as session:
            assert await count(session, Interaction.lead_id == again["id"]) == 0


async def test_an_unknown_address_is_suppressed_and_bad_requests_are_refused(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    for _ in range(2):  # asked twice: still one entry
        response = await client.post("/api/privacy/erase", headers=owner.headers, json={"email": "Nobody@Example.com"})
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True, "erased": ZERO, "sales_kept": 0, "suppressed": True}
    async with db() as session:
        rows = list(await session.execute(select(Suppression.address, Suppression.reason)))
        assert [tuple(row) for row in rows] == [("nobody@example.com", "erased")]
        audits = list(await session.scalars(select(AuditEntry.changes).where(AuditEntry.action == "person.erased")))
        assert len(audits) == 2 and all("nobody" not in json.dumps(changes) for changes in audits)

    bad = await client.post("/api/privacy/erase", headers=owner.headers, json={"email": "not-an-email"})
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["detail"]] == ["email"]
    for params in ({"email": "not-an-email"}, {}):
        bad = await client.get("/api/privacy/export", headers=owner.headers, params=params)
        assert bad.status_code == 422 and [e["field"] for e in bad.json()["detail"]] == ["email"]

    # Admins only: a manager of the company is refused, with the /api error shape.
    email = f"manager-{owner.user_id[-6:]}@example.com".lower()
    created = await client.post(
        "/api/users", headers=owner.headers, json={"email": email, "password": "password123", "role": "manager"}
    )
    assert created.status_code == 201, created.text
    token = (await client.post("/token", json={"username": email, "password": "password123"})).json()["access_token"]
    manager = {"Authorization": f"Bearer {token}"}
    refused = await client.post("/api/privacy/erase", headers=manager, json={"email": "x@example.com"})
    assert refused.status_code == 403 and set(refused.json()) == {"detail"}
    refused = await client.get("/api/privacy/export", headers=manager, params={"email": "x@example.com"})
    assert refused.status_code == 403


async def test_erasure_goes_on_while_temporal_is_away(
    client: httpx2.AsyncClient,
    owner: Account,
    settings: Settings,
    db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    lead = await create_lead(client, owner, {"name": ANA_NAME, "email": ANA})
    # The same database, but an API that has not reached Temporal (nothing listens on port 9).
    away = create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:9"}))
    caplog.set_level(logging.ERROR, logger="services.leads")
    async with (
        away.router.lifespan_context(away),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=away), base_url="http://testserver") as offline,
    ):
        assert away.state.temporal is None
        response = await offline.post("/api/privacy/erase", headers=owner.headers, json={"email": ANA})
    assert response.status_code == 200, response.text
    assert response.json()["erased"]["leads"] == 1
    async with db() as session:
        assert await count(session, Lead.id == lead["id"]) == 0
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("Temporal not connected" in m and lead["id"] in m for m in errors)
    assert not any(ANA in m for m in errors)
