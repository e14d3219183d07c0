"""Domain events: every service emits through ``emit``; webhook delivery fans out from the recorded rows."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db import events as db_events
from db.models import DomainEvent

log = logging.getLogger(__name__)


async def emit(
    session: AsyncSession, company_id: str, event_type: str, entity_id: str | None, data: dict[str, Any]
) -> DomainEvent:
    """Record ``event_type`` in the same transaction as the change it describes (no event for a rolled-back write)."""
    event = db_events.record(session, company_id, event_type, entity_id, data)
    await session.flush()
    log.info("event %s %s for %s in %s", event.id, event_type, entity_id, company_id)
    return event
