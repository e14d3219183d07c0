"""Leads: create (one per email per company), list, read, change and erase. Changes reach running sequences."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from temporalio.client import Client
from temporalio.service import RPCError

from core.config import Settings
from core.ids import new_id
from db import events as db_events
from db.base import conflict_insert, utcnow
from db.models import DomainEvent, Interaction, Lead, MessageDelivery, User, WorkflowRun
from schemas.common import Page, PageRequest
from schemas.ids import to_api_id
from schemas.lead_follow_up import LeadEvent
from schemas.leads import Direction, LeadCreate, LeadFilter, LeadStatus, LeadUpdate, TimelineEntry
from schemas.workflow_configs import WorkflowType
from schemas.workflow_runs import WorkflowRunDetail
from services import events, idempotency, lead_follow_up, workflow_runs
from services.errors import Conflict, InvalidField
from services.merge import merge_bounded
from services.paging import paginate
from services.tenancy import owned

log = logging.getLogger(__name__)

SORTABLE = {
    "created_at": Lead.created_at,
    "updated_at": Lead.updated_at,
    "name": Lead.name,
    "email": Lead.email,
    "status": Lead.status,
    "source": Lead.source,
}
# Fields an update may change one for one; null clears the nullable ones.
_PLAIN_FIELDS = ("name", "email", "phone", "source", "notes", "tags", "assigned_to", "timezone")
_REQUIRED_FIELDS = ("name", "source", "status", "tags", "custom_fields")
_STOPPING_STATUSES = {LeadStatus.converted: LeadEvent.converted, LeadStatus.lost: LeadEvent.lost}


@dataclass(frozen=True)
class CreatedLead:
    lead: Lead
    duplicate: bool
    """True when the email already belonged to a lead of the company: ``lead`` is that one, merged."""


async def get(session: AsyncSession, actor: User, lead_id: str, *, with_interactions: bool = False) -> Lead:
    options = [selectinload(Lead.interactions)] if with_interactions else []
    return await owned(session, actor, Lead, lead_id, "lead", options)


def _has_tag(dialect: str, tag: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        # A jsonb constant, which the GIN index ``ix_leads_tags`` answers; ``jsonb_build_array(tag)`` is only
        # stable, so PostgreSQL evaluated it again for every row it rechecked.
        return Lead.tags.bool_op("@>")(literal([tag], Lead.tags.type))
    elements = func.json_each(Lead.tags).table_valued("value")
    return exists(select(elements.c.value).where(elements.c.value == tag))


async def list_leads(session: AsyncSession, actor: User, filters: LeadFilter, page: PageRequest) -> Page[Lead]:
    statement = select(Lead).where(Lead.company_id == actor.company_id)
    if filters.status is not None:
        statement = statement.where(Lead.status == filters.status)
    if filters.source is not None:
        statement = statement.where(Lead.source == filters.source)
    dialect = session.get_bind().dialect.name
    for tag in filters.tags:
        statement = statement.where(_has_tag(dialect, tag))
    if filters.q is not None:
        # autoescape: a "%" or "_" typed in the search box is matched literally, not as a wildcard. On PostgreSQL
        # this is ``ILIKE '%text%'``, which the trigram indexes on name and email answer (migration 0006).
        statement = statement.where(
            or_(Lead.name.icontains(filters.q, autoescape=True), Lead.email.icontains(filters.q, autoescape=True))
        )
    return await paginate(
        session,
        statement,
        page,
        sortable=SORTABLE,
        default_sort="created_at",
        tie_breaker=Lead.id,
        # The tags' and the search's indexes find the matching leads; the order's indexes would test every lead.
        matches_first=bool(filters.tags) or filters.q is not None,
    )


async def _check_assignee(session: AsyncSession, actor: User, user_id: str | None) -> None:
    if user_id is None:
        return
    company_id = await session.scalar(select(User.company_id).where(User.id == user_id))
    if company_id != actor.company_id:
        raise InvalidField("assigned_to", f"{user_id} is not a user of your company")


async def _by_email(session: AsyncSession, company_id: str, email: str) -> Lead | None:
    return await session.scalar(select(Lead).where(Lead.company_id == company_id, Lead.email == email))


async def _insert_unless_known(session: AsyncSession, company_id: str, body: LeadCreate) -> Lead | None:
    """Insert the lead unless the company has its email already (``None`` then), in one statement.

    ``ON CONFLICT DO NOTHING`` on the (company, email) constraint replaces a lookup, a savepoint around the insert
    and its release: a conflict leaves the transaction usable, and a concurrent insert of the same email is waited
    for rather than raised (PostgreSQL; SQLite has one writer at a time).
    """
    insert = conflict_insert(session)
    statement = (
        insert(Lead)
        .values(
            id=new_id("lead"),
            company_id=company_id,
            name=body.name,
            email=body.email,
            phone=body.phone,
            source=body.source,
            status=LeadStatus.new,
            notes=body.notes,
            tags=body.tags,
            custom_fields=body.custom_fields,
            assigned_to=body.assigned_to,
            timezone=body.timezone,
        )
        .on_conflict_do_nothing(index_elements=[Lead.company_id, Lead.email])
        .returning(Lead)
    )
    lead: Lead | None = await session.scalar(statement)
    return lead


def _summary(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.id,
        "name": lead.name,
        "email": lead.email,
        "phone": lead.phone,
        "source": lead.source,
        "status": lead.status,
        "tags": list(lead.tags or []),
    }


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def emit_updated(session: AsyncSession, lead: Lead, changes: dict[str, Any]) -> None:
    await events.emit(
        session,
        lead.company_id,
        "lead.updated",
        lead.id,
        {"id": lead.id, "changes": {name: _json_value(value) for name, value in changes.items()}},
    )


async def create(
    session: AsyncSession, client: Client, settings: Settings, actor: User, body: LeadCreate
) -> CreatedLead:
    """Write the lead and start every matching sequence; an email the company already has is merged instead.

    The merge keeps the first lead's source (where it first came from) and never starts a second sequence.
    """
    if body.email is None and body.phone is None:
        raise InvalidField("email", "a lead needs an email address or a phone number")
    await _check_assignee(session, actor, body.assigned_to)
    lead = await _insert_unless_known(session, actor.company_id, body)
    if lead is None:
        # The company has this email already (perhaps written by a concurrent request a moment ago).
        existing = await _by_email(session, actor.company_id, body.email or "")
        if existing is None:
            raise Conflict("A lead with this email was being changed at the same moment; retry")
        return CreatedLead(await _merge(session, existing, body), duplicate=True)
    await events.emit(session, lead.company_id, "lead.created", lead.id, _summary(lead))
    log.info("user %s created lead %s (%s) in %s", actor.id, lead.id, lead.source, lead.company_id)
    await lead_follow_up.start_matching(session, client, settings, lead, trigger_type="new_lead")
    return CreatedLead(lead, duplicate=False)


async def _merge(session: AsyncSession, lead: Lead, body: LeadCreate) -> Lead:
    """Fold a second submission into the lead: non-empty new values win, tags and custom fields add up."""
    changes: dict[str, Any] = {}
    for name in ("name", "phone", "notes", "assigned_to", "timezone"):
        value = getattr(body, name)
        if value not in (None, "") and value != getattr(lead, name):
            changes[name] = value
    tags = list(dict.fromkeys([*(lead.tags or []), *body.tags]))
    if tags != (lead.tags or []):
        changes["tags"] = tags
    new_fields = {key: value for key, value in body.custom_fields.items() if value not in (None, "")}
    custom_fields = {**(lead.custom_fields or {}), **new_fields}
    if custom_fields != (lead.custom_fields or {}):
        changes["custom_fields"] = custom_fields
    for name, value in changes.items():
        setattr(lead, name, value)
    if changes:
        await session.flush()
        await emit_updated(session, lead, changes)
    log.info("lead %s submitted again in %s; merged %s", lead.id, lead.company_id, sorted(changes) or "nothing")
    return lead


async def change_status(session: AsyncSession, lead: Lead, status: LeadStatus) -> bool:
    """Set the status with its timestamps and event; False when it already was ``status``."""
    previous = lead.status
    if previous == status:
        return False
    now = utcnow()
    lead.status = status
    lead.status_changed_at = now
    lead.converted_at = now if status == LeadStatus.converted else None
    await session.flush()
    await events.emit(
        session, lead.company_id, "lead.status_changed", lead.id, db_events.status_changed(lead.id, previous, status)
    )
    log.info("lead %s status %s -> %s", lead.id, previous, status)
    return True


async def update(session: AsyncSession, client: Client | None, actor: User, lead_id: str, body: LeadUpdate) -> Lead:
    """Change the fields sent; converting or losing the lead stops its sequences (after the change is committed)."""
    lead = await get(session, actor, lead_id)
    sent = body.model_fields_set
    for name in sorted(sent.intersection(_REQUIRED_FIELDS)):
        if getattr(body, name) is None:
            raise InvalidField(name, "may not be null")
    if "assigned_to" in sent:
        await _check_assignee(session, actor, body.assigned_to)
    if "email" in sent and body.email is not None and body.email != lead.email:
        other = await _by_email(session, actor.company_id, body.email)
        if other is not None:
            raise Conflict(f"Another lead of your company ({other.id}) already has this email address")
    changes: dict[str, Any] = {}
    for name in sent.intersection(_PLAIN_FIELDS):
        value = getattr(body, name)
        if value != getattr(lead, name):
            changes[name] = value
    if body.custom_fields is not None:
        merged = merge_bounded(lead.custom_fields or {}, body.custom_fields, "custom_fields")
        if merged != lead.custom_fields:
            changes["custom_fields"] = merged
    if changes.get("email", lead.email) is None and changes.get("phone", lead.phone) is None:
        raise InvalidField("email", "a lead needs an email address or a phone number")
    for name, value in changes.items():
        setattr(lead, name, value)
    if changes:
        await session.flush()
        await emit_updated(session, lead, changes)
    status_changed = body.status is not None and await change_status(session, lead, body.status)
    stop = _STOPPING_STATUSES.get(LeadStatus(lead.status)) if status_changed else None
    if stop is not None:
        await session.commit()
        await notify_sequences(session, client, lead.id, stop)
    return lead


async def delete_lead(session: AsyncSession, client: Client | None, actor: User, lead_id: str) -> None:
    """Erase the lead, its interactions and its events (GDPR); its sequences are told first so none sends again."""
    lead = await get(session, actor, lead_id)
    await notify_sequences(session, client, lead.id, LeadEvent.deleted)
    await erase(session, lead)
    log.info("user %s deleted lead %s in %s", actor.id, lead_id, actor.company_id)


async def erase(session: AsyncSession, lead: Lead) -> None:
    """Delete the lead's rows: it, its interactions, events, stored create responses and message deliveries.

    Tell its sequences first (``notify_sequences(..., LeadEvent.deleted)``); ``delete_lead`` and the person
    erasure (``services.privacy``) both do.
    """
    # Event payloads and stored create responses carry the lead's name and address; erasure reaches them too.
    await session.execute(
        delete(DomainEvent).where(DomainEvent.company_id == lead.company_id, DomainEvent.entity_id == lead.id)
    )
    await idempotency.forget_responses_about(session, lead.company_id, {lead.id, to_api_id(lead.id) or lead.id})
    # Sent messages carry the address and a personal body; the delivery rows go with the lead.
    await session.execute(delete(MessageDelivery).where(MessageDelivery.lead_id == lead.id))
    await session.delete(lead)
    await session.flush()


async def notify_sequences(
    session: AsyncSession, client: Client | None, lead_id: str, event: LeadEvent, interaction_id: str | None = None
) -> None:
    """Signal the lead's running sequences, best effort.

    The database change that caused the signal stands even when Temporal cannot be reached (the send
    activity checks the suppression list before every message); the failure is logged as an error.
    """
    if client is None:
        log.error("Temporal not connected: sequences of lead %s were not told it %s", lead_id, event)
        return
    try:
        await lead_follow_up.signal_lead(session, client, lead_id, event, interaction_id)
    except RPCError as exc:
        log.error("could not tell the sequences of lead %s that it %s: %s", lead_id, event, exc.message)


TIMELINE_LIMIT = 500
"""How many of the most recent interactions, and of the most recent messages, a timeline shows."""
SEQUENCES_SHOWN = 20
"""How many of a lead's most recent follow-up runs its page shows (each asks Temporal for its progress)."""
# Every delivery row is written by a sequence's send activity, which records its interactions on this channel.
_SEQUENCE_CHANNEL = "automated_workflow"


def _message_entry(delivery: MessageDelivery, interaction: Interaction | None) -> TimelineEntry:
    return TimelineEntry(
        kind="message",
        id=delivery.id,
        occurred_at=delivery.sent_at or (interaction.created_at if interaction else delivery.created_at),
        type=delivery.channel,
        direction=Direction.outbound,
        channel=interaction.channel if interaction else _SEQUENCE_CHANNEL,
        status=delivery.status,
        subject=delivery.subject,
        content=delivery.body,
        workflow_run_id=delivery.workflow_run_id,
    )


def _interaction_entry(interaction: Interaction) -> TimelineEntry:
    return TimelineEntry(
        kind="interaction",
        id=interaction.id,
        occurred_at=interaction.created_at,
        type=interaction.type,
        direction=Direction(interaction.direction),
        channel=interaction.channel,
        status=interaction.status,
        subject=(interaction.meta or {}).get("subject"),
        content=interaction.content,
        workflow_run_id=(interaction.meta or {}).get("workflow_run_id"),
    )


async def timeline(session: AsyncSession, actor: User, lead_id: str) -> list[TimelineEntry]:
    """The lead's interactions and messages, oldest first; a sent message appears once, with its delivery status.

    Messages that never became an interaction (suppressed, failed, unknown, still pending) are shown too.
    """
    lead = await get(session, actor, lead_id)
    deliveries = list(
        await session.scalars(
            select(MessageDelivery)
            .where(MessageDelivery.company_id == lead.company_id, MessageDelivery.lead_id == lead.id)
            .order_by(MessageDelivery.created_at.desc())
            .limit(TIMELINE_LIMIT)
        )
    )
    interactions = list(
        await session.scalars(
            select(Interaction)
            .where(Interaction.company_id == lead.company_id, Interaction.lead_id == lead.id)
            .order_by(Interaction.created_at.desc())
            .limit(TIMELINE_LIMIT)
        )
    )
    delivery_ids = {delivery.id for delivery in deliveries}
    recorded_as = {
        interaction.meta["delivery_id"]: interaction
        for interaction in interactions
        if interaction.direction == Direction.outbound and (interaction.meta or {}).get("delivery_id") in delivery_ids
    }
    folded = {interaction.id for interaction in recorded_as.values()}
    entries = [_message_entry(delivery, recorded_as.get(delivery.id)) for delivery in deliveries]
    entries += [_interaction_entry(interaction) for interaction in interactions if interaction.id not in folded]
    entries.sort(key=lambda entry: (entry.occurred_at, entry.id))
    return entries


async def sequences(
    session: AsyncSession, client: Client | None, settings: Settings, actor: User, lead_id: str
) -> list[WorkflowRunDetail]:
    """The lead's follow-up runs, newest first, each read as ``GET /v1/workflow-runs/{id}`` reads it (live progress)."""
    lead = await get(session, actor, lead_id)
    run_ids = list(
        await session.scalars(
            select(WorkflowRun.id)
            .where(
                WorkflowRun.company_id == lead.company_id,
                WorkflowRun.trigger_id == lead.id,
                WorkflowRun.workflow_type == WorkflowType.lead_nurturing,
            )
            .order_by(WorkflowRun.started_at.desc(), WorkflowRun.id)
            .limit(SEQUENCES_SHOWN)
        )
    )
    return [await workflow_runs.detail(session, client, settings, actor, run_id) for run_id in run_ids]
