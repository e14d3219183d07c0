"""``ReviewRequestWorkflow`` and ``ReferralExpiryWorkflow`` on the time-skipping server, their activities
replaced by recording doubles.

Days pass in milliseconds while a test awaits a run's result or ``advance``s the clock. While a test awaits
anything else (a double being called, a query) the server's clock runs at wall speed, so a signal sent then
lands at a known point of the sequence.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.workflow import ParentClosePolicy

from schemas.messaging import FinishRunInput, MessageContext, MessageSpec, PlanSendInput, StepInput
from schemas.review_request import (
    STOPPING_EVENTS,
    IssueReferralInput,
    ReferralExpiryInput,
    ReferralSent,
    ReviewEvent,
    ReviewProgress,
    ReviewRequestInput,
    ReviewRequestSent,
    ReviewStage,
    TimedMessage,
)
from tests.workflows.doubles import COMPOSE, DELIVER, FINISH, PLAN, Call
from tests.workflows.review_doubles import (
    EXPIRE,
    ISSUE,
    MAX_USES,
    OFFER,
    RECORD_REFERRAL,
    RECORD_REQUEST,
    REFERRER_OFFER,
    ReviewDoubles,
    ReviewRun,
    review_input,
    running_expiry,
    running_review,
)
from workflows.review_request import referral_expiry_workflow_id

HOUR = timedelta(hours=1)
SLACK = timedelta(minutes=1)
"""Workflow time that passes while activities and workflow tasks run at wall speed between two timers."""

REQUEST_DELAY, REMINDER_DELAYS, REFERRAL_DELAY = 2, (48, 72), 24

ONE_MESSAGE = [PLAN, COMPOSE, DELIVER]
REQUEST = [*ONE_MESSAGE, RECORD_REQUEST]
REFERRAL = [ISSUE, *ONE_MESSAGE, RECORD_REFERRAL]


ROUNDING = timedelta(milliseconds=1)
"""The server keeps milliseconds; a duration that went through float seconds may come back a microsecond short."""


def near(moment: datetime, expected: datetime) -> bool:
    """``moment`` is ``expected`` or a little later (never earlier, but for rounding: a timer does not fire early)."""
    return expected - ROUNDING <= moment < expected + SLACK


def standard_input(*, expires_in_days: int | None = None) -> ReviewRequestInput:
    """The request 2h after the sale, a reminder 48h after it, another 72h later, the referral offer 24h later."""
    return review_input(REQUEST_DELAY, *REMINDER_DELAYS, referral_delay=REFERRAL_DELAY, expires_in_days=expires_in_days)


def activities(doubles: ReviewDoubles) -> list[str]:
    return [call.activity for call in doubles.calls]


def only(doubles: ReviewDoubles, name: str) -> Call:
    [call] = doubles.of(name)
    return call


def finish_input(doubles: ReviewDoubles) -> FinishRunInput:
    call = only(doubles, FINISH)
    assert isinstance(call.input, FinishRunInput)
    return call.input


def sale_context(workflow_input: ReviewRequestInput) -> MessageContext:
    return MessageContext(sale_id=workflow_input.sale_id, review_platform=workflow_input.platform)


def referral_context(workflow_input: ReviewRequestInput, doubles: ReviewDoubles) -> MessageContext:
    return MessageContext(sale_id=workflow_input.sale_id, referral_id=doubles.referral_id)


def referral_message(workflow_input: ReviewRequestInput) -> TimedMessage:
    assert workflow_input.referral is not None
    return workflow_input.referral.message


def step_input(
    run: ReviewRun, workflow_input: ReviewRequestInput, step: int, message: TimedMessage, context: MessageContext
) -> StepInput:
    """What compose and deliver get for one message. The delay is the workflow's business, not the activity's."""
    return StepInput(
        idempotency_key=f"{run.handle.id}/{workflow_input.run_id}/{step}",
        company_id=workflow_input.company_id,
        contact_id=workflow_input.customer_id,
        config_id=workflow_input.config_id,
        run_id=workflow_input.run_id,
        step=step,
        step_spec=MessageSpec.model_validate(message.model_dump(exclude={"delay_hours"})),
        personalise=False,
        context=context,
    )


def assert_messages(
    run: ReviewRun,
    workflow_input: ReviewRequestInput,
    expected: list[tuple[int, TimedMessage, MessageContext]],
) -> list[datetime]:
    """Exactly these messages were planned, written and delivered, each in one go; returns when each was planned."""
    doubles = run.doubles
    wanted = [step_input(run, workflow_input, step, message, context) for step, message, context in expected]
    assert [call.input for call in doubles.of(COMPOSE)] == wanted
    assert [call.input for call in doubles.of(DELIVER)] == wanted
    plans = doubles.of(PLAN)
    assert len(plans) == len(expected)
    for plan, compose, deliver, (_, message, _) in zip(
        plans, doubles.of(COMPOSE), doubles.of(DELIVER), expected, strict=True
    ):
        assert isinstance(plan.input, PlanSendInput)
        assert plan.input == PlanSendInput(
            company_id=workflow_input.company_id,
            contact_id=workflow_input.customer_id,
            channel=message.channel,
            not_before=plan.input.not_before,
            send_window=None,
        )
        # Planned "from now", and sent straight away (the doubles' window is always open).
        assert near(plan.scheduled_at, plan.input.not_before)
        assert near(compose.scheduled_at, plan.scheduled_at)
        assert near(deliver.scheduled_at, compose.scheduled_at)
    return [plan.scheduled_at for plan in plans]


def issue_input(run: ReviewRun, workflow_input: ReviewRequestInput, expires_in_days: int | None) -> IssueReferralInput:
    return IssueReferralInput(
        idempotency_key=f"{run.handle.id}/{workflow_input.run_id}/referral",
        company_id=workflow_input.company_id,
        customer_id=workflow_input.customer_id,
        review_id=workflow_input.review_id,
        run_id=workflow_input.run_id,
        offer=OFFER,
        referrer_offer=REFERRER_OFFER,
        expires_in_days=expires_in_days,
        max_uses=MAX_USES,
    )


def finished(
    doubles: ReviewDoubles,
    status: str,
    steps_sent: int,
    *,
    review_recorded: bool,
    referral: bool,
    stopped_by: ReviewEvent | None = None,
) -> FinishRunInput:
    return FinishRunInput(
        run_id="run_test",
        status=status,
        steps_sent=steps_sent,
        stopped_by=stopped_by,
        results={
            "review_id": "rev_test",
            "review_recorded": review_recorded,
            "referral_id": doubles.referral_id if referral else None,
        },
    )


async def test_request_reminder_review_then_referral_offer_and_its_expiry_timer(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    env = temporal_time_skipping
    doubles = ReviewDoubles()
    workflow_input = standard_input(expires_in_days=30)
    began = time.monotonic()
    async with running_review(env, task_queue_prefix, doubles, workflow_input) as run:
        started_at = (await run.handle.describe()).start_time
        # Past the request (2h) and the first reminder (48h later); the second is due 72h after that.
        await run.advance(timedelta(hours=REQUEST_DELAY + REMINDER_DELAYS[0] + 1))
        await run.wait_for_progress(messages_sent=2, next_message="reminder-2")
        recorded_at = await env.get_current_time()
        await run.signal(ReviewEvent.review_recorded)
        result = await run.finish_within(timedelta(hours=REFERRAL_DELAY + 1))

        # Abandoned by its finished parent, the referral's own timer sleeps on until the code expires.
        expiry = await run.expiry().describe()
        expiry_history = await run.expiry().fetch_history()
        history = await run.handle.fetch_history()
    assert time.monotonic() - began < 15

    assert activities(doubles) == [*REQUEST, *ONE_MESSAGE, *REFERRAL, FINISH]
    request, reminder, _ = workflow_input.request, *workflow_input.reminders
    planned = assert_messages(
        run,
        workflow_input,
        [
            (0, request, sale_context(workflow_input)),
            (1, reminder, sale_context(workflow_input)),
            (3, referral_message(workflow_input), referral_context(workflow_input, doubles)),
        ],
    )
    record_request = only(doubles, RECORD_REQUEST)
    assert record_request.input == ReviewRequestSent(review_id="rev_test", delivery_id="dlv-0")
    issue = only(doubles, ISSUE)
    assert issue.input == issue_input(run, workflow_input, expires_in_days=30)
    assert only(doubles, RECORD_REFERRAL).input == ReferralSent(referral_id=doubles.referral_id, delivery_id="dlv-3")

    # The request 2h after the sale, the reminder 48h after the request, the offer 24h after the review.
    assert near(planned[0], started_at + REQUEST_DELAY * HOUR)
    assert near(planned[1], record_request.scheduled_at + REMINDER_DELAYS[0] * HOUR)
    assert near(issue.scheduled_at, recorded_at + REFERRAL_DELAY * HOUR)
    assert near(planned[2], issue.scheduled_at)

    assert finish_input(doubles) == finished(doubles, "completed", 3, review_recorded=True, referral=True)
    assert result == ReviewProgress(
        stage=ReviewStage.completed,
        sending=False,
        messages_total=4,
        messages_sent=3,
        review_recorded=True,
        next_step=None,
        next_message=None,
        next_message_at=None,
        referral_id=doubles.referral_id,
        stopped_by=None,
    )

    assert expiry.id == referral_expiry_workflow_id(doubles.referral_id)
    assert (expiry.workflow_type, expiry.parent_id) == ("ReferralExpiryWorkflow", run.handle.id)
    assert expiry.status == WorkflowExecutionStatus.RUNNING
    # The test server leaves a child running whatever the policy; the history says what a real server would do.
    [child] = [
        event.start_child_workflow_execution_initiated_event_attributes
        for event in history.events
        if event.HasField("start_child_workflow_execution_initiated_event_attributes")
    ]
    assert (child.workflow_id, child.parent_close_policy) == (expiry.id, ParentClosePolicy.ABANDON.value)
    started, *events = expiry_history.events
    [expiry_input] = await env.client.data_converter.decode(
        started.workflow_execution_started_event_attributes.input.payloads, [ReferralExpiryInput]
    )
    expires_at = issue.scheduled_at + timedelta(days=30)
    assert expiry_input == ReferralExpiryInput(
        company_id="cmp_test", referral_id=doubles.referral_id, expires_at=expires_at
    )
    # One timer, to the expiry; nothing else yet (ReferralExpiryWorkflow on its own is tested below).
    [timer] = [event for event in events if event.HasField("timer_started_event_attributes")]
    sleeps = timer.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
    # Counted from the child's first workflow task, a moment after it started.
    assert near(expires_at, expiry.start_time + sleeps)
    assert not any(event.HasField("activity_task_scheduled_event_attributes") for event in events)


async def test_a_review_before_the_first_reminder_skips_every_reminder_but_not_the_offer(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = ReviewDoubles()
    workflow_input = review_input(0, *REMINDER_DELAYS, referral_delay=REFERRAL_DELAY)
    async with running_review(temporal_time_skipping, task_queue_prefix, doubles, workflow_input) as run:
        await doubles.wait_for(RECORD_REQUEST)
        await run.wait_for_progress(stage=ReviewStage.reminding, next_message="reminder-1")
        recorded_at = await temporal_time_skipping.get_current_time()
        await run.signal(ReviewEvent.review_recorded)
        result = await run.result()
        assert not await run.expiry_started()  # the offer does not expire: no timer

    assert activities(doubles) == [*REQUEST, *REFERRAL, FINISH]
    assert_messages(
        run,
        workflow_input,
        [
            (0, workflow_input.request, sale_context(workflow_input)),
            (3, referral_message(workflow_input), referral_context(workflow_input, doubles)),
        ],
    )
    issue = only(doubles, ISSUE)
    assert issue.input == issue_input(run, workflow_input, expires_in_days=None)
    # The offer's own delay counts from the moment the review cut the reminders short.
    assert near(issue.scheduled_at, recorded_at + REFERRAL_DELAY * HOUR)
    assert only(doubles, RECORD_REFERRAL).input == ReferralSent(referral_id=doubles.referral_id, delivery_id="dlv-3")
    assert finish_input(doubles) == finished(doubles, "completed", 2, review_recorded=True, referral=True)
    assert (result.stage, result.messages_sent, result.review_recorded) == (ReviewStage.completed, 2, True)


async def test_without_a_review_every_reminder_goes_out_then_the_offer(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = ReviewDoubles()
    workflow_input = standard_input()
    async with running_review(temporal_time_skipping, task_queue_prefix, doubles, workflow_input) as run:
        result = await run.result()
        started_at = (await run.handle.describe()).start_time

    assert activities(doubles) == [*REQUEST, *ONE_MESSAGE, *ONE_MESSAGE, *REFERRAL, FINISH]
    first, second = workflow_input.reminders
    context = sale_context(workflow_input)
    planned = assert_messages(
        run,
        workflow_input,
        [
            (0, workflow_input.request, context),
            (1, first, context),
            (2, second, context),
            (3, referral_message(workflow_input), referral_context(workflow_input, doubles)),
        ],
    )
    deliveries = doubles.of(DELIVER)
    issue = only(doubles, ISSUE)
    # 2h after the sale, then each reminder its own delay after the message before it, the offer 24h later.
    assert near(planned[0], started_at + REQUEST_DELAY * HOUR)
    assert near(planned[1], only(doubles, RECORD_REQUEST).scheduled_at + REMINDER_DELAYS[0] * HOUR)
    assert near(planned[2], deliveries[1].scheduled_at + REMINDER_DELAYS[1] * HOUR)
    assert near(issue.scheduled_at, deliveries[2].scheduled_at + REFERRAL_DELAY * HOUR)
    assert near(planned[3], issue.scheduled_at)

    assert finish_input(doubles) == finished(doubles, "completed", 4, review_recorded=False, referral=True)
    assert result == ReviewProgress(
        stage=ReviewStage.completed,
        sending=False,
        messages_total=4,
        messages_sent=4,
        review_recorded=False,
        next_step=None,
        next_message=None,
        next_message_at=None,
        referral_id=doubles.referral_id,
        stopped_by=None,
    )


@pytest.mark.parametrize("event", sorted(STOPPING_EVENTS), ids=str)
async def test_a_stop_while_waiting_for_a_reminder_ends_the_run_without_an_offer(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str, event: ReviewEvent
) -> None:
    doubles = ReviewDoubles()
    workflow_input = review_input(0, *REMINDER_DELAYS, referral_delay=REFERRAL_DELAY)
    async with running_review(temporal_time_skipping, task_queue_prefix, doubles, workflow_input) as run:
        await doubles.wait_for(RECORD_REQUEST)
        await run.wait_for_progress(stage=ReviewStage.reminding, next_message="reminder-1")
        await run.signal(event)
        result = await run.result()

    assert activities(doubles) == [*REQUEST, FINISH]
    assert_messages(run, workflow_input, [(0, workflow_input.request, sale_context(workflow_input))])
    assert finish_input(doubles) == finished(
        doubles, "stopped", 1, review_recorded=False, referral=False, stopped_by=event
    )
    assert result == ReviewProgress(
        stage=ReviewStage.stopped,
        sending=False,
        messages_total=4,
        messages_sent=1,
        review_recorded=False,
        next_step=None,
        next_message=None,
        next_message_at=None,
        referral_id=None,
        stopped_by=event,
    )


async def test_a_refund_while_waiting_for_the_offer_issues_no_referral(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = ReviewDoubles()
    workflow_input = review_input(0, *REMINDER_DELAYS, referral_delay=REFERRAL_DELAY)
    async with running_review(temporal_time_skipping, task_queue_prefix, doubles, workflow_input) as run:
        await doubles.wait_for(RECORD_REQUEST)
        await run.signal(ReviewEvent.review_recorded)
        await run.wait_for_progress(stage=ReviewStage.offering_referral)
        await run.signal(ReviewEvent.refunded)
        result = await run.result()

    assert activities(doubles) == [*REQUEST, FINISH]
    assert finish_input(doubles) == finished(
        doubles, "stopped", 1, review_recorded=True, referral=False, stopped_by=ReviewEvent.refunded
    )
    assert (result.stage, result.stopped_by, result.referral_id) == (ReviewStage.stopped, ReviewEvent.refunded, None)


async def test_a_review_during_the_initial_delay_sends_no_request_but_still_the_offer(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = ReviewDoubles()
    workflow_input = standard_input()
    async with running_review(temporal_time_skipping, task_queue_prefix, doubles, workflow_input) as run:
        await run.wait_for_progress(stage=ReviewStage.requesting, next_step=0, next_message="review-request")
        recorded_at = await temporal_time_skipping.get_current_time()
        await run.signal(ReviewEvent.review_recorded)
        result = await run.result()

    # No request, no reminder: the customer already left the review.
    assert activities(doubles) == [*REFERRAL, FINISH]
    assert_messages(
        run,
        workflow_input,
        [(3, referral_message(workflow_input), referral_context(workflow_input, doubles))],
    )
    issue = only(doubles, ISSUE)
    assert issue.input == issue_input(run, workflow_input, expires_in_days=None)
    assert near(issue.scheduled_at, recorded_at + REFERRAL_DELAY * HOUR)
    assert finish_input(doubles) == finished(doubles, "completed", 1, review_recorded=True, referral=True)
    assert (result.stage, result.messages_sent, result.referral_id) == (ReviewStage.completed, 1, doubles.referral_id)


async def test_progress_tells_the_stage_and_the_next_message(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = ReviewDoubles()
    workflow_input = standard_input()
    async with running_review(temporal_time_skipping, task_queue_prefix, doubles, workflow_input) as run:
        started_at = (await run.handle.describe()).start_time
        waiting = await run.wait_for_progress(next_message="review-request")
        assert waiting.next_message_at is not None and near(waiting.next_message_at, started_at + REQUEST_DELAY * HOUR)
        assert waiting == ReviewProgress(
            stage=ReviewStage.requesting,
            sending=False,
            messages_total=4,
            messages_sent=0,
            review_recorded=False,
            next_step=0,
            next_message="review-request",
            next_message_at=waiting.next_message_at,
            referral_id=None,
            stopped_by=None,
        )

        await run.advance(timedelta(hours=REQUEST_DELAY + 1))
        reminding = await run.wait_for_progress(messages_sent=1, next_message="reminder-1")
        request_recorded = only(doubles, RECORD_REQUEST)
        assert reminding.next_message_at is not None
        assert near(reminding.next_message_at, request_recorded.scheduled_at + REMINDER_DELAYS[0] * HOUR)
        assert reminding == ReviewProgress(
            stage=ReviewStage.reminding,
            sending=False,
            messages_total=4,
            messages_sent=1,
            review_recorded=False,
            next_step=1,
            next_message="reminder-1",
            next_message_at=reminding.next_message_at,
            referral_id=None,
            stopped_by=None,
        )

        recorded_at = await temporal_time_skipping.get_current_time()
        await run.signal(ReviewEvent.review_recorded)
        offering = await run.wait_for_progress(stage=ReviewStage.offering_referral)
        assert offering.next_message_at is not None
        assert near(offering.next_message_at, recorded_at + REFERRAL_DELAY * HOUR)
        assert offering == ReviewProgress(
            stage=ReviewStage.offering_referral,
            sending=False,
            messages_total=4,
            messages_sent=1,
            review_recorded=True,
            next_step=3,
            next_message="referral-offer",
            next_message_at=offering.next_message_at,
            referral_id=None,
            stopped_by=None,
        )

        result = await run.result()
        assert await run.progress() == result
    assert result.stage == ReviewStage.completed
    assert (result.next_step, result.next_message, result.next_message_at) == (None, None, None)
    assert (result.messages_sent, result.referral_id) == (2, doubles.referral_id)


@pytest.mark.parametrize("days", [30, -1])
async def test_the_referral_expires_once_when_its_day_comes(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str, days: int
) -> None:
    doubles = ReviewDoubles()
    expires_at = await temporal_time_skipping.get_current_time() + timedelta(days=days)
    expiry_input = ReferralExpiryInput(company_id="cmp_test", referral_id=doubles.referral_id, expires_at=expires_at)
    began = time.monotonic()
    async with running_expiry(temporal_time_skipping, task_queue_prefix, doubles, expiry_input) as handle:
        async with asyncio.timeout(10):
            await handle.result()
        started_at = (await handle.describe()).start_time
    assert time.monotonic() - began < 10

    assert activities(doubles) == [EXPIRE]
    expire = only(doubles, EXPIRE)
    assert expire.input == expiry_input
    # Not a moment before the code lapses; one already past its date expires at once.
    assert near(expire.scheduled_at, max(expires_at, started_at))


@pytest.mark.parametrize("status", ["suppressed", "skipped", "failed", "unknown"])
async def test_an_undelivered_request_is_recorded_when_a_reminder_reaches_the_customer(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str, status: str
) -> None:
    doubles = ReviewDoubles(step_statuses={0: status})
    workflow_input = review_input(0, REMINDER_DELAYS[0], referral_delay=REFERRAL_DELAY)
    async with running_review(temporal_time_skipping, task_queue_prefix, doubles, workflow_input) as run:
        result = await run.result()

    # The reminder and the offer still go out. The customer was first asked by the reminder: that is recorded.
    assert activities(doubles) == [*ONE_MESSAGE, *REQUEST, *REFERRAL, FINISH]
    assert only(doubles, RECORD_REQUEST).input == ReviewRequestSent(review_id="rev_test", delivery_id="dlv-1")
    assert only(doubles, RECORD_REFERRAL).input == ReferralSent(referral_id=doubles.referral_id, delivery_id="dlv-2")
    assert finish_input(doubles) == finished(doubles, "completed", 2, review_recorded=False, referral=True)
    assert (result.messages_total, result.messages_sent) == (3, 2)


async def test_without_a_referral_offer_the_run_ends_after_the_reminders(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = ReviewDoubles()
    workflow_input = review_input(0, REMINDER_DELAYS[0], referral_delay=None)
    async with running_review(temporal_time_skipping, task_queue_prefix, doubles, workflow_input) as run:
        result = await run.result()

    assert activities(doubles) == [*REQUEST, *ONE_MESSAGE, FINISH]
    assert finish_input(doubles) == finished(doubles, "completed", 2, review_recorded=False, referral=False)
    assert (result.stage, result.messages_total, result.messages_sent) == (ReviewStage.completed, 2, 2)


async def test_a_failed_activity_marks_the_run_failed(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = ReviewDoubles(delivery_error="the provider refused the message")
    workflow_input = standard_input()
    async with running_review(temporal_time_skipping, task_queue_prefix, doubles, workflow_input) as run:
        with pytest.raises(WorkflowFailureError):
            await run.result()

    assert activities(doubles) == [*ONE_MESSAGE, FINISH]
    assert finish_input(doubles) == finished(doubles, "failed", 0, review_recorded=False, referral=False)


async def test_a_review_while_the_request_is_written_keeps_it_from_being_sent(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    gate = asyncio.Event()
    doubles = ReviewDoubles(gates={COMPOSE: gate})
    workflow_input = review_input(0, *REMINDER_DELAYS, referral_delay=REFERRAL_DELAY)
    async with running_review(temporal_time_skipping, task_queue_prefix, doubles, workflow_input) as run:
        await doubles.wait_for(COMPOSE)
        await run.wait_for_progress(sending=True, next_step=0)
        await run.signal(ReviewEvent.review_recorded)
        await run.wait_for_progress(review_recorded=True)
        gate.set()
        result = await run.result()

    # Written but never delivered, nor recorded as requested; the offer (whose writing the gate no longer holds) is.
    assert activities(doubles) == [PLAN, COMPOSE, *REFERRAL, FINISH]
    assert [call.input.step for call in doubles.of(COMPOSE) if isinstance(call.input, StepInput)] == [0, 3]
    assert only(doubles, DELIVER).input == step_input(
        run, workflow_input, 3, referral_message(workflow_input), referral_context(workflow_input, doubles)
    )
    assert finish_input(doubles) == finished(doubles, "completed", 1, review_recorded=True, referral=True)
    assert (result.stage, result.messages_sent) == (ReviewStage.completed, 1)
