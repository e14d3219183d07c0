"""A newsletter: the content item as an email to every subscribed contact of the company, in batches.

Each recipient goes through the shared message path (``OutboundActivities.send``) under the key
``newsletter/{publication_id}/{contact_id}``: a batch retried after a crash finds the rows it wrote and sends
nothing twice, and a message left ``sending`` by the dead attempt is resolved by the message path (an email goes
again under its own Message-ID).

A batch sends to ``newsletter_concurrency`` recipients at a time, over SMTP sessions kept open for the batch
(``email.kept_sessions``). Every send still commits its row before the provider is called; a cancel or a failed
send stops new sends at once, and the ones in flight settle their rows before the batch ends.

The audience is one contact per address (a lead and a customer sharing an address get one email) among the
company's leads and customers that have an address and existed, not unsubscribed, at the cut-off taken when
the newsletter started. Pages follow contact ids, so contacts added meanwhile shift nothing; whoever
unsubscribes or lands on the suppression list after the cut-off is stopped by the message path right before
their send, and counted as skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.messaging import email as email_channel
from activities.outbound import OutboundActivities
from core.config import Settings
from db.base import utcnow
from db.content_links import tracked_text
from db.models import Content, Customer, Lead, MessageDelivery, Publication
from db.session import transaction
from schemas.content_workflows import NewsletterInput, NewsletterProgress
from schemas.leads import Channel
from schemas.messaging import DELIVERED, MessageContext, MessageSpec, StepInput
from schemas.newsletter import NewsletterAudience, NewsletterBatch, NewsletterBatchResult

log = logging.getLogger(__name__)

NOTHING_TO_SEND = "NothingToSend"
"""The content, its publication or its text is missing: retrying cannot help."""

MESSAGE = MessageSpec(
    template_key="newsletter",
    # The content's text goes in as a value, so braces in it are printed, never run as a template.
    template="{{ content_body }}",
    subject="{{ content_title or ('News from ' ~ company_name) }}",
    channel=Channel.email,
)

_COUNTED_AS = {
    **dict.fromkeys(DELIVERED, "sent"),
    "skipped": "skipped",
    "suppressed": "skipped",
    "failed": "failed",
    "unknown": "unknown",
}


def delivery_key(publication_id: str, contact_id: str) -> str:
    return f"newsletter/{publication_id}/{contact_id}"


def audience(company_id: str, cutoff: datetime) -> Select[str]:
    """One contact id per address: the address's lowest id (customers, ``cust_``, before leads), and only while
    none of the contacts at the address had unsubscribed by ``cutoff``."""

    def contacts(model: type[Lead] | type[Customer]) -> Select[Any]:
        opted_out = case((model.unsubscribed_at <= cutoff, 1), else_=0)
        return select(
            model.id.label("contact_id"), func.lower(model.email).label("address"), opted_out.label("opted_out")
        ).where(
            model.company_id == company_id,
            model.email.is_not(None),
            model.email != "",
            model.created_at <= cutoff,
        )

    every = union_all(contacts(Lead), contacts(Customer)).subquery()
    return (
        select(func.min(every.c.contact_id).label("contact_id"))
        .group_by(every.c.address)
        .having(func.max(every.c.opted_out) == 0)
    )


class NewsletterActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings
        # Every recipient's story is its delivery row; two actions per recipient would swamp the run's page. A
        # publication retried by a person runs again under a new run id: its keys still find what was sent.
        self._outbound = OutboundActivities(sessions, settings, record_actions=False, keys_span_runs=True)

    @activity.defn
    async def snapshot_audience(self, input: NewsletterInput) -> NewsletterAudience:
        """Fix the audience at this moment and count it; the newsletter's progress starts from that total."""
        async with transaction(self._sessions) as session:
            content = await _sendable(session, input)
            # Every recipient's copy links through /c/{id}: the links are made once, here, before any send.
            await tracked_text(session, content, self._settings.public_base_url)
            cutoff = utcnow()
            recipients = audience(input.company_id, cutoff).subquery()
            total = await session.scalar(select(func.count()).select_from(recipients))
        progress = NewsletterProgress(total=total or 0)
        await self._record(input.publication_id, input.content_id, progress)
        log.info("newsletter %s of content %s: %d recipients", input.publication_id, input.content_id, progress.total)
        return NewsletterAudience(cutoff=cutoff, total=progress.total)

    @activity.defn
    async def send_batch(self, batch: NewsletterBatch) -> NewsletterBatchResult:
        """Send to the next ``size`` recipients after ``after``, ``newsletter_concurrency`` at a time, heartbeating
        per recipient; write the counts."""
        async with self._sessions() as session:
            page = list(await session.scalars(_page(batch)))
        more = len(page) > batch.size
        page = page[: batch.size]
        waiting = iter(page)
        done = 0

        async def sender() -> None:
            nonlocal done
            # Every sender draws the next recipient from the one iterator: each recipient is sent once, and a cancel
            # or a failure stops new sends while the ones in flight settle (``_uninterrupted``).
            for contact_id in waiting:
                activity.heartbeat(done)
                await _uninterrupted(self._send_one(batch, contact_id))
                done += 1

        async with _kept_alive(lambda: done), email_channel.kept_sessions(self._settings):
            try:
                async with asyncio.TaskGroup() as senders:
                    for _ in range(min(self._settings.newsletter_concurrency, len(page))):
                        senders.create_task(sender())
            except BaseExceptionGroup as failed:
                # The failed send's own error, whose type decides Temporal's retry (``ProviderUnavailable``,
                # ``OutcomeUnresolved``, a non-retryable ``ApplicationError``), not a group that hides it.
                raise failed.exceptions[0] from None
        progress = await self._count(batch, page)
        await self._record(batch.publication_id, batch.content_id, progress)
        log.info("newsletter %s: batch of %d after %s sent; %s", batch.publication_id, len(page), batch.after, progress)
        return NewsletterBatchResult(
            recipients=len(page), last_contact_id=page[-1] if page else None, more=more, progress=progress
        )

    async def _send_one(self, batch: NewsletterBatch, contact_id: str) -> None:
        await self._outbound.send(
            StepInput(
                idempotency_key=delivery_key(batch.publication_id, contact_id),
                company_id=batch.company_id,
                contact_id=contact_id,
                config_id=None,
                run_id=batch.run_id,
                step=0,
                step_spec=MESSAGE,
                context=MessageContext(content_id=batch.content_id),
            )
        )

    async def _count(self, batch: NewsletterBatch, page: list[str]) -> NewsletterProgress:
        """The earlier batches' counts plus this page's, read from its delivery rows (so a retry recounts, never
        adds twice)."""
        counts = batch.before.model_dump()
        if page:
            keys = [delivery_key(batch.publication_id, contact_id) for contact_id in page]
            async with self._sessions() as session:
                rows = await session.execute(
                    select(MessageDelivery.status, func.count())
                    .where(MessageDelivery.idempotency_key.in_(keys))
                    .group_by(MessageDelivery.status)
                )
            for status, count in rows:
                if status in _COUNTED_AS:
                    counts[_COUNTED_AS[status]] += count
        return NewsletterProgress.model_validate(counts)

    async def _record(self, publication_id: str, content_id: str, progress: NewsletterProgress) -> None:
        """On the publication (its own column) and on the content's metadata, where both API surfaces show it."""
        figures = progress.model_dump()
        # Two short transactions, one row lock each: nothing here can deadlock with a publisher locking both.
        async with transaction(self._sessions) as session:
            await session.execute(update(Publication).where(Publication.id == publication_id).values(progress=figures))
        async with transaction(self._sessions) as session:
            content = await session.get(Content, content_id, with_for_update=True)
            if content is not None:
                content.meta = {**(content.meta or {}), "newsletter": {"publication_id": publication_id, **figures}}


async def _sendable(session: AsyncSession, input: NewsletterInput) -> Content:
    """The newsletter's content, once it is known to exist, belong to the publication and have text."""
    content = await session.get(Content, input.content_id)
    if content is None or content.company_id != input.company_id:
        raise ApplicationError(f"content {input.content_id} no longer exists", type=NOTHING_TO_SEND, non_retryable=True)
    publication = await session.get(Publication, input.publication_id)
    if publication is None or publication.content_id != content.id:
        raise ApplicationError(
            f"publication {input.publication_id} of content {content.id} no longer exists",
            type=NOTHING_TO_SEND,
            non_retryable=True,
        )
    if not (content.body or "").strip():
        raise ApplicationError(f"content {content.id} has no text to send", type=NOTHING_TO_SEND, non_retryable=True)
    return content


def _page(batch: NewsletterBatch) -> Select[str]:
    """One more than the batch's size, to tell whether another page follows."""
    recipients = audience(batch.company_id, batch.cutoff).subquery()
    query = select(recipients.c.contact_id)
    if batch.after is not None:
        query = query.where(recipients.c.contact_id > batch.after)
    return query.order_by(recipients.c.contact_id).limit(batch.size + 1)


async def _uninterrupted(send: Awaitable[None]) -> None:
    """Let a cancel (the newsletter cancelled, the worker shutting down) take effect between a sender's recipients.

    Cut off mid-send, a message would stay ``sending`` with no later attempt to settle it; finished, its row is
    settled and the cancel is raised right after.
    """
    task = asyncio.ensure_future(send)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


@contextlib.asynccontextmanager
async def _kept_alive(details: Callable[[], object]) -> AsyncIterator[None]:
    """Heartbeat in the background too, so a slow provider is not taken for a dead worker.

    The heartbeat timeout can then stay short: a killed worker's batch moves to another worker within seconds,
    however long one send may take.
    """
    timeout = activity.info().heartbeat_timeout

    async def beat(every: float) -> None:
        while True:
            await asyncio.sleep(every)
            activity.heartbeat(details())

    beating = asyncio.create_task(beat(timeout.total_seconds() / 3)) if timeout else None
    try:
        yield
    finally:
        if beating is not None:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
