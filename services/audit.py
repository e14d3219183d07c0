"""The audit log: every change to users, roles, API keys and webhooks, and every backup, restore and erasure."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.request_context import caller
from db import audit as db_audit
from db.models import AuditEntry, User
from schemas.audit import AuditFilter
from schemas.common import Page, PageRequest
from schemas.enums import Role
from services.errors import InvalidField, PermissionDenied
from services.paging import paginate

changed = db_audit.changed  # every caller's entries take this shape


def record(
    session: AsyncSession,
    company_id: str,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: str | None,
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry to the session: it commits with the change it describes, or not at all.

    ``actor`` is None for the command line. A change made through an API key is attributed to the key (the
    user who created it is in the key's own audit entries). Never pass secrets or passwords in ``changes``.
    """
    context = caller()
    actor_id = context.api_key_id or (actor.id if actor else None)
    return db_audit.add_entry(
        session, company_id, actor_id, action, target_type, target_id, changes, context.ip_address
    )


SORTABLE = {"created_at": AuditEntry.created_at, "action": AuditEntry.action}


async def list_entries(session: AsyncSession, actor: User, filters: AuditFilter, page: PageRequest) -> Page[AuditEntry]:
    """The company's entries matching every filter given, newest first unless asked otherwise (admins only)."""
    if actor.role != Role.admin:
        raise PermissionDenied()
    if filters.since and filters.until and filters.since > filters.until:
        raise InvalidField("until", "must be on or after since")
    statement = select(AuditEntry).where(AuditEntry.company_id == actor.company_id)
    for column, value in (
        (AuditEntry.action, filters.action),
        (AuditEntry.target_type, filters.target_type),
        (AuditEntry.target_id, filters.target_id),
        (AuditEntry.actor_id, filters.actor_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if filters.since:
        statement = statement.where(AuditEntry.created_at >= datetime.combine(filters.since, time.min, UTC))
    if filters.until:
        next_day = datetime.combine(filters.until + timedelta(days=1), time.min, UTC)
        statement = statement.where(AuditEntry.created_at < next_day)
    return await paginate(
        session, statement, page, sortable=SORTABLE, default_sort="created_at", tie_breaker=AuditEntry.id
    )
