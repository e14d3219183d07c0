"""The Temporal Schedules the worker keeps itself: housekeeping, every day at 03:17 UTC.

At startup the worker makes sure the schedule exists and says what the settings say (created, or updated in
place if it differs, or left alone). It keeps trying in the background while Temporal is away, so a worker
that starts before its server still comes up and polls.

The schedule id is ``housekeeping`` for the default task-queue prefix and ``housekeeping/{prefix}`` for any
other: deployments that share a namespace through different prefixes (``BAS_TASK_QUEUE_PREFIX``) each clear
their own database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from enum import StrEnum

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from core.config import Settings
from schemas.housekeeping import HousekeepingInput
from schemas.temporal import QueueKind
from workflows.housekeeping import HousekeepingWorkflow

log = logging.getLogger(__name__)

HOUSEKEEPING_ID = "housekeeping"
_DEFAULT_PREFIX = Settings.model_fields["task_queue_prefix"].default
# An odd minute of a quiet hour, away from everything else that runs "at 3".
HOUSEKEEPING_AT = ScheduleCalendarSpec(
    second=(ScheduleRange(0),), minute=(ScheduleRange(17),), hour=(ScheduleRange(3),)
)
FIRST_RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 60.0


class Ensured(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"


def housekeeping_schedule_id(settings: Settings) -> str:
    prefix = settings.task_queue_prefix
    return HOUSEKEEPING_ID if prefix == _DEFAULT_PREFIX else f"{HOUSEKEEPING_ID}/{prefix}"


def housekeeping_input(settings: Settings) -> HousekeepingInput:
    return HousekeepingInput(
        idempotency_retention_hours=settings.idempotency_retention_hours,
        event_retention_days=settings.event_retention_days,
    )


def housekeeping_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            HousekeepingWorkflow.run,
            housekeeping_input(settings),
            id=housekeeping_schedule_id(settings),
            task_queue=settings.task_queue(QueueKind.MAIN),
            static_summary=(
                f"Housekeeping: forget idempotent responses after {settings.idempotency_retention_hours:g}h,"
                f" dispatched events after {settings.event_retention_days:g}d"
            ),
        ),
        spec=ScheduleSpec(calendars=[HOUSEKEEPING_AT], time_zone_name="UTC"),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


async def _differs(client: Client, current: Schedule, desired: Schedule) -> bool:
    action, wanted = current.action, desired.action
    if not isinstance(action, ScheduleActionStartWorkflow) or not isinstance(wanted, ScheduleActionStartWorkflow):
        return True
    if (action.workflow, action.id, action.task_queue) != (wanted.workflow, wanted.id, wanted.task_queue):
        return True
    try:
        given = await client.data_converter.decode(list(action.args), [HousekeepingInput])
    except Exception:  # an input of an older shape: replace it
        return True
    return (
        given != list(wanted.args)
        or list(current.spec.calendars) != list(desired.spec.calendars)
        or current.spec.time_zone_name != desired.spec.time_zone_name
        or current.policy.overlap != desired.policy.overlap
        or current.policy.catchup_window != desired.policy.catchup_window
    )


async def ensure_housekeeping_schedule(client: Client, settings: Settings) -> Ensured:
    """Create the housekeeping schedule, or update it in place if it differs from the settings (idempotent)."""
    schedule_id = housekeeping_schedule_id(settings)
    desired = housekeeping_schedule(settings)
    handle = client.get_schedule_handle(schedule_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        try:
            await client.create_schedule(schedule_id, desired)
            return Ensured.created
        except ScheduleAlreadyRunningError:  # another worker created it meanwhile: compare with theirs
            description = await handle.describe()
    if not await _differs(client, description.schedule, desired):
        return Ensured.unchanged

    def updater(update: ScheduleUpdateInput) -> ScheduleUpdate:
        # Keep the state: an operator may have paused housekeeping on purpose.
        return ScheduleUpdate(schedule=replace(desired, state=update.description.schedule.state))

    await handle.update(updater)
    return Ensured.updated


async def keep_trying(
    ensure: Callable[[], Awaitable[Ensured]],
    what: str,
    *,
    first_delay: float = FIRST_RETRY_DELAY,
    max_delay: float = MAX_RETRY_DELAY,
) -> Ensured:
    """Run ``ensure`` until it succeeds, backing off while Temporal is unavailable; never raises but on cancel."""
    delay = first_delay
    while True:
        try:
            outcome = await ensure()
        except Exception as exc:  # the worker must come up anyway; its polling recovers on its own
            log.warning("could not make sure the %s schedule exists (%s); retrying in %.0fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
            continue
        log.info("%s schedule %s", what, outcome.value)
        return outcome


async def keep_housekeeping_scheduled(client: Client, settings: Settings) -> Ensured:
    return await keep_trying(lambda: ensure_housekeeping_schedule(client, settings), "housekeeping")
