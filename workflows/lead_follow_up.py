"""``LeadFollowUpWorkflow``: first message after an initial delay, then follow-ups, until the lead answers."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.lead_follow_up import LeadFollowUpActivities
    from schemas.lead_follow_up import (
        FinishRunInput,
        FollowUpProgress,
        LeadEvent,
        LeadEventSignal,
        LeadFollowUpInput,
        PlanSendInput,
        RunState,
        StepInput,
    )
    from schemas.temporal import QueueKind, sibling_queue

DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# An LLM or a provider may be slow or down for a while; retry patiently. A delivery retried after the
# request may have left is recorded as "unknown" by the activity itself, never sent twice.
SLOW_TIMEOUT = timedelta(minutes=2)
SLOW_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10))
# The delivery outcomes that count as sent. Any other (suppressed, skipped, failed, or unknown after a
# provider timeout) ends the step without a known message to the lead.
DELIVERED = frozenset({"sent", "recorded"})


@workflow.defn
class LeadFollowUpWorkflow:
    def __init__(self) -> None:
        self._stopped_by: LeadEvent | None = None
        self._steps_total = 0
        self._steps_sent = 0
        self._next_step: int | None = None
        self._next_step_at: datetime | None = None
        self._next_template: str | None = None
        self._state = RunState.waiting

    @workflow.signal
    def lead_event(self, signal: LeadEventSignal) -> None:
        """The lead replied, unsubscribed, converted, was lost or deleted: no further message goes out."""
        # Once the sequence is over, a late event changes nothing: the run already ended as it ended.
        if self._stopped_by is None and self._state in (RunState.waiting, RunState.sending):
            self._stopped_by = signal.event

    @workflow.query
    def progress(self) -> FollowUpProgress:
        next_step = self._next_step if self._stopped_by is None else None
        return FollowUpProgress(
            state=self._state,
            steps_total=self._steps_total,
            steps_sent=self._steps_sent,
            next_step=next_step,
            next_step_template=self._next_template if next_step is not None else None,
            next_step_at=self._next_step_at if next_step is not None else None,
            stopped_by=self._stopped_by,
        )

    async def _wait_until(self, moment: datetime) -> bool:
        """Sleep until ``moment`` unless a stop signal comes first. True when it is time to send."""
        self._next_step_at = moment
        remaining = (moment - workflow.now()).total_seconds()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):  # the delay ran out: time to send
                await workflow.wait_condition(lambda: self._stopped_by is not None, timeout=remaining)
        return self._stopped_by is None

    @workflow.run
    async def run(self, input: LeadFollowUpInput) -> FollowUpProgress:
        self._steps_total = len(input.steps)
        try:
            await self._send_steps(input)
        except ActivityError:
            # An activity failed for good (retries exhausted or a non-retryable error): the run row must
            # not stay "running" forever. The workflow still fails, so Temporal shows why.
            await self._finish(input, "failed")
            raise
        self._state = RunState.stopped if self._stopped_by is not None else RunState.completed
        await self._finish(input, self._state.value)
        return self.progress()

    async def _send_steps(self, input: LeadFollowUpInput) -> None:
        workflow_id = workflow.info().workflow_id
        for index, step in enumerate(input.steps):
            self._next_step = index
            self._next_template = step.template_key
            due = workflow.now() + timedelta(hours=step.delay_hours)
            if not await self._wait_until(due):
                return
            send_at = await workflow.execute_activity_method(
                LeadFollowUpActivities.plan_send_time,
                PlanSendInput(
                    company_id=input.company_id,
                    lead_id=input.lead_id,
                    channel=step.channel,
                    not_before=workflow.now(),
                    send_window=input.send_window,
                ),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
            )
            # Also re-checks a stop that arrived while the window was looked up, before any message is written.
            if not await self._wait_until(send_at):
                return
            self._state = RunState.sending
            step_input = StepInput(
                # The run id is in the key: a finished sequence re-run by hand keeps its workflow id.
                idempotency_key=f"{workflow_id}/{input.run_id}/{index}",
                company_id=input.company_id,
                lead_id=input.lead_id,
                config_id=input.config_id,
                run_id=input.run_id,
                step=index,
                step_spec=step,
                personalise=input.personalise,
            )
            composed = await workflow.execute_activity_method(
                LeadFollowUpActivities.compose_message,
                step_input,
                task_queue=sibling_queue(workflow.info().task_queue, QueueKind.LLM)
                if input.personalise
                else workflow.info().task_queue,
                start_to_close_timeout=SLOW_TIMEOUT,
                retry_policy=SLOW_RETRY,
            )
            # Checked again right before sending: a reply may have arrived while the message was written.
            if self._stopped_by is not None:
                return
            if composed.skipped_reason is None:
                outcome = await workflow.execute_activity_method(
                    LeadFollowUpActivities.deliver_message,
                    step_input,
                    start_to_close_timeout=SLOW_TIMEOUT,
                    retry_policy=SLOW_RETRY,
                )
                if outcome.status in DELIVERED:
                    self._steps_sent += 1
            else:
                workflow.logger.info("step %d not sent: %s", index, composed.skipped_reason)
            self._state = RunState.waiting

    async def _finish(self, input: LeadFollowUpInput, status: str) -> None:
        self._next_step = None
        await workflow.execute_activity_method(
            LeadFollowUpActivities.finish_run,
            FinishRunInput(
                run_id=input.run_id, status=status, steps_sent=self._steps_sent, stopped_by=self._stopped_by
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
