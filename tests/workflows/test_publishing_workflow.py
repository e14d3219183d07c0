"""``PublishContentWorkflow`` (and the publish step of ``GenerateContentWorkflow``) on the time-skipping server,
the activities replaced by recording doubles registered under the real names.

Days pass in milliseconds while a test awaits a run's result; while it awaits anything else (a double being
called, a query) the clock runs at wall speed, so a cancel sent then lands while the run still waits.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import activity, workflow

# The sandbox re-imports this module for the newsletter double below; the test machinery comes from outside it.
with workflow.unsafe.imports_passed_through():
    import pytest
    from pydantic import BaseModel
    from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
    from temporalio.exceptions import ApplicationError
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from activities.content.generation import ContentActivities
    from activities.content.publishing import PublishingActivities
    from activities.outbound import OutboundActivities
    from schemas.content_workflows import (
        GenerateContentInput,
        GenerateStep,
        GenerationFailed,
        GenerationResult,
        NewsletterInput,
        NewsletterProgress,
        PublishContentInput,
        Publisher,
        PublishOutcome,
        PublishStep,
    )
    from schemas.messaging import FinishRunInput
    from schemas.publishing import AutoPublishInput, NewsletterOutcome, PreparedPublication, PublishFailed
    from schemas.temporal import COMPANY_ID, ENTITY_ID, QueueKind, task_queue
    from tests.workflows.doubles import RESULT_TIMEOUT, Call, end
    from workflows.content import GenerateContentWorkflow
    from workflows.publishing import PublishContentWorkflow

PUBLISH = PublishingActivities.publish.__name__
CANCEL = PublishingActivities.cancel_publication.__name__
FAILED = PublishingActivities.record_publish_failed.__name__
BEGIN_NEWSLETTER = PublishingActivities.begin_newsletter.__name__
NEWSLETTER_OUTCOME = PublishingActivities.record_newsletter_outcome.__name__
PREPARE = PublishingActivities.prepare_publication.__name__
FINISH = OutboundActivities.finish_run.__name__
WRITE = ContentActivities.write_content.__name__

ROUNDING = timedelta(milliseconds=1)
SLACK = timedelta(minutes=1)
NEWSLETTER_COUNTS = NewsletterProgress(total=3, sent=2, skipped=1)


@workflow.defn(name="NewsletterWorkflow")
class NewsletterDouble:
    """Stands in for the newsletter engineer's workflow: same name, same contract."""

    @workflow.run
    async def run(self, input: NewsletterInput) -> NewsletterProgress:
        return NEWSLETTER_COUNTS


@dataclass
class PublishDoubles:
    publish_status: str = "published"
    publish_error: str | None = None
    """If set, ``publish`` fails for good (a non-retryable error) with this message."""
    prepared: PreparedPublication | None = None
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    async def _record(self, input: BaseModel) -> None:
        info = activity.info()
        self.calls.append(Call(info.activity_type, input, info.task_queue, info.scheduled_time))
        if info.activity_type in self.gates:
            await self.gates[info.activity_type].wait()

    def of(self, name: str) -> list[Call]:
        return [call for call in self.calls if call.activity == name]

    def names(self) -> list[str]:
        return [call.activity for call in self.calls]

    async def wait_for(self, name: str) -> Call:
        async with asyncio.timeout(10):
            while not self.of(name):
                await asyncio.sleep(0.01)
        return self.of(name)[0]

    @activity.defn(name=PUBLISH)
    async def publish(self, step: PublishStep) -> PublishOutcome:
        await self._record(step)
        if self.publish_error is not None:
            raise ApplicationError(self.publish_error, non_retryable=True)
        return PublishOutcome(publication_id=step.publication_id, status=self.publish_status, url="https://blog/p")

    @activity.defn(name=CANCEL)
    async def cancel_publication(self, step: PublishStep) -> PublishOutcome:
        await self._record(step)
        return PublishOutcome(publication_id=step.publication_id, status="cancelled")

    @activity.defn(name=FAILED)
    async def record_publish_failed(self, failed: PublishFailed) -> PublishOutcome:
        await self._record(failed)
        return PublishOutcome(publication_id=failed.publication_id, status="failed")

    @activity.defn(name=BEGIN_NEWSLETTER)
    async def begin_newsletter(self, step: PublishStep) -> PublishOutcome:
        await self._record(step)
        return PublishOutcome(publication_id=step.publication_id, status="sending")

    @activity.defn(name=NEWSLETTER_OUTCOME)
    async def record_newsletter_outcome(self, outcome: NewsletterOutcome) -> PublishOutcome:
        await self._record(outcome)
        return PublishOutcome(publication_id=outcome.publication_id, status="published")

    @activity.defn(name=PREPARE)
    async def prepare_publication(self, prepare: AutoPublishInput) -> PreparedPublication | None:
        await self._record(prepare)
        return self.prepared

    @activity.defn(name=FINISH)
    async def finish_run(self, finish: FinishRunInput) -> None:
        await self._record(finish)

    @activity.defn(name=WRITE)
    async def write_content(self, step: GenerateStep) -> GenerationResult:
        await self._record(step)
        return GenerationResult(content_id=step.content_id, status="draft")

    @activity.defn(name=ContentActivities.record_generation_failed.__name__)
    async def record_generation_failed(self, failed: GenerationFailed) -> None:
        await self._record(failed)

    def main(self) -> list[Callable[..., object]]:
        return [
            self.publish,
            self.cancel_publication,
            self.record_publish_failed,
            self.begin_newsletter,
            self.record_newsletter_outcome,
            self.prepare_publication,
            self.finish_run,
            self.record_generation_failed,
        ]

    def finishes(self) -> list[FinishRunInput]:
        return [call.input for call in self.of(FINISH) if isinstance(call.input, FinishRunInput)]


@asynccontextmanager
async def workers(client: Client, prefix: str, doubles: PublishDoubles) -> AsyncIterator[str]:
    main_queue = task_queue(prefix, QueueKind.MAIN)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(
                client,
                task_queue=main_queue,
                workflows=[PublishContentWorkflow, GenerateContentWorkflow, NewsletterDouble],
                activities=doubles.main(),
            )
        )
        await stack.enter_async_context(
            Worker(client, task_queue=task_queue(prefix, QueueKind.LLM), activities=[doubles.write_content])
        )
        yield main_queue


def publish_input(platform: Publisher = Publisher.wordpress, publish_at: datetime | None = None) -> PublishContentInput:
    return PublishContentInput(
        company_id="cmp_test",
        content_id="cont_test",
        publication_id=f"pub_{uuid.uuid4().hex[:12]}",
        run_id="run_publish",
        platform=platform,
        publish_at=publish_at,
    )


@asynccontextmanager
async def publishing(
    env: WorkflowEnvironment, prefix: str, doubles: PublishDoubles, workflow_input: PublishContentInput
) -> AsyncIterator[WorkflowHandle[PublishContentWorkflow, PublishOutcome]]:
    async with workers(env.client, prefix, doubles) as main_queue:
        handle = await env.client.start_workflow(
            PublishContentWorkflow.run,
            workflow_input,
            id=f"content-publish/{workflow_input.publication_id}",
            task_queue=main_queue,
        )
        try:
            yield handle
        finally:
            await end(handle)


async def result(handle: WorkflowHandle[PublishContentWorkflow, PublishOutcome]) -> PublishOutcome:
    async with asyncio.timeout(RESULT_TIMEOUT):
        return await handle.result()


async def test_a_scheduled_publish_waits_until_its_time(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    env = temporal_time_skipping
    publish_at = await env.get_current_time() + timedelta(days=3)
    doubles = PublishDoubles()
    workflow_input = publish_input(publish_at=publish_at)

    async with publishing(env, task_queue_prefix, doubles, workflow_input) as handle:
        assert await handle.query(PublishContentWorkflow.status) == "scheduled"
        assert doubles.calls == []
        outcome = await result(handle)

    assert (outcome.status, outcome.url) == ("published", "https://blog/p")
    [publish] = doubles.of(PUBLISH)
    assert publish.input == PublishStep(publication_id=workflow_input.publication_id)
    assert publish_at - ROUNDING <= publish.scheduled_at < publish_at + SLACK
    [finish] = doubles.finishes()
    assert (finish.run_id, finish.status) == ("run_publish", "completed")
    assert finish.results["publication_status"] == "published" and finish.results["platform"] == "wordpress"


async def test_a_cancelled_scheduled_publish_never_publishes(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    env = temporal_time_skipping
    doubles = PublishDoubles()
    workflow_input = publish_input(publish_at=await env.get_current_time() + timedelta(days=2))

    async with publishing(env, task_queue_prefix, doubles, workflow_input) as handle:
        assert await handle.query(PublishContentWorkflow.status) == "scheduled"
        await handle.cancel()
        outcome = await result(handle)
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    assert outcome.status == "cancelled"
    assert doubles.names() == [CANCEL, FINISH]
    [finish] = doubles.finishes()
    assert (finish.status, finish.stopped_by, finish.results["publication_status"]) == (
        "stopped",
        "cancelled",
        "cancelled",
    )


async def test_a_cancel_after_the_publish_began_does_not_stop_it(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = PublishDoubles(gates={PUBLISH: asyncio.Event()})

    async with publishing(temporal_time_skipping, task_queue_prefix, doubles, publish_input()) as handle:
        await doubles.wait_for(PUBLISH)
        await handle.cancel()
        doubles.gates[PUBLISH].set()
        outcome = await result(handle)

    assert outcome.status == "published"
    assert doubles.names() == [PUBLISH, FINISH]


async def test_a_publish_that_cannot_be_done_is_recorded_failed(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = PublishDoubles(publish_error="WordPress refused the post: 400 Invalid slug")
    workflow_input = publish_input()

    async with publishing(temporal_time_skipping, task_queue_prefix, doubles, workflow_input) as handle:
        outcome = await result(handle)

    assert outcome.status == "failed"
    [failed] = doubles.of(FAILED)
    assert failed.input == PublishFailed(
        publication_id=workflow_input.publication_id, reason="WordPress refused the post: 400 Invalid slug"
    )
    [finish] = doubles.finishes()
    assert finish.status == "failed" and finish.error


async def test_an_unknown_outcome_ends_the_run_and_waits_for_a_person(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = PublishDoubles(publish_status="unknown")

    async with publishing(temporal_time_skipping, task_queue_prefix, doubles, publish_input()) as handle:
        outcome = await result(handle)

    assert outcome.status == "unknown"
    assert doubles.names() == [PUBLISH, FINISH]  # no second publish, no failure record
    assert doubles.finishes()[0].results["publication_status"] == "unknown"


async def test_a_newsletter_is_the_newsletter_workflow_and_its_counts_decide_the_outcome(
    temporal_dev: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    """On the dev server: the child carries search attributes, which the time-skipping server never starts."""
    doubles = PublishDoubles()
    workflow_input = publish_input(Publisher.newsletter)

    async with publishing(temporal_dev, task_queue_prefix, doubles, workflow_input) as handle:
        outcome = await result(handle)
        child = temporal_dev.client.get_workflow_handle(f"newsletter/{workflow_input.publication_id}")
        described = await child.describe()

    assert outcome.status == "published"
    assert described.status == WorkflowExecutionStatus.COMPLETED
    assert described.parent_id == f"content-publish/{workflow_input.publication_id}"
    assert described.typed_search_attributes.get(COMPANY_ID) == "cmp_test"
    assert doubles.names() == [BEGIN_NEWSLETTER, NEWSLETTER_OUTCOME, FINISH]
    [recorded] = doubles.of(NEWSLETTER_OUTCOME)
    assert recorded.input == NewsletterOutcome(publication_id=workflow_input.publication_id, progress=NEWSLETTER_COUNTS)


@pytest.mark.parametrize("approval_required", [False, True])
async def test_a_generation_with_publish_to_publishes_what_it_wrote_unless_it_needs_approval(
    temporal_dev: WorkflowEnvironment, task_queue_prefix: str, approval_required: bool
) -> None:
    """On the dev server: the publish child carries search attributes, which the time-skipping server never starts
    (the run stops after ``StartChildWorkflowExecutionInitiated``). Nothing here waits on a timer."""
    env = temporal_dev
    publication_id = f"pub_{uuid.uuid4().hex[:12]}"
    prepared = PreparedPublication(publication_id=publication_id, run_id="run_publish", status="pending")
    doubles = PublishDoubles(prepared=None if approval_required else prepared)
    generation = GenerateContentInput(
        company_id="cmp_test", content_id="cont_test", run_id="run_generate", publish_to=Publisher.wordpress
    )

    async with workers(env.client, task_queue_prefix, doubles) as main_queue:
        handle = await env.client.start_workflow(
            GenerateContentWorkflow.run, generation, id=f"content-generate/{uuid.uuid4().hex}", task_queue=main_queue
        )
        try:
            async with asyncio.timeout(RESULT_TIMEOUT):
                written = await handle.result()
        finally:
            await end(handle)

    assert written.status == "draft"
    [prepare] = doubles.of(PREPARE)
    assert prepare.input == AutoPublishInput(
        company_id="cmp_test", content_id="cont_test", platform=Publisher.wordpress, generation_run_id="run_generate"
    )
    generation_finish = doubles.finishes()[-1]
    assert generation_finish.run_id == "run_generate"
    if approval_required:
        assert doubles.names() == [WRITE, PREPARE, FINISH]
        assert generation_finish.results["publication_status"] == "awaiting_approval"
        return
    assert doubles.names() == [WRITE, PREPARE, PUBLISH, FINISH, FINISH]
    assert doubles.of(PUBLISH)[0].input == PublishStep(publication_id=publication_id)
    child = await env.client.get_workflow_handle(f"content-publish/{publication_id}").describe()
    assert child.parent_id == handle.id
    attributes = child.typed_search_attributes
    assert (attributes.get(COMPANY_ID), attributes.get(ENTITY_ID)) == ("cmp_test", "cont_test")
    assert [finish.run_id for finish in doubles.finishes()] == ["run_publish", "run_generate"]
    assert generation_finish.results == {
        "content_id": "cont_test",
        "content_status": "draft",
        "publication_id": publication_id,
        "publication_status": "published",
    }
