"""Publishing a content item to one platform, once.

A publish moves through its ``publications`` row: ``publish`` commits ``sending`` (and one more attempt)
*before* calling the platform, then writes the outcome. What can happen meanwhile:

- the platform could not be reached, or asked to come back later: nothing was created, so the row goes back to
  ``pending`` and the error is raised for Temporal to retry with backoff;
- the request left and no answer came (timeout, dropped connection): ``unknown``, and the content
  ``unknown_outcome``. Nobody retries that blindly: a person confirms or retries it;
- the worker died mid-call: the retried attempt finds ``sending``. WordPress can be asked (the post's slug
  carries the publication id): found, it is ``published`` with the post's address; not found, it is posted
  again; if the lookup fails too, ``unknown``. A webhook cannot be asked, so it is ``unknown``.

Before anything is sent, each http(s) address in the text becomes a click-tracked link (``db.content_links``).
With no publisher configured for the platform the publish is ``recorded``: marked published, no address, logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.content.publishers import (
    LookupFailed,
    PublishResult,
    find_wordpress_post,
    post_slug,
    publish_webhook,
    publish_wordpress,
)
from activities.messaging.outcome import ProviderUnavailable
from core.config import Settings
from core.ids import new_id
from db import publications as outcomes
from db.base import utcnow
from db.content_links import tracked_text
from db.models import Company, Content, Publication, WorkflowRun
from db.session import transaction
from schemas.companies import WebhookIntegration, WordPressIntegration, webhook_of, wordpress_of
from schemas.content import ContentStatus
from schemas.content_workflows import PUBLISHER_LABELS, NewsletterProgress, Publisher, PublishOutcome, PublishStep
from schemas.publishing import (
    SETTLED,
    AutoPublishInput,
    NewsletterOutcome,
    PreparedPublication,
    PublicationStatus,
    PublishFailed,
    publish_workflow_id,
)
from schemas.workflow_configs import WorkflowType

log = logging.getLogger(__name__)

T = TypeVar("T")

NOT_FOUND = "PublicationNotFound"
HEARTBEAT_EVERY = timedelta(seconds=3)
"""While a platform takes its time: a killed worker's attempt is noticed within the workflow's heartbeat timeout."""


@dataclass(frozen=True)
class _Target:
    """Who actually publishes: the configured platform, or ``recorded`` (and why)."""

    publisher: Publisher
    wordpress: WordPressIntegration | None = None
    webhook: WebhookIntegration | None = None
    recorded_because: str | None = None


def _target(company: Company, platform: Publisher) -> _Target:
    if platform == Publisher.wordpress and (config := wordpress_of(company.integrations)) is not None:
        return _Target(Publisher.wordpress, wordpress=config)
    if platform == Publisher.webhook and (hook := webhook_of(company.integrations)) is not None:
        return _Target(Publisher.webhook, webhook=hook)
    if platform == Publisher.recorded:
        return _Target(Publisher.recorded, recorded_because="published to the recorded publisher: nothing was sent")
    return _Target(
        Publisher.recorded,
        recorded_because=f"{PUBLISHER_LABELS[platform]} is not configured for the company "
        f"(integrations.{platform.value}): recorded, nothing was sent",
    )


@dataclass(frozen=True)
class _Prepared:
    """What the platform call needs, read while the row was locked."""

    publication_id: str
    target: _Target
    title: str
    text: str
    slug: str
    payload: dict[str, Any]
    interrupted: bool
    """An earlier attempt called the platform and did not record its answer (the worker died)."""
    ask_first: bool
    """Some earlier attempt may have reached the platform: ask it before posting (WordPress)."""


class PublishingActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    # ---- the publish

    @activity.defn
    async def publish(self, step: PublishStep) -> PublishOutcome:
        """Publish once; a retried attempt returns the outcome already written."""
        async with transaction(self._sessions) as session:
            publication, content, company = await self._load(session, step.publication_id)
            if publication.status in SETTLED:
                return _outcome(publication)
            platform = Publisher(publication.platform)
            if platform == Publisher.newsletter:
                raise ApplicationError(
                    "a newsletter is sent by NewsletterWorkflow, not by the publish activity", non_retryable=True
                )
            target = _target(company, platform)
            interrupted = publication.status == PublicationStatus.sending
            if target.publisher == Publisher.recorded:
                outcomes.mark_published(
                    session, publication, content, url=None, external_id=None, recorded=target.recorded_because
                )
                log.info("publication %s of %s recorded: %s", publication.id, content.id, target.recorded_because)
                return _outcome(publication)
            if interrupted and target.publisher == Publisher.webhook:
                outcomes.mark_unknown(
                    session,
                    publication,
                    content,
                    "an earlier attempt sent the webhook and did not record its answer; a webhook cannot be asked, "
                    f"so it is not sent again (receivers drop repeats of delivery {publication.id})",
                )
                log.warning("publication %s was left sending; recorded as unknown, not resent", publication.id)
                return _outcome(publication)
            prepared = await self._prepare(session, publication, content, target, interrupted)
            if not interrupted:
                self._sending(publication, content)
        # Committed: from here on a retried attempt finds "sending" and asks before it posts again.
        if prepared.ask_first and prepared.target.wordpress is not None:
            found = await self._ask_wordpress(prepared)
            if found is not None:
                return await self._settle(prepared.publication_id, found)
            if prepared.interrupted:
                await self._count_attempt(prepared.publication_id)
        try:
            result = await _heartbeating(self._send(prepared))
        except ProviderUnavailable:
            await self._back_to_pending(prepared.publication_id)
            raise
        return await self._settle(prepared.publication_id, result)

    async def _prepare(
        self, session: AsyncSession, publication: Publication, content: Content, target: _Target, interrupted: bool
    ) -> _Prepared:
        text = await tracked_text(session, content, self._settings.public_base_url)
        title = content.title or f"{content.type.capitalize()} {content.id}"
        parameters: dict[str, Any] = content.parameters or {}
        payload = {
            "event": "content.publish",
            "delivery_id": publication.id,
            "publication_id": publication.id,
            "company_id": content.company_id,
            "content": {
                "id": content.id,
                "type": content.type,
                "title": content.title,
                "body": text,
                "tags": list(content.tags or []),
                "hashtags": list(parameters.get("hashtags") or []),
                "network": parameters.get("network"),
            },
            "sent_at": utcnow().isoformat(),
        }
        return _Prepared(
            publication_id=publication.id,
            target=target,
            title=title,
            text=text,
            slug=post_slug(content.title, publication.id),
            payload=payload,
            interrupted=interrupted,
            ask_first=interrupted or publication.attempts > 0,
        )

    @staticmethod
    def _sending(publication: Publication, content: Content) -> None:
        publication.status = PublicationStatus.sending
        publication.attempts += 1
        publication.error = None
        if content.status != ContentStatus.published:
            content.status = ContentStatus.publishing
        content.updated_at = utcnow()

    async def _ask_wordpress(self, prepared: _Prepared) -> PublishResult | None:
        """Whether an earlier attempt's post exists. If WordPress cannot say: ``unknown`` for an interrupted
        attempt; otherwise (the row is ``pending`` again) retry later."""
        assert prepared.target.wordpress is not None
        try:
            found = await _heartbeating(
                find_wordpress_post(
                    prepared.target.wordpress, prepared.slug, timeout_seconds=self._settings.publish_timeout_seconds
                )
            )
        except (ProviderUnavailable, LookupFailed) as exc:
            if prepared.interrupted:
                return PublishResult(
                    "unknown",
                    error=f"an earlier attempt posted and WordPress cannot say whether the post exists: {exc}",
                )
            await self._back_to_pending(prepared.publication_id)
            raise ProviderUnavailable(f"could not ask WordPress whether an earlier post exists: {exc}") from exc
        if found is not None:
            log.info(
                "publication %s: the post of an earlier attempt exists (%s), not posted again",
                prepared.publication_id,
                found.url,
            )
        return found

    async def _send(self, prepared: _Prepared) -> PublishResult:
        timeout = self._settings.publish_timeout_seconds
        if prepared.target.wordpress is not None:
            return await publish_wordpress(
                prepared.target.wordpress,
                title=prepared.title,
                text=prepared.text,
                slug=prepared.slug,
                timeout_seconds=timeout,
            )
        assert prepared.target.webhook is not None
        return await publish_webhook(
            prepared.target.webhook,
            delivery_id=prepared.publication_id,
            payload=prepared.payload,
            timeout_seconds=timeout,
        )

    async def _back_to_pending(self, publication_id: str) -> None:
        """Nothing reached the platform, so the next attempt may try again."""
        async with transaction(self._sessions) as session:
            await session.execute(
                update(Publication)
                .where(Publication.id == publication_id, Publication.status == PublicationStatus.sending)
                .values(status=PublicationStatus.pending)
            )

    async def _count_attempt(self, publication_id: str) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(Publication).where(Publication.id == publication_id).values(attempts=Publication.attempts + 1)
            )

    async def _settle(self, publication_id: str, result: PublishResult) -> PublishOutcome:
        async with transaction(self._sessions) as session:
            publication, content, _ = await self._load(session, publication_id)
            # A later attempt may have written "unknown" while this one waited; a real answer beats that guess.
            # Any other state was settled by someone else (a person confirmed it): leave it.
            unknown = publication.status == PublicationStatus.unknown
            if publication.status not in (PublicationStatus.sending, PublicationStatus.unknown) or (
                unknown and result.status == "unknown"
            ):
                return _outcome(publication)
            if result.status == "published":
                outcomes.mark_published(session, publication, content, url=result.url, external_id=result.external_id)
                log.info("publication %s of %s published: %s", publication.id, content.id, result.url)
            elif result.status == "failed":
                outcomes.mark_failed(session, publication, content, result.error or "refused by the platform")
                log.warning("publication %s of %s failed: %s", publication.id, content.id, result.error)
            else:
                outcomes.mark_unknown(session, publication, content, result.error or "no answer from the platform")
                log.warning("publication %s of %s: outcome unknown (%s)", publication.id, content.id, result.error)
            return _outcome(publication)

    # ---- around the publish

    @activity.defn
    async def cancel_publication(self, step: PublishStep) -> PublishOutcome:
        """Cancelled before its time: nothing goes out; the content returns to where it stood."""
        async with transaction(self._sessions) as session:
            publication, content, _ = await self._load(session, step.publication_id)
            if publication.status in (PublicationStatus.scheduled, PublicationStatus.pending):
                await outcomes.mark_cancelled(session, publication, content)
                log.info("publication %s of %s cancelled before its time", publication.id, content.id)
            return _outcome(publication)

    @activity.defn
    async def record_publish_failed(self, failed: PublishFailed) -> PublishOutcome:
        """The publish could not be done (retries ran out, or the run failed): ``failed`` if nothing can have left,
        ``unknown`` if an attempt was mid-call."""
        async with transaction(self._sessions) as session:
            publication, content, _ = await self._load(session, failed.publication_id)
            if publication.status in SETTLED:
                return _outcome(publication)
            if publication.status == PublicationStatus.sending:
                outcomes.mark_unknown(session, publication, content, failed.reason)
            else:
                outcomes.mark_failed(session, publication, content, failed.reason)
            log.warning("publication %s of %s: %s (%s)", publication.id, content.id, publication.status, failed.reason)
            return _outcome(publication)

    @activity.defn
    async def begin_newsletter(self, step: PublishStep) -> PublishOutcome:
        """The newsletter is about to go out: ``sending``, unless it was cancelled (or settled) meanwhile."""
        async with transaction(self._sessions) as session:
            publication, content, _ = await self._load(session, step.publication_id)
            if publication.status in (PublicationStatus.pending, PublicationStatus.scheduled):
                self._sending(publication, content)
            return _outcome(publication)

    @activity.defn
    async def record_newsletter_outcome(self, outcome: NewsletterOutcome) -> PublishOutcome:
        """Published if anyone got it; unknown if the only sends nobody confirmed; failed if nobody got it."""
        async with transaction(self._sessions) as session:
            publication, content, _ = await self._load(session, outcome.publication_id)
            if publication.status in SETTLED:
                return _outcome(publication)
            progress = outcome.progress or NewsletterProgress.model_validate(publication.progress or {})
            counts = (
                f"{progress.sent} sent, {progress.skipped} skipped, {progress.failed} failed, "
                f"{progress.unknown} unknown of {progress.total}"
            )
            reason = f"{outcome.error}; {counts}" if outcome.error else counts
            if progress.sent > 0:
                outcomes.mark_published(session, publication, content, url=None, external_id=None)
                publication.error = None if progress.sent == progress.total else reason
            elif progress.unknown > 0:
                outcomes.mark_unknown(session, publication, content, reason)
            else:
                outcomes.mark_failed(session, publication, content, f"nobody was sent the newsletter: {reason}")
            return _outcome(publication)

    @activity.defn
    async def prepare_publication(self, prepare: AutoPublishInput) -> PreparedPublication | None:
        """The publication (and its run row) of a generation that publishes what it wrote, made once per content
        and platform; ``None`` when the content waits for a person's approval or has no text."""
        async with transaction(self._sessions) as session:
            content = await session.get(Content, prepare.content_id, with_for_update=True)
            if content is None or content.company_id != prepare.company_id or not content.body:
                log.warning("content %s has no text to publish; not published", prepare.content_id)
                return None
            existing = await session.scalar(
                select(Publication)
                .where(Publication.content_id == content.id, Publication.platform == prepare.platform)
                .order_by(Publication.created_at)
                .limit(1)
            )
            if existing is not None and existing.workflow_run_id is not None:
                return PreparedPublication(
                    publication_id=existing.id, run_id=existing.workflow_run_id, status=existing.status
                )
            if content.requires_approval and content.status != ContentStatus.approved:
                log.info("content %s waits for approval; not published to %s", content.id, prepare.platform)
                return None
            publication_id = new_id("pub")
            run = WorkflowRun(
                id=new_id("run"),
                company_id=content.company_id,
                workflow_type=WorkflowType.content_generation,
                temporal_workflow_id=publish_workflow_id(publication_id),
                status="running",
                trigger_type="generation",
                trigger_id=content.id,
                results={"generation_run_id": prepare.generation_run_id},
            )
            session.add(run)
            await session.flush()  # the run first: the publication refers to it
            publication = Publication(
                id=publication_id,
                company_id=content.company_id,
                content_id=content.id,
                platform=prepare.platform.value,
                status=PublicationStatus.pending,
                workflow_run_id=run.id,
                progress={},
                attempts=0,
            )
            session.add(publication)
            outcomes.start(content, publication, scheduled=False)
        log.info("content %s will be published to %s (publication %s)", content.id, prepare.platform, publication_id)
        return PreparedPublication(publication_id=publication_id, run_id=run.id, status=PublicationStatus.pending)

    # ---- helpers

    async def _load(self, session: AsyncSession, publication_id: str) -> tuple[Publication, Content, Company]:
        # Locked: two attempts of one publish (a timed-out one still running) take turns on the row.
        publication = await session.get(Publication, publication_id, with_for_update=True)
        content = (
            await session.get(Content, publication.content_id, with_for_update=True)
            if publication is not None
            else None
        )
        company = await session.get(Company, publication.company_id) if publication is not None else None
        if publication is None or content is None or company is None:
            raise ApplicationError(
                f"publication {publication_id} no longer exists (its content was deleted)",
                type=NOT_FOUND,
                non_retryable=True,
            )
        return publication, content, company


async def _heartbeating(call: Awaitable[T]) -> T:
    """Await ``call``, heartbeating meanwhile, so Temporal soon notices an attempt whose worker died."""
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY.total_seconds())
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        if not task.done():
            task.cancel()


def _outcome(publication: Publication) -> PublishOutcome:
    return PublishOutcome(publication_id=publication.id, status=publication.status, url=publication.url)
