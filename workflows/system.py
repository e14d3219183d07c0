from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.system import SystemActivities
    from schemas.system import SystemCheckInput, SystemCheckResult


@workflow.defn
class SystemCheckWorkflow:
    """Proves API -> Temporal -> worker -> activity -> database, on demand."""

    @workflow.run
    async def run(self, input: SystemCheckInput) -> SystemCheckResult:
        return await workflow.execute_activity_method(
            SystemActivities.record_system_check, input, start_to_close_timeout=timedelta(seconds=30)
        )
