"""Content schedules: a ``content_schedules`` row and the Temporal Schedule ``content-schedule/{id}`` it stands for.

Temporal owns the timing: a calendar at the schedule's local time of day in its IANA time zone (so 09:00 stays
09:00 across daylight-saving changes), overlapping runs skipped, never stacked. Each time it starts
``ScheduledGenerationWorkflow``, which takes the next topic and writes it. ``active: false`` pauses the
Temporal Schedule and ``true`` unpauses it; an edit updates it in place (same id); delete removes it.

Made on either surface: ``/api/content-generation/schedule`` here, or a ``content_generation`` workflow config
on ``/v1`` (:func:`follow_config`), whose ``actions`` are the schedule's definition. A config's schedule is
changed through its config only, so the two never disagree.

Every write validates everything before it touches the database or Temporal: a rejected request leaves nothing
behind. The row is committed once Temporal has accepted the change (a new schedule whose commit then fails is
removed from Temporal again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from core.config import Settings
from core.ids import new_id
from db.base import utcnow
from db.models import Company, ContentSchedule, User, WorkflowConfig
from schemas.common import readable_errors
from schemas.content import ENDPOINTS_TYPE_WORDS, ContentType
from schemas.content_schedules import (
    DEFAULT_DAY_OF_MONTH,
    TEMPORAL_WEEKDAY,
    ContentScheduleCreate,
    ContentScheduleDefinition,
    ContentScheduleUpdate,
    Frequency,
    Weekday,
)
from schemas.content_workflows import ScheduledGenerationInput
from schemas.enums import Role
from schemas.ids import to_api_id
from schemas.temporal import QueueKind, run_attributes
from schemas.workflow_configs import WorkflowType
from services.errors import Conflict, InvalidField, NotFound, ServiceUnavailable
from services.tenancy import owned
from services.users import require_role
from workflows.content_schedule import ScheduledGenerationWorkflow, content_schedule_id

log = logging.getLogger(__name__)

EDITORS = (Role.admin, Role.manager)
"""A schedule may publish without a person looking: only those who may approve content may set one up."""
CATCHUP_WINDOW = timedelta(days=1)
"""A time missed while Temporal was down is made up when it is back within a day; older ones are dropped."""
DESCRIBE_TIMEOUT = timedelta(seconds=5)
PAUSED_NOTE = "paused: active is false"


@dataclass(frozen=True)
class ScheduleView:
    schedule: ContentSchedule
    next_run_times: list[datetime] | None
    """What Temporal reports; empty while paused, ``None`` when Temporal cannot be asked."""


# ---------------------------------------------------------------- the Temporal side


def schedule_spec(schedule: ContentSchedule, *, start_at: datetime | None = None) -> ScheduleSpec:
    """When the schedule runs: one calendar entry at its local time of day, in its own time zone."""
    hour, minute = (int(part) for part in schedule.time_of_day.split(":"))
    every_day = ScheduleCalendarSpec()
    day_of_week = every_day.day_of_week
    day_of_month = every_day.day_of_month
    if schedule.frequency == Frequency.weekly:
        day_of_week = (ScheduleRange(TEMPORAL_WEEKDAY[Weekday(schedule.day_of_week or Weekday.Monday)]),)
    elif schedule.frequency == Frequency.monthly:
        day_of_month = (ScheduleRange(int(schedule.parameters.get("day_of_month") or DEFAULT_DAY_OF_MONTH)),)
    calendar = ScheduleCalendarSpec(
        second=(ScheduleRange(0),),
        minute=(ScheduleRange(minute),),
        hour=(ScheduleRange(hour),),
        day_of_month=day_of_month,
        day_of_week=day_of_week,
        comment=_when(schedule),
    )
    return ScheduleSpec(calendars=[calendar], time_zone_name=schedule.timezone, start_at=start_at)


def _when(schedule: ContentSchedule) -> str:
    if schedule.frequency == Frequency.weekly:
        return f"every {schedule.day_of_week} at {schedule.time_of_day} {schedule.timezone}"
    if schedule.frequency == Frequency.monthly:
        day = schedule.parameters.get("day_of_month") or DEFAULT_DAY_OF_MONTH
        return f"monthly on day {day} at {schedule.time_of_day} {schedule.timezone}"
    return f"daily at {schedule.time_of_day} {schedule.timezone}"


def _search_attributes(schedule: ContentSchedule) -> TypedSearchAttributes:
    return run_attributes(schedule.company_id, schedule.id, schedule.workflow_config_id)


def temporal_schedule(schedule: ContentSchedule, settings: Settings, *, start_at: datetime | None = None) -> Schedule:
    """The Temporal Schedule a row stands for; ``start_at`` only lets a test look at another season."""
    kind = ENDPOINTS_TYPE_WORDS[ContentType(schedule.content_type)].replace("_", " ")
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ScheduledGenerationWorkflow.run,
            ScheduledGenerationInput(schedule_id=schedule.id),
            id=content_schedule_id(schedule.id),
            task_queue=settings.task_queue(QueueKind.MAIN),
            typed_search_attributes=_search_attributes(schedule),
            static_summary=f"Scheduled {kind}, {_when(schedule)}",
        ),
        spec=schedule_spec(schedule, start_at=start_at),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW),
        state=ScheduleState(paused=not schedule.active, note=None if schedule.active else PAUSED_NOTE),
    )


@asynccontextmanager
async def _temporal(what: str) -> AsyncIterator[None]:
    try:
        yield
    except RPCError as exc:
        log.error("Temporal could not %s: %s", what, exc.message)
        raise ServiceUnavailable(f"Temporal could not {what}; nothing was changed ({exc.message})") from exc


async def _create_in_temporal(client: Client, settings: Settings, schedule: ContentSchedule) -> None:
    async with _temporal(f"create the schedule of {schedule.id}"):
        await client.create_schedule(
            content_schedule_id(schedule.id),
            temporal_schedule(schedule, settings),
            memo={"schedule_id": schedule.id, "company_id": schedule.company_id},
            search_attributes=_search_attributes(schedule),
        )
    log.info("created Temporal schedule %s (%s)", content_schedule_id(schedule.id), _when(schedule))


async def _update_in_temporal(client: Client, settings: Settings, schedule: ContentSchedule) -> None:
    """Replace spec, action, policy and state in one update, so ``active`` decides paused or not.

    One update, not an update followed by a pause or unpause: Temporal applies a pending pause before a pending
    update, and an update replaces the state, so the separate call could be undone by the older state.
    """
    handle = client.get_schedule_handle(content_schedule_id(schedule.id))
    desired = temporal_schedule(schedule, settings)

    def updater(update: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=desired, search_attributes=_search_attributes(schedule))

    async with _temporal(f"update the schedule of {schedule.id}"):
        try:
            await handle.update(updater)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            log.warning("Temporal schedule %s was missing; creating it again", handle.id)
            await _create_in_temporal(client, settings, schedule)
            return
    log.info("updated Temporal schedule %s (%s, active=%s)", handle.id, _when(schedule), schedule.active)


async def _delete_in_temporal(client: Client, schedule_id: str) -> None:
    handle = client.get_schedule_handle(content_schedule_id(schedule_id))
    async with _temporal(f"delete the schedule of {schedule_id}"):
        try:
            await handle.delete()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
    log.info("deleted Temporal schedule %s", handle.id)


async def _next_run_times(client: Client | None, schedule: ContentSchedule) -> list[datetime] | None:
    if client is None:
        return None
    try:
        description = await client.get_schedule_handle(content_schedule_id(schedule.id)).describe(
            rpc_timeout=DESCRIBE_TIMEOUT
        )
    except RPCError as exc:
        log.warning("could not describe the Temporal schedule of %s: %s", schedule.id, exc.message)
        return None
    if description.schedule.state.paused:
        return []  # Temporal still lists the times a paused schedule would have; none of them will happen
    return list(description.info.next_action_times)


# ---------------------------------------------------------------- definitions


def _checked(data: dict[str, Any], prefix: str = "") -> ContentScheduleDefinition:
    try:
        return ContentScheduleDefinition.model_validate(data)
    except ValidationError as exc:
        path, message = readable_errors(exc.errors())[0]
        raise InvalidField(f"{prefix}{path}" if path else prefix.rstrip(".") or "body", message) from exc


def config_actions(raw: dict[str, Any]) -> dict[str, Any]:
    """A ``content_generation`` config's ``actions`` as stored (canonical words); ``InvalidField`` names the field."""
    return _checked(raw, "actions.").model_dump(mode="json", exclude_unset=True)


def _stored_definition(schedule: ContentSchedule) -> dict[str, Any]:
    return {
        "content_type": schedule.content_type,
        "frequency": schedule.frequency,
        "day_of_week": schedule.day_of_week,
        "time_of_day": schedule.time_of_day,
        "timezone": schedule.timezone,
        "topics": list(schedule.topics),
        "parameters": dict(schedule.parameters or {}),
        "publish_to": schedule.publish_to,
        "require_approval": schedule.require_approval,
    }


def _apply(schedule: ContentSchedule, definition: ContentScheduleDefinition, company: Company, active: bool) -> None:
    schedule.content_type = definition.content_type
    schedule.frequency = definition.frequency
    schedule.day_of_week = definition.day_of_week
    schedule.time_of_day = definition.time_of_day
    schedule.timezone = definition.timezone or company.timezone or "UTC"
    schedule.topics = list(definition.topics)
    schedule.parameters = definition.parameters.model_dump(mode="json", exclude_unset=True)
    schedule.publish_to = definition.publish_to
    schedule.require_approval = definition.require_approval
    schedule.active = active
    schedule.updated_at = utcnow()


async def _company(session: AsyncSession, company_id: str) -> Company:
    company = await session.get(Company, company_id)
    if company is None:
        raise NotFound("company", company_id)
    return company


async def _own(session: AsyncSession, actor: User, schedule_id: str) -> ContentSchedule:
    return await owned(session, actor, ContentSchedule, schedule_id, "content_schedule")


def _not_config_owned(schedule: ContentSchedule) -> None:
    if schedule.workflow_config_id is not None:
        raise Conflict(
            f"Schedule {to_api_id(schedule.id)} belongs to workflow config {schedule.workflow_config_id}; "
            f"change it with PATCH /v1/workflow-configs/{schedule.workflow_config_id}"
        )


async def _new_schedule(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    company: Company,
    definition: ContentScheduleDefinition,
    *,
    active: bool,
    config_id: str | None = None,
) -> ContentSchedule:
    schedule = ContentSchedule(id=new_id("sched"), company_id=company.id, workflow_config_id=config_id, runs_started=0)
    _apply(schedule, definition, company, active)
    schedule.created_at = schedule.updated_at
    session.add(schedule)
    await session.flush()
    await _create_in_temporal(client, settings, schedule)
    try:
        await session.commit()
    except Exception:
        log.error("schedule %s could not be stored; removing it from Temporal again", schedule.id)
        with contextlib.suppress(ServiceUnavailable):  # the commit's own error is the one to report
            await _delete_in_temporal(client, schedule.id)
        raise
    return schedule


async def _changed_schedule(
    session: AsyncSession, client: Client, settings: Settings, schedule: ContentSchedule
) -> None:
    await session.flush()
    await _update_in_temporal(client, settings, schedule)
    await session.commit()


# ---------------------------------------------------------------- /api/content-generation


async def save(
    session: AsyncSession, client: Client, settings: Settings, actor: User, body: ContentScheduleCreate
) -> tuple[ContentSchedule, bool]:
    """Create a schedule, or with ``body.id`` replace that one's definition in place; True when created."""
    require_role(actor, *EDITORS)
    company = await _company(session, actor.company_id)
    if body.id is None:
        schedule = await _new_schedule(session, client, settings, company, body, active=body.active)
        log.info("user %s created content schedule %s (%s)", actor.id, schedule.id, _when(schedule))
        return schedule, True
    schedule = await _own(session, actor, body.id)
    _not_config_owned(schedule)
    _apply(schedule, body, company, body.active)
    await _changed_schedule(session, client, settings, schedule)
    log.info("user %s replaced content schedule %s (%s)", actor.id, schedule.id, _when(schedule))
    return schedule, False


async def update(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    actor: User,
    schedule_id: str,
    body: ContentScheduleUpdate,
) -> ContentSchedule:
    """Change the fields sent; the others stay. Moving off weekly (monthly) drops the stored day unless sent."""
    require_role(actor, *EDITORS)
    schedule = await _own(session, actor, schedule_id)
    _not_config_owned(schedule)
    sent = body.model_dump(mode="json", exclude_unset=True)
    active = sent.pop("active", None)
    if active is None:
        active = schedule.active
    merged = _stored_definition(schedule) | sent
    frequency = sent.get("frequency")
    if frequency is not None and frequency != Frequency.weekly and "day_of_week" not in sent:
        merged["day_of_week"] = None
    if frequency is not None and frequency != Frequency.monthly and "parameters" not in sent:
        merged["parameters"] = {k: v for k, v in merged["parameters"].items() if k != "day_of_month"}
    definition = _checked(merged)
    _apply(schedule, definition, await _company(session, schedule.company_id), active)
    await _changed_schedule(session, client, settings, schedule)
    log.info("user %s updated content schedule %s (%s, active=%s)", actor.id, schedule.id, _when(schedule), active)
    return schedule


async def delete(session: AsyncSession, client: Client, actor: User, schedule_id: str) -> None:
    """Remove the Temporal Schedule, then the row; content it wrote stays (its ``schedule_id`` is cleared)."""
    require_role(actor, *EDITORS)
    schedule = await _own(session, actor, schedule_id)
    _not_config_owned(schedule)
    await _delete_in_temporal(client, schedule.id)
    await session.delete(schedule)
    await session.flush()
    log.info("user %s deleted content schedule %s", actor.id, schedule.id)


async def get(session: AsyncSession, client: Client | None, actor: User, schedule_id: str) -> ScheduleView:
    schedule = await _own(session, actor, schedule_id)
    return ScheduleView(schedule, await _next_run_times(client, schedule))


async def list_schedules(session: AsyncSession, client: Client | None, actor: User) -> list[ScheduleView]:
    """Every schedule of the company, oldest first, with the next run times Temporal reports for each."""
    schedules = list(
        await session.scalars(
            select(ContentSchedule)
            .where(ContentSchedule.company_id == actor.company_id)
            .order_by(ContentSchedule.created_at, ContentSchedule.id)
        )
    )
    times = await asyncio.gather(*(_next_run_times(client, schedule) for schedule in schedules))
    return [ScheduleView(schedule, next_times) for schedule, next_times in zip(schedules, times, strict=True)]


# ---------------------------------------------------------------- content_generation workflow configs


async def follow_config(
    session: AsyncSession, client: Client | None, settings: Settings, config: WorkflowConfig
) -> None:
    """Create or update the schedule a ``content_generation`` config stands for (other types have none).

    Called after the config service stored the change (not committed yet): if Temporal refuses, the request
    fails and the config change is rolled back with it.
    """
    if config.workflow_type != WorkflowType.content_generation:
        return
    if client is None:
        raise ServiceUnavailable("Temporal is not reachable; content schedules cannot be changed right now")
    definition = _checked(config.actions, "actions.")
    company = await _company(session, config.company_id)
    schedule = await session.scalar(select(ContentSchedule).where(ContentSchedule.workflow_config_id == config.id))
    if schedule is None:
        schedule = await _new_schedule(
            session, client, settings, company, definition, active=config.active, config_id=config.id
        )
        log.info("workflow config %s now runs as content schedule %s (%s)", config.id, schedule.id, _when(schedule))
        return
    _apply(schedule, definition, company, config.active)
    await _changed_schedule(session, client, settings, schedule)


async def forget_config(session: AsyncSession, client: Client | None, actor: User, config_id: str) -> None:
    """Before a config is deleted: remove its content schedule from Temporal and the database."""
    require_role(actor, *EDITORS)
    schedule = await session.scalar(
        select(ContentSchedule).where(
            ContentSchedule.workflow_config_id == config_id, ContentSchedule.company_id == actor.company_id
        )
    )
    if schedule is None:
        return
    if client is None:
        raise ServiceUnavailable("Temporal is not reachable; the config's content schedule cannot be removed now")
    await _delete_in_temporal(client, schedule.id)
    await session.delete(schedule)
    await session.flush()
