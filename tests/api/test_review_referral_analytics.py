"""Review & referral analytics: every figure on a seeded dataset with hand-computed values, and an empty company."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.ids import new_id
from db.models import Customer, Referral, Review, Sale
from db.session import transaction
from tests.conftest import Account, register

URL = "/api/review-referral/analytics"
PERIOD = {"start_date": "2023-03-01", "end_date": "2023-03-15"}


def at(day: int, hour: int = 0, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2023, month, day, hour, minute, tzinfo=UTC)


REVIEWS = {
    # key: (status, platform, rating, request_sent_at, submitted_at)
    "r1": ("submitted", "google", 5, at(2), at(3)),
    "r2": ("verified", "google", 4, at(2), at(5)),
    "r3": ("submitted", "yelp", 5, at(4), at(15, 23, 59)),  # the last day counts in full
    "r4": ("submitted", "yelp", 4, at(6), at(7)),
    "r5": ("submitted", None, 3, at(8), at(9)),  # no platform: rated, but not in platform_distribution
    "r6": ("requested", "google", None, at(10), None),  # asked, never answered
    "r7": ("submitted", "facebook", 1, at(27, month=2), at(1)),  # asked before the period, answered in it
    "r8": ("submitted", "google", 3, at(14), at(16)),  # asked in the period, answered just after it
    "r9": ("verified", "google", 5, at(20, month=2), at(28, 23, 59, month=2)),  # wholly before the period
    "r10": ("submitted", "yelp", None, at(11), at(12)),  # completed without a rating
}

REFERRALS = {
    # key: (status, times_used, sent_at)
    "f1": ("used", 2, at(2)),
    "f2": ("sent", 0, at(3)),
    "f3": ("used", 1, at(5)),
    "f4": ("sent", 0, at(15, 23, 59)),
    "f5": ("exhausted", 3, at(28, 23, 59, month=2)),  # sent just before the period
    "f6": ("used", 1, at(16)),  # sent just after it
    "f7": ("created", 0, None),  # never sent
    "f8": ("sent", 0, at(9)),
    "f9": ("expired", 0, at(10)),
}

SALES = [
    # (status, referral, amount, created_at)
    ("completed", "f1", "120.50", at(4)),
    ("completed", "f3", "80.25", at(6)),
    ("completed", None, "500.00", at(6)),  # not referred
    ("refunded", "f1", "60.00", at(7)),
    ("completed", "f5", "40.00", at(15, 23)),  # referred by an offer sent before the period: still counts
    ("completed", "f1", "1000.00", at(16)),  # just after the period
    ("pending", "f3", "30.00", at(8)),
]


async def seed(db: async_sessionmaker[AsyncSession], company_id: str, other_company_id: str) -> None:
    """The dataset above for the company, and one in-period review, referral and referred sale for another."""
    async with transaction(db) as session:
        customer = Customer(id=new_id("cust"), company_id=company_id, name="Pat", email="pat@example.com")
        stranger = Customer(id=new_id("cust"), company_id=other_company_id, name="Sam", email="sam@example.com")
        session.add_all([customer, stranger])
        await session.flush()
        referral_ids = {key: new_id("ref") for key in REFERRALS}
        for key, (status, times_used, sent_at) in REFERRALS.items():
            session.add(
                Referral(
                    id=referral_ids[key],
                    company_id=company_id,
                    customer_id=customer.id,
                    code=f"PAT-{key.upper()}",
                    offer="$20 off",
                    status=status,
                    times_used=times_used,
                    sent_at=sent_at,
                )
            )
        stranger_referral = Referral(
            id=new_id("ref"),
            company_id=other_company_id,
            customer_id=stranger.id,
            code="PAT-F1",  # the same code is fine in another company
            offer="$20 off",
            status="used",
            times_used=1,
            sent_at=at(2),
        )
        session.add(stranger_referral)
        await session.flush()
        for status, referral, amount, created_at in SALES:
            session.add(
                Sale(
                    id=new_id("sale"),
                    company_id=company_id,
                    customer_id=customer.id,
                    amount=Decimal(amount),
                    status=status,
                    referral_id=referral_ids[referral] if referral else None,
                    created_at=created_at,
                    updated_at=created_at,
                )
            )
        session.add(
            Sale(
                id=new_id("sale"),
                company_id=other_company_id,
                customer_id=stranger.id,
                amount=Decimal("999.00"),
                status="completed",
                referral_id=stranger_referral.id,
                created_at=at(5),
            )
        )
        for status, platform, rating, request_sent_at, submitted_at in REVIEWS.values():
            session.add(
                Review(
                    id=new_id("rev"),
                    company_id=company_id,
                    customer_id=customer.id,
                    platform=platform,
                    rating=rating,
                    status=status,
                    request_sent_at=request_sent_at,
                    submitted_at=submitted_at,
                )
            )
        session.add(
            Review(
                id=new_id("rev"),
                company_id=other_company_id,
                customer_id=stranger.id,
                platform="google",
                rating=1,
                status="submitted",
                request_sent_at=at(2),
                submitted_at=at(3),
            )
        )


@pytest.fixture
async def seeded(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> tuple[Account, Account]:
    other = await register(client, company="Globex")
    await seed(db, owner.company_id, other.company_id)
    return owner, other


async def test_analytics_on_the_seeded_period(client: httpx2.AsyncClient, seeded: tuple[Account, Account]) -> None:
    owner, _ = seeded
    response = await client.get(URL, headers=owner.headers, params=PERIOD)
    assert response.status_code == 200, response.text
    assert response.json() == {
        # sent: r1, r2, r3, r4, r5, r6, r8, r10; completed: r1, r2, r3, r4, r5, r7, r10
        "review_requests": {"sent": 8, "completed": 7},
        "average_rating": 3.67,  # (5 + 4 + 5 + 4 + 3 + 1) / 6 = 22 / 6; r10 has no rating
        "rating_distribution": {"1": 1, "2": 0, "3": 1, "4": 2, "5": 2},  # r7; -; r5; r2, r4; r1, r3
        "platform_distribution": {"yelp": 3, "google": 2, "facebook": 1},  # r3, r4, r10; r1, r2; r7
        # sent: f1, f2, f3, f4, f8, f9; used: f1, f3
        "referral_offers": {"sent": 6, "used": 2},
        "referral_conversion_rate": 0.3333,  # 2 / 6
        "estimated_revenue": 240.75,  # 120.50 + 80.25 + 40.00
    }


async def test_period_bounds_are_inclusive_days(client: httpx2.AsyncClient, seeded: tuple[Account, Account]) -> None:
    owner, _ = seeded
    last_day = {"start_date": "2023-03-15", "end_date": "2023-03-15"}
    response = await client.get(URL, headers=owner.headers, params=last_day)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "review_requests": {"sent": 0, "completed": 1},  # r3 submitted at 23:59
        "average_rating": 5.0,
        "rating_distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1},
        "platform_distribution": {"yelp": 1},
        "referral_offers": {"sent": 1, "used": 0},  # f4 sent at 23:59
        "referral_conversion_rate": 0.0,
        "estimated_revenue": 40.0,  # the sale at 23:00
    }


async def test_each_company_sees_only_its_own(client: httpx2.AsyncClient, seeded: tuple[Account, Account]) -> None:
    _, other = seeded
    response = await client.get(URL, headers=other.headers, params=PERIOD)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "review_requests": {"sent": 1, "completed": 1},
        "average_rating": 1.0,
        "rating_distribution": {"1": 1, "2": 0, "3": 0, "4": 0, "5": 0},
        "platform_distribution": {"google": 1},
        "referral_offers": {"sent": 1, "used": 1},
        "referral_conversion_rate": 1.0,
        "estimated_revenue": 999.0,
    }


async def test_empty_company_gets_zeros(client: httpx2.AsyncClient, owner: Account) -> None:
    response = await client.get(URL, headers=owner.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "review_requests": {"sent": 0, "completed": 0},
        "average_rating": None,
        "rating_distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0},
        "platform_distribution": {},
        "referral_offers": {"sent": 0, "used": 0},
        "referral_conversion_rate": 0.0,
        "estimated_revenue": 0.0,
    }


async def test_bad_requests(client: httpx2.AsyncClient, owner: Account) -> None:
    reversed_period = {"start_date": "2023-03-15", "end_date": "2023-03-01"}
    response = await client.get(URL, headers=owner.headers, params=reversed_period)
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "start_date"
    malformed = await client.get(URL, headers=owner.headers, params={"end_date": "15/03/2023"})
    assert malformed.status_code == 422 and "detail" in malformed.json()
    unauthenticated = await client.get(URL, params=PERIOD)
    assert unauthenticated.status_code == 401 and "detail" in unauthenticated.json()
