"""``HousekeepingWorkflow``: started every day by the housekeeping Temporal Schedule (see ``worker.schedules``)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.housekeeping import HousekeepingActivities
    from schemas.housekeeping import HousekeepingInput, HousekeepingResult
    from workflows.messaging import DB_RETRY


@workflow.defn
class HousekeepingWorkflow:
    @workflow.run
    async def run(self, input: HousekeepingInput) -> HousekeepingResult:
        return await workflow.execute_activity_method(
            HousekeepingActivities.delete_expired_idempotency_records,
            input,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=DB_RETRY,
        )
