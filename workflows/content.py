"""``GenerateContentWorkflow``: one content item written by the configured writer, on the LLM task queue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.content.generation import REFUSED, ContentActivities
    from activities.content.publishing import PublishingActivities
    from schemas.content_workflows import (
        PUBLISHER_LABELS,
        GenerateContentInput,
        GenerateStep,
        GenerationFailed,
        GenerationResult,
        PublishContentInput,
    )
    from schemas.messaging import FinishRunInput
    from schemas.publishing import SETTLED, AutoPublishInput, PublicationStatus, publish_workflow_id
    from schemas.temporal import QueueKind, run_attributes, sibling_queue
    from workflows.messaging import DB_RETRY, DB_TIMEOUT, failure_reason, finish_run
    from workflows.publishing import PublishContentWorkflow

WRITE_TIMEOUT = timedelta(minutes=5)
# A rate-limited or overloaded model is retried with backoff for about an hour, then the run fails and says so.
WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=12,
    non_retryable_error_types=[REFUSED],
)


def generate_workflow_id(content_id: str) -> str:
    return f"content-generate/{content_id}"


@workflow.defn
class GenerateContentWorkflow:
    @workflow.run
    async def run(self, input: GenerateContentInput) -> GenerationResult:
        step = GenerateStep(company_id=input.company_id, content_id=input.content_id, run_id=input.run_id)
        try:
            result = await workflow.execute_activity_method(
                ContentActivities.write_content,
                step,
                task_queue=sibling_queue(workflow.info().task_queue, QueueKind.LLM),
                start_to_close_timeout=WRITE_TIMEOUT,
                retry_policy=WRITE_RETRY,
            )
        except ActivityError as error:
            reason = failure_reason(error)
            await workflow.execute_activity_method(
                ContentActivities.record_generation_failed,
                GenerationFailed(content_id=input.content_id, reason=reason),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
            )
            await finish_run(
                FinishRunInput(
                    run_id=input.run_id,
                    status="failed",
                    steps_sent=0,
                    results={"content_id": input.content_id},
                    error=reason,
                )
            )
            raise ApplicationError(f"content {input.content_id} could not be written: {reason}") from error
        results: dict[str, Any] = {"content_id": input.content_id, "content_status": result.status}
        if input.publish_to is not None:
            results |= await self._publish(input)
        await finish_run(FinishRunInput(run_id=input.run_id, status="completed", steps_sent=0, results=results))
        return result

    async def _publish(self, input: GenerateContentInput) -> dict[str, Any]:
        """Publish what was written, unless a person must approve it first (then it waits as a draft)."""
        assert input.publish_to is not None
        prepared = await workflow.execute_activity_method(
            PublishingActivities.prepare_publication,
            AutoPublishInput(
                company_id=input.company_id,
                content_id=input.content_id,
                platform=input.publish_to,
                generation_run_id=input.run_id,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        if prepared is None:
            return {"publication_status": "awaiting_approval"}
        if prepared.status in SETTLED:  # an earlier run of this generation published it already
            return {"publication_id": prepared.publication_id, "publication_status": prepared.status}
        try:
            outcome = await workflow.execute_child_workflow(
                PublishContentWorkflow.run,
                PublishContentInput(
                    company_id=input.company_id,
                    content_id=input.content_id,
                    publication_id=prepared.publication_id,
                    run_id=prepared.run_id,
                    platform=input.publish_to,
                ),
                id=publish_workflow_id(prepared.publication_id),
                search_attributes=run_attributes(input.company_id, input.content_id),
                static_summary=f"Publish {input.content_id} to {PUBLISHER_LABELS[input.publish_to]} once written",
            )
            status = outcome.status
        except ChildWorkflowError as error:  # the publication records why; the text is written all the same
            workflow.logger.warning("publishing %s failed: %s", input.content_id, error)
            status = PublicationStatus.failed
        return {"publication_id": prepared.publication_id, "publication_status": status}
