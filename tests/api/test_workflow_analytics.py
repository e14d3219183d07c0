"""Workflow analytics: per-config figures on seeded runs with values worked out by hand, a filter, an empty company.

The period is 2026-03-01..2026-03-07. Seeded (one company; runs are "started" at the times shown):

    W1 "New Lead Follow-up" (lead_nurturing)
      A0  lead Ld  02-20  completed   (before the period: not counted; its message neither)
      A1  lead La  03-01 09:00  completed  message sent 09:00; La replies 11:00 (and wrote at 08:00, before)
      A2  lead Lb  03-02 10:00  stopped    message sent 10:00; Lb replies 14:00
      A3  lead Lc  03-03        failed     a failed message only
      A4  lead La  03-04 12:00  running    message recorded (no provider) 12:00; La replies 03-05 00:00
      La converted -> customer Ca: sales 200.00 completed 03-05, 50.00 refunded 03-05, 999.00 completed 03-09
    W3 "Post-Sale Review" (review_referral)
      B1  sale X1  03-02  completed  review left (5); referral F1 issued, used twice; message sent 03-02
      B2  sale X2  03-03  completed  review requested only; referral F2 issued, never used
      B3  sale X2  03-04  failed     (the same sale again)
      F1 redeemed by a new customer's completed sale of 120.00 on 03-06; a hand-made code F0 (no run)
      redeemed by a 500.00 sale: no workflow's
    W4 "Weekly Blog" (content_generation)
      E1  content K1  03-02  completed;  E2  content K2  03-05  running
      (no config) P1: the publishing run of K1, 03-03, completed
      K1 metrics: 03-03 (200, 20, 10, 10, 4) and 03-10 (100, 10, 0, 0, 1); K2 none
      lead Lk attributed to K1 (custom_fields.content_id in the /api spelling) -> customer Ck: 75.00 on 03-06
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.ids import new_id
from db.models import (
    Content,
    ContentMetric,
    Customer,
    Interaction,
    Lead,
    MessageDelivery,
    Referral,
    Review,
    Sale,
    WorkflowConfig,
    WorkflowRun,
)
from db.session import transaction
from schemas.ids import to_api_id
from tests.conftest import Account

URL = "/v1/analytics/workflows"
PERIOD = {"start_date": "2026-03-01", "end_date": "2026-03-07"}


def at(day: int, hour: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


class Seeder:
    def __init__(self, session: AsyncSession, company_id: str) -> None:
        self.session, self.company_id = session, company_id
        self.ids: dict[str, str] = {}
        self.messages = 0

    async def add(self, key: str, row: Any) -> Any:
        self.ids[key] = row.id
        self.session.add(row)
        await self.session.flush()
        return row

    async def lead(self, key: str, status: str, **fields: Any) -> None:
        await self.add(key, Lead(id=new_id("lead"), company_id=self.company_id, name=key, status=status, **fields))

    async def customer(self, key: str, lead: str | None = None) -> None:
        lead_id = self.ids[lead] if lead else None
        await self.add(key, Customer(id=new_id("cust"), company_id=self.company_id, name=key, lead_id=lead_id))

    async def sale(self, key: str, customer: str, amount: str, when: datetime, **fields: Any) -> None:
        sale = Sale(
            id=new_id("sale"),
            company_id=self.company_id,
            customer_id=self.ids[customer],
            amount=Decimal(amount),
            created_at=when,
            **fields,
        )
        await self.add(key, sale)

    async def config(self, key: str, name: str, kind: str) -> None:
        await self.add(key, WorkflowConfig(id=new_id("wf"), company_id=self.company_id, name=name, workflow_type=kind))

    async def run(self, key: str, kind: str, config: str | None, subject: str, when: datetime, status: str) -> str:
        run_id = new_id("run")
        run = WorkflowRun(
            id=run_id,
            company_id=self.company_id,
            workflow_config_id=self.ids[config] if config else None,
            workflow_type=kind,
            temporal_workflow_id=f"{kind}/{self.ids[subject]}",
            status=status,
            trigger_type="test",
            trigger_id=self.ids[subject],
            started_at=when,
        )
        await self.add(key, run)
        return f"{run.temporal_workflow_id}/{run_id}/referral"

    async def message(self, run: str, status: str, when: datetime) -> None:
        self.messages += 1
        self.session.add(
            MessageDelivery(
                id=new_id("msg"),
                company_id=self.company_id,
                idempotency_key=f"test/{self.company_id}/{self.messages}",
                channel="email",
                recipient="someone@example.com",
                body="Hello",
                status=status,
                provider="recorded",
                workflow_run_id=self.ids[run],
                created_at=when,
                sent_at=when if status == "sent" else None,
            )
        )

    async def reply(self, lead: str, when: datetime) -> None:
        self.session.add(
            Interaction(
                id=new_id("int"),
                company_id=self.company_id,
                lead_id=self.ids[lead],
                type="email",
                direction="inbound",
                created_at=when,
            )
        )

    async def referral(self, key: str, customer: str, times_used: int, issue_key: str | None) -> None:
        referral = Referral(
            id=new_id("ref"),
            company_id=self.company_id,
            customer_id=self.ids[customer],
            code=key,
            offer="$20 off",
            times_used=times_used,
            issue_key=issue_key,
        )
        await self.add(key, referral)


async def seed(db: async_sessionmaker[AsyncSession], company_id: str) -> dict[str, str]:
    async with transaction(db) as session:
        s = Seeder(session, company_id)
        await s.config("W1", "New Lead Follow-up", "lead_nurturing")
        await s.config("W3", "Post-Sale Review", "review_referral")
        await s.config("W4", "Weekly Blog", "content_generation")
        # lead nurturing
        await s.lead("La", "converted")
        await s.lead("Lb", "contacted")
        await s.lead("Lc", "new")
        await s.lead("Ld", "converted")
        await s.run("A0", "lead_nurturing", "W1", "Ld", at(20, month=2), "completed")
        await s.message("A0", "sent", at(20, month=2))
        await s.run("A1", "lead_nurturing", "W1", "La", at(1, 9), "completed")
        await s.message("A1", "sent", at(1, 9))
        await s.reply("La", at(1, 8))
        await s.reply("La", at(1, 11))
        await s.run("A2", "lead_nurturing", "W1", "Lb", at(2, 10), "stopped")
        await s.message("A2", "sent", at(2, 10))
        await s.reply("Lb", at(2, 14))
        await s.run("A3", "lead_nurturing", "W1", "Lc", at(3), "failed")
        await s.message("A3", "failed", at(3))
        await s.run("A4", "lead_nurturing", "W1", "La", at(4, 12), "running")
        await s.message("A4", "recorded", at(4, 12))
        await s.reply("La", at(5, 0))
        await s.customer("Ca", lead="La")
        await s.sale("Sa1", "Ca", "200.00", at(5), status="completed")
        await s.sale("Sa2", "Ca", "50.00", at(5), status="refunded")
        await s.sale("Sa3", "Ca", "999.00", at(9), status="completed")
        # review & referral
        await s.customer("Cx")
        await s.sale("X1", "Cx", "10.00", at(1), status="completed")
        await s.sale("X2", "Cx", "10.00", at(1), status="completed")
        f1_key = await s.run("B1", "review_referral", "W3", "X1", at(2), "completed")
        await s.message("B1", "sent", at(2))
        f2_key = await s.run("B2", "review_referral", "W3", "X2", at(3), "completed")
        await s.run("B3", "review_referral", "W3", "X2", at(4), "failed")
        for sale, status, rating in (("X1", "submitted", 5), ("X2", "requested", None)):
            session.add(
                Review(
                    id=new_id("rev"),
                    company_id=company_id,
                    customer_id=s.ids["Cx"],
                    sale_id=s.ids[sale],
                    status=status,
                    rating=rating,
                )
            )
        await s.referral("F1", "Cx", 2, f1_key)
        await s.referral("F2", "Cx", 0, f2_key)
        await s.referral("F0", "Cx", 1, None)
        await s.customer("Cn")
        await s.sale("Sr1", "Cn", "120.00", at(6), status="completed", referral_id=s.ids["F1"])
        await s.sale("Sr0", "Cn", "500.00", at(6), status="completed", referral_id=s.ids["F0"])
        # content
        for key in ("K1", "K2"):
            await s.add(key, Content(id=new_id("cont"), company_id=company_id, type="blog", title=key))
        await s.run("E1", "content_generation", "W4", "K1", at(2), "completed")
        await s.run("E2", "content_generation", "W4", "K2", at(5), "running")
        await s.run("P1", "content_generation", None, "K1", at(3), "completed")
        for day, views, clicks, shares, comments, conversions in (
            ("2026-03-03", 200, 20, 10, 10, 4),
            ("2026-03-10", 100, 10, 0, 0, 1),
        ):
            session.add(
                ContentMetric(
                    content_id=s.ids["K1"],
                    recorded_on=day,
                    views=views,
                    clicks=clicks,
                    shares=shares,
                    comments=comments,
                    conversions=conversions,
                )
            )
        await s.lead("Lk", "converted", custom_fields={"content_id": to_api_id(s.ids["K1"])})
        await s.customer("Ck", lead="Lk")
        await s.sale("Sk", "Ck", "75.00", at(6), status="completed")
        return s.ids


@pytest.fixture
async def seeded(owner: Account, db: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    return await seed(db, owner.company_id)


async def analytics(client: httpx2.AsyncClient, owner: Account, **params: str) -> dict[str, Any]:
    response = await client.get(URL, headers=owner.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_workflow_of_the_period(client: httpx2.AsyncClient, owner: Account, seeded: dict[str, str]) -> None:
    body = await analytics(client, owner, **PERIOD)
    assert body["period"] == PERIOD
    k1_figures = {
        "average_engagement_rate": 0.1667,  # (30 + 10 + 10) / 300 over every day of K1 (K2 has none)
        "average_conversion_rate": 0.0167,  # 5 / 300
    }
    assert body["workflows"] == [
        {
            "id": seeded["W1"],
            "name": "New Lead Follow-up",
            "type": "lead_nurturing",
            "runs_total": 4,  # A1..A4
            "runs_successful": 2,  # A1 completed, A2 stopped
            "runs_failed": 1,  # A3; A4 is still running
            "success_rate": 0.6667,  # 2 / 3
            "conversion_rate": 0.3333,  # La of La, Lb, Lc
            "average_response_time_hours": 6.0,  # A1 2 h, A2 4 h, A4 12 h
            "estimated_revenue_impact": 200.0,  # Ca's completed sale in the period
        },
        {
            "id": seeded["W3"],
            "name": "Post-Sale Review",
            "type": "review_referral",
            "runs_total": 3,
            "runs_successful": 2,
            "runs_failed": 1,
            "success_rate": 0.6667,
            "review_completion_rate": 0.5,  # X1 of X1, X2
            "average_rating": 5.0,
            "referral_usage_rate": 0.5,  # F1 of F1, F2
            "estimated_revenue_impact": 120.0,  # redeemed F1 (not F0: no run issued it)
        },
        {
            "id": seeded["W4"],
            "name": "Weekly Blog",
            "type": "content_generation",
            "runs_total": 2,
            "runs_successful": 1,
            "runs_failed": 0,
            "success_rate": 1.0,  # E2 is still running
            **k1_figures,
            "estimated_revenue_impact": 75.0,  # Sk, from the lead attributed to K1
        },
        {
            "id": None,
            "name": "Content Generation (no config)",
            "type": "content_generation",
            "runs_total": 1,  # P1 publishes K1
            "runs_successful": 1,
            "runs_failed": 0,
            "success_rate": 1.0,
            **k1_figures,
            "estimated_revenue_impact": 75.0,
        },
    ]
    assert body["totals"] == {
        "runs_total": 10,
        "runs_successful": 6,
        "runs_failed": 2,
        "success_rate": 0.75,  # 6 / 8
        "estimated_revenue_impact": 395.0,  # 200 + 120 + 75: Sk once
        # messages A1, A2, A4 (recorded), B1 x 5 min + content K1, K2 x 60 min (the defaults) = 140 min
        "estimated_time_saved_hours": 2.33,
    }


async def test_one_type(client: httpx2.AsyncClient, owner: Account, seeded: dict[str, str]) -> None:
    body = await analytics(client, owner, **PERIOD, workflow_type="review_referral")
    assert [workflow["id"] for workflow in body["workflows"]] == [seeded["W3"]]
    assert body["totals"] == {
        "runs_total": 3,
        "runs_successful": 2,
        "runs_failed": 1,
        "success_rate": 0.6667,
        "estimated_revenue_impact": 120.0,
        "estimated_time_saved_hours": 0.08,  # B1's message: 5 min
    }


async def test_a_single_day(client: httpx2.AsyncClient, owner: Account, seeded: dict[str, str]) -> None:
    body = await analytics(client, owner, start_date="2026-03-04", end_date="2026-03-04")
    # A4 (running; its lead La converted; replied 12 h later) and B3 (failed, sale X2 without a review).
    assert body["workflows"] == [
        {
            "id": seeded["W1"],
            "name": "New Lead Follow-up",
            "type": "lead_nurturing",
            "runs_total": 1,
            "runs_successful": 0,
            "runs_failed": 0,
            "success_rate": 0.0,
            "conversion_rate": 1.0,
            "average_response_time_hours": 12.0,
            "estimated_revenue_impact": 0.0,  # Ca's sale is on 03-05
        },
        {
            "id": seeded["W3"],
            "name": "Post-Sale Review",
            "type": "review_referral",
            "runs_total": 1,
            "runs_successful": 0,
            "runs_failed": 1,
            "success_rate": 0.0,
            "review_completion_rate": 0.0,
            "average_rating": None,
            "referral_usage_rate": 0.0,  # B3 issued no code
            "estimated_revenue_impact": 0.0,
        },
    ]


async def test_an_empty_company(client: httpx2.AsyncClient, owner: Account) -> None:
    assert await analytics(client, owner, **PERIOD) == {
        "period": PERIOD,
        "workflows": [],
        "totals": {
            "runs_total": 0,
            "runs_successful": 0,
            "runs_failed": 0,
            "success_rate": 0.0,
            "estimated_revenue_impact": 0.0,
            "estimated_time_saved_hours": 0.0,
        },
    }


async def test_bad_requests(client: httpx2.AsyncClient, owner: Account) -> None:
    unknown_type = await client.get(URL, headers=owner.headers, params={"workflow_type": "newsletter"})
    assert unknown_type.status_code == 422, unknown_type.text
    assert unknown_type.json()["error"] == "validation_error" and "workflow_type" in unknown_type.json()["details"]
    reversed_period = await client.get(
        URL, headers=owner.headers, params={"start_date": "2026-03-07", "end_date": "2026-03-01"}
    )
    assert reversed_period.status_code == 422 and "start_date" in reversed_period.json()["details"]
