"""Content: generating it (one ``GenerateContentWorkflow`` per item), listing, reading, editing and approving.

Lifecycle: generating -> draft -> approved -> scheduled -> published (or failed). Where the company or the
schedule requires approval, nothing is published until a manager or admin approves it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from core.config import Settings
from db import events as db_events
from db.base import utcnow
from db.content import new_content
from db.models import Company, Content, ContentMetric, User, WorkflowRun
from schemas.common import Page, PageRequest
from schemas.content import (
    EDITABLE,
    ContentBrief,
    ContentFilter,
    ContentMetrics,
    ContentStatus,
    ContentUpdate,
)
from schemas.content_workflows import GenerateContentInput, Publisher
from schemas.enums import Role
from schemas.workflow_configs import WorkflowType
from services.errors import Conflict, InvalidField, NotFound, PermissionDenied, ServiceUnavailable
from services.paging import paginate
from services.runs import RunStart, start_recorded
from services.tenancy import owned
from workflows.content import GenerateContentWorkflow, generate_workflow_id

log = logging.getLogger(__name__)

SORTABLE = {
    "created_at": Content.created_at,
    "updated_at": Content.updated_at,
    "published_at": Content.published_at,
    "title": Content.title,
    "status": Content.status,
    "type": Content.type,
}
APPROVERS = (Role.admin, Role.manager)


@dataclass(frozen=True)
class Generation:
    content: Content
    run: WorkflowRun
    finished: bool
    """True when the draft was written within the wait (``generate_and_wait``)."""


async def get(session: AsyncSession, actor: User, content_id: str) -> Content:
    return await owned(session, actor, Content, content_id, "content")


async def list_content(session: AsyncSession, actor: User, filters: ContentFilter, page: PageRequest) -> Page[Content]:
    statement = select(Content).where(Content.company_id == actor.company_id)
    if filters.type is not None:
        statement = statement.where(Content.type == filters.type)
    if filters.status is not None:
        statement = statement.where(Content.status == filters.status)
    return await paginate(
        session, statement, page, sortable=SORTABLE, default_sort="created_at", tie_breaker=Content.id
    )


async def metrics_of(session: AsyncSession, content: Content) -> ContentMetrics:
    """Every reported day added up, in SQL."""
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(ContentMetric.views), 0),
                func.coalesce(func.sum(ContentMetric.clicks), 0),
                func.coalesce(func.sum(ContentMetric.shares), 0),
                func.coalesce(func.sum(ContentMetric.comments), 0),
                func.coalesce(func.sum(ContentMetric.conversions), 0),
            ).where(ContentMetric.content_id == content.id)
        )
    ).one()
    views, clicks, shares, comments, conversions = (int(value) for value in row)
    return ContentMetrics(views=views, clicks=clicks, shares=shares, comments=comments, conversions=conversions)


async def generate(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    actor: User,
    brief: ContentBrief,
    *,
    publish_to: Publisher | None = None,
) -> Generation:
    """Record the item and its run, then start its generation; answers at once."""
    company = await session.get(Company, actor.company_id)
    if company is None:
        raise NotFound("company", actor.company_id)
    content = new_content(session, company, brief, created_by=actor.id)
    await session.flush()
    run = await start_recorded(
        session,
        client,
        settings,
        RunStart(
            workflow_id=generate_workflow_id(content.id),
            workflow_type=WorkflowType.content_generation,
            company_id=company.id,
            entity_id=content.id,
            config_id=None,
            trigger_type="manual",
            summary=f"Write a {brief.type} about {brief.topic[:80]!r}",
        ),
        GenerateContentWorkflow.run,
        lambda run_id: GenerateContentInput(
            company_id=company.id, content_id=content.id, run_id=run_id, publish_to=publish_to
        ),
    )
    if run.status == "failed":
        content.status = ContentStatus.failed
        content.meta = {"error": run.error}
        await session.commit()
        raise ServiceUnavailable(f"Content {content.id} could not be generated: {run.error}")
    log.info("user %s asked for %s %s (run %s)", actor.id, brief.type, content.id, run.id)
    return Generation(content, run, finished=False)


async def generate_and_wait(
    session: AsyncSession, client: Client, settings: Settings, actor: User, brief: ContentBrief
) -> Generation:
    """``/v1``: generate, and wait up to ``BAS_CONTENT_GENERATION_WAIT_SECONDS`` for the draft."""
    generation = await generate(session, client, settings, actor, brief)
    if generation.run.status != "running":
        return generation
    handle = client.get_workflow_handle(generation.run.temporal_workflow_id, run_id=generation.run.temporal_run_id)
    try:
        await asyncio.wait_for(handle.result(), settings.content_generation_wait_seconds)
    except TimeoutError:
        return generation
    except Exception:  # the run failed (its content says why) or Temporal went away: the caller polls
        log.info(
            "generation of %s did not end well within the wait; see its run %s",
            generation.content.id,
            generation.run.id,
        )
    await session.refresh(generation.content)
    return Generation(generation.content, generation.run, finished=True)


def _require_editable(content: Content) -> None:
    if content.status not in EDITABLE:
        raise Conflict(f"Content {content.id} is {content.status}; only a draft, approved or failed item can be edited")


async def update(session: AsyncSession, actor: User, content_id: str, body: ContentUpdate) -> Content:
    """Edit the text (an approved item goes back to draft when approval is required) or approve it."""
    content = await get(session, actor, content_id)
    sent = body.model_fields_set
    changes: dict[str, Any] = {}
    for name in sent.intersection({"title", "body", "tags"}):
        value = getattr(body, name)
        if value is None:
            raise InvalidField(name, "may not be null")
        if value != getattr(content, name):
            changes[name] = value
    if changes:
        _require_editable(content)
        for name, value in changes.items():
            setattr(content, name, value)
        if content.status == ContentStatus.approved and content.requires_approval:
            content.status = ContentStatus.draft  # what was approved is not what it says now
            content.approved_by = content.approved_at = None
        content.updated_at = utcnow()
    if body.status == ContentStatus.approved:
        await approve(session, actor, content)
    elif body.status is not None and body.status != content.status:
        # status scheduled is services.publishing.schedule_from_update's: it starts the publish workflow
        raise InvalidField("status", "set approved here; publishing and scheduling go through /publish")
    await session.flush()
    return content


async def approve(session: AsyncSession, actor: User, content: Content) -> None:
    if actor.role not in APPROVERS:
        raise PermissionDenied("Only a manager or an admin can approve content")
    if content.status == ContentStatus.approved:
        return
    if content.status not in (ContentStatus.draft, ContentStatus.failed) or not content.body:
        raise Conflict(f"Content {content.id} is {content.status}; only a written draft can be approved")
    content.status = ContentStatus.approved
    content.approved_by, content.approved_at = actor.id, utcnow()
    db_events.record(session, content.company_id, "content.approved", content.id, {"id": content.id, "by": actor.id})
    log.info("user %s approved content %s", actor.id, content.id)


def may_publish(content: Content) -> None:
    """Refuse to publish what still waits for approval, or what is not written yet."""
    if not content.body:
        raise Conflict(f"Content {content.id} is {content.status}: there is nothing to publish yet")
    if content.requires_approval and content.status not in (ContentStatus.approved, ContentStatus.scheduled):
        raise Conflict(f"Content {content.id} must be approved by a manager or an admin before it is published")
