"""A newsletter to 300 contacts through the real parts: Temporal dev server -> worker -> database -> SMTP server.

Leads and customers, some unsubscribed, some suppressed, one address held by both a lead and a customer, one
address the SMTP server refuses. Each subscribed address gets exactly one email with one-click unsubscribe
headers, and the counts on the publication and in the workflow query are exact. Then the same through a
``bas worker`` process killed (SIGKILL) mid-send and a fresh one that takes over: nobody gets two messages (the one
in flight is sent again under its own Message-ID, which the recipient's mail system collapses into one).

``NewsletterWorkflow`` is started directly on a seeded publication, as ``PublishContentWorkflow`` would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from db.contacts import load_contact
from schemas.content_workflows import NewsletterProgress
from schemas.temporal import QueueKind
from tests.support.newsletter import BODY, SHARED, TITLE, Audience, deliveries, publication_progress, seed_audience
from tests.support.smtp_server import SmtpServer
from workflows.newsletter import NewsletterWorkflow, newsletter_workflow_id

BIN = Path(sys.executable).parent
REFUSED = "customer-042@example.com"


def received(smtp: SmtpServer) -> Counter[str]:
    """Distinct messages per recipient: copies under one Message-ID are one message to the recipient."""
    distinct = {str(message["Message-ID"]): message for message in smtp.messages}
    return Counter(parseaddr(str(message["To"]))[1].lower() for message in distinct.values())


async def start(
    client: Client, settings: Settings, seeded: Audience
) -> WorkflowHandle[NewsletterWorkflow, NewsletterProgress]:
    return await client.start_workflow(
        NewsletterWorkflow.run,
        seeded.input(),
        id=newsletter_workflow_id(seeded.publication_id),
        task_queue=settings.task_queue(QueueKind.MAIN),
    )


async def result(handle: WorkflowHandle[NewsletterWorkflow, NewsletterProgress], seconds: float) -> NewsletterProgress:
    async with asyncio.timeout(seconds):
        return await handle.result()


@pytest.mark.usefixtures("worker")
async def test_a_newsletter_reaches_each_subscribed_contact_exactly_once(
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    smtp: SmtpServer,
    temporal_client: Client,
    client: httpx2.AsyncClient,
) -> None:
    seeded = await seed_audience(db, leads=150, customers=150)
    smtp.refuse.add(REFUSED)  # a permanent 550: failed, not retried

    handle = await start(temporal_client, settings, seeded)
    progress = await result(handle, 60)

    expected = seeded.expected(refused={REFUSED})
    assert expected == NewsletterProgress(total=289, sent=276, skipped=12, failed=1)
    assert progress == expected
    assert await handle.query(NewsletterWorkflow.progress) == expected
    assert await publication_progress(db, seeded) == expected
    assert received(smtp) == Counter(seeded.mailed - {REFUSED})
    for message in smtp.messages:
        assert message["Subject"] == TITLE
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Unsubscribe"].startswith("<http://testserver/api/lead-nurturing/unsubscribe/")
    assert len(smtp.sent_to(SHARED.lower())) == 1 and smtp.sent_to(SHARED) == []
    assert (await deliveries(db, seeded))[REFUSED].status == "failed"

    # Ids and counts in the history; no address, no name, no text of the newsletter.
    history = (await handle.fetch_history()).to_json()
    assert "@example.com" not in history and "Customer 001" not in history and BODY[:20] not in history

    # One-click unsubscribe (RFC 8058) works from a customer's newsletter and from a lead's.
    for address in ("customer-000@example.com", "lead-000@example.com"):
        link = smtp.sent_to(address)[0]["List-Unsubscribe"].strip("<>")
        clicked = await client.post(
            urlsplit(link).path,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert clicked.status_code == 200, clicked.text
        async with db() as session:
            contact = await load_contact(session, seeded.company_id, seeded.receives[address])
            assert contact is not None and contact.unsubscribed_at is not None


def spawn_worker(settings: Settings, smtp: SmtpServer, temporal_address: str, folder: Path) -> subprocess.Popen[bytes]:
    """``bas worker`` as its own process, on the test's database, task queues and SMTP server."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BAS_")}
    env.update(
        BAS_ENVIRONMENT="test",
        BAS_DATA_DIR=str(folder),
        BAS_DATABASE_URL=settings.database_url,
        BAS_TEMPORAL_ADDRESS=temporal_address,
        BAS_TASK_QUEUE_PREFIX=settings.task_queue_prefix,
        BAS_SMTP_HOST=smtp.host,
        BAS_SMTP_PORT=str(smtp.port),
        BAS_SMTP_STARTTLS="false",
        BAS_EMAIL_FROM=settings.email_from,
        BAS_PUBLIC_BASE_URL=settings.public_base_url,
        BAS_LOG_LEVEL="WARNING",
    )
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "worker.log").open("wb") as log:
        return subprocess.Popen([str(BIN / "bas"), "worker"], env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes], how: signal.Signals) -> None:
    if process.poll() is None:
        process.send_signal(how)
    process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.faults
async def test_a_worker_killed_mid_send_leaves_nobody_with_two_emails(
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    smtp: SmtpServer,
    temporal_dev: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    seeded = await seed_audience(db, leads=150, customers=150)
    client = temporal_dev.client
    address = client.service_client.config.target_host
    handle = await start(client, settings, seeded)

    first = spawn_worker(settings, smtp, address, tmp_path / "first")
    try:
        async with asyncio.timeout(60):
            while len(smtp.messages) < 40:
                assert first.poll() is None, (tmp_path / "first" / "worker.log").read_text()
                await asyncio.sleep(0.02)
        # From here the server takes each message and holds its answer: the worker is stuck on the next one,
        # "sending" committed, when it dies.
        smtp.reply_delay = 10
        await until_quiet(smtp)
    finally:
        stop(first, signal.SIGKILL)  # mid-batch: no chance to finish or to record anything
    smtp.reply_delay = 0
    at_kill = len(smtp.messages)
    in_flight = parseaddr(str(smtp.messages[-1]["To"]))[1].lower()
    in_flight_id = str(smtp.messages[-1]["Message-ID"])

    second = spawn_worker(settings, smtp, address, tmp_path / "second")
    try:
        progress = await result(handle, 90)
    finally:
        stop(second, signal.SIGTERM)

    assert 40 <= at_kill < len(seeded.mailed) // 2  # the first worker died with most of the newsletter unsent
    rows = await deliveries(db, seeded)
    # Everyone exactly once, nobody outside the audience. The message in flight when the worker died reached the
    # server unanswered: the new worker cannot know it was taken, so it sends it again under the same Message-ID
    # (a copy the recipient's mail system drops) and records it sent; nothing is left unknown.
    assert received(smtp) == Counter(seeded.mailed)
    assert [str(m["Message-ID"]) for m in smtp.sent_to(in_flight)] == [in_flight_id] * 2
    assert rows[in_flight].status == "sent" and rows[in_flight].provider_message_id == in_flight_id
    assert {row.status for recipient, row in rows.items() if recipient in seeded.mailed} == {"sent"}
    assert progress == seeded.expected()
    assert await publication_progress(db, seeded) == progress


async def until_quiet(smtp: SmtpServer) -> None:
    """Until no message has arrived for half a second: the worker is waiting on the server's answer."""
    async with asyncio.timeout(30):
        seen = -1
        while seen != len(smtp.messages):
            seen = len(smtp.messages)
            await asyncio.sleep(0.5)
