"""The workflow side of the shared message path: wait, plan the send window, compose, deliver, finish.

Every automation that messages a contact goes through ``MessagePath``, so each issues the same commands in
the same order (the replay tests hold the lead follow-up to it) and every stop is checked at the same points:
after each wait, and again between writing a message and sending it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.outbound import OutboundActivities
    from schemas.messaging import (
        DeliveryOutcome,
        FinishRunInput,
        MessageContext,
        MessageSpec,
        PlanSendInput,
        ResendDeliveryInput,
        SendWindow,
        StepInput,
    )
    from schemas.temporal import QueueKind, sibling_queue

DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# An LLM or a provider may be slow or down for a while; retry patiently. A delivery retried after the
# request may have left is recorded as "unknown" by the activity itself, never sent twice.
SLOW_TIMEOUT = timedelta(minutes=2)
SLOW_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10))
# Composing and delivering heartbeat in the background while the LLM or the provider works, so an attempt whose
# worker died is retried within seconds (and its unconfirmed send resolved) rather than after SLOW_TIMEOUT.
HEARTBEAT = timedelta(seconds=10)

Stop = Callable[[], bool]
"""True once the run must not send anything more (a reply, an opt-out, a refund...)."""


class MessagePath:
    """One run's messages to one contact. ``next_at`` and ``sending`` are there for the workflow's query."""

    def __init__(
        self,
        *,
        company_id: str,
        contact_id: str,
        config_id: str | None,
        run_id: str,
        send_window: SendWindow | None,
        personalise: bool,
    ) -> None:
        self._company_id = company_id
        self._contact_id = contact_id
        self._config_id = config_id
        self._run_id = run_id
        self._send_window = send_window
        self._personalise = personalise
        self.next_at: datetime | None = None
        self.sending = False

    async def wait_until(self, moment: datetime, stop: Stop) -> bool:
        """Sleep until ``moment`` unless ``stop`` becomes true first. True when it is time to go on."""
        self.next_at = moment
        remaining = (moment - workflow.now()).total_seconds()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):  # the delay ran out: time to go on
                await workflow.wait_condition(stop, timeout=remaining)
        return not stop()

    async def wait_hours(self, hours: float, stop: Stop) -> bool:
        return await self.wait_until(workflow.now() + timedelta(hours=hours), stop)

    async def send(
        self, step: int, spec: MessageSpec, stop: Stop, context: MessageContext | None = None
    ) -> DeliveryOutcome | None:
        """Send one message inside the send window; ``None`` if ``stop`` came first and nothing went out.

        A message that could not be written (no address, a missing review link...) comes back ``skipped``.
        """
        send_at = await workflow.execute_activity_method(
            OutboundActivities.plan_send_time,
            PlanSendInput(
                company_id=self._company_id,
                contact_id=self._contact_id,
                channel=spec.channel,
                not_before=workflow.now(),
                send_window=self._send_window,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        # Also re-checks a stop that arrived while the window was looked up, before any message is written.
        if not await self.wait_until(send_at, stop):
            return None
        self.sending = True
        try:
            return await self._compose_and_deliver(step, spec, stop, context or MessageContext())
        finally:
            self.sending = False

    async def _compose_and_deliver(
        self, step: int, spec: MessageSpec, stop: Stop, context: MessageContext
    ) -> DeliveryOutcome | None:
        step_input = StepInput(
            # The run id is in the key: a finished sequence re-run by hand keeps its workflow id.
            idempotency_key=f"{workflow.info().workflow_id}/{self._run_id}/{step}",
            company_id=self._company_id,
            contact_id=self._contact_id,
            config_id=self._config_id,
            run_id=self._run_id,
            step=step,
            step_spec=spec,
            personalise=self._personalise,
            context=context,
        )
        composed = await workflow.execute_activity_method(
            OutboundActivities.compose_message,
            step_input,
            task_queue=sibling_queue(workflow.info().task_queue, QueueKind.LLM)
            if self._personalise
            else workflow.info().task_queue,
            start_to_close_timeout=SLOW_TIMEOUT,
            heartbeat_timeout=HEARTBEAT,
            retry_policy=SLOW_RETRY,
        )
        # Checked again right before sending: a reply may have arrived while the message was written.
        if stop():
            return None
        if composed.skipped_reason is not None:
            workflow.logger.info("step %d not sent: %s", step, composed.skipped_reason)
            return DeliveryOutcome(delivery_id=composed.delivery_id, status="skipped")
        return await workflow.execute_activity_method(
            OutboundActivities.deliver_message,
            step_input,
            start_to_close_timeout=SLOW_TIMEOUT,
            heartbeat_timeout=HEARTBEAT,
            retry_policy=SLOW_RETRY,
        )


def failure_reason(error: ActivityError | ChildWorkflowError) -> str:
    """What went wrong, in the words of the activity or child that failed, for the run's page."""
    cause = error.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or error)


async def finish_run(finish: FinishRunInput) -> None:
    """Write the run's final status and results (its ``workflow_runs`` row)."""
    await workflow.execute_activity_method(
        OutboundActivities.finish_run, finish, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
    )


def resend_workflow_id(delivery_id: str) -> str:
    return f"delivery-resend/{delivery_id}"


@workflow.defn
class ResendDeliveryWorkflow:
    """A person's resend of a delivery no attempt could settle: one activity, retried while the provider is down."""

    @workflow.run
    async def run(self, input: ResendDeliveryInput) -> DeliveryOutcome:
        return await workflow.execute_activity_method(
            OutboundActivities.resend_delivery,
            input,
            start_to_close_timeout=SLOW_TIMEOUT,
            heartbeat_timeout=HEARTBEAT,
            retry_policy=SLOW_RETRY,
        )
