"""``LeadFollowUpWorkflow``: first message after an initial delay, then follow-ups, until the lead answers."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from schemas.lead_follow_up import (
        FollowUpProgress,
        LeadEvent,
        LeadEventSignal,
        LeadFollowUpInput,
        RunState,
    )
    from schemas.messaging import DELIVERED, FinishRunInput
    from workflows.messaging import MessagePath, finish_run


@workflow.defn
class LeadFollowUpWorkflow:
    def __init__(self) -> None:
        self._stopped_by: LeadEvent | None = None
        self._steps_total = 0
        self._steps_sent = 0
        self._next_step: int | None = None
        self._next_template: str | None = None
        self._state = RunState.waiting
        self._path: MessagePath | None = None

    @workflow.signal
    def lead_event(self, signal: LeadEventSignal) -> None:
        """The lead replied, unsubscribed, converted, was lost or deleted: no further message goes out."""
        # Once the sequence is over, a late event changes nothing: the run already ended as it ended.
        if self._stopped_by is None and self._state == RunState.waiting:
            self._stopped_by = signal.event

    @workflow.query
    def progress(self) -> FollowUpProgress:
        next_step = self._next_step if self._stopped_by is None else None
        sending = self._path is not None and self._path.sending
        return FollowUpProgress(
            state=RunState.sending if sending else self._state,
            steps_total=self._steps_total,
            steps_sent=self._steps_sent,
            next_step=next_step,
            next_step_template=self._next_template if next_step is not None else None,
            next_step_at=self._path.next_at if next_step is not None and self._path else None,
            stopped_by=self._stopped_by,
        )

    def _stopped(self) -> bool:
        return self._stopped_by is not None

    @workflow.run
    async def run(self, input: LeadFollowUpInput) -> FollowUpProgress:
        self._steps_total = len(input.steps)
        self._path = MessagePath(
            company_id=input.company_id,
            contact_id=input.lead_id,
            config_id=input.config_id,
            run_id=input.run_id,
            send_window=input.send_window,
            personalise=input.personalise,
        )
        try:
            await self._send_steps(input, self._path)
        except ActivityError:
            # An activity failed for good (retries exhausted or a non-retryable error): the run row must
            # not stay "running" forever. The workflow still fails, so Temporal shows why.
            await self._finish(input, "failed")
            raise
        await self._finish(input, RunState.stopped if self._stopped() else RunState.completed)
        return self.progress()

    async def _send_steps(self, input: LeadFollowUpInput, path: MessagePath) -> None:
        for index, step in enumerate(input.steps):
            self._next_step = index
            self._next_template = step.template_key
            if not await path.wait_hours(step.delay_hours, self._stopped):
                return
            outcome = await path.send(index, step, self._stopped)
            if outcome is None:
                return
            if outcome.status in DELIVERED:
                self._steps_sent += 1

    async def _finish(self, input: LeadFollowUpInput, status: str) -> None:
        self._next_step = None
        if status != "failed":
            self._state = RunState(status)
        await finish_run(
            FinishRunInput(run_id=input.run_id, status=status, steps_sent=self._steps_sent, stopped_by=self._stopped_by)
        )
