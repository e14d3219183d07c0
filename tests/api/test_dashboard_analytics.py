"""The dashboard: every figure on a seeded week with values worked out by hand, a single day, an empty company.

The period is 2026-03-01..2026-03-07 (7 days); the previous period is 2026-02-22..2026-02-28.

Seeded for the signed-in company (another company gets a lead, a customer and a referred sale in the period):

    leads   created        status     converted_at   lead-nurturing run
    L1      03-01 10:00    converted  03-03 12:00    A (03-01, completed)
    L2      03-01 15:00    contacted                 B (03-01, failed)
    L3      03-03 09:00    converted  03-05 08:00    -
    L4      03-05 11:00    new
    L5      03-07 23:30    converted  03-08 01:00    -             (converted after the period)
    L6      02-25 10:00    converted  03-02 09:00    C (02-25, completed)   (previous period)
    L7      02-27 10:00    new                                     (previous period)
    L8      02-20 10:00    new                                     (before both)

    customers  C1 <- L1 (03-03), C2 <- L3 (03-05), C3 (03-02), C4 <- L6 (03-02), C5 (02-23, previous)

    sales   customer  amount   status     recorded      referral
    S1      C1        100.00   completed  03-03 13:00   -     (followed-up lead L1)
    S2      C2        250.50   completed  03-05 10:00   R1    (L3 had no run; the referral counts)
    S3      C3         80.10   completed  03-05 18:00   -
    S4      C4         40.00   completed  03-07 23:59   R2    (followed-up lead L6 AND a referral: once)
    S5      C3        999.00   refunded   03-04         -
    S6      C3         60.00   pending    03-06         -
    S7      C5        300.00   completed  02-24         -     (previous period)
    S8      C1        500.00   completed  03-08 00:00   -     (after the period)

    referrals (created, times_used): R1 (03-02, 1), R2 (03-04, 1), R3 (03-06, 0), R4 (02-25, 0)
    reviews (status, rating, request sent, left): V1 for S1 (submitted, 5, 03-01, 03-02),
        V2 (verified, 4, 03-02, 03-04), V3 (requested, -, 03-06, -), V4 (submitted, 2, 02-27, 03-01)
    content: K1 blog 03-02, K2 social 03-06, K3 blog 02-20; metrics (views, clicks, shares, comments, conv.):
        K3 on 03-03 (100, 10, 5, 5, 0), K1 on 03-05 (100, 4, 0, 1, 2), K3 on 02-27 (1000, 1000, 0, 0, 0)
    runs: A, B, C above; D review_referral for S1 (03-03, running); E content_generation for K1 without a
        config (03-02, completed)
    messages: M1 run A sent 03-01, M2 run A recorded 03-02, M3 run B failed 03-01, M4 run C sent 02-25,
        M5 run D sent 03-04, M6 no run sent 03-03
    company settings.roi: hourly_rate 40, minutes_per_message 10 (minutes_per_content: the default 60)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.ids import new_id
from db.models import (
    Company,
    Content,
    ContentMetric,
    Customer,
    Lead,
    MessageDelivery,
    Referral,
    Review,
    Sale,
    WorkflowConfig,
    WorkflowRun,
)
from db.session import transaction
from schemas.analytics import Period
from services.periods import days_of, previous_period
from tests.conftest import Account, register

URL = "/v1/analytics/dashboard"
PERIOD = {"start_date": "2026-03-01", "end_date": "2026-03-07"}
WEEK = [f"2026-03-0{day}" for day in range(1, 8)]


def at(day: int, hour: int = 0, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


LEADS = {
    # key: (created_at, status, converted_at)
    "L1": (at(1, 10), "converted", at(3, 12)),
    "L2": (at(1, 15), "contacted", None),
    "L3": (at(3, 9), "converted", at(5, 8)),
    "L4": (at(5, 11), "new", None),
    "L5": (at(7, 23, 30), "converted", at(8, 1)),
    "L6": (at(25, 10, month=2), "converted", at(2, 9)),
    "L7": (at(27, 10, month=2), "new", None),
    "L8": (at(20, 10, month=2), "new", None),
}
CUSTOMERS = {
    "C1": ("L1", at(3, 12)),
    "C2": ("L3", at(5, 9)),
    "C3": (None, at(2)),
    "C4": ("L6", at(2)),
    "C5": (None, at(23, month=2)),
}
REFERRALS = {"R1": ("C3", at(2), 1), "R2": ("C1", at(4), 1), "R3": ("C1", at(6), 0), "R4": ("C3", at(25, month=2), 0)}
SALES = {
    # key: (customer, amount, status, created_at, referral)
    "S1": ("C1", "100.00", "completed", at(3, 13), None),
    "S2": ("C2", "250.50", "completed", at(5, 10), "R1"),
    "S3": ("C3", "80.10", "completed", at(5, 18), None),
    "S4": ("C4", "40.00", "completed", at(7, 23, 59), "R2"),
    "S5": ("C3", "999.00", "refunded", at(4), None),
    "S6": ("C3", "60.00", "pending", at(6), None),
    "S7": ("C5", "300.00", "completed", at(24, month=2), None),
    "S8": ("C1", "500.00", "completed", at(8), None),
}
REVIEWS = [
    # (sale, status, rating, request_sent_at, submitted_at)
    ("S1", "submitted", 5, at(1), at(2)),
    (None, "verified", 4, at(2), at(4)),
    (None, "requested", None, at(6), None),
    (None, "submitted", 2, at(27, month=2), at(1)),
]
CONTENT = {"K1": ("blog", at(2)), "K2": ("social", at(6)), "K3": ("blog", at(20, month=2))}
METRICS = [
    ("K3", "2026-03-03", 100, 10, 5, 5, 0),
    ("K1", "2026-03-05", 100, 4, 0, 1, 2),
    ("K3", "2026-02-27", 1000, 1000, 0, 0, 0),
]
RUNS = {
    # key: (workflow_type, config, trigger, started_at, status)
    "A": ("lead_nurturing", "W1", "L1", at(1, 10), "completed"),
    "B": ("lead_nurturing", "W1", "L2", at(1, 15), "failed"),
    "C": ("lead_nurturing", "W1", "L6", at(25, 10, month=2), "completed"),
    "D": ("review_referral", "W2", "S1", at(3, 14), "running"),
    "E": ("content_generation", None, "K1", at(2), "completed"),
}
MESSAGES = [
    # (run, status, created_at, sent_at)
    ("A", "sent", at(1, 10, 5), at(1, 10, 5)),
    ("A", "recorded", at(2, 10), None),
    ("B", "failed", at(1, 15), None),
    ("C", "sent", at(25, 11, month=2), at(25, 11, month=2)),
    ("D", "sent", at(4), at(4)),
    (None, "sent", at(3), at(3)),
]


async def seed(db: async_sessionmaker[AsyncSession], company_id: str) -> None:
    ids: dict[str, str] = {}
    async with transaction(db) as session:
        company = await session.get(Company, company_id)
        assert company is not None
        company.settings = {**company.settings, "roi": {"hourly_rate": 40, "minutes_per_message": 10}}
        for key, (created_at, status, converted_at) in LEADS.items():
            ids[key] = new_id("lead")
            session.add(
                Lead(
                    id=ids[key],
                    company_id=company_id,
                    name=key,
                    status=status,
                    converted_at=converted_at,
                    created_at=created_at,
                    updated_at=created_at,
                )
            )
        await session.flush()
        for key, (lead, created_at) in CUSTOMERS.items():
            ids[key] = new_id("cust")
            lead_id = ids[lead] if lead else None
            session.add(Customer(id=ids[key], company_id=company_id, name=key, lead_id=lead_id, created_at=created_at))
        await session.flush()
        for key, (customer, created_at, times_used) in REFERRALS.items():
            ids[key] = new_id("ref")
            session.add(
                Referral(
                    id=ids[key],
                    company_id=company_id,
                    customer_id=ids[customer],
                    code=key,
                    offer="$20 off",
                    times_used=times_used,
                    created_at=created_at,
                )
            )
        await session.flush()
        for key, (customer, amount, status, created_at, referral) in SALES.items():
            ids[key] = new_id("sale")
            session.add(
                Sale(
                    id=ids[key],
                    company_id=company_id,
                    customer_id=ids[customer],
                    amount=Decimal(amount),
                    status=status,
                    referral_id=ids[referral] if referral else None,
                    created_at=created_at,
                )
            )
        await session.flush()
        for sale, status, rating, requested, submitted in REVIEWS:
            session.add(
                Review(
                    id=new_id("rev"),
                    company_id=company_id,
                    customer_id=ids["C3"],
                    sale_id=ids[sale] if sale else None,
                    status=status,
                    rating=rating,
                    request_sent_at=requested,
                    submitted_at=submitted,
                )
            )
        for key, (kind, created_at) in CONTENT.items():
            ids[key] = new_id("cont")
            session.add(Content(id=ids[key], company_id=company_id, type=kind, title=key, created_at=created_at))
        await session.flush()
        for content, day, views, clicks, shares, comments, conversions in METRICS:
            session.add(
                ContentMetric(
                    content_id=ids[content],
                    recorded_on=day,
                    views=views,
                    clicks=clicks,
                    shares=shares,
                    comments=comments,
                    conversions=conversions,
                )
            )
        for key, kind in (("W1", "lead_nurturing"), ("W2", "review_referral")):
            ids[key] = new_id("wf")
            session.add(WorkflowConfig(id=ids[key], company_id=company_id, name=key, workflow_type=kind))
        await session.flush()
        for key, (kind, config, trigger, started_at, status) in RUNS.items():
            ids[key] = new_id("run")
            session.add(
                WorkflowRun(
                    id=ids[key],
                    company_id=company_id,
                    workflow_config_id=ids[config] if config else None,
                    workflow_type=kind,
                    temporal_workflow_id=f"test/{key}",
                    status=status,
                    trigger_type="test",
                    trigger_id=ids[trigger],
                    started_at=started_at,
                )
            )
        await session.flush()
        for number, (run, status, created_at, sent_at) in enumerate(MESSAGES):
            session.add(
                MessageDelivery(
                    id=new_id("msg"),
                    company_id=company_id,
                    idempotency_key=f"test/{company_id}/{number}",
                    channel="email",
                    recipient="someone@example.com",
                    body="Hello",
                    status=status,
                    provider="recorded",
                    workflow_run_id=ids[run] if run else None,
                    created_at=created_at,
                    sent_at=sent_at,
                )
            )


async def seed_stranger(db: async_sessionmaker[AsyncSession], company_id: str) -> None:
    """Another company's lead, customer and referred, completed sale in the period: never in the figures above."""
    async with transaction(db) as session:
        lead = Lead(id=new_id("lead"), company_id=company_id, name="X", status="converted", created_at=at(2))
        customer = Customer(id=new_id("cust"), company_id=company_id, name="X", lead_id=lead.id, created_at=at(2))
        session.add(lead)
        await session.flush()
        session.add(customer)
        await session.flush()
        referral = Referral(
            id=new_id("ref"), company_id=company_id, customer_id=customer.id, code="R1", offer="x", created_at=at(2)
        )
        session.add(referral)
        await session.flush()
        session.add(
            Sale(
                id=new_id("sale"),
                company_id=company_id,
                customer_id=customer.id,
                amount=Decimal("1000.00"),
                referral_id=referral.id,
                created_at=at(3),
            )
        )


@pytest.fixture
async def seeded(client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]) -> Account:
    other = await register(client, company="Globex")
    await seed(db, owner.company_id)
    await seed_stranger(db, other.company_id)
    return owner


def chart(labels: list[str], **datasets: list[Any]) -> dict[str, Any]:
    return {"labels": labels, "datasets": [{"label": label, "data": data} for label, data in datasets.items()]}


async def dashboard(client: httpx2.AsyncClient, owner: Account, **params: str) -> dict[str, Any]:
    response = await client.get(URL, headers=owner.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_seeded_week(client: httpx2.AsyncClient, seeded: Account) -> None:
    body = await dashboard(client, seeded, **PERIOD)
    assert body["period"] == PERIOD
    assert body["summary"] == {
        "new_leads": 5,  # L1..L5
        "lead_conversion_rate": 0.6,  # L1, L3, L5 converted: 3 / 5
        "new_customers": 4,  # C1..C4
        "total_sales": 470.6,  # S1 + S2 + S3 + S4 = 100 + 250.50 + 80.10 + 40
        "average_sale": 117.65,  # 470.60 / 4
        "reviews_requested": 3,  # V1, V2, V3
        "reviews_completed": 3,  # V1, V2, V4
        "average_rating": 3.67,  # (5 + 4 + 2) / 3
        "referrals_created": 3,  # R1, R2, R3
        "referrals_used": 2,  # R1, R2
        "content_created": 2,  # K1, K2
        "content_engagement_rate": 0.125,  # (10 + 5 + 5 + 4 + 0 + 1) / (100 + 100)
    }
    assert body["comparison"] == {
        # previous: L6, L7; L6 converted; C5; S7
        "new_leads": {"value": 5, "previous": 2, "change": 1.5, "change_type": "positive"},
        "lead_conversion_rate": {"value": 0.6, "previous": 0.5, "change": 0.2, "change_type": "positive"},
        "new_customers": {"value": 4, "previous": 1, "change": 3.0, "change_type": "positive"},
        "total_sales": {"value": 470.6, "previous": 300.0, "change": 0.5687, "change_type": "positive"},  # 170.6/300
    }
    charts = body["charts"]
    assert charts["leads_over_time"] == chart(
        WEEK,
        **{
            "New Leads": [2, 0, 1, 0, 1, 0, 1],  # L1 L2 | - | L3 | - | L4 | - | L5
            "Converted Leads": [0, 1, 1, 0, 1, 0, 0],  # L6 on 03-02, L1 on 03-03, L3 on 03-05 (L5: 03-08)
        },
    )
    assert charts["sales_over_time"] == chart(WEEK, **{"Sales Amount": [0, 0, 100.0, 0, 330.6, 0, 40.0]})
    assert charts["workflow_performance"] == chart(
        ["Lead Nurturing", "Review & Referral", "Content Generation"],
        **{
            # A completed, B failed: 1 / 2; D still running: nothing finished; E completed
            "Success Rate": [0.5, 0.0, 1.0],
            # L1 of (L1, L2) converted; S1 got review V1; K1: 2 conversions / 100 views
            "Conversion Rate": [0.5, 1.0, 0.02],
        },
    )
    assert body["roi"] == {
        "estimated_revenue_impact": 390.5,  # S1 (L1 followed up) + S2 (R1) + S4 (L6 and R2, once)
        "estimated_time_saved_hours": 2.5,  # (3 messages (M1, M2, M5) x 10 + 2 content x 60) / 60
        "estimated_time_value": 100.0,  # 2.5 x 40
        "total_value": 490.5,
        "automated_messages": 3,
        "assumptions": {"hourly_rate": 40.0, "minutes_per_message": 10.0, "minutes_per_content": 60.0},
    }


async def test_a_single_day(client: httpx2.AsyncClient, seeded: Account) -> None:
    body = await dashboard(client, seeded, start_date="2026-03-05", end_date="2026-03-05")
    assert body["summary"] == {
        "new_leads": 1,  # L4
        "lead_conversion_rate": 0.0,
        "new_customers": 1,  # C2
        "total_sales": 330.6,  # S2 + S3
        "average_sale": 165.3,
        "reviews_requested": 0,
        "reviews_completed": 0,
        "average_rating": None,
        "referrals_created": 0,
        "referrals_used": 0,
        "content_created": 0,
        "content_engagement_rate": 0.05,  # K1 on 03-05: (4 + 0 + 1) / 100
    }
    # The previous period is 03-04 alone: nothing but the refunded S5. A change from 0 is null.
    assert body["comparison"] == {
        "new_leads": {"value": 1, "previous": 0, "change": None, "change_type": "positive"},
        "lead_conversion_rate": {"value": 0.0, "previous": 0.0, "change": None, "change_type": "neutral"},
        "new_customers": {"value": 1, "previous": 0, "change": None, "change_type": "positive"},
        "total_sales": {"value": 330.6, "previous": 0.0, "change": None, "change_type": "positive"},
    }
    assert body["charts"] == {
        "leads_over_time": chart(["2026-03-05"], **{"New Leads": [1], "Converted Leads": [1]}),  # L4; L3
        "sales_over_time": chart(["2026-03-05"], **{"Sales Amount": [330.6]}),
        "workflow_performance": chart([], **{"Success Rate": [], "Conversion Rate": []}),
    }
    assert body["roi"] == {
        "estimated_revenue_impact": 250.5,  # S2 (R1)
        "estimated_time_saved_hours": 0.0,
        "estimated_time_value": 0.0,
        "total_value": 250.5,
        "automated_messages": 0,
        "assumptions": {"hourly_rate": 40.0, "minutes_per_message": 10.0, "minutes_per_content": 60.0},
    }


async def test_without_comparison(client: httpx2.AsyncClient, seeded: Account) -> None:
    body = await dashboard(client, seeded, **PERIOD, compare_to_previous="false")
    assert body["comparison"] is None
    assert body["summary"]["new_leads"] == 5


async def test_an_empty_company(client: httpx2.AsyncClient, owner: Account) -> None:
    body = await dashboard(client, owner, **PERIOD)
    assert body == {
        "period": PERIOD,
        "summary": {
            "new_leads": 0,
            "lead_conversion_rate": 0.0,
            "new_customers": 0,
            "total_sales": 0.0,
            "average_sale": None,
            "reviews_requested": 0,
            "reviews_completed": 0,
            "average_rating": None,
            "referrals_created": 0,
            "referrals_used": 0,
            "content_created": 0,
            "content_engagement_rate": 0.0,
        },
        "comparison": {
            name: {"value": 0, "previous": 0, "change": None, "change_type": "neutral"}
            for name in ("new_leads", "lead_conversion_rate", "new_customers", "total_sales")
        },
        "charts": {
            "leads_over_time": chart(WEEK, **{"New Leads": [0] * 7, "Converted Leads": [0] * 7}),
            "sales_over_time": chart(WEEK, **{"Sales Amount": [0] * 7}),
            "workflow_performance": chart([], **{"Success Rate": [], "Conversion Rate": []}),
        },
        "roi": {
            "estimated_revenue_impact": 0.0,
            "estimated_time_saved_hours": 0.0,
            "estimated_time_value": 0.0,
            "total_value": 0.0,
            "automated_messages": 0,
            # the BAS_ROI_* defaults
            "assumptions": {"hourly_rate": 50.0, "minutes_per_message": 5.0, "minutes_per_content": 60.0},
        },
    }
    # Without dates: the 30 days ending today (UTC), every one of them labelled.
    default = await dashboard(client, owner)
    today = datetime.now(UTC).date()
    labels = [(today - timedelta(days=29 - offset)).isoformat() for offset in range(30)]
    assert default["period"] == {"start_date": labels[0], "end_date": labels[-1]}
    assert default["charts"]["leads_over_time"]["labels"] == labels


async def test_company_roi_settings_change_the_assumptions(client: httpx2.AsyncClient, owner: Account) -> None:
    patch = await client.patch(
        "/v1/companies/current", headers=owner.headers, json={"settings": {"roi": {"minutes_per_content": 90}}}
    )
    assert patch.status_code == 200, patch.text
    body = await dashboard(client, owner, **PERIOD)
    assert body["roi"]["assumptions"] == {"hourly_rate": 50.0, "minutes_per_message": 5.0, "minutes_per_content": 90.0}


async def test_bad_requests(client: httpx2.AsyncClient, owner: Account) -> None:
    reversed_period = await client.get(
        URL, headers=owner.headers, params={"start_date": "2026-03-07", "end_date": "2026-03-01"}
    )
    assert reversed_period.status_code == 422
    assert reversed_period.json()["error"] == "validation_error" and "start_date" in reversed_period.json()["details"]
    malformed = await client.get(URL, headers=owner.headers, params={"start_date": "03/01/2026"})
    assert malformed.status_code == 422 and "start_date" in malformed.json()["details"]
    unauthenticated = await client.get(URL, params=PERIOD)
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"] == "authentication_error"


def test_labels_cover_leap_days() -> None:
    period = Period(start_date=date(2028, 2, 28), end_date=date(2028, 3, 1))
    assert days_of(period) == ["2028-02-28", "2028-02-29", "2028-03-01"]
    assert previous_period(period) == Period(start_date=date(2028, 2, 25), end_date=date(2028, 2, 27))
