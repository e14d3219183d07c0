"""``NewsletterWorkflow`` on the time-skipping server, its activities replaced by doubles that play an audience
of contact ids ``cust_00000``, ``cust_00001``... and answer each recipient's outcome.

Ten thousand recipients: a hundred batches, each told only where it starts; the run continues as new half-way,
so both histories stay a few hundred events; both replay against the current code. Two saved histories (a
fresh run, a continued one) guard the code against changes that would break newsletters in flight; record them
again only for a ``workflow.patched``-guarded change that has shipped:

    .venv/bin/python -m tests.workflows.test_newsletter_workflow
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.content.newsletter import NOTHING_TO_SEND, NewsletterActivities
from schemas.content_workflows import NewsletterInput, NewsletterProgress, NewsletterResume
from schemas.newsletter import NewsletterAudience, NewsletterBatch, NewsletterBatchResult
from schemas.temporal import QueueKind, task_queue
from tests.support.temporal_servers import start_time_skipping_server
from tests.workflows.doubles import RESULT_TIMEOUT, end
from workflows.newsletter import BATCH_SIZE, BATCHES_PER_RUN, NewsletterWorkflow, newsletter_workflow_id

SNAPSHOT = NewsletterActivities.snapshot_audience.__name__
BATCH = NewsletterActivities.send_batch.__name__
CUTOFF = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
COUNTED_AS = {"sent": "sent", "suppressed": "skipped", "failed": "failed", "unknown": "unknown"}
HISTORIES = Path(__file__).parent / "histories"


def contact(index: int) -> str:
    return f"cust_{index:05d}"


def everyone_sent(index: int) -> str:
    return "sent"


@dataclass
class AudienceDoubles:
    """The audience is ``total`` contacts; ``outcome(i)`` is what sending to the ``i``-th ends in."""

    total: int
    outcome: Callable[[int], str] = everyone_sent
    hold_batch: int | None = None
    """This batch (0-based) does not return before ``release`` is set."""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    refuse: str | None = None
    """``snapshot_audience`` fails for good with this reason."""
    snapshots: list[NewsletterInput] = field(default_factory=list)
    batches: list[NewsletterBatch] = field(default_factory=list)

    def expected(self, up_to: int | None = None) -> NewsletterProgress:
        counts = NewsletterProgress(total=self.total).model_dump()
        for index in range(self.total if up_to is None else up_to):
            counts[COUNTED_AS[self.outcome(index)]] += 1
        return NewsletterProgress.model_validate(counts)

    @activity.defn(name=SNAPSHOT)
    async def snapshot_audience(self, input: NewsletterInput) -> NewsletterAudience:
        self.snapshots.append(input)
        if self.refuse is not None:
            raise ApplicationError(self.refuse, type=NOTHING_TO_SEND, non_retryable=True)
        return NewsletterAudience(cutoff=CUTOFF, total=self.total)

    @activity.defn(name=BATCH)
    async def send_batch(self, batch: NewsletterBatch) -> NewsletterBatchResult:
        self.batches.append(batch)
        if len(self.batches) - 1 == self.hold_batch:
            await self.release.wait()
        start = 0 if batch.after is None else int(batch.after.removeprefix("cust_")) + 1
        stop = min(start + batch.size, self.total)
        counts = batch.before.model_dump()
        for index in range(start, stop):
            counts[COUNTED_AS[self.outcome(index)]] += 1
        return NewsletterBatchResult(
            recipients=stop - start,
            last_contact_id=contact(stop - 1) if stop > start else None,
            more=stop < self.total,
            progress=NewsletterProgress.model_validate(counts),
        )

    async def batches_called(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.batches) < count:
                await asyncio.sleep(0.01)


def newsletter(publication_id: str = "pub_test", resume: NewsletterResume | None = None) -> NewsletterInput:
    return NewsletterInput(
        company_id="cmp_test", content_id="cont_test", publication_id=publication_id, run_id="run_test", resume=resume
    )


@asynccontextmanager
async def running(
    client: Client, prefix: str, doubles: AudienceDoubles, resume: NewsletterResume | None = None
) -> AsyncIterator[WorkflowHandle[NewsletterWorkflow, NewsletterProgress]]:
    queue = task_queue(prefix, QueueKind.MAIN)
    async with Worker(
        client,
        task_queue=queue,
        workflows=[NewsletterWorkflow],
        activities=[doubles.snapshot_audience, doubles.send_batch],
    ):
        publication_id = f"pub_{uuid.uuid4().hex[:10]}"
        handle = await client.start_workflow(
            NewsletterWorkflow.run,
            newsletter(publication_id, resume),
            id=newsletter_workflow_id(publication_id),
            task_queue=queue,
        )
        try:
            yield handle
        finally:
            await end(handle)


async def result(handle: WorkflowHandle[NewsletterWorkflow, NewsletterProgress]) -> NewsletterProgress:
    async with asyncio.timeout(RESULT_TIMEOUT):
        return await handle.result()


async def every_run(
    client: Client, handle: WorkflowHandle[NewsletterWorkflow, NewsletterProgress]
) -> list[WorkflowHistory]:
    """The histories of the first run and of each run it continued as new into."""
    histories: list[WorkflowHistory] = []
    run_id = handle.first_execution_run_id or handle.result_run_id
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        continued = last.HasField("workflow_execution_continued_as_new_event_attributes")
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id if continued else None
    return histories


def mixed(index: int) -> str:
    if index == 4321:
        return "unknown"
    if index % 1000 == 5:
        return "failed"
    return "suppressed" if index % 100 == 3 else "sent"


async def test_ten_thousand_recipients_in_batches_keep_every_history_small(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    client = temporal_time_skipping.client
    doubles = AudienceDoubles(total=10_000, outcome=mixed)
    async with running(client, task_queue_prefix, doubles) as handle:
        progress = await result(handle)
        histories = await every_run(client, handle)

    assert (
        progress
        == doubles.expected()
        == NewsletterProgress(total=10_000, sent=9_889, skipped=100, failed=10, unknown=1)
    )
    # A hundred batches, each starting where the one before ended, carrying the counts so far.
    batches = doubles.batches
    assert len(batches) == 10_000 // BATCH_SIZE == 100
    assert [b.after for b in batches] == [None] + [contact(k * BATCH_SIZE - 1) for k in range(1, 100)]
    assert all(b.size == BATCH_SIZE and b.cutoff == CUTOFF for b in batches)
    assert [b.before for b in batches[:3]] == [doubles.expected(0), doubles.expected(100), doubles.expected(200)]
    # The audience was snapshotted once; the continued run picked up the cursor and counts it was given.
    assert len(doubles.snapshots) == 1
    assert len(histories) == 10_000 // (BATCH_SIZE * BATCHES_PER_RUN) == 2
    for history in histories:
        assert len(history.events) < 400
        assert len(history.to_json()) < 300_000
    replayer = Replayer(workflows=[NewsletterWorkflow], data_converter=pydantic_data_converter)
    for history in histories:
        await replayer.replay_workflow(history)


async def test_the_progress_query_shows_the_counts_after_each_batch(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = AudienceDoubles(total=250, outcome=mixed, hold_batch=1)
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles) as handle:
        await doubles.batches_called(2)  # the second batch is being sent
        assert await handle.query(NewsletterWorkflow.progress) == doubles.expected(up_to=100)
        doubles.release.set()
        final = await result(handle)
        assert await handle.query(NewsletterWorkflow.progress) == final
    assert final == doubles.expected() == NewsletterProgress(total=250, sent=246, skipped=3, failed=1)
    assert len(doubles.batches) == 3


async def test_an_empty_audience_sends_no_batch(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = AudienceDoubles(total=0)
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles) as handle:
        assert await result(handle) == NewsletterProgress()
    assert len(doubles.snapshots) == 1 and doubles.batches == []


async def test_content_with_nothing_to_send_fails_the_run_at_once(
    temporal_time_skipping: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    doubles = AudienceDoubles(total=10, refuse="content cont_test has no text to send")
    async with running(temporal_time_skipping.client, task_queue_prefix, doubles) as handle:
        with pytest.raises(WorkflowFailureError) as failed:
            await result(handle)
    cause = failed.value.cause
    assert isinstance(cause, ActivityError) and "has no text to send" in str(cause.cause)
    assert len(doubles.snapshots) == 1 and doubles.batches == []  # not retried, nothing sent


# ---- saved histories


async def record_fresh(client: Client) -> WorkflowHistory:
    """250 recipients from the start: the snapshot, then three batches."""
    doubles = AudienceDoubles(total=250, outcome=mixed)
    async with running(client, f"record-{uuid.uuid4().hex[:10]}", doubles) as handle:
        await result(handle)
        return await handle.fetch_history()


async def record_continued(client: Client) -> WorkflowHistory:
    """A run continued as new after 5,000 recipients: no snapshot, three batches from where the last run ended."""
    doubles = AudienceDoubles(total=5_250, outcome=mixed)
    resume = NewsletterResume(cutoff=CUTOFF, after=contact(4_999), progress=doubles.expected(5_000), batches=50)
    async with running(client, f"record-{uuid.uuid4().hex[:10]}", doubles, resume) as handle:
        await result(handle)
        return await handle.fetch_history()


RECORDERS = {"newsletter_fresh": record_fresh, "newsletter_continued": record_continued}


def scheduled_activities(history: WorkflowHistory) -> list[str]:
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]


async def test_saved_histories_replay_on_the_current_code() -> None:
    histories = {name: WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text()) for name in RECORDERS}
    # Not empty shells: each sent its batches (and only a fresh run snapshots the audience).
    assert scheduled_activities(histories["newsletter_fresh"]) == [SNAPSHOT, BATCH, BATCH, BATCH]
    assert scheduled_activities(histories["newsletter_continued"]) == [BATCH, BATCH, BATCH]
    replayer = Replayer(workflows=[NewsletterWorkflow], data_converter=pydantic_data_converter)
    for history in histories.values():
        await replayer.replay_workflow(history)


async def main(names: list[str]) -> None:
    env = await start_time_skipping_server()
    try:
        for name in names or RECORDERS:
            history = await RECORDERS[name](env.client)
            target = HISTORIES / f"{name}.json"
            target.write_text(history.to_json() + "\n")
            logging.getLogger(__name__).info("wrote %s (%d events)", target, len(history.events))
    finally:
        await env.shutdown()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main(sys.argv[1:]))
