"""Activities of backups and restores: ``db.backup`` does the work; these report progress, stop workflows and put
the outcome in the audit log.

A restore first stops the scope's workflows in flight (``stop_running_workflows``, also used by ``bas restore``):
each running workflow of the company (or, for a platform restore, of this deployment's task queue) is asked to
cancel, given a grace period to finish, and terminated if it has not. Backups and restores are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from core.config import Settings
from db import audit as audit_log
from db import backup
from db.session import transaction
from schemas.backups import (
    BACKUP_WORKFLOW_PREFIX,
    PLATFORM_SCOPE,
    RESTORE_WORKFLOW_PREFIX,
    BackupInput,
    BackupManifest,
    BackupOutcome,
    BackupResult,
    RestoreInput,
    RestoreOutcome,
    RestoreResult,
    StoppedWorkflows,
    StopWorkflowsInput,
)
from schemas.temporal import COMPANY_ID

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_SECONDS = 10.0
_QUERY_VALUE = re.compile(r"[A-Za-z0-9_.\-]+")
"""What may go into a visibility query between quotes: our ids and task queue names, nothing that could end it."""


def _quoted(value: str) -> str:
    if not _QUERY_VALUE.fullmatch(value):
        raise ValueError(f"{value!r} cannot be used in a visibility query")
    return f"'{value}'"


async def _still_running(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return False


async def stop_running_workflows(
    client: Client,
    task_queue: str,
    company_id: str | None,
    backup_id: str,
    grace_seconds: float,
    heartbeat: Callable[[], None] = lambda: None,
) -> StoppedWorkflows:
    """Cancel the scope's running workflows, wait up to ``grace_seconds`` for them to close, terminate the rest."""
    query = f"ExecutionStatus = 'Running' AND TaskQueue = {_quoted(task_queue)}"
    if company_id is not None:
        query += f" AND {COMPANY_ID.name} = {_quoted(company_id)}"
    cancelled: list[WorkflowHandle[Any, Any]] = []
    async for execution in client.list_workflows(query):
        if execution.id.startswith((BACKUP_WORKFLOW_PREFIX, RESTORE_WORKFLOW_PREFIX)):
            continue
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        try:
            await handle.cancel()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            continue  # closed meanwhile: nothing to stop
        cancelled.append(handle)
        heartbeat()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_seconds
    still_open = cancelled
    while still_open:
        still_open = [handle for handle in still_open if await _still_running(handle)]
        if not still_open or loop.time() >= deadline:
            break
        heartbeat()
        await asyncio.sleep(0.5)
    reason = f"stopped by restore from backup {backup_id}"
    for handle in still_open:
        with contextlib.suppress(RPCError):  # it may close on its own at this very moment
            await handle.terminate(reason=reason)
    log.info(
        "restore from %s: %d running workflows of %s cancelled, %d of them terminated after %.0fs",
        backup_id,
        len(cancelled),
        company_id or PLATFORM_SCOPE,
        len(still_open),
        grace_seconds,
    )
    return StoppedWorkflows(cancelled=len(cancelled), terminated=len(still_open))


class _Heartbeats:
    """``db.backup`` progress as heartbeat details, beaten in the background so one long statement (deleting a
    big table) does not look like a dead worker."""

    def __init__(self) -> None:
        self._details: dict[str, Any] = {"step": "starting", "rows": 0, "total": 0}

    def step(self, label: str, total: int) -> None:
        self._details = {"step": label, "rows": 0, "total": total}

    def advance(self, rows: int) -> None:
        self._details["rows"] += rows

    async def _beat(self) -> None:
        while True:
            activity.heartbeat(dict(self._details))
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)

    @contextlib.asynccontextmanager
    async def beating(self) -> AsyncIterator[_Heartbeats]:
        beat = asyncio.create_task(self._beat())
        try:
            yield self
        finally:
            beat.cancel()


def _refused(error: backup.BackupError) -> ApplicationError:
    # Not retried: a damaged file or another schema revision will not be different next time.
    return ApplicationError(str(error), type=type(error).__name__, non_retryable=True)


class BackupActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    @activity.defn
    async def create_backup(self, input: BackupInput) -> BackupResult:
        async with _Heartbeats().beating() as progress:
            try:
                return await backup.create_backup(
                    self._sessions, self._settings, input.backup_id, input.company_id, input.requested_by, progress
                )
            except backup.BackupError as exc:
                raise _refused(exc) from exc

    @activity.defn
    async def verify_backup(self, input: RestoreInput) -> BackupManifest:
        """Everything the restore will check, before anything (a workflow included) is stopped."""
        async with _Heartbeats().beating() as progress:
            try:
                return await backup.verify(
                    self._sessions, self._settings, input.backup_id, input.company_id or PLATFORM_SCOPE, progress
                )
            except backup.BackupError as exc:
                raise _refused(exc) from exc

    @activity.defn
    async def stop_workflows(self, input: StopWorkflowsInput) -> StoppedWorkflows:
        return await stop_running_workflows(
            activity.client(),
            activity.info().task_queue,
            input.company_id,
            input.backup_id,
            input.grace_seconds,
            heartbeat=activity.heartbeat,
        )

    @activity.defn
    async def record_backup(self, input: BackupOutcome) -> None:
        """``backup.created`` on record from here, not from the API: a caller that stopped waiting is no reason
        for a backup to go unaudited. Idempotent, so a retry after the commit adds nothing."""
        async with transaction(self._sessions) as session:
            await audit_log.record_backup(session, input.result, input.requested_by)

    @activity.defn
    async def record_restore(self, input: RestoreOutcome) -> None:
        """``backup.restored``, as ``record_backup``."""
        async with transaction(self._sessions) as session:
            await audit_log.record_restore(session, input.result, input.requested_by)

    @activity.defn
    async def restore_backup(self, input: RestoreInput) -> RestoreResult:
        async with _Heartbeats().beating() as progress:
            try:
                restored = await backup.restore(
                    self._sessions, self._settings, input.backup_id, input.company_id or PLATFORM_SCOPE, progress
                )
            except backup.BackupError as exc:
                raise _refused(exc) from exc
        return RestoreResult(
            restore_id=input.restore_id,
            backup_id=restored.backup_id,
            company_id=restored.company_id,
            restored_at=restored.restored_at,
            tables=restored.tables,
            runs_stopped=restored.runs_stopped,
        )
