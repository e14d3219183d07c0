"""The newsletter's activities against a real database (SQLite and PostgreSQL) and a real SMTP server (aiosmtpd):
the audience, one email per subscribed address through the shared message path, and batches run again after
a crash or cut short by a cancel."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.utils import parseaddr

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.content.newsletter import MESSAGE, NOTHING_TO_SEND, NewsletterActivities, audience, delivery_key
from activities.messaging.outcome import ProviderUnavailable
from activities.outbound import OutboundActivities
from core.config import Settings
from core.ids import new_id
from core.security import verify_unsubscribe
from db.base import utcnow
from db.models import ContentLink, Customer, Interaction, Lead, MessageDelivery, WorkflowAction, WorkflowRun
from db.session import transaction
from schemas.content_workflows import NewsletterProgress
from schemas.messaging import MessageContext, StepInput
from schemas.newsletter import NewsletterAudience, NewsletterBatch, NewsletterBatchResult
from tests.activities.test_outbound_activities import smtp_settings
from tests.support.newsletter import (
    BODY,
    POSTAL_ADDRESS,
    SHARED,
    TITLE,
    Audience,
    content_meta,
    deliveries,
    publication_progress,
    seed_audience,
)
from tests.support.processes import free_port
from tests.support.smtp_server import SmtpServer, text_of


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def configured(settings: Settings, smtp: SmtpServer) -> Settings:
    return smtp_settings(settings, smtp)


@pytest.fixture
def env() -> ActivityEnvironment:
    return ActivityEnvironment()


def batch(
    seeded: Audience, cutoff: datetime, after: str | None, size: int, before: NewsletterProgress
) -> NewsletterBatch:
    return NewsletterBatch(
        company_id=seeded.company_id,
        content_id=seeded.content_id,
        publication_id=seeded.publication_id,
        run_id=seeded.run_id,
        cutoff=cutoff,
        after=after,
        size=size,
        before=before,
    )


async def send_everything(
    env: ActivityEnvironment, activities: NewsletterActivities, seeded: Audience, size: int
) -> tuple[NewsletterAudience, list[NewsletterBatchResult]]:
    """What the workflow does: snapshot, then batch after batch until the audience ends."""
    snapshot = await env.run(activities.snapshot_audience, seeded.input())
    results: list[NewsletterBatchResult] = []
    before, after = NewsletterProgress(total=snapshot.total), None
    while not results or results[-1].more:
        results.append(await env.run(activities.send_batch, batch(seeded, snapshot.cutoff, after, size, before)))
        before, after = results[-1].progress, results[-1].last_contact_id
    return snapshot, results


def received(smtp: SmtpServer) -> Counter[str]:
    return Counter(parseaddr(str(message["To"]))[1].lower() for message in smtp.messages)


async def audience_order(sessions: async_sessionmaker[AsyncSession], seeded: Audience, cutoff: datetime) -> list[str]:
    recipients = audience(seeded.company_id, cutoff).subquery()
    async with sessions() as session:
        return list(await session.scalars(select(recipients.c.contact_id).order_by(recipients.c.contact_id)))


async def test_each_subscribed_address_gets_one_email_with_one_click_unsubscribe(
    db: async_sessionmaker[AsyncSession], configured: Settings, smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    seeded = await seed_audience(db, leads=20, customers=20)
    heartbeats: list[object] = []
    env.on_heartbeat = lambda *details: heartbeats.append(details)
    three_at_once = configured.model_copy(update={"newsletter_concurrency": 3})

    snapshot, results = await send_everything(env, NewsletterActivities(db, three_at_once), seeded, size=7)

    # Exactly the subscribed, unsuppressed addresses, once each; the shared address once, to the customer.
    assert (
        snapshot.total == len(seeded.receives) == 39
    )  # 40, less a lead and a customer unsubscribed, plus the shared one
    assert received(smtp) == Counter(seeded.mailed)
    assert not set(received(smtp)) & (seeded.suppressed | seeded.left_out)
    assert [r.recipients for r in results] == [7, 7, 7, 7, 7, 4]
    assert [r.more for r in results] == [True] * 5 + [False]
    assert len(heartbeats) >= snapshot.total  # one per recipient at least
    # Progress only grows within a batch: it falls back to 0 once per batch after the first, never otherwise.
    counts = [details[0] for details in heartbeats if isinstance(details, tuple)]
    assert len(counts) == len(heartbeats)
    assert sum(later < earlier for earlier, later in itertools.pairwise(counts)) == len(results) - 1

    shared = smtp.sent_to(SHARED.lower())[0]
    assert verify_unsubscribe(configured, shared["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]) == (
        seeded.company_id,
        seeded.receives[SHARED.lower()],
    )
    lead = smtp.sent_to("lead-000@example.com")[0]
    assert lead["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert verify_unsubscribe(configured, lead["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]) == (
        seeded.company_id,
        seeded.receives["lead-000@example.com"],
    )
    assert lead["Subject"] == TITLE
    text = text_of(lead).replace("\r\n", "\n")
    # As written (the braces were not run as a template), but its link goes through a click-tracked one.
    written, link = BODY.split("Read more: ")
    tracked = re.search(r"Read more: https://bas\.example\.com/c/(link_[a-z0-9]+)\n", text)
    assert written in text and tracked is not None and link not in text
    async with db() as session:
        stored = await session.get(ContentLink, tracked.group(1))
    assert stored is not None and (stored.content_id, stored.url) == (seeded.content_id, link)
    assert tracked.group(0) in text_of(smtp.sent_to(SHARED.lower())[0]).replace("\r\n", "\n")  # one link for all
    assert POSTAL_ADDRESS in text and "Unsubscribe: https://bas.example.com/api/lead-nurturing/unsubscribe/" in text

    # The counts, from the delivery rows: on the last batch, the publication and the content.
    expected = seeded.expected()
    assert expected == NewsletterProgress(total=39, sent=37, skipped=2)
    assert results[-1].progress == expected
    assert await publication_progress(db, seeded) == expected
    assert (await content_meta(db, seeded))["newsletter"] == {
        "publication_id": seeded.publication_id,
        **expected.model_dump(),
    }
    rows = await deliveries(db, seeded)
    assert {rows[address].status for address in seeded.suppressed} == {"suppressed"}

    # The shared path wrote each lead's timeline, but no per-recipient actions on the publish run.
    async with db() as session:
        actions = (await session.scalars(select(WorkflowAction).where(WorkflowAction.run_id == seeded.run_id))).all()
        timeline = (
            await session.scalars(
                select(Interaction).where(Interaction.lead_id == seeded.receives["lead-000@example.com"])
            )
        ).all()
    assert actions == []
    assert [(i.direction, i.meta["template_id"]) for i in timeline] == [("outbound", "newsletter")]


async def test_a_batch_run_again_after_a_crash_sends_nothing_twice_and_resends_the_one_in_flight_under_its_id(
    db: async_sessionmaker[AsyncSession], configured: Settings, smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    seeded = await seed_audience(db, leads=8, customers=8)
    activities = NewsletterActivities(db, configured)
    snapshot = await env.run(activities.snapshot_audience, seeded.input())
    order = await audience_order(db, seeded, snapshot.cutoff)
    start = NewsletterProgress(total=snapshot.total)

    # The killed attempt got through three recipients, had committed "sending" for the fourth and the fifth and was
    # in the SMTP call for both (sends within a batch run side by side), and had written the sixth's message but not
    # sent it.
    first = await env.run(activities.send_batch, batch(seeded, snapshot.cutoff, None, 3, start))
    assert first.last_contact_id == order[2]
    outbound = OutboundActivities(db, configured)
    for contact_id in order[3:6]:
        await outbound.compose(
            StepInput(
                idempotency_key=delivery_key(seeded.publication_id, contact_id),
                company_id=seeded.company_id,
                contact_id=contact_id,
                config_id=None,
                run_id=seeded.run_id,
                step=0,
                step_spec=MESSAGE,
                context=MessageContext(content_id=seeded.content_id),
            )
        )
    in_flight = {delivery_key(seeded.publication_id, contact_id) for contact_id in order[3:5]}
    async with transaction(db) as session:
        await session.execute(
            update(MessageDelivery).where(MessageDelivery.idempotency_key.in_(in_flight)).values(status="sending")
        )
    assert len(smtp.messages) == 3

    # The retry: the same batch, from the same start.
    retried = await env.run(activities.send_batch, batch(seeded, snapshot.cutoff, None, 100, start))
    again = await env.run(activities.send_batch, batch(seeded, snapshot.cutoff, None, 100, start))

    rows = await deliveries(db, seeded)
    # The ones in flight may or may not have reached the server: each goes (again) under its own Message-ID, which
    # a mail system that has it already drops. Here they had not: everyone exactly once, nothing left unknown.
    resent = [row for row in rows.values() if row.idempotency_key in in_flight]
    assert len(resent) == 2
    assert all(row.status == "sent" and row.provider_message_id == f"<{row.id}@acme.example.com>" for row in resent)
    assert received(smtp) == Counter(seeded.mailed)
    assert retried.progress == again.progress == seeded.expected()
    assert await publication_progress(db, seeded) == seeded.expected()


async def test_a_publication_retried_under_a_new_run_sends_only_what_was_not_sent(
    db: async_sessionmaker[AsyncSession], configured: Settings, smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    seeded = await seed_audience(db, leads=6, customers=6)
    activities = NewsletterActivities(db, configured)
    snapshot = await env.run(activities.snapshot_audience, seeded.input())
    start = NewsletterProgress(total=snapshot.total)
    first = await env.run(activities.send_batch, batch(seeded, snapshot.cutoff, None, 3, start))

    # A person retries the publication: the same publication, a new run (``services.publishing``).
    async with transaction(db) as session:
        run = await session.get(WorkflowRun, seeded.run_id)
        assert run is not None
        retry = WorkflowRun(
            id=new_id("run"),
            company_id=seeded.company_id,
            workflow_type=run.workflow_type,
            temporal_workflow_id=run.temporal_workflow_id,
            status="running",
            trigger_type="retry",
            trigger_id=run.trigger_id,
        )
        session.add(retry)
    again = dataclasses.replace(seeded, run_id=retry.id)
    retried = await env.run(activities.send_batch, batch(again, snapshot.cutoff, None, 100, start))

    assert received(smtp) == Counter(seeded.mailed)
    assert retried.progress == seeded.expected() and not retried.more
    runs = Counter(row.workflow_run_id for row in (await deliveries(db, seeded)).values())
    assert runs == {seeded.run_id: first.recipients, retry.id: snapshot.total - first.recipients}


async def test_the_audience_is_the_one_at_the_cutoff(
    db: async_sessionmaker[AsyncSession], configured: Settings, smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    seeded = await seed_audience(db, leads=5, customers=5)
    activities = NewsletterActivities(db, configured)
    snapshot = await env.run(activities.snapshot_audience, seeded.input())
    assert await publication_progress(db, seeded) == NewsletterProgress(total=snapshot.total)

    # Mid-send: a new lead arrives (not in this newsletter) and a customer unsubscribes (stopped at the send).
    async with transaction(db) as session:
        session.add(Lead(id=new_id("lead"), company_id=seeded.company_id, name="Late Lead", email="late@example.com"))
        await session.execute(
            update(Customer).where(Customer.email == "customer-001@example.com").values(unsubscribed_at=utcnow())
        )
    result = await env.run(
        activities.send_batch, batch(seeded, snapshot.cutoff, None, 100, NewsletterProgress(total=snapshot.total))
    )

    assert result.recipients == snapshot.total and not result.more
    assert smtp.sent_to("late@example.com") == [] and smtp.sent_to("customer-001@example.com") == []
    assert received(smtp) == Counter(seeded.mailed - {"customer-001@example.com"})
    expected = seeded.expected()
    assert result.progress == expected.model_copy(update={"sent": expected.sent - 1, "skipped": expected.skipped + 1})
    assert (await deliveries(db, seeded))["customer-001@example.com"].error == "the customer unsubscribed"


async def test_content_without_text_is_refused_before_anything_is_sent(
    db: async_sessionmaker[AsyncSession], configured: Settings, smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    seeded = await seed_audience(db, leads=2, customers=2, body="  ")
    with pytest.raises(ApplicationError) as refused:
        await env.run(NewsletterActivities(db, configured).snapshot_audience, seeded.input())
    assert refused.value.type == NOTHING_TO_SEND and refused.value.non_retryable
    assert "has no text" in refused.value.message
    assert smtp.messages == [] and await deliveries(db, seeded) == {}


async def test_a_slow_send_keeps_heartbeating_and_a_cancel_waits_for_the_messages_in_flight(
    db: async_sessionmaker[AsyncSession], configured: Settings, smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    seeded = await seed_audience(db, leads=6, customers=0)
    activities = NewsletterActivities(db, configured.model_copy(update={"newsletter_concurrency": 2}))
    snapshot = await env.run(activities.snapshot_audience, seeded.input())
    smtp.reply_delay = 1.0  # the server holds its answer to DATA: one send takes a second
    env.info = dataclasses.replace(env.info, heartbeat_timeout=timedelta(seconds=0.3))
    heartbeats: list[object] = []
    env.on_heartbeat = lambda *details: heartbeats.append(details)

    sending = asyncio.create_task(
        env.run(
            activities.send_batch, batch(seeded, snapshot.cutoff, None, 100, NewsletterProgress(total=snapshot.total))
        )
    )
    async with asyncio.timeout(10):
        while len(smtp.messages) < 2:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)  # both messages are on the server, waiting for their answers
    env.cancel()
    cancelled = time.perf_counter()
    with pytest.raises(asyncio.CancelledError):
        await sending

    # While the two sends hung, the background kept heartbeating (every 0.1 s) with nobody done yet.
    assert heartbeats.count((0,)) >= 4
    # The cancel took effect once the two messages in flight were settled (the rest of their second of waiting, well
    # before two more rounds of sends could end), and no send started after it: two rows, both sent, nothing left
    # "sending", and nobody else written or mailed.
    assert time.perf_counter() - cancelled < 2 * smtp.reply_delay
    rows = await deliveries(db, seeded)
    assert [row.status for row in rows.values()] == ["sent", "sent"]
    assert received(smtp) == Counter(set(rows))


async def test_a_failed_send_ends_the_batch_with_its_own_error_and_leaves_nothing_sending(
    db: async_sessionmaker[AsyncSession], configured: Settings, env: ActivityEnvironment
) -> None:
    seeded = await seed_audience(db, leads=6, customers=0)
    nobody_listens = configured.model_copy(update={"smtp_port": free_port(), "newsletter_concurrency": 3})
    activities = NewsletterActivities(db, nobody_listens)
    snapshot = await env.run(activities.snapshot_audience, seeded.input())

    with pytest.raises(ProviderUnavailable):  # itself, as Temporal must see it to retry, not inside a group
        await env.run(
            activities.send_batch, batch(seeded, snapshot.cutoff, None, 100, NewsletterProgress(total=snapshot.total))
        )

    # Nothing was accepted: the rows written so far (at most one per sender) wait for the retry as "pending".
    rows = await deliveries(db, seeded)
    assert 1 <= len(rows) <= 3
    assert {row.status for row in rows.values()} == {"pending"}


class _LimitedSmtp:
    """An SMTP server that takes ``per_session`` messages on one connection and turns the next away with a 421, as
    providers limiting messages per connection do; it notes which connection brought each message."""

    def __init__(self, per_session: int) -> None:
        self.host, self.port = "127.0.0.1", free_port()
        self.per_session = per_session
        self.recipients: Counter[str] = Counter()
        self.sessions: Counter[int] = Counter()
        self._controller = Controller(self, hostname=self.host, port=self.port)

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.sessions[id(session)] >= self.per_session:
            return "421 4.7.0 Too many messages on this connection"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.sessions[id(session)] += 1
        self.recipients.update(address.lower() for address in envelope.rcpt_tos)
        return "250 Message accepted for delivery"

    def __enter__(self) -> _LimitedSmtp:
        self._controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._controller.stop()


async def test_a_batch_reuses_its_smtp_sessions_and_replaces_one_the_server_turns_away(
    db: async_sessionmaker[AsyncSession], configured: Settings, env: ActivityEnvironment
) -> None:
    seeded = await seed_audience(db, leads=12, customers=12)
    with _LimitedSmtp(per_session=4) as server:
        limited = configured.model_copy(
            update={"smtp_host": server.host, "smtp_port": server.port, "newsletter_concurrency": 3}
        )
        snapshot, results = await send_everything(env, NewsletterActivities(db, limited), seeded, size=100)

    assert snapshot.total == len(seeded.receives)
    assert len(results) == 1 and results[0].progress == seeded.expected()
    assert server.recipients == Counter(seeded.mailed)
    # Each session carried up to its limit, then a new one took over with no message lost or doubled: far fewer
    # connections than messages, yet more than the three senders alone would have opened.
    assert max(server.sessions.values()) == 4
    assert 3 < len(server.sessions) < len(seeded.mailed) / 2
