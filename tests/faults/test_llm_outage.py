"""The OpenAI-compatible endpoint down, or slower than ``BAS_LLM_TIMEOUT_SECONDS``: personalised messages wait.

A message is written (its delivery row) only once the LLM has answered, so an LLM that is down or times out
leaves nothing to send twice: Temporal retries the compose step with backoff (5 s, 10 s, ... up to 10 minutes
apart), nothing goes out meanwhile, and each message is sent once, personalised, when the LLM answers. There is
no fallback to the unpersonalised text while it is away (an empty answer is the one case that falls back).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from tests.conftest import Account
from tests.faults.sequences import (
    add_lead,
    assert_each_sent_once,
    deliveries_of,
    finished_runs,
    lead_sequence,
    runs_of,
)
from tests.support.faults import FaultyLLM, FaultySmtp
from tests.support.smtp_server import text_of

pytestmark = [pytest.mark.slow, pytest.mark.faults]

LEADS = 3
STEPS = 2


@pytest.fixture
def database_url(postgres_database_url: str) -> str:
    return postgres_database_url


@pytest.fixture
def llm() -> Iterator[FaultyLLM]:
    server = FaultyLLM()  # not started: the test brings it up
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(settings: Settings, llm: FaultyLLM) -> Settings:
    return settings.model_copy(
        update={"llm_base_url": llm.base_url, "llm_model": "test-model", "llm_timeout_seconds": 1.0}
    )


def assert_personalised_once(smtp: FaultySmtp) -> None:
    assert all(text_of(message).startswith("Personalised: ") for message in smtp.messages)
    assert set(smtp.message_ids().values()) == {1}


@pytest.mark.usefixtures("worker")
async def test_an_llm_that_is_down_holds_the_messages_until_it_answers_then_each_goes_once(
    client: httpx2.AsyncClient,
    owner: Account,
    smtp: FaultySmtp,
    llm: FaultyLLM,
    db: async_sessionmaker[AsyncSession],
) -> None:
    await lead_sequence(client, owner, steps=STEPS, delay_hours=0.0003, personalise=True)
    for index in range(LEADS):
        await add_lead(client, owner, f"lead-{index:03d}@example.com")
    await asyncio.sleep(7)  # two tries of each first message, both refused

    assert await deliveries_of(db, owner.company_id) == []  # nothing written, so nothing can go out
    assert smtp.messages == []
    assert Counter(run.status for run in await runs_of(db, owner.company_id)) == {"running": LEADS}

    llm.start()
    runs = await finished_runs(db, owner.company_id, LEADS, seconds=60)

    assert Counter(run.status for run in runs) == {"completed": LEADS}
    assert {run.results["messages_sent"] for run in runs} == {STEPS}
    assert_each_sent_once(smtp, await deliveries_of(db, owner.company_id), per_recipient=STEPS)
    assert_personalised_once(smtp)
    assert len(llm.requests) == LEADS * STEPS


@pytest.mark.usefixtures("worker")
async def test_an_llm_slower_than_its_timeout_is_tried_again_and_nothing_is_sent_twice(
    client: httpx2.AsyncClient,
    owner: Account,
    smtp: FaultySmtp,
    llm: FaultyLLM,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.start()
    llm.slow_requests, llm.delay_seconds = LEADS, 3.0  # every first message's first try times out
    await lead_sequence(client, owner, steps=STEPS, delay_hours=0.0003, personalise=True)
    for index in range(LEADS):
        await add_lead(client, owner, f"lead-{index:03d}@example.com")

    runs = await finished_runs(db, owner.company_id, LEADS, seconds=60)

    assert Counter(run.status for run in runs) == {"completed": LEADS}
    assert {run.results["messages_sent"] for run in runs} == {STEPS}
    assert_each_sent_once(smtp, await deliveries_of(db, owner.company_id), per_recipient=STEPS)
    assert_personalised_once(smtp)
    # The timed-out tries reached the LLM too (nobody waited for their answers): asked more often than sent.
    assert llm.arrivals == LEADS * STEPS + LEADS and len(llm.requests) == LEADS * STEPS
