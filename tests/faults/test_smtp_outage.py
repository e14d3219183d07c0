"""The SMTP relay down for a while, then back: every message is delivered once after it recovers, and no run
fails meanwhile.

A refused connection means nothing was handed over (``ProviderUnavailable``): the delivery goes back to
``pending`` and Temporal retries the send with backoff; nothing is ``unknown``, so nothing needs resolving.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import Account
from tests.faults.sequences import (
    add_lead,
    assert_each_sent_once,
    deliveries_of,
    finished_runs,
    lead_sequence,
    runs_of,
)
from tests.support.faults import FaultySmtp, eventually

pytestmark = [pytest.mark.slow, pytest.mark.faults]

LEADS = 5
STEPS = 2
DOWN_SECONDS = 8.0  # longer than the first retry's backoff (5 s): the sends fail more than once


@pytest.fixture
def database_url(postgres_database_url: str) -> str:
    return postgres_database_url


@pytest.mark.usefixtures("worker")
async def test_smtp_down_then_up_delivers_each_message_once_and_fails_no_run(
    client: httpx2.AsyncClient, owner: Account, smtp: FaultySmtp, db: async_sessionmaker[AsyncSession]
) -> None:
    await lead_sequence(client, owner, steps=STEPS, delay_hours=0.0005)
    smtp.down()
    for index in range(LEADS):
        await add_lead(client, owner, f"lead-{index:03d}@example.com")

    async def first_steps_written() -> bool:
        return len(await deliveries_of(db, owner.company_id)) == LEADS

    await eventually(first_steps_written, 30)
    await asyncio.sleep(DOWN_SECONDS)
    # Nothing handed over, nothing in doubt, nothing failed: each first message waits for the relay.
    assert Counter(delivery.status for delivery in await deliveries_of(db, owner.company_id)) == {"pending": LEADS}
    assert Counter(run.status for run in await runs_of(db, owner.company_id)) == {"running": LEADS}

    smtp.up()
    runs = await finished_runs(db, owner.company_id, LEADS, seconds=60)

    assert Counter(run.status for run in runs) == {"completed": LEADS}
    assert {(run.results["messages_sent"], run.results["unresolved"]) for run in runs} == {(STEPS, 0)}
    copies = assert_each_sent_once(smtp, await deliveries_of(db, owner.company_id), per_recipient=STEPS)
    assert set(copies.values()) == {1}  # not even a copy under the same Message-ID
