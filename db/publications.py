"""What a publication's outcome does to the publication, its content and the event stream, written the same way
whoever learns it: the publish activity (from the platform) or a person settling an unknown outcome.

Activities may not import services, so the one definition lives here. The caller holds the publication's row
lock and commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db import events as db_events
from db.base import utcnow
from db.models import Content, Publication
from schemas.content import ContentStatus
from schemas.content_workflows import PUBLISHER_LABELS, Publisher
from schemas.publishing import LIVE, PublicationStatus

PUBLISH_ERROR = "publish_error"
"""Key of the content's metadata that says why its last publish failed (cleared once it is out)."""


def start(content: Content, publication: Publication, *, scheduled: bool) -> None:
    """The content of a publish that is about to start (or to wait for its time)."""
    if content.status != ContentStatus.published:  # an item already out elsewhere keeps saying where
        content.status = ContentStatus.scheduled if scheduled else ContentStatus.publishing
        content.platform = label(publication.platform)
        content.published_at = publication.publish_at if scheduled else None
    content.updated_at = utcnow()


def label(platform: str) -> str:
    """``wordpress`` -> ``WordPress``: the word the content shows (``/v1`` spells the platform this way)."""
    try:
        return PUBLISHER_LABELS[Publisher(platform)]
    except ValueError:
        return platform


def mark_published(
    session: AsyncSession,
    publication: Publication,
    content: Content,
    *,
    url: str | None,
    external_id: str | None,
    recorded: str | None = None,
    confirmed_by: str | None = None,
) -> None:
    """Out: the publication and the content say where, and ``content.published`` is recorded.

    ``recorded`` says why nothing was actually sent (no publisher configured); ``confirmed_by`` names the person
    who checked an unknown outcome.
    """
    now = utcnow()
    publication.status = PublicationStatus.published
    publication.published_at = now
    publication.url = url or publication.url
    publication.external_id = external_id or publication.external_id
    publication.error = None
    extra: dict[str, Any] = {}
    if recorded is not None:
        extra["recorded"] = recorded
    if confirmed_by is not None:
        extra["confirmed_by"] = confirmed_by
    if extra:
        publication.progress = {**(publication.progress or {}), **extra}
    content.status = ContentStatus.published
    content.published_at = now
    # The content names one place: the latest publish that has an address (or the latest, if none has one).
    if publication.url or content.url is None:
        content.platform = label(publication.platform)
        content.url = publication.url
    content.meta = {key: value for key, value in (content.meta or {}).items() if key != PUBLISH_ERROR}
    content.updated_at = now
    db_events.record(
        session,
        content.company_id,
        "content.published",
        content.id,
        {
            "id": content.id,
            "publication_id": publication.id,
            "platform": publication.platform,
            "url": publication.url,
            "published_at": now.isoformat(),
        },
    )


def mark_failed(session: AsyncSession, publication: Publication, content: Content, reason: str) -> None:
    """Nothing was published: the publication says why, the content is ``failed``."""
    publication.status = PublicationStatus.failed
    publication.error = reason
    if content.status != ContentStatus.published:  # out elsewhere: the publication alone tells this story
        content.status = ContentStatus.failed
        content.meta = {**(content.meta or {}), PUBLISH_ERROR: reason}
        content.updated_at = utcnow()
    _publish_failed(session, publication, content)


def mark_unknown(session: AsyncSession, publication: Publication, content: Content, reason: str) -> None:
    """Nobody knows whether it is out: never retried blindly, a person confirms or retries."""
    publication.status = PublicationStatus.unknown
    publication.error = reason
    if content.status != ContentStatus.published:
        content.status = ContentStatus.unknown_outcome
        content.updated_at = utcnow()
    _publish_failed(session, publication, content)


def _publish_failed(session: AsyncSession, publication: Publication, content: Content) -> None:
    db_events.record(
        session,
        content.company_id,
        "content.publish_failed",
        content.id,
        {
            "id": content.id,
            "publication_id": publication.id,
            "platform": publication.platform,
            "status": publication.status,
            "error": publication.error,
        },
    )


async def mark_cancelled(session: AsyncSession, publication: Publication, content: Content) -> None:
    """Cancelled before its time: the content goes back to where it stood (published elsewhere, approved, draft)."""
    publication.status = PublicationStatus.cancelled
    if content.status not in (ContentStatus.scheduled, ContentStatus.publishing):
        return  # another publish of the item has moved it on since
    still_going = await session.scalar(
        select(Publication.id).where(
            Publication.content_id == content.id,
            Publication.id != publication.id,
            Publication.status.in_(LIVE),
        )
    )
    if still_going is not None:  # the item is still scheduled (or going out) elsewhere: that says where it stands
        return
    earlier: Publication | None = await session.scalar(
        select(Publication)
        .where(
            Publication.content_id == content.id,
            Publication.id != publication.id,
            Publication.status == PublicationStatus.published,
        )
        .order_by(Publication.published_at.desc())
        .limit(1)
    )
    if earlier is not None:
        content.status, content.published_at = ContentStatus.published, earlier.published_at
    else:
        content.status = ContentStatus.approved if content.approved_at is not None else ContentStatus.draft
        content.published_at = content.platform = None
    content.updated_at = utcnow()
