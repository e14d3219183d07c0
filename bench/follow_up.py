"""A three-step lead follow-up (0h, 24h, 48h) on the time-skipping server, many sequences at once.

The activities are doubles registered under the real activities' names, so the figures are the cost of
the workflow and of Temporal itself (timers, activity round trips, history), not of a database or a
provider. Days of timers pass in a fraction of a wall second on the time-skipping server.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.outbound import OutboundActivities
from bench.harness import table
from schemas.lead_follow_up import FollowUpStep, LeadFollowUpInput, RunState
from schemas.leads import Channel
from schemas.messaging import ComposedMessage, DeliveryOutcome, FinishRunInput, PlanSendInput, StepInput
from schemas.temporal import QueueKind, task_queue
from tests.support.temporal_servers import start_time_skipping_server
from workflows.lead_follow_up import LeadFollowUpWorkflow

CONCURRENT = 20
QUICK_CONCURRENT = 5
STEP_DELAYS_HOURS = (0, 24, 24)
"""Each step waits this long after the previous one: messages at 0h, 24h and 48h."""
SIMULATED_DAYS = sum(STEP_DELAYS_HOURS) / 24
# Bounds a wedged run: on the time-skipping server a run with nothing left to do jumps to this timeout.
EXECUTION_TIMEOUT = timedelta(days=30)
WALL_LIMIT_SECONDS = 120


@activity.defn(name=OutboundActivities.plan_send_time.__name__)
async def plan_send_time(input: PlanSendInput) -> datetime:
    return input.not_before


@activity.defn(name=OutboundActivities.compose_message.__name__)
async def compose_message(input: StepInput) -> ComposedMessage:
    return ComposedMessage(delivery_id="d")


@activity.defn(name=OutboundActivities.deliver_message.__name__)
async def deliver_message(input: StepInput) -> DeliveryOutcome:
    return DeliveryOutcome(delivery_id="d", status="sent")


@activity.defn(name=OutboundActivities.finish_run.__name__)
async def finish_run(input: FinishRunInput) -> None:
    return None


def _sequence(number: int) -> LeadFollowUpInput:
    return LeadFollowUpInput(
        company_id="cmp_bench",
        lead_id=f"lead_bench{number}",
        config_id="wfc_bench",
        run_id=f"run_bench{number}",
        steps=[
            FollowUpStep(
                delay_hours=delay, template_key=f"step-{index}", template="Hello {{name}}", channel=Channel.email
            )
            for index, delay in enumerate(STEP_DELAYS_HOURS)
        ],
    )


async def _one(client: Client, queue: str, number: int) -> tuple[str, float]:
    """Start one sequence and wait for its end: its workflow id and the wall seconds it took."""
    started = time.perf_counter()
    workflow_id = f"bench-follow-up/{uuid.uuid4().hex[:12]}"
    progress = await client.execute_workflow(
        LeadFollowUpWorkflow.run,
        _sequence(number),
        id=workflow_id,
        task_queue=queue,
        execution_timeout=EXECUTION_TIMEOUT,
    )
    if progress.state != RunState.completed or progress.steps_sent != len(STEP_DELAYS_HOURS):
        raise RuntimeError(f"sequence {number} ended {progress.state} with {progress.steps_sent} steps sent")
    return workflow_id, time.perf_counter() - started


async def _workflow_days(client: Client, workflow_id: str) -> float:
    """How long the run lasted on the workflow clock: proof that the days were really waited out."""
    described = await client.get_workflow_handle(workflow_id).describe()
    if described.close_time is None:
        raise RuntimeError(f"{workflow_id} has not closed")
    return (described.close_time - described.start_time) / timedelta(days=1)


@dataclass(frozen=True)
class Batch:
    sequences: int
    wall_seconds: float
    each_seconds: list[float]
    workflow_days: list[float]
    """Start to close of each run on the workflow clock."""


@asynccontextmanager
async def _time_skipping(client: Client) -> AsyncIterator[None]:
    """Let the server skip time while the block runs, with one unlock for all sequences.

    The SDK unlocks once per awaited result. With twenty results awaited at once the server skipped past
    workflow-task and activity timeouts while the worker was still answering them ("Expired workflow
    task"), and the batch never finished; one unlock for the whole batch keeps the clock held while any
    task is in flight, as with a single sequence.
    """
    await client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
    try:
        yield
    finally:
        await client.test_service.lock_time_skipping(LockTimeSkippingRequest())


async def _batch(env: WorkflowEnvironment, queue: str, sequences: int) -> Batch:
    started = time.perf_counter()
    with env.auto_time_skipping_disabled():
        async with asyncio.timeout(WALL_LIMIT_SECONDS), _time_skipping(env.client):
            ended = await asyncio.gather(*(_one(env.client, queue, number) for number in range(sequences)))
    wall = time.perf_counter() - started
    days = await asyncio.gather(*(_workflow_days(env.client, workflow_id) for workflow_id, _ in ended))
    return Batch(sequences, wall, [seconds for _, seconds in ended], list(days))


async def _run(concurrent: int) -> tuple[Batch, Batch]:
    env = await start_time_skipping_server()
    try:
        queue = task_queue(f"bench-{uuid.uuid4().hex[:10]}", QueueKind.MAIN)
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[LeadFollowUpWorkflow],
            activities=[plan_send_time, compose_message, deliver_message, finish_run],
        ):
            await _batch(env, queue, 1)  # warm-up: the sandbox imports the workflow's modules once
            return await _batch(env, queue, 1), await _batch(env, queue, concurrent)
    finally:
        await env.shutdown()


def _report(alone: Batch, together: Batch) -> dict[str, Any]:
    batches = (alone, together)
    table(
        f"Lead follow-up, {len(STEP_DELAYS_HOURS)} steps at 0h/24h/48h, time-skipping server, activity doubles",
        ["", "1 sequence alone", f"{together.sequences} concurrently", "concurrent/alone"],
        [
            ["wall s, whole batch", *(f"{b.wall_seconds:.2f}" for b in batches), ""],
            [
                "wall s per sequence (batch / count)",
                *(f"{b.wall_seconds / b.sequences:.3f}" for b in batches),
                f"{(together.wall_seconds / together.sequences) / alone.wall_seconds:.2f}",
            ],
            [
                "wall s per sequence (median, start to end)",
                *(f"{statistics.median(b.each_seconds):.2f}" for b in batches),
                f"{statistics.median(together.each_seconds) / statistics.median(alone.each_seconds):.2f}",
            ],
            [
                "simulated days per wall s (all sequences)",
                *(f"{b.sequences * SIMULATED_DAYS / b.wall_seconds:.1f}" for b in batches),
                f"{(together.sequences / together.wall_seconds) / (1 / alone.wall_seconds):.2f}",
            ],
            [
                "workflow days per sequence (median)",
                *(f"{statistics.median(b.workflow_days):.2f}" for b in batches),
                "",
            ],
        ],
    )
    return {
        batch_name: {
            "sequences": batch.sequences,
            "wall_seconds": round(batch.wall_seconds, 3),
            "median_seconds_per_sequence": round(statistics.median(batch.each_seconds), 3),
            "simulated_days_per_wall_second": round(batch.sequences * SIMULATED_DAYS / batch.wall_seconds, 2),
        }
        for batch_name, batch in (("alone", alone), ("concurrent", together))
    }


def main(quick: bool = False) -> dict[str, Any]:
    return _report(*asyncio.run(_run(QUICK_CONCURRENT if quick else CONCURRENT)))
