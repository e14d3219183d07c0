"""``kill -9`` of a ``bas worker`` process while lead sequences and review requests are mid-flight, then a fresh
worker: no message lost, none doubled, at a real SMTP server (by Message-ID) and in the deliveries table.

The interleavings that used to lose a message are pinned, not left to luck: when the worker dies, one lead's
email is stuck before the SMTP server has it ("sending" committed, nothing sent: the lost message of issue 10),
another's is with the server with its answer held (sent, not recorded), and a customer's review request is stuck
like the first. Every other sequence is wherever it happens to be: waiting, composing, between steps. The worker
that takes over is killed too, wherever it is (resolving what the first left, or sending follow-ups), and a third
one finishes the work.
The newsletter's kill test is ``tests/integration/test_newsletter_end_to_end.py``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from core.config import Settings
from tests.conftest import Account
from tests.faults.sequences import (
    add_lead,
    add_sale,
    assert_each_sent_once,
    deliveries_of,
    finished_runs,
    lead_sequence,
    review_sequence,
)
from tests.support.faults import FaultySmtp, WorkerProcesses, eventually

pytestmark = [pytest.mark.slow, pytest.mark.faults]

LEADS = 50
"""Sequences of three emails each; with the review requests, 180 messages in flight on two cores."""
CUSTOMERS = 10
STEPS = 3
DELAY_HOURS = 0.001  # 3.6 s between steps: every sequence is mid-flight when the worker dies


@pytest.fixture
def database_url(postgres_database_url: str) -> str:
    return postgres_database_url


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A held answer must outlast the worker it is held from: the kill, not a timeout, ends the first attempt.
    return settings.model_copy(update={"smtp_timeout_seconds": 60.0})


@pytest.fixture
async def workers(settings: Settings, temporal_client: Client, tmp_path: Path) -> AsyncIterator[WorkerProcesses]:
    running = WorkerProcesses(settings, temporal_client.service_client.config.target_host, tmp_path / "workers")
    try:
        yield running
    finally:
        running.stop_all()


async def test_a_worker_killed_mid_flight_loses_and_doubles_no_message(
    client: httpx2.AsyncClient,
    owner: Account,
    smtp: FaultySmtp,
    workers: WorkerProcesses,
    db: async_sessionmaker[AsyncSession],
) -> None:
    started = time.monotonic()
    await lead_sequence(client, owner, steps=STEPS, delay_hours=DELAY_HOURS)
    await review_sequence(client, owner, reminder_hours=DELAY_HOURS)
    never_sent, answer_lost, review_never_sent = "lead-000@example.com", "lead-001@example.com", "cust-000@example.com"
    smtp.hold_before_data |= {never_sent, review_never_sent}
    smtp.hold_after_data.add(answer_lost)

    first = workers.start()
    for index in range(LEADS):
        await add_lead(client, owner, f"lead-{index:03d}@example.com")
    for index in range(CUSTOMERS):
        await add_sale(client, owner, f"cust-{index:03d}@example.com")

    async def mid_flight() -> bool:
        workers.assert_running(first)
        return len(smtp.held) == 3 and len(smtp.messages) >= LEADS // 2

    await eventually(mid_flight, 60)
    workers.kill(first)
    at_kill = len(smtp.messages)
    smtp.release()  # answers connections nobody holds any more
    second = workers.start()

    # Again, wherever the new worker is: resolving what the first left, or sending the follow-ups.
    async def further() -> bool:
        workers.assert_running(second)
        return len(smtp.messages) >= at_kill + LEADS

    await eventually(further, 90)
    workers.kill(second)
    at_second_kill = len(smtp.messages)
    workers.start()

    runs = await finished_runs(db, owner.company_id, LEADS + CUSTOMERS, seconds=150)
    deliveries = await deliveries_of(db, owner.company_id)
    recovered = time.monotonic() - started

    assert at_kill < at_second_kill < len(deliveries)  # both workers died with messages still to come
    assert Counter(run.status for run in runs) == {"completed": LEADS + CUSTOMERS}
    assert {(run.results["messages_sent"], run.results["unresolved"]) for run in runs} == {(STEPS, 0)}
    copies = assert_each_sent_once(smtp, deliveries, per_recipient=STEPS)
    # The one the server had when the worker died arrived again under its Message-ID (one message to its reader);
    # the two stuck before the server had them arrived once, sent by the new worker.
    assert sorted(copies[message_id] for message_id in smtp.ids_to(answer_lost)) == [1, 1, 2]
    assert [copies[message_id] for message_id in smtp.ids_to(never_sent) | smtp.ids_to(review_never_sent)] == [1] * 6
    assert recovered < 200, f"took {recovered:.0f} s"
    assert "sending it again under the same Message-ID" in workers.output()
