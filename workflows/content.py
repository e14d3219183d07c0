"""``GenerateContentWorkflow``: one content item written by the configured writer, on the LLM task queue."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.content.generation import REFUSED, ContentActivities
    from schemas.content_workflows import GenerateContentInput, GenerateStep, GenerationFailed, GenerationResult
    from schemas.messaging import FinishRunInput
    from schemas.temporal import QueueKind, sibling_queue
    from workflows.messaging import DB_RETRY, DB_TIMEOUT, finish_run

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


def _reason(error: ActivityError) -> str:
    cause = error.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or error)


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
            reason = _reason(error)
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
        await finish_run(
            FinishRunInput(
                run_id=input.run_id,
                status="completed",
                steps_sent=0,
                results={"content_id": input.content_id, "content_status": result.status},
            )
        )
        return result
