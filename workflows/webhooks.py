"""``DeliverWebhookWorkflow``: one event to one webhook, retried with backoff for hours, then given up.

The retries are the attempt activity's own retry policy, so Temporal keeps the schedule and the worker may
restart at any time. Each attempt is written to the delivery row by the activity itself; this workflow only
decides what happens once there will be no more attempts.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import WebhookActivities
    from schemas.webhook_delivery import (
        AttemptInput,
        AttemptRefusal,
        DeliverWebhookInput,
        DeliveryResult,
        DeliveryStatus,
        GiveUpInput,
    )
    from workflows.messaging import DB_RETRY, DB_TIMEOUT

MAX_BACKOFF = timedelta(hours=1)
# Time to connect, send and read the answer, beyond the receiver's own allowance.
ATTEMPT_SLACK = timedelta(seconds=5)
REFUSALS = frozenset(refusal.value for refusal in AttemptRefusal)


@workflow.defn
class DeliverWebhookWorkflow:
    @workflow.run
    async def run(self, input: DeliverWebhookInput) -> DeliveryResult:
        try:
            attempted = await workflow.execute_activity_method(
                WebhookActivities.attempt_delivery,
                AttemptInput(delivery_id=input.delivery_id),
                start_to_close_timeout=timedelta(seconds=input.timeout_seconds) + ATTEMPT_SLACK,
                schedule_to_close_timeout=timedelta(hours=input.retry_hours),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=input.first_retry_seconds),
                    backoff_coefficient=2.0,
                    maximum_interval=MAX_BACKOFF,
                    maximum_attempts=0,  # unlimited: the retry window (schedule_to_close) ends them
                    non_retryable_error_types=sorted(REFUSALS),
                ),
            )
        except ActivityError as exc:
            outcome, reason = _why_given_up(exc)
            return await workflow.execute_activity_method(
                WebhookActivities.record_given_up,
                GiveUpInput(
                    delivery_id=input.delivery_id,
                    outcome=outcome,
                    reason=reason,
                    disable_after_failures=input.disable_after_failures,
                ),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
            )
        return DeliveryResult(
            status=attempted.status, attempts=attempted.attempts, response_status=attempted.response_status
        )


def _why_given_up(exc: ActivityError) -> tuple[DeliveryStatus, str]:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        if cause.type in REFUSALS:
            return AttemptRefusal(cause.type).outcome, cause.message
        return DeliveryStatus.failed, f"no successful answer within the retry window; the last: {cause.message}"
    if isinstance(cause, TimeoutError):
        # The window closed while an attempt was running or waiting; its own error is on the delivery row.
        return DeliveryStatus.failed, "no successful answer within the retry window"
    return DeliveryStatus.failed, f"given up: {cause or exc}"
