"""Writing audit entries, for ``services.audit`` (a change a caller made) and for the activities that finish a
backup or a restore (the worker records the outcome, so it is on record even when the caller stopped waiting)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from db.models import AuditEntry, Company
from schemas.backups import BackupResult, RestoreResult

log = logging.getLogger("bas.audit")


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{"role": ["user", "manager"]}`` for each key whose value differs; the shape every entry uses."""
    return {key: [before.get(key), value] for key, value in after.items() if before.get(key) != value}


def add_entry(
    session: AsyncSession,
    company_id: str,
    actor_id: str | None,
    action: str,
    target_type: str,
    target_id: str | None,
    changes: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditEntry:
    """Add an entry to the session: it commits with the change it describes, or not at all."""
    entry = AuditEntry(
        id=new_id("aud"),
        company_id=company_id,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        changes=changes or {},
        ip_address=ip_address,
    )
    session.add(entry)
    log.info("audit %s %s %s by %s from %s", action, target_type, target_id, actor_id, ip_address)
    return entry


async def _company_ids(session: AsyncSession, company_id: str | None) -> list[str]:
    """Whose audit log an entry goes to: the company's, or for the platform every company's."""
    if company_id is not None:
        return [company_id]
    return list(await session.scalars(select(Company.id).order_by(Company.id)))


async def _recorded(
    session: AsyncSession, company_id: str, action: str, backup_id: str, restore_id: str | None
) -> bool:
    """Whether this outcome is in the company's log already: an activity retried after its commit adds nothing."""
    entries = await session.scalars(
        select(AuditEntry).where(
            AuditEntry.company_id == company_id, AuditEntry.action == action, AuditEntry.target_id == backup_id
        )
    )
    return any(restore_id is None or entry.changes.get("restore_id") == [None, restore_id] for entry in entries)


async def record_backup(session: AsyncSession, result: BackupResult, actor_id: str | None) -> None:
    """``backup.created`` in the audit log of each company the backup holds, once (``actor_id`` None: the
    command line)."""
    facts = {"scope": result.company_id or "platform", "size_bytes": result.size_bytes}
    facts["rows"] = sum(result.tables.values())
    for company_id in await _company_ids(session, result.company_id):
        if not await _recorded(session, company_id, "backup.created", result.backup_id, None):
            add_entry(session, company_id, actor_id, "backup.created", "backup", result.backup_id, changed({}, facts))


async def record_restore(session: AsyncSession, result: RestoreResult, actor_id: str | None) -> None:
    """``backup.restored`` in the audit log of each company restored, once per restore (the log itself is never
    restored)."""
    facts: dict[str, Any] = {"restore_id": result.restore_id, "runs_stopped": result.runs_stopped}
    if result.workflows is not None:
        facts |= {
            "workflows_cancelled": result.workflows.cancelled,
            "workflows_terminated": result.workflows.terminated,
        }
    for company_id in await _company_ids(session, result.company_id):
        if not await _recorded(session, company_id, "backup.restored", result.backup_id, result.restore_id):
            add_entry(session, company_id, actor_id, "backup.restored", "backup", result.backup_id, changed({}, facts))
