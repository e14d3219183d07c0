"""Content schedules and housekeeping on Temporal.

The time-skipping test server does not implement Temporal Schedules (``CreateSchedule`` answers UNIMPLEMENTED,
proven below), so everything about a schedule's timing is proven on the real dev server instead: the calendar
the service builds, created there with a ``start_at`` just before a daylight-saving change, and the next action
times the server computes for it. ``ScheduledGenerationWorkflow`` itself has no timers, so it gains nothing
from skipping time; its child carries search attributes, which the time-skipping server never starts (the run
stops after ``StartChildWorkflowExecutionInitiated``), so that run is on the dev server too, against doubles.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleSpec,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.content.schedules import ScheduleActivities
from core.config import Settings
from db.base import utcnow
from db.models import Company, ContentSchedule, DomainEvent, IdempotencyRecord
from db.session import transaction
from schemas.content_schedules import ScheduledRun
from schemas.content_workflows import (
    GenerationResult,
    Publisher,
    ScheduledContent,
    ScheduledGenerationInput,
)
from schemas.housekeeping import HousekeepingInput, HousekeepingResult
from schemas.temporal import COMPANY_ID, ENTITY_ID, WORKFLOW_CONFIG_ID, QueueKind, task_queue
from services.content_schedules import temporal_schedule
from tests.workflows.schedule_doubles import GenerateDouble
from worker.schedules import (
    Ensured,
    ensure_housekeeping_schedule,
    housekeeping_schedule_id,
    keep_trying,
)
from workflows.content import generate_workflow_id
from workflows.content_schedule import ScheduledGenerationWorkflow, content_schedule_id

PARIS = ZoneInfo("Europe/Paris")
START = ScheduleActivities.start_scheduled_content.__name__


def content_schedule(**changes: object) -> ContentSchedule:
    """An unsaved row: the service builds the Temporal Schedule from exactly these fields."""
    fields: dict[str, object] = {
        "id": f"sched_{uuid.uuid4().hex[:16]}",
        "company_id": "cmp_test",
        "workflow_config_id": None,
        "content_type": "blog",
        "frequency": "weekly",
        "day_of_week": "Monday",
        "time_of_day": "09:00",
        "timezone": "Europe/Paris",
        "topics": ["a", "b", "c"],
        "parameters": {},
        "publish_to": None,
        "require_approval": True,
        "active": True,
    }
    return ContentSchedule(**(fields | changes))


def settings_for(prefix: str, **changes: object) -> Settings:
    return Settings(environment="test", task_queue_prefix=prefix, **changes)  # type: ignore[arg-type]


@asynccontextmanager
async def on_dev_server(client: Client, schedule_id: str, schedule: Schedule) -> AsyncIterator[ScheduleHandle]:
    """Create the schedule; delete it afterwards whatever happens (the dev server is shared by the session)."""
    handle = await client.create_schedule(schedule_id, schedule)
    try:
        yield handle
    finally:
        await handle.delete()


# ---------------------------------------------------------------- where schedules can be tested


async def test_time_skipping_server_has_no_schedules(temporal_time_skipping: WorkflowEnvironment) -> None:
    schedule = Schedule(
        action=ScheduleActionStartWorkflow("Nothing", id="nothing", task_queue="nowhere"),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(days=7))]),
    )
    with pytest.raises(RPCError) as raised:
        await temporal_time_skipping.client.create_schedule(f"probe-{uuid.uuid4().hex[:8]}", schedule)
    # If this starts failing, the test server learnt schedules: move the DST proofs below onto it.
    assert raised.value.status == RPCStatusCode.UNIMPLEMENTED


# ---------------------------------------------------------------- the calendar, on the dev server


@pytest.mark.parametrize(
    ("start", "change"),
    [
        pytest.param(datetime(2027, 3, 10, tzinfo=UTC), datetime(2027, 3, 28, 1, tzinfo=UTC), id="spring-forward"),
        pytest.param(datetime(2027, 10, 13, tzinfo=UTC), datetime(2027, 10, 31, 1, tzinfo=UTC), id="fall-back"),
    ],
)
async def test_weekly_monday_0900_paris_stays_0900_across_dst(
    temporal_dev: WorkflowEnvironment, start: datetime, change: datetime
) -> None:
    schedule = content_schedule()
    built = temporal_schedule(schedule, settings_for("test-dst"), start_at=start)
    async with on_dev_server(temporal_dev.client, content_schedule_id(schedule.id), built) as handle:
        times = (await handle.describe()).info.next_action_times
    assert len(times) == 10
    local = [moment.astimezone(PARIS) for moment in times]
    assert all((t.strftime("%A"), t.hour, t.minute, t.second) == ("Monday", 9, 0, 0) for t in local)
    assert [b - a for a, b in itertools.pairwise(local)] == [timedelta(days=7)] * 9  # wall clock
    before = [t for t in times if t < change]
    after = [t for t in times if t > change]
    assert before and after, "the ten times must straddle the change"
    winter, summer = timedelta(hours=1), timedelta(hours=2)
    expected_before, expected_after = (winter, summer) if change.month == 3 else (summer, winter)
    assert {t.astimezone(PARIS).utcoffset() for t in before} == {expected_before}
    assert {t.astimezone(PARIS).utcoffset() for t in after} == {expected_after}
    # In UTC the runs move by an hour: the local time is what stays put.
    assert {t.hour for t in before} == {9 - int(expected_before.total_seconds() // 3600)}
    assert {t.hour for t in after} == {9 - int(expected_after.total_seconds() // 3600)}
    assert local[0].date() == min(
        (start + timedelta(days=n)).date() for n in range(7) if (start + timedelta(days=n)).weekday() == 0
    )


async def test_daily_and_monthly_calendars(temporal_dev: WorkflowEnvironment) -> None:
    new_york = ZoneInfo("America/New_York")
    daily = content_schedule(frequency="daily", day_of_week=None, time_of_day="07:30", timezone="America/New_York")
    monthly = content_schedule(
        frequency="monthly",
        day_of_week=None,
        time_of_day="18:05",
        timezone="Asia/Tokyo",
        parameters={"day_of_month": 15},
    )
    default_day = content_schedule(frequency="monthly", day_of_week=None, timezone="UTC")
    start = datetime(2027, 3, 10, tzinfo=UTC)  # New York changes its clocks on 2027-03-14
    settings = settings_for("test-calendars")
    client = temporal_dev.client
    async with (
        on_dev_server(client, content_schedule_id(daily.id), temporal_schedule(daily, settings, start_at=start)) as d,
        on_dev_server(
            client, content_schedule_id(monthly.id), temporal_schedule(monthly, settings, start_at=start)
        ) as m,
        on_dev_server(client, content_schedule_id(default_day.id), temporal_schedule(default_day, settings)) as f,
    ):
        daily_times = [t.astimezone(new_york) for t in (await d.describe()).info.next_action_times]
        monthly_times = [t.astimezone(ZoneInfo("Asia/Tokyo")) for t in (await m.describe()).info.next_action_times]
        first_of_month = (await f.describe()).info.next_action_times
    assert [t.date().isoformat() for t in daily_times[:6]] == [f"2027-03-{day}" for day in range(10, 16)]
    assert {(t.hour, t.minute) for t in daily_times} == {(7, 30)}
    assert {t.utcoffset() for t in daily_times} == {timedelta(hours=-5), timedelta(hours=-4)}
    assert [(t.month, t.day, t.hour, t.minute) for t in monthly_times[:3]] == [
        (3, 15, 18, 5),
        (4, 15, 18, 5),
        (5, 15, 18, 5),
    ]
    assert {(t.day, t.hour, t.minute) for t in first_of_month} == {(1, 9, 0)}


# ---------------------------------------------------------------- the workflow, against doubles


class ScheduleDouble:
    def __init__(self, *, gone: bool = False, gate: asyncio.Event | None = None) -> None:
        self.calls: list[ScheduledRun] = []
        self.gone = gone
        self.gate = gate

    @activity.defn(name=START)
    async def start_scheduled_content(self, run: ScheduledRun) -> ScheduledContent | None:
        self.calls.append(run)
        if self.gate is not None:
            await self.gate.wait()
        if self.gone:
            return None
        return ScheduledContent(
            content_id=run.content_id,
            run_id=run.run_id,
            publish_to=Publisher.wordpress,
            company_id="cmp_acme",
            workflow_config_id="wf_weekly",
            topic="business growth",
        )


@asynccontextmanager
async def scheduled_workers(client: Client, double: ScheduleDouble) -> AsyncIterator[str]:
    queue = task_queue(f"test-{uuid.uuid4().hex[:10]}", QueueKind.MAIN)
    async with Worker(
        client,
        task_queue=queue,
        workflows=[ScheduledGenerationWorkflow, GenerateDouble],
        activities=[double.start_scheduled_content],
    ):
        yield queue


async def test_a_run_takes_its_topic_and_writes_it_as_a_child(temporal_dev: WorkflowEnvironment) -> None:
    client = temporal_dev.client
    double = ScheduleDouble()
    async with scheduled_workers(client, double) as queue:
        parent_id = f"content-schedule/sched_test-{uuid.uuid4().hex[:8]}"
        result = await client.execute_workflow(
            ScheduledGenerationWorkflow.run,
            ScheduledGenerationInput(schedule_id="sched_test"),
            id=parent_id,
            task_queue=queue,
            execution_timeout=timedelta(seconds=30),
        )
    [run] = double.calls
    assert run.schedule_id == "sched_test" and run.scheduled_by == parent_id
    assert run.content_id.startswith("cont_") and len(run.content_id) == len("cont_") + 16
    assert run.run_id.startswith("run_") and run.workflow_id == generate_workflow_id(run.content_id)
    assert result is not None and result.content_id == run.content_id
    company, run_id, publish_to, parent = result.status.split("|", 3)
    assert (company, run_id, publish_to) == ("cmp_acme", run.run_id, "wordpress")
    assert parent_id in parent
    child = await client.get_workflow_handle(generate_workflow_id(run.content_id)).describe()
    attributes = child.typed_search_attributes
    assert (attributes.get(COMPANY_ID), attributes.get(ENTITY_ID), attributes.get(WORKFLOW_CONFIG_ID)) == (
        "cmp_acme",
        run.content_id,
        "wf_weekly",
    )


async def test_a_run_of_a_deleted_schedule_writes_nothing(temporal_time_skipping: WorkflowEnvironment) -> None:
    client = temporal_time_skipping.client
    double = ScheduleDouble(gone=True)
    async with scheduled_workers(client, double) as queue:
        handle = await client.start_workflow(
            ScheduledGenerationWorkflow.run,
            ScheduledGenerationInput(schedule_id="sched_gone"),
            id=f"content-schedule/sched_gone-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            execution_timeout=timedelta(seconds=30),
        )
        assert await handle.result() is None
    [run] = double.calls
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(run.workflow_id).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


# ---------------------------------------------------------------- overlap, on the dev server


async def test_overlapping_runs_are_skipped_not_stacked(temporal_dev: WorkflowEnvironment) -> None:
    client = temporal_dev.client
    gate = asyncio.Event()
    double = ScheduleDouble(gate=gate)
    async with scheduled_workers(client, double) as queue:
        schedule = content_schedule()
        prefix = queue.rsplit("-", 1)[0]
        built = temporal_schedule(schedule, settings_for(prefix))
        async with on_dev_server(client, content_schedule_id(schedule.id), built) as handle:
            await handle.trigger()
            async with asyncio.timeout(20):
                while not double.calls:
                    await asyncio.sleep(0.05)
            await handle.trigger()  # while the first run still waits on its activity
            async with asyncio.timeout(20):
                while (await handle.describe()).info.num_actions_skipped_overlap < 1:
                    await asyncio.sleep(0.1)
            info = (await handle.describe()).info
            assert info.num_actions == 1 and len(info.running_actions) == 1
            gate.set()
            [running] = info.running_actions
            assert isinstance(running, ScheduleActionExecutionStartWorkflow)
            result = await client.get_workflow_handle(running.workflow_id, result_type=GenerationResult).result()
    assert len(double.calls) == 1
    assert result.content_id == double.calls[0].content_id


# ---------------------------------------------------------------- housekeeping


async def test_the_housekeeping_schedule_is_ensured_idempotently(temporal_dev: WorkflowEnvironment) -> None:
    client = temporal_dev.client
    settings = settings_for(f"test-{uuid.uuid4().hex[:10]}")
    schedule_id = housekeeping_schedule_id(settings)
    assert schedule_id == f"housekeeping/{settings.task_queue_prefix}"
    assert housekeeping_schedule_id(Settings(environment="test")) == "housekeeping"
    handle = client.get_schedule_handle(schedule_id)
    try:
        assert await ensure_housekeeping_schedule(client, settings) == Ensured.created
        created_at = (await handle.describe()).info.created_at
        assert await ensure_housekeeping_schedule(client, settings) == Ensured.unchanged
        await handle.pause(note="an operator's pause")
        # Temporal applies a pause or an update asynchronously: wait until describe shows each one.
        async with asyncio.timeout(10):
            while not (await handle.describe()).schedule.state.paused:
                await asyncio.sleep(0.05)
        shorter = settings_for(settings.task_queue_prefix, idempotency_retention_hours=24)
        assert await ensure_housekeeping_schedule(client, shorter) == Ensured.updated

        async def retention_given() -> HousekeepingInput:
            action = (await handle.describe()).schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert action.task_queue == settings.task_queue(QueueKind.MAIN)
            [given] = await client.data_converter.decode(list(action.args), [HousekeepingInput])
            return given  # type: ignore[no-any-return]

        async with asyncio.timeout(10):
            while await retention_given() != HousekeepingInput(idempotency_retention_hours=24):
                await asyncio.sleep(0.05)
        description = await handle.describe()
        assert description.info.created_at == created_at  # updated in place, not re-created
        assert description.schedule.state.paused is True  # the operator's pause is kept
        assert await ensure_housekeeping_schedule(client, shorter) == Ensured.unchanged
    finally:
        await handle.delete()


async def test_keep_trying_outlasts_a_brief_temporal_outage(temporal_dev: WorkflowEnvironment) -> None:
    client = temporal_dev.client
    settings = settings_for(f"test-{uuid.uuid4().hex[:10]}")
    attempts: list[int] = []

    async def flaky() -> Ensured:
        attempts.append(len(attempts))
        if len(attempts) <= 2:
            raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
        return await ensure_housekeeping_schedule(client, settings)

    try:
        outcome = await keep_trying(flaky, "housekeeping", first_delay=0.01, max_delay=0.02)
        assert outcome == Ensured.created and len(attempts) == 3
        assert (await client.get_schedule_handle(housekeeping_schedule_id(settings)).describe()).id
    finally:
        await client.get_schedule_handle(housekeeping_schedule_id(settings)).delete()


async def test_the_housekeeping_schedule_runs_the_cleanup(
    temporal_dev: WorkflowEnvironment, worker: None, settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    now = utcnow()
    async with transaction(db) as session:
        session.add(Company(id="cmp_housekeeping", name="Acme"))
        await session.flush()
        for key, hours in {"old": 100, "new": 1}.items():
            session.add(
                IdempotencyRecord(
                    company_id="cmp_housekeeping",
                    key=key,
                    request_fingerprint="f" * 64,
                    status_code=201,
                    response_body={},
                    created_at=now - timedelta(hours=hours),
                )
            )
        for event_id, days in {"evt_old": 31, "evt_new": 1}.items():
            session.add(
                DomainEvent(
                    id=event_id,
                    company_id="cmp_housekeeping",
                    type="lead.created",
                    dispatched_at=now - timedelta(days=days),
                )
            )
    client = temporal_dev.client
    handle = client.get_schedule_handle(housekeeping_schedule_id(settings))
    try:
        assert await ensure_housekeeping_schedule(client, settings) == Ensured.created
        await handle.trigger()
        async with asyncio.timeout(30):
            while not (await handle.describe()).info.recent_actions:
                await asyncio.sleep(0.1)
        started = (await handle.describe()).info.recent_actions[0].action
        assert isinstance(started, ScheduleActionExecutionStartWorkflow)
        result = await client.get_workflow_handle(started.workflow_id, result_type=HousekeepingResult).result()
    finally:
        await handle.delete()
    assert (result.idempotency_records_deleted, result.events_deleted) == (1, 1)
    async with db() as session:
        assert list(await session.scalars(select(IdempotencyRecord.key))) == ["new"]
        assert list(await session.scalars(select(DomainEvent.id))) == ["evt_new"]
