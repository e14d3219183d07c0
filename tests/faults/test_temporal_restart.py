"""The Temporal server stopped mid-flight and started again on its file: every sequence finishes, exactly once.

The test runs its own file-backed ``temporal server start-dev`` (as ``bas dev`` does) on its own ports, the API
and a ``bas worker`` process on it. While it is down the worker's polls fail (the process waits, it does not
exit); once it is back, timers, activity retries and workflow tasks carry on from what the file kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.main import create_app
from core.config import Settings
from tests.conftest import Account
from tests.faults.sequences import add_lead, assert_each_sent_once, deliveries_of, finished_runs, lead_sequence
from tests.support.faults import FaultySmtp, FileTemporal, WorkerProcesses, eventually

pytestmark = [pytest.mark.slow, pytest.mark.faults]

LEADS = 20
STEPS = 3
DELAY_HOURS = 0.001  # 3.6 s: the server goes away between steps of every sequence
DOWN_SECONDS = 5.0


@pytest.fixture
def database_url(postgres_database_url: str) -> str:
    return postgres_database_url


@pytest.fixture
async def temporal_on_file(tmp_path: Path) -> AsyncIterator[FileTemporal]:
    server = FileTemporal(tmp_path / "temporal")
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def app(settings: Settings, temporal_on_file: FileTemporal) -> AsyncIterator[FastAPI]:
    """The API on the test's own Temporal server (not the session's)."""
    temporal = await Client.connect(temporal_on_file.address, data_converter=pydantic_data_converter)
    application = create_app(settings, temporal_client=temporal)
    async with application.router.lifespan_context(application):
        yield application


async def test_temporal_stopped_and_restarted_mid_flight_finishes_every_sequence_once(
    client: httpx2.AsyncClient,
    owner: Account,
    smtp: FaultySmtp,
    settings: Settings,
    temporal_on_file: FileTemporal,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    workers = WorkerProcesses(settings, temporal_on_file.address, tmp_path / "workers")
    worker = workers.start()
    try:
        await lead_sequence(client, owner, steps=STEPS, delay_hours=DELAY_HOURS)
        for index in range(LEADS):
            await add_lead(client, owner, f"lead-{index:03d}@example.com")

        async def first_messages_out() -> bool:
            workers.assert_running(worker)
            return len(smtp.messages) >= LEADS

        await eventually(first_messages_out, 60)
        await asyncio.to_thread(temporal_on_file.stop)
        at_stop, stopped = len(smtp.messages), time.monotonic()

        await asyncio.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - stopped)))
        assert len(smtp.messages) - at_stop <= LEADS  # at most what was already in hand when the server went

        await asyncio.to_thread(temporal_on_file.start)
        workers.assert_running(worker)  # the same worker process: it waited for the server, it did not die
        runs = await finished_runs(db, owner.company_id, LEADS, seconds=120)
    finally:
        workers.stop_all()

    assert at_stop < LEADS * STEPS
    assert Counter(run.status for run in runs) == {"completed": LEADS}
    assert {(run.results["messages_sent"], run.results["unresolved"]) for run in runs} == {(STEPS, 0)}
    assert_each_sent_once(smtp, await deliveries_of(db, owner.company_id), per_recipient=STEPS)
