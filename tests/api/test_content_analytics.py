"""Content analytics on both surfaces: every figure on a seeded dataset with hand-computed values, and an empty company.

The period is 2023-01-01 to 2023-01-15. Content counts when created in it; metrics when recorded for a day in it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.ids import new_id
from db.models import Content, ContentMetric, Customer, Lead, Publication, Sale
from db.session import transaction
from schemas.ids import to_api_id
from tests.conftest import Account, register

V1 = "/v1/analytics/content"
API = "/api/content-generation/analytics"
PERIOD = {"start_date": "2023-01-01", "end_date": "2023-01-15"}


def at(day: int, hour: int = 0, minute: int = 0, month: int = 1, year: int = 2023) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


CONTENT = {
    # key: (type, created_at)
    "b1": ("blog", at(2)),
    "b2": ("blog", at(15, 23, 59)),  # the last day counts in full
    "s1": ("social", at(5)),
    "s2": ("social", at(6)),
    "e1": ("email", at(10)),
    "p1": ("product", at(8)),  # created in the period, never measured
    "old": ("blog", at(20, month=12, year=2022)),  # created before: not counted, its January metrics are
    "late": ("product", at(16)),  # created after, measured after
}

METRICS = [
    # (content, recorded_on, views, clicks, shares, comments, conversions)
    ("b1", "2023-01-02", 100, 10, 5, 2, 1),
    ("b1", "2023-01-03", 200, 20, 5, 3, 2),
    ("b1", "2022-12-31", 999, 99, 9, 9, 9),  # the day before the period
    ("b2", "2023-01-15", 50, 5, 0, 0, 0),  # the last day
    ("s1", "2023-01-05", 300, 25, 20, 10, 1),
    ("s2", "2023-01-06", 40, 2, 2, 0, 0),
    ("e1", "2023-01-10", 100, 20, 0, 5, 3),
    ("old", "2023-01-01", 400, 10, 3, 1, 0),  # the first day
    ("old", "2022-12-20", 1000, 100, 10, 10, 10),
    ("late", "2023-01-16", 500, 50, 5, 5, 5),  # the day after
]

PUBLICATIONS = [
    # (content, status, created_at, publish_at)
    ("b1", "published", at(2), None),
    ("s1", "published", at(5), None),
    ("s2", "failed", at(6), None),
    ("e1", "unknown", at(10), None),
    ("b2", "scheduled", at(14), at(20)),  # no outcome yet
    ("b2", "published", at(28, month=12, year=2022), at(3)),  # asked for before, due in the period: counts
    ("s1", "failed", at(10), at(16)),  # due after the period
    ("old", "published", at(31, 23, 59, month=12, year=2022), None),  # before the period
    ("e1", "cancelled", at(8), at(9)),
    ("s2", "pending", at(9), None),
]

LEADS: dict[str, dict[str, Any]] = {
    # key: what the lead's custom_fields.content_id names, and in which spelling
    "l1": {"content_id": "b1"},  # the canonical id
    "l2": {"content_id": "e1", "api_spelling": True},  # content-...: the same item
    "l3": {"content_id": "theirs"},  # another company's content
    "l4": {},  # not attributed to content
    "l5": {"content_id": "old"},  # content created before the period still brings sales
}

SALES = [
    # (lead of the customer, status, created_at)
    ("l1", "completed", at(5)),
    ("l1", "refunded", at(6)),
    ("l1", "completed", at(16)),  # after the period
    ("l2", "completed", at(15, 23)),
    ("l2", "pending", at(7)),
    ("l3", "completed", at(5)),
    ("l4", "completed", at(5)),
    (None, "completed", at(5)),  # a customer who was never a lead
    ("l5", "completed", at(10)),
]


async def seed(db: async_sessionmaker[AsyncSession], company_id: str, other_company_id: str) -> dict[str, str]:
    """The dataset above for the company; for the other one, a blog measured and published in the period."""
    ids = {key: new_id("cont") for key in CONTENT} | {"theirs": new_id("cont")}
    async with transaction(db) as session:
        for key, (kind, created_at) in CONTENT.items():
            session.add(
                Content(
                    id=ids[key],
                    company_id=company_id,
                    type=kind,
                    title=f"Title {key}",
                    body="Text",
                    created_at=created_at,
                    updated_at=created_at,
                )
            )
        session.add(
            Content(id=ids["theirs"], company_id=other_company_id, type="blog", title="Theirs", created_at=at(3))
        )
        await session.flush()
        for key, day, views, clicks, shares, comments, conversions in METRICS:
            session.add(
                ContentMetric(
                    content_id=ids[key],
                    recorded_on=day,
                    views=views,
                    clicks=clicks,
                    shares=shares,
                    comments=comments,
                    conversions=conversions,
                )
            )
        session.add(
            ContentMetric(
                content_id=ids["theirs"],
                recorded_on="2023-01-03",
                views=10000,
                clicks=500,
                shares=50,
                comments=5,
                conversions=40,
            )
        )
        for key, status, created_at, publish_at in PUBLICATIONS:
            session.add(
                Publication(
                    id=new_id("pub"),
                    company_id=company_id,
                    content_id=ids[key],
                    platform="recorded",
                    status=status,
                    created_at=created_at,
                    publish_at=publish_at,
                )
            )
        session.add(
            Publication(
                id=new_id("pub"),
                company_id=other_company_id,
                content_id=ids["theirs"],
                platform="recorded",
                status="failed",
                created_at=at(3),
            )
        )
        customers: dict[str | None, str] = {}
        for key, fields in LEADS.items():
            lead_id = new_id("lead")
            custom: dict[str, Any] = {}
            if "content_id" in fields:
                content_id = ids[str(fields["content_id"])]
                custom = {"content_id": to_api_id(content_id) if fields.get("api_spelling") else content_id}
            session.add(
                Lead(id=lead_id, company_id=company_id, name=key, email=f"{key}@example.com", custom_fields=custom)
            )
            await session.flush()
            customers[key] = new_id("cust")
            session.add(
                Customer(
                    id=customers[key], company_id=company_id, lead_id=lead_id, name=key, email=f"{key}@example.com"
                )
            )
        customers[None] = new_id("cust")
        session.add(Customer(id=customers[None], company_id=company_id, name="walk-in", email="walk-in@example.com"))
        await session.flush()
        for lead_key, status, created_at in SALES:
            session.add(
                Sale(
                    id=new_id("sale"),
                    company_id=company_id,
                    customer_id=customers[lead_key],
                    amount=Decimal("100.00"),
                    status=status,
                    created_at=created_at,
                    updated_at=created_at,
                )
            )
    return ids


@pytest.fixture
async def seeded(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> tuple[Account, Account, dict[str, str]]:
    other = await register(client, company="Globex")
    ids = await seed(db, owner.company_id, other.company_id)
    return owner, other, ids


def top(
    ids: dict[str, str], key: str, figures: tuple[int, int, int, int], rates: tuple[float, float]
) -> dict[str, Any]:
    kind = CONTENT[key][0]
    views, clicks, shares, conversions = figures
    return {
        "id": ids[key],
        "title": f"Title {key}",
        "type": kind,
        "views": views,
        "clicks": clicks,
        "shares": shares,
        "conversions": conversions,
        "engagement_rate": rates[0],
        "conversion_rate": rates[1],
    }


async def test_v1_on_the_seeded_period(
    client: httpx2.AsyncClient, seeded: tuple[Account, Account, dict[str, str]]
) -> None:
    owner, _, ids = seeded
    response = await client.get(V1, headers=owner.headers, params=PERIOD)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "period": {"start_date": "2023-01-01", "end_date": "2023-01-15"},
        "summary": {
            "total_content": 6,  # b1, b2, s1, s2, e1, p1
            "total_views": 1190,  # blog 750 + social 340 + email 100
            "total_clicks": 92,  # 45 + 27 + 20
            "total_shares": 35,  # 13 + 22 + 0
            "total_conversions": 7,  # 3 + 1 + 3
            "average_engagement_rate": 0.1244,  # (92 + 35 + 21 comments) / 1190 = 148 / 1190
            "average_conversion_rate": 0.0059,  # 7 / 1190
        },
        "by_type": [
            {
                "type": "blog",
                "count": 2,  # b1, b2 (old was created before the period)
                "views": 750,  # b1 100 + 200, b2 50, old 400
                "clicks": 45,  # 10 + 20 + 5 + 10
                "shares": 13,  # 5 + 5 + 0 + 3
                "conversions": 3,  # 1 + 2 + 0 + 0
                "engagement_rate": 0.0853,  # (45 + 13 + 6 comments) / 750 = 64 / 750
                "conversion_rate": 0.004,  # 3 / 750
            },
            {
                "type": "social",
                "count": 2,
                "views": 340,  # 300 + 40
                "clicks": 27,  # 25 + 2
                "shares": 22,  # 20 + 2
                "conversions": 1,
                "engagement_rate": 0.1735,  # (27 + 22 + 10) / 340 = 59 / 340
                "conversion_rate": 0.0029,  # 1 / 340
            },
            {
                "type": "email",
                "count": 1,
                "views": 100,
                "clicks": 20,
                "shares": 0,
                "conversions": 3,
                "engagement_rate": 0.25,  # (20 + 0 + 5) / 100
                "conversion_rate": 0.03,
            },
            {  # p1: created in the period, never measured (late: created and measured after it)
                "type": "product",
                "count": 1,
                "views": 0,
                "clicks": 0,
                "shares": 0,
                "conversions": 0,
                "engagement_rate": 0.0,
                "conversion_rate": 0.0,
            },
        ],
        "top_performing": [
            top(ids, "old", (400, 10, 3, 0), (0.035, 0.0)),  # (10 + 3 + 1) / 400
            top(ids, "b1", (300, 30, 10, 3), (0.15, 0.01)),  # (30 + 10 + 5) / 300; 3 / 300
            top(ids, "s1", (300, 25, 20, 1), (0.1833, 0.0033)),  # as many views as b1, fewer clicks; 55 / 300
            top(ids, "e1", (100, 20, 0, 3), (0.25, 0.03)),
            top(ids, "b2", (50, 5, 0, 0), (0.1, 0.0)),  # 5 / 50
            top(ids, "s2", (40, 2, 2, 0), (0.1, 0.0)),  # 4 / 40
        ],
    }


@pytest.mark.parametrize("word", ["blog", "blog_post"])
async def test_v1_of_one_type_in_either_surfaces_word(
    client: httpx2.AsyncClient, seeded: tuple[Account, Account, dict[str, str]], word: str
) -> None:
    owner, _, ids = seeded
    response = await client.get(V1, headers=owner.headers, params=PERIOD | {"type": word})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"] == {
        "total_content": 2,
        "total_views": 750,
        "total_clicks": 45,
        "total_shares": 13,
        "total_conversions": 3,
        "average_engagement_rate": 0.0853,
        "average_conversion_rate": 0.004,
    }
    assert [row["type"] for row in body["by_type"]] == ["blog"]
    assert [item["id"] for item in body["top_performing"]] == [ids["old"], ids["b1"], ids["b2"]]


async def test_v1_on_a_single_day(client: httpx2.AsyncClient, seeded: tuple[Account, Account, dict[str, str]]) -> None:
    owner, _, ids = seeded
    response = await client.get(
        V1, headers=owner.headers, params={"start_date": "2023-01-15", "end_date": "2023-01-15"}
    )
    assert response.status_code == 200, response.text
    blog = {"views": 50, "clicks": 5, "shares": 0, "conversions": 0, "engagement_rate": 0.1, "conversion_rate": 0.0}
    assert response.json() == {
        "period": {"start_date": "2023-01-15", "end_date": "2023-01-15"},
        "summary": {
            "total_content": 1,  # b2, created at 23:59
            "total_views": 50,
            "total_clicks": 5,
            "total_shares": 0,
            "total_conversions": 0,
            "average_engagement_rate": 0.1,
            "average_conversion_rate": 0.0,
        },
        "by_type": [{"type": "blog", "count": 1, **blog}],
        "top_performing": [{"id": ids["b2"], "title": "Title b2", "type": "blog", **blog}],
    }


async def test_api_on_the_seeded_period(
    client: httpx2.AsyncClient, seeded: tuple[Account, Account, dict[str, str]]
) -> None:
    owner, _, ids = seeded
    response = await client.get(API, headers=owner.headers, params=PERIOD)
    assert response.status_code == 200, response.text

    def item(key: str, views: int, clicks: int) -> dict[str, Any]:
        words = {"blog": "blog_post", "social": "social_media", "email": "email_newsletter"}
        kind = words[CONTENT[key][0]]
        return {"id": to_api_id(ids[key]), "title": f"Title {key}", "type": kind, "views": views, "clicks": clicks}

    assert response.json() == {
        "content_created": {"blog_post": 2, "social_media": 2, "email_newsletter": 1, "product_description": 1},
        # published b1, s1, b2 (due Jan 3); failed s2; unknown e1: 3 / 5
        "publishing_success_rate": 0.6,
        "engagement_metrics": {"views": 1190, "clicks": 92, "shares": 35},
        "conversion_metrics": {
            "leads": 7,  # the conversions reported for days in the period
            "sales": 3,  # l1's on Jan 5, l2's on Jan 15 (content-... spelling), l5's on Jan 10
        },
        "top_performing_content": [
            item("old", 400, 10),
            item("b1", 300, 30),
            item("s1", 300, 25),
            item("e1", 100, 20),
            item("b2", 50, 5),
            item("s2", 40, 2),
        ],
    }


async def test_api_on_a_single_day(client: httpx2.AsyncClient, seeded: tuple[Account, Account, dict[str, str]]) -> None:
    owner, _, ids = seeded
    response = await client.get(
        API, headers=owner.headers, params={"start_date": "2023-01-15", "end_date": "2023-01-15"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "content_created": {"blog_post": 1, "social_media": 0, "email_newsletter": 0, "product_description": 0},
        "publishing_success_rate": 0.0,  # nothing was due that day
        "engagement_metrics": {"views": 50, "clicks": 5, "shares": 0},
        "conversion_metrics": {"leads": 0, "sales": 1},  # l2's sale at 23:00
        "top_performing_content": [
            {"id": to_api_id(ids["b2"]), "title": "Title b2", "type": "blog_post", "views": 50, "clicks": 5}
        ],
    }


async def test_each_company_sees_only_its_own(
    client: httpx2.AsyncClient, seeded: tuple[Account, Account, dict[str, str]]
) -> None:
    _, other, ids = seeded
    v1 = await client.get(V1, headers=other.headers, params=PERIOD)
    assert v1.status_code == 200, v1.text
    theirs = {
        "views": 10000,
        "clicks": 500,
        "shares": 50,
        "conversions": 40,
        "engagement_rate": 0.0555,  # (500 + 50 + 5) / 10000
        "conversion_rate": 0.004,  # 40 / 10000
    }
    assert v1.json()["summary"] == {
        "total_content": 1,
        "total_views": 10000,
        "total_clicks": 500,
        "total_shares": 50,
        "total_conversions": 40,
        "average_engagement_rate": 0.0555,
        "average_conversion_rate": 0.004,
    }
    assert v1.json()["by_type"] == [{"type": "blog", "count": 1, **theirs}]
    assert v1.json()["top_performing"] == [{"id": ids["theirs"], "title": "Theirs", "type": "blog", **theirs}]

    api = await client.get(API, headers=other.headers, params=PERIOD)
    assert api.status_code == 200, api.text
    assert api.json() == {
        "content_created": {"blog_post": 1, "social_media": 0, "email_newsletter": 0, "product_description": 0},
        "publishing_success_rate": 0.0,  # 0 published of 1 failed
        "engagement_metrics": {"views": 10000, "clicks": 500, "shares": 50},
        # l3's sale names their content, but it is our company's sale: theirs count none of it
        "conversion_metrics": {"leads": 40, "sales": 0},
        "top_performing_content": [
            {"id": to_api_id(ids["theirs"]), "title": "Theirs", "type": "blog_post", "views": 10000, "clicks": 500}
        ],
    }


async def test_top_performing_keeps_ten_by_views_then_clicks_then_id(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    # views 1..12 with 0 clicks, and two more at 12 views: one with 3 clicks, a pair with 1 click apart by id.
    items = [(f"cont_n{n:02d}", n, 0) for n in range(1, 13)] + [("cont_z", 12, 3), ("cont_a", 12, 1), ("cont_b", 12, 1)]
    async with transaction(db) as session:
        for content_id, _, _ in items:
            session.add(Content(id=content_id, company_id=owner.company_id, type="social", title=content_id))
        await session.flush()
        for content_id, views, clicks in items:
            session.add(ContentMetric(content_id=content_id, recorded_on="2023-01-05", views=views, clicks=clicks))
    expected = ["cont_z", "cont_a", "cont_b", "cont_n12", "cont_n11", "cont_n10", "cont_n09", "cont_n08"]
    expected += ["cont_n07", "cont_n06"]
    v1 = await client.get(V1, headers=owner.headers, params=PERIOD)
    assert v1.status_code == 200, v1.text
    assert [entry["id"] for entry in v1.json()["top_performing"]] == expected
    api = await client.get(API, headers=owner.headers, params=PERIOD)
    assert api.status_code == 200, api.text
    assert [entry["id"] for entry in api.json()["top_performing_content"]] == [to_api_id(i) for i in expected]
    # Created now, not in January: the content counts in no January total, its January views do.
    assert v1.json()["summary"]["total_content"] == 0 and v1.json()["summary"]["total_views"] == 78 + 36  # 1..12, 3x12


async def test_an_empty_company_gets_zeros(client: httpx2.AsyncClient, owner: Account) -> None:
    v1 = await client.get(V1, headers=owner.headers)
    assert v1.status_code == 200, v1.text
    body = v1.json()
    assert body["summary"] == {
        "total_content": 0,
        "total_views": 0,
        "total_clicks": 0,
        "total_shares": 0,
        "total_conversions": 0,
        "average_engagement_rate": 0.0,
        "average_conversion_rate": 0.0,
    }
    assert body["by_type"] == [] and body["top_performing"] == []
    start, end = body["period"]["start_date"], body["period"]["end_date"]
    assert (datetime.fromisoformat(end) - datetime.fromisoformat(start)).days == 29  # the default: 30 days
    api = await client.get(API, headers=owner.headers)
    assert api.status_code == 200, api.text
    assert api.json() == {
        "content_created": {"blog_post": 0, "social_media": 0, "email_newsletter": 0, "product_description": 0},
        "publishing_success_rate": 0.0,
        "engagement_metrics": {"views": 0, "clicks": 0, "shares": 0},
        "conversion_metrics": {"leads": 0, "sales": 0},
        "top_performing_content": [],
    }


async def test_bad_requests_in_each_surfaces_format(client: httpx2.AsyncClient, owner: Account) -> None:
    reversed_period = {"start_date": "2023-01-15", "end_date": "2023-01-01"}
    v1 = await client.get(V1, headers=owner.headers, params=reversed_period)
    assert v1.status_code == 422 and v1.json()["error"] == "validation_error", v1.text
    assert list(v1.json()["details"]) == ["start_date"]
    bad_type = await client.get(V1, headers=owner.headers, params={"type": "video"})
    assert bad_type.status_code == 422 and list(bad_type.json()["details"]) == ["type"], bad_type.text
    malformed = await client.get(V1, headers=owner.headers, params={"end_date": "15/01/2023"})
    assert malformed.status_code == 422 and list(malformed.json()["details"]) == ["end_date"], malformed.text

    api = await client.get(API, headers=owner.headers, params=reversed_period)
    assert api.status_code == 422 and api.json()["detail"][0]["field"] == "start_date", api.text
    api_malformed = await client.get(API, headers=owner.headers, params={"start_date": "2023-13-01"})
    assert api_malformed.status_code == 422 and api_malformed.json()["detail"][0]["field"] == "start_date"

    for url in (V1, API):
        unauthenticated = await client.get(url, params=PERIOD)
        assert unauthenticated.status_code == 401, unauthenticated.text
    assert (await client.get(V1)).json()["error"] == "authentication_error"
    assert "detail" in (await client.get(API)).json()
