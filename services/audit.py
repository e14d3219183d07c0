"""The audit log: every change to users, roles, API keys and webhooks, and every backup, restore and erasure."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from core.request_context import caller
from db.models import AuditEntry, User

log = logging.getLogger("bas.audit")


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{"role": ["user", "manager"]}`` for each key whose value differs; the shape every entry uses."""
    return {key: [before.get(key), value] for key, value in after.items() if before.get(key) != value}


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
    entry = AuditEntry(
        id=new_id("aud"),
        company_id=company_id,
        actor_id=context.api_key_id or (actor.id if actor else None),
        action=action,
        target_type=target_type,
        target_id=target_id,
        changes=changes or {},
        ip_address=context.ip_address,
    )
    session.add(entry)
    log.info("audit %s %s %s by %s from %s", action, target_type, target_id, entry.actor_id, entry.ip_address)
    return entry
