"""``HousekeepingWorkflow``: started every day by the housekeeping Temporal Schedule (see ``worker.schedules``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.housekeeping import HousekeepingActivities
    from schemas.housekeeping import HousekeepingInput, HousekeepingResult
    from workflows.messaging import DB_RETRY


Deleted = TypeVar("Deleted")

PRUNES_EVENTS = "housekeeping-prunes-dispatched-events"
"""Runs started before the outbox was pruned replay without the second activity."""


async def _delete_in_batches(
    deletion: Callable[[HousekeepingActivities, HousekeepingInput], Awaitable[Deleted]], input: HousekeepingInput
) -> Deleted:
    """A batched deletion heartbeats per batch, so a stuck one is retried long before its 30 minutes are up."""
    return await workflow.execute_activity_method(
        deletion,
        input,
        start_to_close_timeout=timedelta(minutes=30),
        heartbeat_timeout=timedelta(minutes=2),
        retry_policy=DB_RETRY,
    )


@workflow.defn
class HousekeepingWorkflow:
    @workflow.run
    async def run(self, input: HousekeepingInput) -> HousekeepingResult:
        result = await _delete_in_batches(HousekeepingActivities.delete_expired_idempotency_records, input)
        if workflow.patched(PRUNES_EVENTS):
            result.events_deleted = await _delete_in_batches(HousekeepingActivities.delete_dispatched_events, input)
        return result
