"""Domain events: every service emits through ``emit``; webhook delivery fans out from the recorded rows."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from db.models import DomainEvent

log = logging.getLogger(__name__)


async def emit(
    session: AsyncSession, company_id: str, event_type: str, entity_id: str | None, data: dict[str, Any]
) -> DomainEvent:
    """Record ``event_type`` in the same transaction as the change it describes (no event for a rolled-back write)."""
    event = DomainEvent(id=new_id("evt"), company_id=company_id, type=event_type, entity_id=entity_id, payload=data)
    session.add(event)
    await session.flush()
    log.info("event %s %s for %s in %s", event.id, event_type, entity_id, company_id)
    return event
