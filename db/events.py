"""Domain event rows and the payload shapes they carry, shared by services and activities.

Activities may not import services, so the one definition of "what an event looks like" lives here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from db.models import DomainEvent, Interaction


def record(
    session: AsyncSession, company_id: str, event_type: str, entity_id: str | None, payload: dict[str, Any]
) -> DomainEvent:
    """Add the event to the session: it commits (or rolls back) with the change it describes."""
    event = DomainEvent(id=new_id("evt"), company_id=company_id, type=event_type, entity_id=entity_id, payload=payload)
    session.add(event)
    return event


def interaction_created(interaction: Interaction) -> dict[str, Any]:
    return {
        "id": interaction.id,
        "lead_id": interaction.lead_id,
        "type": interaction.type,
        "direction": interaction.direction,
        "channel": interaction.channel,
    }


def status_changed(lead_id: str, previous: str, current: str) -> dict[str, Any]:
    return {"id": lead_id, "from": str(previous), "to": str(current)}
