"""Test doubles for the shared message path's activities, and the scaffolding to run a workflow against them.

The doubles are registered under the real activities' names, so the workflow calls them exactly as it
calls the real ones; each records what it was given, on which task queue and at which workflow time.
``OutboundDoubles`` stands in for ``OutboundActivities``, which every automation sends through; the lead
follow-up runs on it alone, the review workflow on ``review_doubles.ReviewDoubles``, which extends it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.outbound import OutboundActivities
from schemas.lead_follow_up import FollowUpProgress, FollowUpStep, LeadFollowUpInput
from schemas.leads import Channel
from schemas.messaging import ComposedMessage, DeliveryOutcome, FinishRunInput, PlanSendInput, StepInput
from schemas.temporal import QueueKind, task_queue
from workflows.lead_follow_up import LeadFollowUpWorkflow

PLAN = OutboundActivities.plan_send_time.__name__
COMPOSE = OutboundActivities.compose_message.__name__
DELIVER = OutboundActivities.deliver_message.__name__
FINISH = OutboundActivities.finish_run.__name__

# Wall-clock seconds a run may take to finish once a test awaits it. A run stuck on an activity nobody
# serves would otherwise hang the suite: the time-skipping server does not skip past pending activities.
RESULT_TIMEOUT = 20


@dataclass(frozen=True)
class Call:
    activity: str
    input: BaseModel
    task_queue: str
    scheduled_at: datetime
    """The workflow clock when the workflow scheduled the activity (the time-skipping server's time)."""


def immediately(not_before: datetime) -> datetime:
    return not_before


@dataclass
class OutboundDoubles:
    """Records every activity call; the knobs let a test shape what the activities answer and when."""

    plan: Callable[[datetime], datetime] = immediately
    """When ``plan_send_time`` says the step may go out, given ``not_before``."""
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    """An activity named here does not return before the test sets its event."""
    skipped_reason: str | None = None
    """What ``compose_message`` answers as ``skipped_reason``."""
    delivery_status: str = "sent"
    step_statuses: dict[int, str] = field(default_factory=dict)
    """``deliver_message``'s answer for the steps named here, instead of ``delivery_status``."""
    delivery_error: str | None = None
    """If set, ``deliver_message`` fails for good (a non-retryable error) with this message."""
    calls: list[Call] = field(default_factory=list)

    async def _record(self, input: BaseModel) -> None:
        info = activity.info()
        self.calls.append(Call(info.activity_type, input, info.task_queue, info.scheduled_time))
        if info.activity_type in self.gates:
            await self.gates[info.activity_type].wait()

    def of(self, name: str) -> list[Call]:
        return [call for call in self.calls if call.activity == name]

    async def wait_for(self, name: str, count: int = 1) -> list[Call]:
        """Until ``name`` has been called ``count`` times (no time skips meanwhile: nothing awaits a result)."""
        async with asyncio.timeout(10):
            while len(self.of(name)) < count:
                await asyncio.sleep(0.01)
        return self.of(name)

    @activity.defn(name=PLAN)
    async def plan_send_time(self, input: PlanSendInput) -> datetime:
        await self._record(input)
        return self.plan(input.not_before)

    @activity.defn(name=COMPOSE)
    async def compose_message(self, input: StepInput) -> ComposedMessage:
        await self._record(input)
        return ComposedMessage(delivery_id=f"dlv-{input.step}", skipped_reason=self.skipped_reason)

    @activity.defn(name=DELIVER)
    async def deliver_message(self, input: StepInput) -> DeliveryOutcome:
        await self._record(input)
        if self.delivery_error is not None:
            raise ApplicationError(self.delivery_error, non_retryable=True)
        status = self.step_statuses.get(input.step, self.delivery_status)
        return DeliveryOutcome(delivery_id=f"dlv-{input.step}", status=status)

    @activity.defn(name=FINISH)
    async def finish_run(self, input: FinishRunInput) -> None:
        await self._record(input)

    def all(self) -> list[Callable[..., object]]:
        return [self.plan_send_time, self.compose_message, self.deliver_message, self.finish_run]


def step(delay_hours: float, key: str, channel: Channel = Channel.email) -> FollowUpStep:
    return FollowUpStep(
        delay_hours=delay_hours, template_key=key, template=f"Hello {{{{name}}}} ({key})", channel=channel
    )


def sequence(*delays: float, personalise: bool = False) -> LeadFollowUpInput:
    """A run whose step ``i`` waits ``delays[i]`` hours, with templates ``step-0``, ``step-1``..."""
    return LeadFollowUpInput(
        company_id="cmp_test",
        lead_id="lead_test",
        config_id="wfc_test",
        run_id="run_test",
        steps=[step(delay, f"step-{index}") for index, delay in enumerate(delays)],
        personalise=personalise,
    )


@dataclass(frozen=True)
class Running:
    handle: WorkflowHandle[LeadFollowUpWorkflow, FollowUpProgress]

    async def result(self) -> FollowUpProgress:
        """Awaits the run's end; meanwhile the time-skipping server jumps over its timers."""
        async with asyncio.timeout(RESULT_TIMEOUT):
            return await self.handle.result()

    async def progress(self) -> FollowUpProgress:
        return await self.handle.query(LeadFollowUpWorkflow.progress)


@asynccontextmanager
async def workers(
    client: Client,
    prefix: str,
    workflows: Sequence[type],
    doubles: OutboundDoubles,
    llm_doubles: OutboundDoubles | None = None,
) -> AsyncIterator[str]:
    """A worker on ``{prefix}-main`` (and one on ``{prefix}-llm`` if given); yields the main queue."""
    main_queue = task_queue(prefix, QueueKind.MAIN)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(client, task_queue=main_queue, workflows=workflows, activities=doubles.all())
        )
        if llm_doubles is not None:
            await stack.enter_async_context(
                Worker(client, task_queue=task_queue(prefix, QueueKind.LLM), activities=[llm_doubles.compose_message])
            )
        yield main_queue


async def end(handle: WorkflowHandle[Any, Any]) -> None:
    """Terminate the run if it is still going.

    A test that failed half-way must not leave its run behind: on the time-skipping server an unfinished
    run holds the shared clock back for every later test.
    """
    if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await handle.terminate("test over")


@asynccontextmanager
async def running(
    client: Client,
    prefix: str,
    doubles: OutboundDoubles,
    workflow_input: LeadFollowUpInput,
    llm_doubles: OutboundDoubles | None = None,
) -> AsyncIterator[Running]:
    """A worker on ``{prefix}-main`` (and one on ``{prefix}-llm`` if given) and the workflow started on it."""
    async with workers(client, prefix, [LeadFollowUpWorkflow], doubles, llm_doubles) as main_queue:
        handle = await client.start_workflow(
            LeadFollowUpWorkflow.run,
            workflow_input,
            id=f"lead-follow-up/{uuid.uuid4().hex[:10]}",
            task_queue=main_queue,
        )
        try:
            yield Running(handle)
        finally:
            await end(handle)
