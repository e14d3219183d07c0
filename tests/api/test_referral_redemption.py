"""Redeeming a referral code under concurrency: the database decides, on SQLite and PostgreSQL alike.

Requests go through the ASGI app concurrently (``asyncio.gather``), each with its own session and
transaction, so they race for the code's last uses exactly as separate HTTP clients would.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx2
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from db.models import Referral, ReferralUse
from tests.api.review_support import (
    JANE,
    add_leads,
    api_id,
    create_customer,
    create_referral,
    get_json,
    terminated_afterwards,
)
from tests.conftest import Account

USE = "/api/review-referral/referrals/use"


@pytest.fixture(autouse=True)
async def _terminate_runs(temporal_client: Client, db: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    async with terminated_afterwards(temporal_client, db):
        yield


async def stored(db: async_sessionmaker[AsyncSession], referral_id: str) -> tuple[int, int, str]:
    """What the database holds: ``times_used``, the number of use rows, and the canonical status."""
    async with db() as session:
        referral = await session.get(Referral, referral_id)
        assert referral is not None
        uses = await session.scalar(
            select(func.count()).select_from(ReferralUse).where(ReferralUse.referral_id == referral_id)
        )
        return referral.times_used, uses or 0, referral.status


async def redeem_all(
    client: httpx2.AsyncClient, account: Account, code: str, leads: list[str]
) -> list[httpx2.Response]:
    async with asyncio.timeout(60):
        return await asyncio.gather(
            *(client.post(USE, headers=account.headers, json={"code": code, "lead_id": api_id(lead)}) for lead in leads)
        )


async def test_twenty_leads_race_for_five_uses(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    jane = await create_customer(client, owner, JANE)
    referral = await create_referral(client, owner, jane["id"], max_uses=5)
    leads = await add_leads(db, owner.company_id, 20)

    responses = await redeem_all(client, owner, referral["code"], leads)

    assert Counter(r.status_code for r in responses) == {200: 5, 409: 15}, [r.text for r in responses]
    winners = [lead for lead, r in zip(leads, responses, strict=True) if r.status_code == 200]
    for lead, response in zip(leads, responses, strict=True):
        if response.status_code == 200:
            assert response.json() == {
                "success": True,
                "referral_id": api_id(referral["id"]),
                "lead_id": api_id(lead),
                "offer": {"description": referral["offer"]},
            }
        else:
            # A clear refusal: the /api error format, naming the code and why.
            assert response.json().keys() == {"detail"}
            assert referral["code"] in response.json()["detail"] and "limit" in response.json()["detail"]

    assert await stored(db, referral["id"]) == (5, 5, "exhausted")
    async with db() as session:
        used_by = set(
            await session.scalars(select(ReferralUse.lead_id).where(ReferralUse.referral_id == referral["id"]))
        )
    assert used_by == set(winners)
    shown = await get_json(client, owner, f"/v1/referrals/{referral['id']}")
    assert (shown["times_used"], shown["status"], len(shown["uses"])) == (5, "exhausted", 5)
    # Once used up it stays used up: a late comer is refused too.
    [late] = await add_leads(db, owner.company_id, 1)
    [refused] = await redeem_all(client, owner, referral["code"], [late])
    assert refused.status_code == 409
    assert await stored(db, referral["id"]) == (5, 5, "exhausted")


@pytest.mark.parametrize(("max_uses", "status"), [(5, "used"), (1, "exhausted")])
async def test_the_same_lead_ten_times_at_once_counts_once(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession], max_uses: int, status: str
) -> None:
    jane = await create_customer(client, owner, JANE)
    referral = await create_referral(client, owner, jane["id"], max_uses=max_uses)
    [lead] = await add_leads(db, owner.company_id, 1)

    responses = await redeem_all(client, owner, referral["code"], [lead] * 10)

    # Every request is answered as a repeat visit of the same lead, even the ones that lost the race for
    # the code's only use: that use is theirs.
    assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
    assert {r.json()["lead_id"] for r in responses} == {api_id(lead)}
    assert await stored(db, referral["id"]) == (1, 1, status)
    shown = await get_json(client, owner, f"/api/review-referral/referrals/{api_id(referral['id'])}")
    assert (shown["times_used"], shown["status"]) == (1, "used")  # exhausted is "used" in /api words
