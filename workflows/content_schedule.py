"""``ScheduledGenerationWorkflow``: what a content schedule's Temporal Schedule starts at each of its times.

Take the schedule's next topic (an activity records the content and its run), then write it with
``GenerateContentWorkflow`` as a child, which publishes it or leaves a draft for approval as the schedule says.
The schedule skips a time while the previous run is still going (overlap policy SKIP): runs never stack up.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.content.schedules import ScheduleActivities
    from schemas.content_schedules import ScheduledRun
    from schemas.content_workflows import GenerateContentInput, GenerationResult, ScheduledGenerationInput
    from schemas.temporal import run_attributes
    from workflows.content import GenerateContentWorkflow, generate_workflow_id
    from workflows.messaging import DB_RETRY, DB_TIMEOUT


def content_schedule_id(schedule_id: str) -> str:
    """The Temporal Schedule's id, also the prefix of the workflow ids it starts."""
    return f"content-schedule/{schedule_id}"


def _workflow_made_id(prefix: str) -> str:
    # Made in the workflow (replay-safe) rather than by the activity: a retried activity then finds its own rows.
    return f"{prefix}_{workflow.uuid4().hex[:16]}"


@workflow.defn
class ScheduledGenerationWorkflow:
    @workflow.run
    async def run(self, input: ScheduledGenerationInput) -> GenerationResult | None:
        content_id = _workflow_made_id("cont")
        taken = await workflow.execute_activity_method(
            ScheduleActivities.start_scheduled_content,
            ScheduledRun(
                schedule_id=input.schedule_id,
                content_id=content_id,
                run_id=_workflow_made_id("run"),
                workflow_id=generate_workflow_id(content_id),
                scheduled_by=workflow.info().workflow_id,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        if taken is None:
            workflow.logger.warning("content schedule %s is gone; nothing to write", input.schedule_id)
            return None
        return await workflow.execute_child_workflow(
            GenerateContentWorkflow.run,
            GenerateContentInput(
                company_id=taken.company_id,
                content_id=taken.content_id,
                run_id=taken.run_id,
                publish_to=taken.publish_to,
            ),
            id=generate_workflow_id(taken.content_id),
            search_attributes=run_attributes(taken.company_id, content_id, taken.workflow_config_id),
            static_summary=f"Scheduled writing about {taken.topic[:80]!r}",
            memo={"run_id": taken.run_id, "trigger_type": "schedule"},
        )
