"""``PublishContentWorkflow``: one content item to one platform (``content-publish/{publication_id}``).

If ``publish_at`` is in the future it waits durably until then; a cancel before that (``handle.cancel()``, which
the publish service sends) cancels the publication and publishes nothing. Once its time has come a cancel is
too late: what started finishes. A newsletter is the ``NewsletterWorkflow`` child; everything else is the
``publish`` activity, which sends at most once (see ``activities.content.publishing``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.content.publishing import NOT_FOUND, PublishingActivities
    from schemas.content_workflows import NewsletterInput, PublishContentInput, Publisher, PublishOutcome, PublishStep
    from schemas.messaging import FinishRunInput
    from schemas.publishing import NewsletterOutcome, PublicationStatus, PublishFailed
    from schemas.temporal import run_attributes
    from workflows.messaging import DB_RETRY, DB_TIMEOUT, failure_reason, finish_run
    from workflows.newsletter import NewsletterWorkflow, newsletter_workflow_id

PUBLISH_TIMEOUT = timedelta(minutes=5)
"""A lookup and a post, each within ``BAS_PUBLISH_TIMEOUT_SECONDS``, with room to spare."""
PUBLISH_HEARTBEAT = timedelta(seconds=10)
"""The activity heartbeats while the platform works: a killed worker's attempt is retried within seconds."""
# An unreachable platform (or one asking to come back later) is retried with backoff for about two hours;
# an attempt that may have reached it is never retried blindly (the activity asks or records "unknown").
PUBLISH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=15,
    non_retryable_error_types=[NOT_FOUND],
)


@workflow.defn
class PublishContentWorkflow:
    def __init__(self) -> None:
        self._status = PublicationStatus.pending

    @workflow.query
    def status(self) -> PublicationStatus:
        """Where the publish stands: scheduled (waiting for its time), sending, then its outcome."""
        return self._status

    @workflow.run
    async def run(self, input: PublishContentInput) -> PublishOutcome:
        step = PublishStep(publication_id=input.publication_id)
        if input.publish_at is not None and input.publish_at > workflow.now():
            self._status = PublicationStatus.scheduled
            try:
                await workflow.sleep(input.publish_at - workflow.now(), summary="wait for the publish time")
            except asyncio.CancelledError:
                return await self._cancelled(input, step)
        # From here a cancel is too late: the publish (and its record on the run) finishes regardless.
        publishing = asyncio.ensure_future(self._publish(input, step))
        try:
            return await asyncio.shield(publishing)
        except asyncio.CancelledError:
            workflow.logger.info("cancel of %s came after its time; finishing the publish", input.publication_id)
            return await publishing

    async def _publish(self, input: PublishContentInput, step: PublishStep) -> PublishOutcome:
        self._status = PublicationStatus.sending
        if input.platform == Publisher.newsletter:
            outcome = await self._newsletter(input, step)
        else:
            try:
                outcome = await workflow.execute_activity_method(
                    PublishingActivities.publish,
                    step,
                    start_to_close_timeout=PUBLISH_TIMEOUT,
                    heartbeat_timeout=PUBLISH_HEARTBEAT,
                    retry_policy=PUBLISH_RETRY,
                )
            except ActivityError as error:
                outcome = await self._failed(step, failure_reason(error))
        self._status = PublicationStatus(outcome.status)
        await finish_run(
            FinishRunInput(
                run_id=input.run_id,
                status={"failed": "failed", "cancelled": "stopped"}.get(outcome.status, "completed"),
                steps_sent=0,
                stopped_by="cancelled" if outcome.status == PublicationStatus.cancelled else None,
                results=_results(input, outcome),
                error="the publish failed: the publication says why" if outcome.status == "failed" else None,
            )
        )
        return outcome

    async def _newsletter(self, input: PublishContentInput, step: PublishStep) -> PublishOutcome:
        began = await workflow.execute_activity_method(
            PublishingActivities.begin_newsletter, step, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
        )
        if began.status != PublicationStatus.sending:  # cancelled (or settled) while it waited
            return began
        try:
            progress = await workflow.execute_child_workflow(
                NewsletterWorkflow.run,
                NewsletterInput(
                    company_id=input.company_id,
                    content_id=input.content_id,
                    publication_id=input.publication_id,
                    run_id=input.run_id,
                ),
                id=newsletter_workflow_id(input.publication_id),
                search_attributes=run_attributes(input.company_id, input.content_id),
                static_summary=f"Newsletter of {input.content_id} (publication {input.publication_id})",
            )
            outcome = NewsletterOutcome(publication_id=input.publication_id, progress=progress)
        except ChildWorkflowError as error:
            outcome = NewsletterOutcome(publication_id=input.publication_id, error=failure_reason(error))
        return await workflow.execute_activity_method(
            PublishingActivities.record_newsletter_outcome,
            outcome,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )

    async def _failed(self, step: PublishStep, reason: str) -> PublishOutcome:
        return await workflow.execute_activity_method(
            PublishingActivities.record_publish_failed,
            PublishFailed(publication_id=step.publication_id, reason=reason),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )

    async def _cancelled(self, input: PublishContentInput, step: PublishStep) -> PublishOutcome:
        outcome = await workflow.execute_activity_method(
            PublishingActivities.cancel_publication, step, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
        )
        self._status = PublicationStatus(outcome.status)
        await finish_run(
            FinishRunInput(
                run_id=input.run_id,
                status="stopped",
                steps_sent=0,
                stopped_by="cancelled",
                results=_results(input, outcome),
            )
        )
        return outcome


def _results(input: PublishContentInput, outcome: PublishOutcome) -> dict[str, object]:
    return {
        "content_id": input.content_id,
        "publication_id": input.publication_id,
        "platform": input.platform.value,
        "publication_status": outcome.status,
        "url": outcome.url,
    }
