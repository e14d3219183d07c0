"""Interactions with a lead. An inbound one is a reply: the lead becomes engaged and its sequences stop."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from core.ids import new_id
from db import events as db_events
from db.models import Interaction, Lead, User
from schemas.common import Page, PageRequest
from schemas.lead_follow_up import LeadEvent
from schemas.leads import Direction, InteractionCreate, InteractionFilter, InteractionStatus, LeadStatus
from services import events, leads
from services.paging import paginate

log = logging.getLogger(__name__)

SORTABLE = {
    "created_at": Interaction.created_at,
    "type": Interaction.type,
    "direction": Interaction.direction,
    "status": Interaction.status,
}
# A reply moves a lead forward only from these; a qualified or converted lead stays where it is.
_ENGAGES = (LeadStatus.new, LeadStatus.contacted)


async def create(
    session: AsyncSession, client: Client | None, actor: User, lead_id: str, body: InteractionCreate
) -> Interaction:
    """Record an interaction a user logged by hand."""
    lead = await leads.get(session, actor, lead_id)
    return await record(session, client, lead, body, created_by=actor.id)


async def record(
    session: AsyncSession, client: Client | None, lead: Lead, body: InteractionCreate, created_by: str | None
) -> Interaction:
    """Write the interaction; an inbound one engages the lead and, once committed, signals its sequences."""
    inbound = body.direction == Direction.inbound
    interaction = Interaction(
        id=new_id("int"),
        company_id=lead.company_id,
        lead_id=lead.id,
        type=body.type,
        direction=body.direction,
        content=body.content,
        channel=body.channel,
        status=body.status or (InteractionStatus.received if inbound else InteractionStatus.delivered),
        created_by=created_by,
        meta=body.metadata,
    )
    session.add(interaction)
    await session.flush()
    await events.emit(
        session,
        lead.company_id,
        "interaction.created",
        interaction.id,
        db_events.interaction_created(interaction),
    )
    if inbound and lead.status in _ENGAGES:
        await leads.change_status(session, lead, LeadStatus.engaged)
    log.info("interaction %s (%s %s) recorded for lead %s", interaction.id, body.direction, body.type, lead.id)
    if inbound:
        await session.commit()
        await leads.notify_sequences(session, client, lead.id, LeadEvent.replied, interaction.id)
    return interaction


async def list_interactions(
    session: AsyncSession, actor: User, filters: InteractionFilter, page: PageRequest
) -> Page[Interaction]:
    statement = select(Interaction).where(Interaction.company_id == actor.company_id)
    if filters.lead_id is not None:
        statement = statement.where(Interaction.lead_id == filters.lead_id)
    if filters.type is not None:
        statement = statement.where(Interaction.type == filters.type)
    if filters.direction is not None:
        statement = statement.where(Interaction.direction == filters.direction)
    return await paginate(
        session, statement, page, sortable=SORTABLE, default_sort="created_at", tie_breaker=Interaction.id
    )


async def list_for_lead(
    session: AsyncSession, actor: User, lead_id: str, filters: InteractionFilter, page: PageRequest
) -> Page[Interaction]:
    """One lead's interactions; a lead the caller cannot see is a 404, not an empty list."""
    await leads.get(session, actor, lead_id)
    return await list_interactions(session, actor, filters.model_copy(update={"lead_id": lead_id}), page)
