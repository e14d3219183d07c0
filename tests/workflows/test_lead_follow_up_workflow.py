"""``LeadFollowUpWorkflow`` on the time-skipping server, its activities replaced by recording doubles.

Days of waiting pass in milliseconds while a test awaits the run's result. While a test awaits anything
else (a double being called, a query) the server's clock runs at wall speed, so a signal sent then lands
at a known point of the sequence.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from schemas.lead_follow_up import FollowUpProgress, LeadEvent, LeadEventSignal, RunState
from schemas.messaging import FinishRunInput, PlanSendInput, StepInput
from schemas.temporal import QueueKind, task_queue
from tests.workflows.doubles import (
    COMPOSE,
    DELIVER,
    FINISH,
    PLAN,
    OutboundDoubles,
    Running,
    running,
    sequence,
)
from workflows.lead_follow_up import LeadFollowUpWorkflow

HOUR = timedelta(hours=1)


def finish_input(doubles: OutboundDoubles) -> FinishRunInput:
    [call] = doubles.of(FINISH)
    assert isinstance(call.input, FinishRunInput)
    return call.input


def delivered_steps(doubles: OutboundDoubles) -> list[int]:
    steps = []
    for call in doubles.of(DELIVER):
        assert isinstance(call.input, StepInput)
        steps.append(call.input.step)
    return steps


async def signal(run: Running, event: LeadEvent) -> None:
    await run.handle.signal(LeadFollowUpWorkflow.lead_event, LeadEventSignal(event=event, interaction_id="int_1"))


async def wait_for_progress(run: Running, **expected: object) -> FollowUpProgress:
    """Query until the progress shows ``expected`` (a signal or an activity result is handled asynchronously)."""
    async with asyncio.timeout(10):
        while True:
            progress = await run.progress()
            if all(getattr(progress, name) == value for name, value in expected.items()):
                return progress
            await asyncio.sleep(0.02)


async def test_three_steps_over_three_days_send_three_messages_in_seconds(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = OutboundDoubles()
    began = time.monotonic()
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(0, 24, 48)) as run:
        result = await run.result()
        started_at = (await run.handle.describe()).start_time
    assert time.monotonic() - began < 10

    assert delivered_steps(doubles) == [0, 1, 2]
    sent_at = [call.scheduled_at for call in doubles.of(DELIVER)]
    # Each follow-up waits its own delay after the previous send: 0h, +24h, +48h (72h in all).
    assert sent_at[0] - started_at < timedelta(minutes=1)
    assert 24 * HOUR <= sent_at[1] - sent_at[0] < 24 * HOUR + timedelta(minutes=1)
    assert 48 * HOUR <= sent_at[2] - sent_at[1] < 48 * HOUR + timedelta(minutes=1)

    keys, run_ids = [], set()
    for call in doubles.of(DELIVER):
        assert isinstance(call.input, StepInput)
        keys.append(call.input.idempotency_key)
        run_ids.add(call.input.run_id)
        assert call.input.step_spec.template_key == f"step-{call.input.step}"
    (run_id,) = run_ids
    assert keys == [f"{run.handle.id}/{run_id}/{index}" for index in range(3)]
    assert [call.activity for call in doubles.calls] == [PLAN, COMPOSE, DELIVER] * 3 + [FINISH]

    assert finish_input(doubles) == FinishRunInput(run_id="run_test", status="completed", steps_sent=3)
    assert result == FollowUpProgress(
        state=RunState.completed,
        steps_total=3,
        steps_sent=3,
        next_step=None,
        next_step_template=None,
        next_step_at=None,
        stopped_by=None,
    )


async def test_a_reply_after_step_one_stops_the_sequence(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = OutboundDoubles()
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(0, 24, 48)) as run:
        [first] = await doubles.wait_for(DELIVER)
        before = await wait_for_progress(run, steps_sent=1)
        assert before.state == RunState.waiting
        assert (before.steps_total, before.next_step, before.next_step_template) == (3, 1, "step-1")
        assert before.stopped_by is None
        assert before.next_step_at is not None
        assert 24 * HOUR <= before.next_step_at - first.scheduled_at < 24 * HOUR + timedelta(minutes=1)

        await signal(run, LeadEvent.replied)
        result = await run.result()
        after = await run.progress()

    assert delivered_steps(doubles) == [0]
    assert finish_input(doubles) == FinishRunInput(
        run_id="run_test", status="stopped", steps_sent=1, stopped_by=LeadEvent.replied
    )
    assert after == result
    assert after == FollowUpProgress(
        state=RunState.stopped,
        steps_total=3,
        steps_sent=1,
        next_step=None,
        next_step_template=None,
        next_step_at=None,
        stopped_by=LeadEvent.replied,
    )


@pytest.mark.parametrize("event", [LeadEvent.unsubscribed, LeadEvent.converted, LeadEvent.lost, LeadEvent.deleted])
async def test_every_stop_event_ends_the_sequence(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str, event: LeadEvent
) -> None:
    doubles = OutboundDoubles()
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(0, 24, 48)) as run:
        await doubles.wait_for(DELIVER)
        await signal(run, event)
        result = await run.result()

    assert delivered_steps(doubles) == [0]
    assert finish_input(doubles) == FinishRunInput(run_id="run_test", status="stopped", steps_sent=1, stopped_by=event)
    assert (result.state, result.stopped_by) == (RunState.stopped, event)


async def test_a_stop_during_the_initial_delay_sends_nothing(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = OutboundDoubles()
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(2, 24)) as run:
        waiting = await wait_for_progress(run, next_step=0)
        assert (waiting.state, waiting.next_step_template) == (RunState.waiting, "step-0")
        await signal(run, LeadEvent.deleted)
        await run.result()

    assert [call.activity for call in doubles.calls] == [FINISH]
    assert finish_input(doubles) == FinishRunInput(
        run_id="run_test", status="stopped", steps_sent=0, stopped_by=LeadEvent.deleted
    )


async def test_a_second_stop_event_does_not_replace_the_first(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = OutboundDoubles()
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(0, 24)) as run:
        await doubles.wait_for(DELIVER)
        await signal(run, LeadEvent.replied)
        await signal(run, LeadEvent.converted)
        result = await run.result()

    assert result.stopped_by == LeadEvent.replied
    assert finish_input(doubles).stopped_by == LeadEvent.replied


async def test_a_stop_while_the_window_is_looked_up_writes_no_message(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    gate = asyncio.Event()
    doubles = OutboundDoubles(gates={PLAN: gate})
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(0, 24)) as run:
        await doubles.wait_for(PLAN)
        await signal(run, LeadEvent.converted)
        await wait_for_progress(run, stopped_by=LeadEvent.converted)
        gate.set()
        await run.result()

    assert [call.activity for call in doubles.calls] == [PLAN, FINISH]
    assert finish_input(doubles).status == "stopped"


async def test_an_event_after_the_last_step_does_not_rewrite_the_outcome(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    gate = asyncio.Event()
    doubles = OutboundDoubles(gates={FINISH: gate})
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(0)) as run:
        await doubles.wait_for(FINISH)
        await signal(run, LeadEvent.replied)
        gate.set()
        result = await run.result()

    assert finish_input(doubles) == FinishRunInput(run_id="run_test", status="completed", steps_sent=1)
    assert (result.state, result.stopped_by) == (RunState.completed, None)


def next_eight_oclock(not_before: datetime) -> datetime:
    """A send window opening at 08:00 (UTC here), at least an hour away so the wait is unmistakable."""
    opening = (not_before + HOUR).replace(hour=8, minute=0, second=0, microsecond=0)
    return opening if opening >= not_before + HOUR else opening + timedelta(days=1)


async def test_a_step_in_quiet_hours_waits_for_the_window(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = OutboundDoubles(plan=next_eight_oclock)
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(0, 24)) as run:
        [plan] = await doubles.wait_for(PLAN)
        assert isinstance(plan.input, PlanSendInput)
        opening = next_eight_oclock(plan.input.not_before)
        waiting = await wait_for_progress(run, next_step_at=opening)
        assert (waiting.state, waiting.next_step, waiting.steps_sent) == (RunState.waiting, 0, 0)
        assert doubles.of(COMPOSE) == []
        await run.result()

    assert plan.input.not_before - plan.scheduled_at < timedelta(minutes=1)
    deliveries = doubles.of(DELIVER)
    assert len(deliveries) == 2
    assert deliveries[0].scheduled_at >= opening
    assert deliveries[0].scheduled_at - opening < timedelta(minutes=1)
    # The follow-up's 24h count from the (late) first send, then it too waits for an 08:00 opening.
    second_plan = doubles.of(PLAN)[1]
    assert isinstance(second_plan.input, PlanSendInput)
    assert second_plan.input.not_before >= deliveries[0].scheduled_at + 24 * HOUR
    assert deliveries[1].scheduled_at >= next_eight_oclock(second_plan.input.not_before)
    assert finish_input(doubles).status == "completed"


async def test_a_stop_while_waiting_for_the_window_prevents_the_send(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = OutboundDoubles(plan=next_eight_oclock)
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(0, 24)) as run:
        [plan] = await doubles.wait_for(PLAN)
        assert isinstance(plan.input, PlanSendInput)
        await wait_for_progress(run, next_step_at=next_eight_oclock(plan.input.not_before))
        await signal(run, LeadEvent.unsubscribed)
        await run.result()

    assert doubles.of(COMPOSE) == []
    assert doubles.of(DELIVER) == []
    assert finish_input(doubles) == FinishRunInput(
        run_id="run_test", status="stopped", steps_sent=0, stopped_by=LeadEvent.unsubscribed
    )


async def test_fractional_delays_are_honoured(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = OutboundDoubles()
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(0.001, 0.001)) as run:
        result = await run.result()
        started_at = (await run.handle.describe()).start_time

    first, second = (call.scheduled_at for call in doubles.of(DELIVER))
    # 0.001 h is 3.6 s on the workflow clock.
    assert first - started_at >= timedelta(seconds=3.6)
    assert second - first >= timedelta(seconds=3.6)
    assert second - started_at < timedelta(minutes=1)
    assert (result.state, result.steps_sent) == (RunState.completed, 2)


async def test_a_reply_while_the_message_is_written_prevents_its_delivery(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    gate = asyncio.Event()
    doubles = OutboundDoubles(gates={COMPOSE: gate})
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(0, 24)) as run:
        await doubles.wait_for(COMPOSE)
        sending = await wait_for_progress(run, state=RunState.sending)
        assert (sending.next_step, sending.steps_sent) == (0, 0)
        await signal(run, LeadEvent.replied)
        # The reply is handled while the message is still being written; only then does composing finish.
        await wait_for_progress(run, stopped_by=LeadEvent.replied)
        gate.set()
        result = await run.result()

    assert len(doubles.of(COMPOSE)) == 1
    assert doubles.of(DELIVER) == []
    assert finish_input(doubles) == FinishRunInput(
        run_id="run_test", status="stopped", steps_sent=0, stopped_by=LeadEvent.replied
    )
    assert result.state == RunState.stopped


@pytest.mark.parametrize("personalise", [True, False])
async def test_personalised_messages_are_written_on_the_llm_queue(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str, personalise: bool
) -> None:
    main = OutboundDoubles()
    llm = OutboundDoubles()
    workflow_input = sequence(0, 1, personalise=personalise)
    async with running(temporal_time_skipping.client, task_queue_prefix, main, workflow_input, llm) as run:
        await run.result()

    main_queue = task_queue(task_queue_prefix, QueueKind.MAIN)
    composers, idle = (llm, main) if personalise else (main, llm)
    assert [call.task_queue for call in composers.of(COMPOSE)] == [
        task_queue(task_queue_prefix, QueueKind.LLM if personalise else QueueKind.MAIN)
    ] * 2
    assert idle.of(COMPOSE) == []
    for call in composers.of(COMPOSE):
        assert isinstance(call.input, StepInput)
        assert call.input.personalise is personalise
    # Everything else stays on the main queue.
    assert {call.task_queue for call in main.calls} == {main_queue}
    assert len(main.of(DELIVER)) == 2


async def test_a_skipped_message_is_not_delivered_nor_counted(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = OutboundDoubles(skipped_reason="lead has no email address")
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(0, 24)) as run:
        result = await run.result()

    assert len(doubles.of(COMPOSE)) == 2
    assert doubles.of(DELIVER) == []
    assert finish_input(doubles) == FinishRunInput(run_id="run_test", status="completed", steps_sent=0)
    assert (result.state, result.steps_sent) == (RunState.completed, 0)


@pytest.mark.parametrize(
    ("status", "counted"),
    [("sent", 2), ("recorded", 2), ("suppressed", 0), ("skipped", 0), ("failed", 0), ("unknown", 0)],
)
async def test_only_known_sends_are_counted(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str, status: str, counted: int
) -> None:
    doubles = OutboundDoubles(delivery_status=status)
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(0, 24)) as run:
        [first] = await doubles.wait_for(DELIVER)
        # The next step is step 1 whether or not step 0 reached the lead.
        waiting = await wait_for_progress(run, next_step=1)
        assert (waiting.steps_sent, waiting.next_step_template) == (counted // 2, "step-1")
        assert waiting.next_step_at is not None and waiting.next_step_at - first.scheduled_at >= 24 * HOUR
        result = await run.result()

    assert delivered_steps(doubles) == [0, 1]
    assert finish_input(doubles).steps_sent == counted
    assert result.steps_sent == counted


async def test_a_failed_activity_marks_the_run_failed(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = OutboundDoubles(delivery_error="the provider refused the message")
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles, sequence(0, 24)) as run:
        with pytest.raises(WorkflowFailureError):
            await run.result()

    assert len(doubles.of(DELIVER)) == 1
    assert finish_input(doubles) == FinishRunInput(run_id="run_test", status="failed", steps_sent=0)
