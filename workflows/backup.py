"""``BackupWorkflow`` (``backup/{backup_id}``) and ``RestoreWorkflow`` (``restore/{restore_id}``).

A restore checks the backup first, then stops the scope's workflows in flight, then replaces the data; a
backup that fails the check stops nothing. Each ends by putting its outcome in the audit log, so it is on record
although the caller may have stopped waiting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.backup import BackupActivities
    from schemas.backups import (
        BackupInput,
        BackupOutcome,
        BackupResult,
        RestoreInput,
        RestoreOutcome,
        RestoreResult,
        StopWorkflowsInput,
    )

OutcomeT = TypeVar("OutcomeT", BackupOutcome, RestoreOutcome)

# A backup or restore is one long activity: it heartbeats its progress, so a dead worker is noticed in
# minutes and the work starts over on another (a restore is one transaction, so a lost attempt left nothing).
DATA_TIMEOUT = timedelta(hours=2)
HEARTBEAT_TIMEOUT = timedelta(minutes=1)
DATA_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_attempts=3)
STOP_TIMEOUT = timedelta(minutes=10)
RECORD_TIMEOUT = timedelta(minutes=1)
RESTORE_START_DEADLINE = timedelta(minutes=5)
"""A restore no worker picked up within this is refused: data replaced long after it was asked for surprises."""


async def _record_outcome(
    patch: str, record: Callable[[BackupActivities, OutcomeT], Awaitable[None]], outcome: OutcomeT
) -> None:
    """The audit entry of the outcome, written by the workflow so that it is there although the caller may have
    stopped waiting. Runs started before ``patch`` were audited by the API once it had the result."""
    if workflow.patched(patch):
        await workflow.execute_activity_method(record, outcome, start_to_close_timeout=RECORD_TIMEOUT)


@workflow.defn
class BackupWorkflow:
    @workflow.run
    async def run(self, input: BackupInput) -> BackupResult:
        result = await workflow.execute_activity_method(
            BackupActivities.create_backup,
            input,
            start_to_close_timeout=DATA_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=DATA_RETRY,
        )
        await _record_outcome(
            "backup-records-its-outcome",
            BackupActivities.record_backup,
            BackupOutcome(result=result, requested_by=input.requested_by),
        )
        return result


@workflow.defn
class RestoreWorkflow:
    @workflow.run
    async def run(self, input: RestoreInput) -> RestoreResult:
        waited = workflow.now() - input.requested_at
        if waited > RESTORE_START_DEADLINE:
            raise ApplicationError(
                f"restore {input.restore_id} waited {waited.total_seconds():.0f}s for a worker; not run so late: "
                "ask for it again",
                type="RestoreTooLate",
                non_retryable=True,
            )
        await workflow.execute_activity_method(
            BackupActivities.verify_backup,
            input,
            start_to_close_timeout=DATA_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=DATA_RETRY,
        )
        stopped = await workflow.execute_activity_method(
            BackupActivities.stop_workflows,
            StopWorkflowsInput(
                company_id=input.company_id, backup_id=input.backup_id, grace_seconds=input.stop_grace_seconds
            ),
            start_to_close_timeout=STOP_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
        )
        restored = await workflow.execute_activity_method(
            BackupActivities.restore_backup,
            input,
            start_to_close_timeout=DATA_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=DATA_RETRY,
        )
        result = restored.model_copy(update={"workflows": stopped})
        await _record_outcome(
            "restore-records-its-outcome",
            BackupActivities.record_restore,
            RestoreOutcome(result=result, requested_by=input.requested_by),
        )
        return result
