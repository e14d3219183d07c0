"""Writing a content item with the configured writer (on the LLM task queue) and recording a failure.

A 429 or a 5xx from the model's service, or no answer, is retried by Temporal with backoff; a 400 is the same
request failing again, so it fails the run at once with the service's reason.
"""

from __future__ import annotations

import logging

import openai
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.content.writer import Company as WriterCompany
from activities.content.writer import ContentRefused, finish, writer_for
from core.config import Settings
from db import events as db_events
from db.base import utcnow
from db.models import Company, Content
from db.session import transaction
from schemas.content import ContentBrief, ContentStatus
from schemas.content_workflows import GenerateStep, GenerationFailed, GenerationResult

log = logging.getLogger(__name__)

REFUSED = "ContentRefused"
"""The error type a workflow does not retry: the model's service refused the request itself."""


class ContentActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    @activity.defn
    async def write_content(self, step: GenerateStep) -> GenerationResult:
        """Write the item from its brief; a retry after the text was stored returns what is stored."""
        async with self._sessions() as session:
            content = await session.get(Content, step.content_id)
            company = await session.get(Company, step.company_id)
            if content is None or company is None or content.company_id != company.id:
                raise ApplicationError(
                    f"content {step.content_id} no longer exists", type="NotFound", non_retryable=True
                )
            if content.status != ContentStatus.generating:
                return GenerationResult(content_id=content.id, status=content.status)
            brief = ContentBrief.model_validate(content.parameters)
            author = WriterCompany(name=company.name, industry=company.industry)
        # Outside any transaction: a model may take a minute and must not hold a database connection.
        writer = writer_for(self._settings)
        try:
            written, metadata = finish(brief, await writer.write(brief, author))
        except ContentRefused as exc:
            raise ApplicationError(str(exc), type=REFUSED, non_retryable=True) from exc
        except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError) as exc:
            # APITimeoutError is an APIConnectionError. Temporal retries these with backoff.
            log.warning("model service unavailable for content %s (%s); will retry", step.content_id, exc)
            raise
        except openai.APIStatusError as exc:
            if exc.status_code >= 500:
                raise
            raise ApplicationError(
                f"the model's service refused the request: {exc.status_code} {exc.message}",
                type=REFUSED,
                non_retryable=True,
            ) from exc
        async with transaction(self._sessions) as session:
            content = await session.get(Content, step.content_id, with_for_update=True)
            if content is None:
                raise ApplicationError(f"content {step.content_id} was deleted while written", non_retryable=True)
            if content.status != ContentStatus.generating:  # an earlier attempt stored its text first
                return GenerationResult(content_id=content.id, status=content.status)
            content.title = written.title[:500]
            content.body = written.body
            content.tags = written.tags
            content.meta = {**(content.meta or {}), **metadata}
            content.status = ContentStatus.draft
            content.updated_at = utcnow()
            db_events.record(
                session,
                content.company_id,
                "content.generated",
                content.id,
                {"id": content.id, "type": content.type, "title": content.title, "word_count": metadata["word_count"]},
            )
        log.info(
            "content %s written by %s (%s words, %s tokens)",
            step.content_id,
            written.writer,
            metadata["word_count"],
            written.tokens,
        )
        return GenerationResult(content_id=step.content_id, status=ContentStatus.draft)

    @activity.defn
    async def record_generation_failed(self, failed: GenerationFailed) -> None:
        """The item could not be written: it is ``failed`` and says why (its run says so too)."""
        async with transaction(self._sessions) as session:
            content = await session.get(Content, failed.content_id, with_for_update=True)
            if content is None or content.status != ContentStatus.generating:
                return
            content.status = ContentStatus.failed
            content.meta = {**(content.meta or {}), "error": failed.reason}
            content.updated_at = utcnow()
        log.warning("content %s could not be written: %s", failed.content_id, failed.reason)
