"""PostgreSQL gone mid-flight (stopped ``-m immediate``, as a crash or a failover would), then back.

Meanwhile the API answers 503 with a clear error on both surfaces and writes nothing; the same request, sent again
with its ``Idempotency-Key`` after recovery, creates the lead once. The worker's activities fail and are retried
by Temporal; once the database is back every run finishes and every message went out exactly once.

The test has a PostgreSQL of its own: stopping the suite's shared server would break every other test.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx2
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from db.migrate import upgrade_to_head
from db.models import Lead
from tests.conftest import Account
from tests.faults.sequences import add_lead, assert_each_sent_once, deliveries_of, finished_runs, lead_sequence
from tests.support.faults import FaultySmtp, RestartablePostgres

pytestmark = [pytest.mark.slow, pytest.mark.faults]

LEADS = 3
STEPS = 2
DELAY_HOURS = 0.0015  # 5.4 s: the follow-ups fall due while the database is away
DOWN_SECONDS = 8.0


@pytest.fixture
def postgres() -> Iterator[RestartablePostgres]:
    server = RestartablePostgres()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(postgres: RestartablePostgres) -> str:
    url = postgres.url(postgres.create_database())
    upgrade_to_head(Settings(environment="test", database_url=url))
    return url


async def lead_count(db: async_sessionmaker[AsyncSession], company_id: str) -> int:
    async with db() as session:
        return await session.scalar(select(func.count()).select_from(Lead).where(Lead.company_id == company_id)) or 0


@pytest.mark.usefixtures("worker")
async def test_the_database_away_mid_flight_answers_503_writes_nothing_and_every_run_finishes_once(
    client: httpx2.AsyncClient,
    owner: Account,
    smtp: FaultySmtp,
    postgres: RestartablePostgres,
    db: async_sessionmaker[AsyncSession],
) -> None:
    await lead_sequence(client, owner, steps=STEPS, delay_hours=DELAY_HOURS)
    for index in range(LEADS):
        await add_lead(client, owner, f"lead-{index:03d}@example.com")
    async with asyncio.timeout(30):
        while len(smtp.messages) < LEADS:
            await asyncio.sleep(0.1)

    await asyncio.to_thread(postgres.halt)
    retried = {**owner.headers, "Idempotency-Key": "lead-while-the-database-is-away"}
    body = {"name": "While Away", "email": "away@example.com", "source": "website_form"}
    created = await client.post("/v1/leads", headers=retried, json=body)
    assert created.status_code == 503, created.text
    assert created.json()["error"] == "service_unavailable"
    assert "database" in created.json()["message"] and "not carried out" in created.json()["message"]
    listed = await client.get("/api/lead-nurturing/leads", headers=owner.headers)
    assert listed.status_code == 503, listed.text
    assert "database" in listed.json()["detail"]
    health = await client.get("/api/system/health")
    assert health.status_code == 503 and health.json()["status"] == "unhealthy"
    await asyncio.sleep(DOWN_SECONDS)
    assert len(smtp.messages) == LEADS  # the follow-ups are due, and wait for the database

    await asyncio.to_thread(postgres.resume)
    # Nothing of the refused request was written; sent again, it is created once.
    assert await lead_count(db, owner.company_id) == LEADS
    again = await client.post("/v1/leads", headers=retried, json=body)
    assert again.status_code == 201, again.text
    replayed = await client.post("/v1/leads", headers=retried, json=body)
    assert replayed.status_code == 201 and replayed.json()["id"] == again.json()["id"]
    assert await lead_count(db, owner.company_id) == LEADS + 1

    runs = await finished_runs(db, owner.company_id, LEADS + 1, seconds=90)
    assert Counter(run.status for run in runs) == {"completed": LEADS + 1}
    assert {(run.results["messages_sent"], run.results["unresolved"]) for run in runs} == {(STEPS, 0)}
    assert_each_sent_once(smtp, await deliveries_of(db, owner.company_id), per_recipient=STEPS)
