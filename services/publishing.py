"""Publishing content: one ``publications`` row and one ``PublishContentWorkflow`` (``content-publish/{id}``) per
publish of an item to a platform, now or at a future time; cancelling a scheduled one; settling an unknown one.

Nothing is published that still waits for a manager's approval (``services.content.may_publish``), and an item
is not published twice to the same platform: while a publish is scheduled, going out or of unknown outcome,
or once it is out, another one is refused (409).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from core.config import Settings
from core.ids import new_id
from db import publications as outcomes
from db.base import utcnow
from db.models import Company, Content, Publication, User, WorkflowRun
from schemas.common import Page, PageRequest
from schemas.companies import webhook_of, wordpress_of
from schemas.content import ContentStatus, ContentUpdate
from schemas.content_workflows import PUBLISHER_LABELS, PublishContentInput, Publisher
from schemas.publishing import (
    LIVE,
    SETTLED,
    PublicationStatus,
    PublisherIn,
    ResolveAction,
    ResolveRequest,
    publish_workflow_id,
)
from schemas.workflow_configs import WorkflowType
from services import content as content_service
from services.errors import Conflict, InvalidField, NotFound, ServiceUnavailable
from services.paging import paginate
from services.runs import RunStart, start_recorded
from workflows.publishing import PublishContentWorkflow

log = logging.getLogger(__name__)

FROZEN = frozenset(
    {ContentStatus.scheduled, ContentStatus.publishing, ContentStatus.published, ContentStatus.unknown_outcome}
)
"""The text cannot change in these states: what was approved (where approval is required) is what goes out."""
_BLOCKING = LIVE | {PublicationStatus.unknown, PublicationStatus.published}
_platforms: TypeAdapter[Publisher] = TypeAdapter(PublisherIn)


@dataclass(frozen=True)
class Started:
    content: Content
    publication: Publication
    run: WorkflowRun | None
    finished: bool = False
    """True when the outcome is known (``publish_and_wait`` saw the run end, or a person confirmed it)."""


def parse_platform(word: str | None, field: str = "platform") -> Publisher | None:
    if word is None:
        return None
    try:
        return _platforms.validate_python(word)
    except ValidationError as exc:
        choices = ", ".join(PUBLISHER_LABELS.values())
        raise InvalidField(field, f"unknown platform {word!r}; choose one of {choices}") from exc


async def default_platform(session: AsyncSession, company_id: str) -> Publisher:
    """The company's configured publisher: WordPress, else the webhook, else recorded."""
    company = await session.get(Company, company_id)
    if company is None:
        raise NotFound("company", company_id)
    if wordpress_of(company.integrations) is not None:
        return Publisher.wordpress
    if webhook_of(company.integrations) is not None:
        return Publisher.webhook
    return Publisher.recorded


def _when(schedule: bool, published_at: datetime | None) -> datetime | None:
    if not schedule:
        if published_at is not None:
            raise InvalidField("published_at", "is only read with schedule: true (without it, it publishes now)")
        return None
    if published_at is None:
        raise InvalidField("published_at", "schedule: true needs the time to publish")
    moment = published_at if published_at.tzinfo is not None else published_at.replace(tzinfo=UTC)
    if moment <= utcnow():
        raise InvalidField("published_at", "must be in the future to schedule a publish")
    return moment.astimezone(UTC)


def _check_publishable(content: Content) -> None:
    if content.status in FROZEN and content.body:
        # Already going out (or out) elsewhere: the text is as it was when it first went, approved if need be.
        if content.requires_approval and content.approved_at is None:
            raise Conflict(f"Content {content.id} must be approved by a manager or an admin before it is published")
        return
    content_service.may_publish(content)


async def _locked_content(session: AsyncSession, actor: User, content_id: str) -> Content:
    content = await content_service.get(session, actor, content_id)
    # Two publish requests for one item take turns: the second sees the first's publication and is refused.
    await session.refresh(content, with_for_update=True)
    return content


async def _refuse_second(
    session: AsyncSession, content: Content, platform: Publisher, excluding: Sequence[str] = ()
) -> None:
    query = select(Publication).where(
        Publication.content_id == content.id,
        Publication.platform == platform,
        Publication.status.in_(_BLOCKING),
    )
    if excluding:
        query = query.where(Publication.id.not_in(excluding))
    blocking = await session.scalar(query.order_by(Publication.created_at.desc()).limit(1))
    if blocking is None:
        return
    where = PUBLISHER_LABELS[platform]
    if blocking.status == PublicationStatus.published:
        at = f" at {blocking.url}" if blocking.url else ""
        raise Conflict(f"Content {content.id} is already published on {where}{at} (publication {blocking.id})")
    if blocking.status == PublicationStatus.unknown:
        raise Conflict(
            f"Whether content {content.id} reached {where} is unknown (publication {blocking.id}): check, then "
            f"confirm or retry it with POST /v1/content/{content.id}/publications/{blocking.id}/resolve"
        )
    raise Conflict(f"Content {content.id} is already {blocking.status} to {where} (publication {blocking.id})")


async def publish(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    actor: User,
    content_id: str,
    platform: Publisher | None,
    *,
    schedule: bool,
    publish_at: datetime | None,
    trigger_type: str = "manual",
) -> Started:
    """Publish the item now, or at ``publish_at`` (``schedule``); answers once the run has started."""
    content = await _locked_content(session, actor, content_id)
    chosen = platform or await default_platform(session, content.company_id)
    moment = _when(schedule, publish_at)
    _check_publishable(content)
    await _refuse_second(session, content, chosen)
    return await _start(session, client, settings, content, chosen, moment, trigger_type)


async def _start(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    content: Content,
    platform: Publisher,
    publish_at: datetime | None,
    trigger_type: str,
    publication: Publication | None = None,
) -> Started:
    """Start the publish of a new publication (or of ``publication`` again) and commit."""
    retry = publication is not None
    if publication is None:
        publication = Publication(
            id=new_id("pub"),
            company_id=content.company_id,
            content_id=content.id,
            platform=platform.value,
            status=PublicationStatus.scheduled if publish_at else PublicationStatus.pending,
            publish_at=publish_at,
            attempts=0,
            progress={},
        )
        session.add(publication)
    before = (content.status, content.platform, content.published_at, publication.status, publication.error)
    publication.status = PublicationStatus.scheduled if publish_at else PublicationStatus.pending
    publication.error = None
    await session.flush()
    # Set before the run starts (committed with it): a quick publish settles the content right after.
    outcomes.start(content, publication, scheduled=publish_at is not None)
    label = PUBLISHER_LABELS[platform]
    when = f" at {publish_at.isoformat()}" if publish_at else ""
    target = publication
    run = await start_recorded(
        session,
        client,
        settings,
        RunStart(
            workflow_id=publish_workflow_id(publication.id),
            workflow_type=WorkflowType.content_generation,
            company_id=content.company_id,
            entity_id=content.id,
            config_id=None,
            trigger_type=trigger_type,
            summary=f"{'Retry: publish' if retry else 'Publish'} {content.id} to {label}{when}",
        ),
        PublishContentWorkflow.run,
        lambda run_id: PublishContentInput(
            company_id=content.company_id,
            content_id=content.id,
            publication_id=target.id,
            run_id=run_id,
            platform=platform,
            publish_at=publish_at,
        ),
    )
    if run.status == "failed":
        content.status, content.platform, content.published_at = before[0], before[1], before[2]
        if retry:
            publication.status, publication.error = before[3], before[4]
        else:
            publication.status, publication.error = PublicationStatus.failed, run.error
        await session.commit()
        raise ServiceUnavailable(f"Content {content.id} could not be published to {label}: {run.error}")
    publication.workflow_run_id = run.id
    # Committed now, not with the request: the worker is about to write this row.
    await session.commit()
    log.info("publish of %s to %s%s started (publication %s, run %s)", content.id, label, when, publication.id, run.id)
    return Started(content, publication, run)


async def publish_and_wait(session: AsyncSession, client: Client, settings: Settings, started: Started) -> Started:
    """``/v1``: a publish now waits up to ``BAS_CONTENT_PUBLISH_WAIT_SECONDS`` for its outcome."""
    run = started.run
    if started.publication.publish_at is not None or run is None or run.status != "running":
        return started
    handle = client.get_workflow_handle(run.temporal_workflow_id, run_id=run.temporal_run_id)
    try:
        await asyncio.wait_for(handle.result(), settings.content_publish_wait_seconds)
    except TimeoutError:
        return started
    except Exception:  # the run failed or Temporal went away: the publication says where it stands
        log.info("publish %s did not end well within the wait; see run %s", started.publication.id, run.id)
    await session.refresh(started.content)
    await session.refresh(started.publication)
    return replace(started, finished=started.publication.status in SETTLED)


async def schedule_from_update(
    session: AsyncSession, client: Client | None, settings: Settings, actor: User, content_id: str, body: ContentUpdate
) -> Content:
    """``PATCH /v1/content/{id}`` with ``status: scheduled``: apply the edits, then (re)schedule the publish.

    An item already scheduled for the platform is rescheduled: the earlier publish is cancelled.
    """
    if client is None:
        raise ServiceUnavailable("Temporal is not reachable; a publish cannot be scheduled right now")
    if body.published_at is None:
        raise InvalidField("published_at", "with status scheduled, give the time to publish")
    moment = _when(True, body.published_at)
    content = await content_service.update(session, actor, content_id, body.model_copy(update={"status": None}))
    await session.refresh(content, with_for_update=True)
    platform = (
        parse_platform(body.platform)
        or parse_platform(content.platform)
        or await default_platform(session, content.company_id)
    )
    _check_publishable(content)
    earlier = list(
        await session.scalars(
            select(Publication)
            .where(
                Publication.content_id == content.id,
                Publication.platform == platform,
                Publication.status == PublicationStatus.scheduled,
            )
            .with_for_update()
        )
    )
    await _refuse_second(session, content, platform, excluding=[p.id for p in earlier])
    started = await _start(session, client, settings, content, platform, moment, "manual")
    for publication in earlier:
        publication.status = PublicationStatus.cancelled
    await session.commit()
    await _cancel_runs(client, earlier)
    return started.content


async def cancel(
    session: AsyncSession, client: Client | None, actor: User, content_id: str, platform: Publisher | None
) -> tuple[Content, list[Publication]]:
    """Cancel the item's scheduled publishes (or one platform's); refused once one is going out."""
    content = await _locked_content(session, actor, content_id)
    query = select(Publication).where(
        Publication.content_id == content.id, Publication.status == PublicationStatus.scheduled
    )
    if platform is not None:
        query = query.where(Publication.platform == platform)
    scheduled = list(await session.scalars(query.order_by(Publication.created_at).with_for_update()))
    if not scheduled:
        where = f" to {PUBLISHER_LABELS[platform]}" if platform else ""
        raise Conflict(f"Content {content.id} has no scheduled publish{where} to cancel")
    for publication in scheduled:
        await outcomes.mark_cancelled(session, publication, content)
    # Committed before Temporal hears of it: a publish waking up meanwhile finds "cancelled" and sends nothing.
    await session.commit()
    await _cancel_runs(client, scheduled)
    log.info("user %s cancelled %s of %s", actor.id, [p.id for p in scheduled], content.id)
    return content, scheduled


async def _cancel_runs(client: Client | None, publications: Sequence[Publication]) -> None:
    for publication in publications:
        workflow_id = publish_workflow_id(publication.id)
        if client is None:
            log.warning("Temporal not connected: %s will find its publication cancelled when it wakes", workflow_id)
            continue
        try:
            await client.get_workflow_handle(workflow_id).cancel()
        except RPCError as exc:  # closed already, or Temporal away: the publication is cancelled either way
            log.warning("could not cancel %s on Temporal (%s); its publication is cancelled", workflow_id, exc.message)


async def publications(session: AsyncSession, actor: User, content_id: str, page: PageRequest) -> Page[Publication]:
    """Every publish of the item, newest first: where it went, when, and how it ended."""
    content = await content_service.get(session, actor, content_id)
    return await paginate(
        session,
        select(Publication).where(Publication.content_id == content.id),
        page,
        sortable={
            "created_at": Publication.created_at,
            "published_at": Publication.published_at,
            "publish_at": Publication.publish_at,
            "status": Publication.status,
            "platform": Publication.platform,
        },
        default_sort="created_at",
        tie_breaker=Publication.id,
    )


async def resolve(
    session: AsyncSession,
    client: Client | None,
    settings: Settings,
    actor: User,
    content_id: str,
    publication_id: str,
    body: ResolveRequest,
) -> Started:
    """Settle an unknown outcome: a person confirms it is out (with its address), or has it published again."""
    content = await _locked_content(session, actor, content_id)
    publication = await session.scalar(
        select(Publication)
        .where(Publication.id == publication_id, Publication.content_id == content.id)
        .with_for_update()
    )
    if publication is None:
        raise NotFound("publication", publication_id)
    if publication.status != PublicationStatus.unknown:
        raise Conflict(f"Publication {publication.id} is {publication.status}; only an unknown outcome is resolved")
    run = await session.get(WorkflowRun, publication.workflow_run_id) if publication.workflow_run_id else None
    if body.action == ResolveAction.confirm:
        url = str(body.url) if body.url is not None else None
        outcomes.mark_published(session, publication, content, url=url, external_id=None, confirmed_by=actor.id)
        await session.flush()
        log.info("user %s confirmed publication %s of %s (%s)", actor.id, publication.id, content.id, url)
        return Started(content, publication, run, finished=True)
    if client is None:
        raise ServiceUnavailable("Temporal is not reachable; the publish cannot be retried right now")
    log.info("user %s retries publication %s of %s", actor.id, publication.id, content.id)
    return await _start(
        session, client, settings, content, Publisher(publication.platform), None, "retry", publication=publication
    )
