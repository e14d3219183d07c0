"""A new content item waiting to be written, and whether it needs approval: shared by the content service (a
user asks) and the scheduled-generation activity (a schedule fires), which may not import services."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from db.base import utcnow
from db.models import Company, Content, ContentSchedule
from schemas.content import ContentBrief, ContentStatus

APPROVAL_SETTING = "content_requires_approval"
"""Company setting: ``{"content_requires_approval": true}`` holds every piece for a manager's approval."""


def requires_approval(company: Company, schedule: ContentSchedule | None = None) -> bool:
    """The company's setting, or a schedule's own choice for what it writes."""
    settings: dict[str, Any] = company.settings or {}
    return bool(settings.get(APPROVAL_SETTING)) or bool(schedule is not None and schedule.require_approval)


def new_content(
    session: AsyncSession,
    company: Company,
    brief: ContentBrief,
    *,
    created_by: str,
    schedule: ContentSchedule | None = None,
    content_id: str | None = None,
) -> Content:
    """Add a ``generating`` content item for ``brief`` (the caller flushes or commits with the rest).

    ``content_id`` lets a workflow choose the id up front, so a retried activity finds the row it wrote.
    """
    now = utcnow()
    content = Content(
        id=content_id or new_id("cont"),
        company_id=company.id,
        type=brief.type,
        title=brief.title,
        body=None,
        status=ContentStatus.generating,
        tags=list(brief.keywords),
        meta={},
        parameters=brief.model_dump(mode="json", exclude_defaults=True) | {"type": brief.type.value},
        created_by=created_by,
        schedule_id=schedule.id if schedule else None,
        requires_approval=requires_approval(company, schedule),
        created_at=now,
        updated_at=now,
    )
    session.add(content)
    return content
