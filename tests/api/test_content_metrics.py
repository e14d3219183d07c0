"""Reporting content metrics: figures add up per day, atomically (twenty at once too), only on the company's content."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.ids import new_id
from db.models import Content, ContentMetric
from db.session import transaction
from tests.conftest import Account, register

ZERO = {"views": 0, "clicks": 0, "shares": 0, "comments": 0, "conversions": 0}
BATCH = "/v1/content/metrics"


def metrics_url(content_id: str) -> str:
    return f"/v1/content/{content_id}/metrics"


async def add_content(db: async_sessionmaker[AsyncSession], company_id: str, kind: str = "blog") -> str:
    content_id = new_id("cont")
    async with transaction(db) as session:
        session.add(Content(id=content_id, company_id=company_id, type=kind, title="Hello", body="Text"))
    return content_id


async def stored_rows(db: async_sessionmaker[AsyncSession], content_id: str) -> dict[str, dict[str, int]]:
    """What the database holds for the item, by day."""
    async with db() as session:
        rows = await session.scalars(select(ContentMetric).where(ContentMetric.content_id == content_id))
        return {row.recorded_on: {name: getattr(row, name) for name in ZERO} for row in rows}


@pytest.fixture
async def content_id(owner: Account, db: async_sessionmaker[AsyncSession]) -> str:
    return await add_content(db, owner.company_id)


async def test_reports_add_to_the_day_and_the_totals(
    client: httpx2.AsyncClient, owner: Account, content_id: str, db: async_sessionmaker[AsyncSession]
) -> None:
    first = await client.post(
        metrics_url(content_id), headers=owner.headers, json={"recorded_on": "2023-01-02", "views": 10, "clicks": 2}
    )
    assert first.status_code == 200, first.text
    day_one = ZERO | {"views": 10, "clicks": 2}
    assert first.json() == {"content_id": content_id, "recorded_on": "2023-01-02", "day": day_one, "totals": day_one}

    # The same day again: added to the row, not replacing it.
    second = await client.post(
        metrics_url(content_id), headers=owner.headers, json={"recorded_on": "2023-01-02", "views": 5, "conversions": 1}
    )
    assert second.status_code == 200, second.text
    day_one = ZERO | {"views": 15, "clicks": 2, "conversions": 1}
    assert second.json()["day"] == day_one and second.json()["totals"] == day_one

    body = {"recorded_on": "2023-01-03", "views": 7, "clicks": 1, "shares": 4, "comments": 3, "conversions": 2}
    third = await client.post(metrics_url(content_id), headers=owner.headers, json=body)
    assert third.status_code == 200, third.text
    day_two = {"views": 7, "clicks": 1, "shares": 4, "comments": 3, "conversions": 2}
    # totals: views 15 + 7, clicks 2 + 1, shares 0 + 4, comments 0 + 3, conversions 1 + 2
    totals = {"views": 22, "clicks": 3, "shares": 4, "comments": 3, "conversions": 3}
    assert third.json() == {"content_id": content_id, "recorded_on": "2023-01-03", "day": day_two, "totals": totals}

    assert await stored_rows(db, content_id) == {"2023-01-02": day_one, "2023-01-03": day_two}
    detail = await client.get(f"/v1/content/{content_id}", headers=owner.headers)
    assert detail.status_code == 200 and detail.json()["metrics"] == totals


async def test_the_day_defaults_to_today_and_an_empty_report_writes_nothing(
    client: httpx2.AsyncClient, owner: Account, content_id: str, db: async_sessionmaker[AsyncSession]
) -> None:
    before = datetime.now(UTC).date().isoformat()
    response = await client.post(metrics_url(content_id), headers=owner.headers, json={"views": 3})
    after = datetime.now(UTC).date().isoformat()
    assert response.status_code == 200, response.text
    today = response.json()["recorded_on"]
    assert today in {before, after}
    assert response.json()["day"] == ZERO | {"views": 3}

    empty = await client.post(metrics_url(content_id), headers=owner.headers, json={"recorded_on": "2023-05-05"})
    assert empty.status_code == 200, empty.text
    assert empty.json() == {
        "content_id": content_id,
        "recorded_on": "2023-05-05",
        "day": ZERO,
        "totals": ZERO | {"views": 3},
    }
    assert await stored_rows(db, content_id) == {today: ZERO | {"views": 3}}


async def test_another_companys_content_is_a_404(
    client: httpx2.AsyncClient, owner: Account, content_id: str, db: async_sessionmaker[AsyncSession]
) -> None:
    other = await register(client, company="Globex")
    response = await client.post(metrics_url(content_id), headers=other.headers, json={"views": 1})
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found" and response.json()["resource_type"] == "content"
    missing = await client.post(metrics_url("cont_missing"), headers=owner.headers, json={"views": 1})
    assert missing.status_code == 404 and missing.json()["resource_id"] == "cont_missing"
    # All or nothing: one foreign item in a batch adds nothing, not even to the caller's own item.
    theirs = await add_content(db, other.company_id)
    batch = {"metrics": [{"content_id": theirs, "views": 1}, {"content_id": content_id, "views": 1}]}
    refused = await client.post(BATCH, headers=owner.headers, json=batch)
    assert refused.status_code == 404 and refused.json()["resource_id"] == theirs
    assert await stored_rows(db, content_id) == {}
    assert await stored_rows(db, theirs) == {}
    unauthenticated = await client.post(metrics_url(content_id), json={"views": 1})
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"] == "authentication_error"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"views": -1}, "views"),
        ({"clicks": 1.5}, "clicks"),
        ({"shares": "many"}, "shares"),
        ({"conversions": 1_000_000_001}, "conversions"),
        ({"likes": 3}, "likes"),
        ({"recorded_on": "02/01/2023"}, "recorded_on"),
        ({"recorded_on": (datetime.now(UTC).date() + timedelta(days=2)).isoformat()}, "recorded_on"),
    ],
)
async def test_invalid_reports_are_422_naming_the_field(
    client: httpx2.AsyncClient,
    owner: Account,
    content_id: str,
    db: async_sessionmaker[AsyncSession],
    body: dict[str, Any],
    field: str,
) -> None:
    response = await client.post(metrics_url(content_id), headers=owner.headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error" and list(response.json()["details"]) == [field]
    assert await stored_rows(db, content_id) == {}


async def test_a_day_may_not_overflow_on_either_database(
    client: httpx2.AsyncClient, owner: Account, content_id: str, db: async_sessionmaker[AsyncSession]
) -> None:
    big = {"recorded_on": "2023-01-02", "views": 1_000_000_000}
    for _ in range(2):
        assert (await client.post(metrics_url(content_id), headers=owner.headers, json=big)).status_code == 200
    # 3,000,000,000 > 2,147,483,647: refused, and the day keeps its 2,000,000,000.
    response = await client.post(metrics_url(content_id), headers=owner.headers, json=big)
    assert response.status_code == 422 and list(response.json()["details"]) == ["metrics"], response.text
    assert await stored_rows(db, content_id) == {"2023-01-02": ZERO | {"views": 2_000_000_000}}


async def test_a_batch_adds_every_report(
    client: httpx2.AsyncClient, owner: Account, content_id: str, db: async_sessionmaker[AsyncSession]
) -> None:
    second = await add_content(db, owner.company_id, "social")
    batch = {
        "metrics": [
            {"content_id": second, "recorded_on": "2023-01-02", "views": 4, "shares": 1},
            {"content_id": content_id, "recorded_on": "2023-01-02", "views": 10},
            {"content_id": second, "recorded_on": "2023-01-02", "views": 6, "comments": 2},  # the same day again
            {"content_id": second, "recorded_on": "2023-01-03", "clicks": 5},
        ]
    }
    response = await client.post(BATCH, headers=owner.headers, json=batch)
    assert response.status_code == 200, response.text
    second_totals = {"views": 10, "clicks": 5, "shares": 1, "comments": 2, "conversions": 0}  # 4 + 6 views
    assert response.json() == {
        "data": [
            {
                "content_id": second,
                "recorded_on": "2023-01-02",
                "day": ZERO | {"views": 10, "shares": 1, "comments": 2},
                "totals": second_totals,
            },
            {
                "content_id": content_id,
                "recorded_on": "2023-01-02",
                "day": ZERO | {"views": 10},
                "totals": ZERO | {"views": 10},
            },
            {"content_id": second, "recorded_on": "2023-01-03", "day": ZERO | {"clicks": 5}, "totals": second_totals},
        ]
    }
    assert await stored_rows(db, second) == {
        "2023-01-02": ZERO | {"views": 10, "shares": 1, "comments": 2},
        "2023-01-03": ZERO | {"clicks": 5},
    }


async def test_invalid_batches_are_422(client: httpx2.AsyncClient, owner: Account, content_id: str) -> None:
    empty = await client.post(BATCH, headers=owner.headers, json={"metrics": []})
    assert empty.status_code == 422 and list(empty.json()["details"]) == ["metrics"], empty.text
    future = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    body = {"metrics": [{"content_id": content_id, "views": 1}, {"content_id": content_id, "recorded_on": future}]}
    late = await client.post(BATCH, headers=owner.headers, json=body)
    assert late.status_code == 422 and list(late.json()["details"]) == ["metrics.1.recorded_on"], late.text
    negative = await client.post(
        BATCH, headers=owner.headers, json={"metrics": [{"content_id": content_id, "views": -2}]}
    )
    assert negative.status_code == 422 and list(negative.json()["details"]) == ["metrics.0.views"], negative.text


async def test_twenty_concurrent_reports_of_one_day_add_up_exactly(
    client: httpx2.AsyncClient, owner: Account, content_id: str, db: async_sessionmaker[AsyncSession]
) -> None:
    def report(n: int) -> dict[str, Any]:
        return {"recorded_on": "2023-01-02", "views": n, "clicks": 1, "shares": 2, "comments": 3, "conversions": 4}

    async with asyncio.timeout(60):
        responses = await asyncio.gather(
            *(client.post(metrics_url(content_id), headers=owner.headers, json=report(n)) for n in range(1, 21))
        )
    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
    # views 1 + 2 + ... + 20 = 210; 20 x 1 clicks, 20 x 2 shares, 20 x 3 comments, 20 x 4 conversions.
    expected = {"views": 210, "clicks": 20, "shares": 40, "comments": 60, "conversions": 80}
    assert await stored_rows(db, content_id) == {"2023-01-02": expected}
    # Each answer read its own committed state: the views seen are distinct, the largest the whole sum.
    seen = sorted(r.json()["day"]["views"] for r in responses)
    assert len(set(seen)) == 20 and seen[-1] == 210


async def test_concurrent_batches_in_opposite_orders_add_up(
    client: httpx2.AsyncClient, owner: Account, content_id: str, db: async_sessionmaker[AsyncSession]
) -> None:
    second = await add_content(db, owner.company_id)
    forward = {"metrics": [{"content_id": content_id, "views": 1}, {"content_id": second, "views": 2}]}
    backward = {"metrics": [{"content_id": second, "views": 2}, {"content_id": content_id, "views": 1}]}
    async with asyncio.timeout(60):
        responses = await asyncio.gather(
            *(client.post(BATCH, headers=owner.headers, json=forward if n % 2 else backward) for n in range(20))
        )
    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
    today = responses[0].json()["data"][0]["recorded_on"]
    assert await stored_rows(db, content_id) == {today: ZERO | {"views": 20}}  # 20 x 1
    assert await stored_rows(db, second) == {today: ZERO | {"views": 40}}  # 20 x 2
