"""Lead analytics on both surfaces: every figure on a seeded dataset with hand-computed values, and an empty company."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.ids import new_id
from db.models import Interaction, Lead
from db.session import transaction
from tests.conftest import Account, register

PERIOD = {"start_date": "2023-01-01", "end_date": "2023-01-15"}


def at(day: int, hour: int = 0, minute: int = 0, month: int = 1, year: int = 2023) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def seed(db: async_sessionmaker[AsyncSession], company_id: str, other_company_id: str) -> None:
    """Seven leads created in the period, two just outside it, one of another company; their interactions."""
    leads = {
        # key: (created_at, source, status, converted_at)
        "l1": (at(2), "website_form", "converted", at(4)),  # converted after 2 days
        "l2": (at(3), "website_form", "contacted", None),
        "l3": (at(5, 12), "website_form", "qualified", None),
        "l4": (at(6), "manual", "converted", at(10)),  # converted after 4 days
        "l5": (at(7), "manual", "lost", None),
        "l6": (at(8), "referral", "engaged", None),
        "l7": (at(15, 23), "ad", "new", None),  # the last day counts in full
        "before": (at(31, 23, 59, month=12, year=2022), "website_form", "converted", at(1)),
        "after": (at(16), "referral", "new", None),
    }
    interactions = [
        # (lead, direction, type, created_at)
        ("l1", "outbound", "email", at(2, 1)),
        ("l1", "inbound", "email", at(2, 3)),  # replied after 2 hours
        ("l1", "inbound", "email", at(2, 5)),  # a second reply does not change the response time
        ("l2", "outbound", "email", at(3, 1)),
        ("l2", "outbound", "sms", at(3, 10)),  # contacted twice, never replied
        ("l3", "inbound", "call", at(5, 12, 30)),  # wrote first: not a response to us
        ("l3", "outbound", "email", at(5, 13)),
        ("l3", "inbound", "email", at(5, 19)),  # replied after 6 hours
        ("l4", "outbound", "sms", at(6, 1)),
        ("l4", "inbound", "sms", at(6, 2)),  # replied after 1 hour
        ("l6", "inbound", "note", at(8, 1)),  # never contacted by us
        ("before", "outbound", "email", at(31, 23, 59, month=12, year=2022)),  # recorded before the period
        ("before", "inbound", "email", at(1, 0, 30)),  # recorded in it: counts by type only
    ]
    ids = {key: new_id("lead") for key in leads}
    async with transaction(db) as session:
        for key, (created_at, source, status, converted_at) in leads.items():
            session.add(
                Lead(
                    id=ids[key],
                    company_id=company_id,
                    name=key,
                    email=f"{key}@example.com",
                    source=source,
                    status=status,
                    created_at=created_at,
                    updated_at=created_at,
                    converted_at=converted_at,
                )
            )
        stranger = Lead(
            id=new_id("lead"),
            company_id=other_company_id,
            name="stranger",
            email="stranger@example.com",
            source="website_form",
            status="converted",
            created_at=at(2),
            converted_at=at(3),
        )
        session.add(stranger)
        await session.flush()
        for key, direction, kind, created_at in interactions:
            session.add(
                Interaction(
                    id=new_id("int"),
                    company_id=company_id,
                    lead_id=ids[key],
                    type=kind,
                    direction=direction,
                    created_at=created_at,
                )
            )
        for direction, created_at in (("outbound", at(2, 1)), ("inbound", at(2, 2))):
            session.add(
                Interaction(
                    id=new_id("int"),
                    company_id=other_company_id,
                    lead_id=stranger.id,
                    type="email",
                    direction=direction,
                    created_at=created_at,
                )
            )


@pytest.fixture
async def seeded(client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]) -> Account:
    other = await register(client, company="Globex")
    await seed(db, owner.company_id, other.company_id)
    return owner


async def test_v1_lead_analytics_on_the_seeded_period(client: httpx2.AsyncClient, seeded: Account) -> None:
    response = await client.get("/v1/analytics/leads", headers=seeded.headers, params=PERIOD)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "period": PERIOD,
        "summary": {
            "total_leads": 7,
            "converted_leads": 2,
            "conversion_rate": 0.2857,  # 2 / 7
            "average_response_time_hours": 3.0,  # (2 + 6 + 1) / 3
            "average_time_to_conversion_days": 3.0,  # (2 + 4) / 2
        },
        "by_source": [
            {"source": "website_form", "count": 3, "conversion_rate": 0.3333, "average_time_to_conversion_days": 2.0},
            {"source": "manual", "count": 2, "conversion_rate": 0.5, "average_time_to_conversion_days": 4.0},
            {"source": "ad", "count": 1, "conversion_rate": 0.0, "average_time_to_conversion_days": None},
            {"source": "referral", "count": 1, "conversion_rate": 0.0, "average_time_to_conversion_days": None},
        ],
        "by_status": [
            {"status": "new", "count": 1},
            {"status": "contacted", "count": 1},
            {"status": "engaged", "count": 1},
            {"status": "qualified", "count": 1},
            {"status": "converted", "count": 2},
            {"status": "lost", "count": 1},
        ],
        "conversion_funnel": {
            "stages": ["new", "contacted", "qualified", "converted"],
            # all 7; contacted or beyond: l2, l6, l3, l1, l4; qualified or beyond: l3, l1, l4; converted: l1, l4
            "counts": [7, 5, 3, 2],
            "conversion_rates": [1.0, 0.7143, 0.4286, 0.2857],
        },
    }


async def test_v1_lead_analytics_for_one_source(client: httpx2.AsyncClient, seeded: Account) -> None:
    body = (
        await client.get("/v1/analytics/leads", headers=seeded.headers, params={**PERIOD, "source": "website_form"})
    ).json()
    assert body["summary"] == {
        "total_leads": 3,
        "converted_leads": 1,
        "conversion_rate": 0.3333,
        "average_response_time_hours": 4.0,  # l1 after 2 hours, l3 after 6
        "average_time_to_conversion_days": 2.0,
    }
    assert [s["source"] for s in body["by_source"]] == ["website_form"]
    assert {s["status"]: s["count"] for s in body["by_status"]} == {
        "new": 0,
        "contacted": 1,
        "engaged": 0,
        "qualified": 1,
        "converted": 1,
        "lost": 0,
    }
    assert body["conversion_funnel"]["counts"] == [3, 3, 2, 1]
    assert body["conversion_funnel"]["conversion_rates"] == [1.0, 1.0, 0.6667, 0.3333]
    bad_source = await client.get("/v1/analytics/leads", headers=seeded.headers, params={"source": "pigeon"})
    assert bad_source.status_code == 422 and list(bad_source.json()["details"]) == ["source"]


async def test_v1_period_bounds_are_inclusive_days(client: httpx2.AsyncClient, seeded: Account) -> None:
    last_day = {"start_date": "2023-01-15", "end_date": "2023-01-15"}
    body = (await client.get("/v1/analytics/leads", headers=seeded.headers, params=last_day)).json()
    assert body["period"] == last_day
    assert body["summary"] == {
        "total_leads": 1,
        "converted_leads": 0,
        "conversion_rate": 0.0,
        "average_response_time_hours": None,
        "average_time_to_conversion_days": None,
    }
    assert body["by_source"] == [
        {"source": "ad", "count": 1, "conversion_rate": 0.0, "average_time_to_conversion_days": None}
    ]


async def test_api_lead_nurturing_analytics_on_the_seeded_period(client: httpx2.AsyncClient, seeded: Account) -> None:
    response = await client.get("/api/lead-nurturing/analytics", headers=seeded.headers, params=PERIOD)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "total_leads": 7,
        "leads_by_source": {
            "website_form": 3,
            "landing_page": 0,
            "ad_campaign": 1,
            "manual_entry": 2,
            "referral": 1,
            "direct": 0,
            "crm": 0,
            "import": 0,
            "other": 0,
        },
        "leads_by_status": {"new": 1, "contacted": 1, "engaged": 1, "qualified": 1, "converted": 2, "lost": 1},
        "response_rate": 0.75,  # l1, l3, l4 replied of l1, l2, l3, l4 contacted
        "engagement_rate": 0.5714,  # l6, l3, l1, l4 engaged or beyond, of 7
        "conversion_rate": 0.2857,
        "average_time_to_conversion": 3.0,
        # Recorded from 2023-01-01 to 2023-01-15 whoever the lead: "before"'s reply counts, its message does not.
        "interactions_by_type": {"email": 7, "sms": 3, "call": 1, "meeting": 0, "note": 1},
    }


async def test_empty_company_gets_zeros_on_both_surfaces(client: httpx2.AsyncClient, owner: Account) -> None:
    v1 = await client.get("/v1/analytics/leads", headers=owner.headers)
    assert v1.status_code == 200, v1.text
    body = v1.json()
    today = datetime.now(UTC).date()
    assert body["period"] == {"start_date": str(today - timedelta(days=29)), "end_date": str(today)}
    assert body["summary"] == {
        "total_leads": 0,
        "converted_leads": 0,
        "conversion_rate": 0.0,
        "average_response_time_hours": None,
        "average_time_to_conversion_days": None,
    }
    assert body["by_source"] == []
    assert all(s["count"] == 0 for s in body["by_status"]) and len(body["by_status"]) == 6
    assert body["conversion_funnel"] == {
        "stages": ["new", "contacted", "qualified", "converted"],
        "counts": [0, 0, 0, 0],
        "conversion_rates": [0.0, 0.0, 0.0, 0.0],
    }

    api = await client.get("/api/lead-nurturing/analytics", headers=owner.headers)
    assert api.status_code == 200, api.text
    body = api.json()
    assert body["total_leads"] == 0
    assert set(body["leads_by_source"].values()) == {0} and "manual_entry" in body["leads_by_source"]
    assert body["leads_by_status"] == {s: 0 for s in ("new", "contacted", "engaged", "qualified", "converted", "lost")}
    assert (body["response_rate"], body["engagement_rate"], body["conversion_rate"]) == (0.0, 0.0, 0.0)
    assert body["average_time_to_conversion"] is None
    assert body["interactions_by_type"] == {"email": 0, "sms": 0, "call": 0, "meeting": 0, "note": 0}


async def test_another_company_sees_none_of_it(client: httpx2.AsyncClient, seeded: Account) -> None:
    other = await register(client, company="Initech")
    body = (await client.get("/api/lead-nurturing/analytics", headers=other.headers, params=PERIOD)).json()
    assert body["total_leads"] == 0 and set(body["interactions_by_type"].values()) == {0}


async def test_bad_periods_are_422_naming_the_field(client: httpx2.AsyncClient, owner: Account) -> None:
    reversed_period = {"start_date": "2023-01-15", "end_date": "2023-01-01"}
    v1 = await client.get("/v1/analytics/leads", headers=owner.headers, params=reversed_period)
    assert v1.status_code == 422 and list(v1.json()["details"]) == ["start_date"]
    api = await client.get("/api/lead-nurturing/analytics", headers=owner.headers, params=reversed_period)
    assert api.status_code == 422 and api.json()["detail"][0]["field"] == "start_date"
    malformed = await client.get("/v1/analytics/leads", headers=owner.headers, params={"end_date": "15/01/2023"})
    assert malformed.status_code == 422 and list(malformed.json()["details"]) == ["end_date"]
    assert (await client.get("/api/lead-nurturing/analytics")).status_code == 401
