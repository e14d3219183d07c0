"""Backups and restores for an admin (``/api/system``: their company, through the workflows) and for the command
line (``bas backup`` / ``bas restore``, which run ``db.backup`` directly). The request is audited here before the
wait; the outcome (``db.audit``) by the workflow, or here for the command line.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from core.config import Settings
from core.ids import new_id
from db import audit as audit_log
from db import backup as engine
from db.base import utcnow
from db.models import Backup, User
from db.session import transaction
from schemas.backups import (
    BackupCreated,
    BackupInput,
    BackupResult,
    RestoreDone,
    RestoreInput,
    RestoreResult,
    StoppedWorkflows,
    backup_workflow_id,
    human_size,
    restore_workflow_id,
)
from schemas.common import Page, PageRequest
from schemas.temporal import QueueKind, run_attributes
from services import audit
from services.errors import Conflict, DomainError, NotFound, ServiceUnavailable
from services.paging import paginate
from services.tenancy import owned
from workflows.backup import BackupWorkflow, RestoreWorkflow

log = logging.getLogger(__name__)

T = TypeVar("T")

WAIT_SECONDS = 60.0
"""How long ``POST /api/system/backup`` and ``/restore`` wait for the workflow before answering 503 (read per call)."""


class BackupFailed(DomainError):
    """The backup or restore broke for a reason that is not the caller's (disk, database): a 500."""

    status_code = 500
    code = "server_error"


def _refusal(error: WorkflowFailureError, backup_id: str, what: str) -> DomainError:
    """The domain error behind a failed workflow: ``db.backup``'s refusals travel as typed application errors."""
    deepest: BaseException = error
    cause: BaseException | None = error.cause
    while cause is not None:
        if isinstance(cause, ApplicationError):
            if cause.type == "BackupNotFound":
                return NotFound("backup", backup_id)
            if cause.type in ("BackupRefused", "ScopeMismatch"):
                return Conflict(cause.message)
            if cause.type == "RestoreTooLate":
                return ServiceUnavailable(cause.message)
        deepest, cause = cause, cause.__cause__
    return BackupFailed(f"{what} failed: {deepest}")


async def _outcome(handle: WorkflowHandle[Any, T], backup_id: str, what: str) -> T:
    wait_seconds = WAIT_SECONDS
    try:
        return await asyncio.wait_for(handle.result(), wait_seconds)
    except TimeoutError as exc:
        log.warning("%s (%s) not finished after %.0fs; it goes on in the background", what, handle.id, wait_seconds)
        raise ServiceUnavailable(
            f"{what} has not finished within {wait_seconds:.0f}s; it goes on in the background as Temporal "
            f"workflow {handle.id} (is a worker running?)"
        ) from exc
    except WorkflowFailureError as exc:
        refusal = _refusal(exc, backup_id, what)
        log.error("%s (%s) failed: %s", what, handle.id, refusal.message)
        raise refusal from exc


async def _record_request(
    session: AsyncSession, actor: User, action: str, backup_id: str, facts: dict[str, Any]
) -> None:
    """Who asked, committed before the wait: a backup or restore that outlives it (the caller gets a 503 and the
    workflow goes on) or fails is still on record as requested, by whom and from where."""
    audit.record(session, actor.company_id, actor, action, "backup", backup_id, audit.changed({}, facts))
    await session.commit()


async def create(session: AsyncSession, client: Client, settings: Settings, actor: User) -> BackupCreated:
    """Back up the admin's company through ``BackupWorkflow`` and wait for it."""
    backup_id = new_id("bkp")
    what = f"backup {backup_id} of {actor.company_id}"
    try:
        handle = await client.start_workflow(
            BackupWorkflow.run,
            BackupInput(backup_id=backup_id, company_id=actor.company_id, requested_by=actor.id),
            id=backup_workflow_id(backup_id),
            task_queue=settings.task_queue(QueueKind.MAIN),
            search_attributes=run_attributes(actor.company_id, backup_id, None),
            static_summary=f"Backup of company {actor.company_id}",
        )
    except RPCError as exc:
        raise ServiceUnavailable(f"Temporal is not reachable; {what} was not started") from exc
    await _record_request(session, actor, "backup.requested", backup_id, {})
    log.info("user %s started %s", actor.id, what)
    result = await _outcome(handle, backup_id, what)  # the workflow has put "backup.created" on record
    return BackupCreated(
        message="Backup created successfully",
        backup_id=result.backup_id,
        created_at=result.created_at,
        size=human_size(result.size_bytes),
    )


async def restore(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    actor: User,
    backup_id: str,
) -> RestoreDone:
    """Restore the admin's company from one of its backups through ``RestoreWorkflow`` and wait for it."""
    backup = await owned(session, actor, Backup, backup_id, "backup")
    if backup.status != "completed":
        raise Conflict(f"backup {backup_id} is {backup.status}; only a completed backup can be restored")
    restore_id = new_id("rst")
    what = f"restore {restore_id} of {actor.company_id} from {backup_id}"
    try:
        handle = await client.start_workflow(
            RestoreWorkflow.run,
            RestoreInput(
                restore_id=restore_id,
                backup_id=backup_id,
                company_id=actor.company_id,
                requested_by=actor.id,
                requested_at=utcnow(),
            ),
            id=restore_workflow_id(restore_id),
            task_queue=settings.task_queue(QueueKind.MAIN),
            search_attributes=run_attributes(actor.company_id, backup_id, None),
            static_summary=f"Restore of company {actor.company_id} from backup {backup_id}",
        )
    except RPCError as exc:
        raise ServiceUnavailable(f"Temporal is not reachable; {what} was not started") from exc
    await _record_request(session, actor, "backup.restore_requested", backup_id, {"restore_id": restore_id})
    log.info("user %s started %s", actor.id, what)
    result = await _outcome(handle, backup_id, what)  # the workflow has put "backup.restored" on record
    return RestoreDone(message="System restored successfully", backup_id=backup_id, restored_at=result.restored_at)


async def list_backups(session: AsyncSession, actor: User, page: PageRequest) -> Page[Backup]:
    """The company's backups, newest first (a platform backup is nobody's company's)."""
    return await paginate(
        session,
        select(Backup).where(Backup.company_id == actor.company_id),
        page,
        sortable={"created_at": Backup.created_at, "size_bytes": Backup.size_bytes},
        default_sort="created_at",
        tie_breaker=Backup.id,
    )


async def get(session: AsyncSession, actor: User, backup_id: str) -> Backup:
    return await owned(session, actor, Backup, backup_id, "backup")


async def back_up_here(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    company_id: str | None,
    progress: engine.Progress = engine.SILENT,
) -> BackupResult:
    """``bas backup``: the engine in this process (no worker), audited as the command line's."""
    result = await engine.create_backup(sessions, settings, new_id("bkp"), company_id, None, progress)
    async with transaction(sessions) as session:
        await audit_log.record_backup(session, result, None)
    return result


async def restore_here(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    backup_id: str,
    scope: str | None,
    workflows: StoppedWorkflows | None,
    progress: engine.Progress = engine.SILENT,
) -> RestoreResult:
    """``bas restore``, once the caller has stopped the workflows in flight (``workflows``; None: not stopped)."""
    restored = await engine.restore(sessions, settings, backup_id, scope, progress)
    result = RestoreResult(
        restore_id=new_id("rst"),
        backup_id=restored.backup_id,
        company_id=restored.company_id,
        restored_at=restored.restored_at,
        tables=restored.tables,
        runs_stopped=restored.runs_stopped,
        workflows=workflows,
    )
    async with transaction(sessions) as session:
        await audit_log.record_restore(session, result, None)
    return result
