"""Record the workflow histories that ``test_replay`` replays against the current workflow code.

Run once per shape of history worth guarding, and commit the JSON it writes:

    .venv/bin/python -m tests.workflows.record_histories [NAME ...]

NAME is a file's stem in ``histories/`` (all of them by default). Re-record only the history of a workflow
whose intended, ``workflow.patched``-guarded change has shipped: the point of the saved files is that they
come from the code that was running before.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from schemas.lead_follow_up import LeadEvent, LeadEventSignal
from schemas.review_request import ReviewEvent
from tests.support.temporal_servers import start_time_skipping_server
from tests.workflows.doubles import DELIVER, OutboundDoubles, running, sequence
from tests.workflows.review_doubles import ReviewDoubles, review_input, running_review
from workflows.lead_follow_up import LeadFollowUpWorkflow

HISTORIES = Path(__file__).parent / "histories"

log = logging.getLogger(__name__)


async def record_replied(client: Client) -> WorkflowHistory:
    """Three steps over three days; the lead replies after the first message."""
    doubles = OutboundDoubles()
    async with running(client, f"record-{uuid.uuid4().hex[:10]}", doubles, sequence(0, 24, 48)) as run:
        await doubles.wait_for(DELIVER)
        await run.progress()
        await run.handle.signal(
            LeadFollowUpWorkflow.lead_event, LeadEventSignal(event=LeadEvent.replied, interaction_id="int_1")
        )
        await run.result()
        return await run.handle.fetch_history()


async def record_review(env: WorkflowEnvironment) -> WorkflowHistory:
    """A request 2h after the sale and a first reminder; the review is recorded before the second, so the
    referral offer (30 days valid, so with its expiry timer) follows."""
    doubles = ReviewDoubles()
    workflow_input = review_input(2, 48, 72, referral_delay=24, expires_in_days=30)
    async with running_review(env, f"record-{uuid.uuid4().hex[:10]}", doubles, workflow_input) as run:
        await run.advance(timedelta(hours=2 + 48 + 1))
        await run.wait_for_progress(messages_sent=2, next_message="reminder-2")
        await run.signal(ReviewEvent.review_recorded)
        await run.finish_within(timedelta(hours=25))
        return await run.handle.fetch_history()


RECORDERS: dict[str, Callable[[WorkflowEnvironment], Awaitable[WorkflowHistory]]] = {
    "lead_follow_up_replied": lambda env: record_replied(env.client),
    "review_request_recorded": record_review,
}
"""Each saved history's file stem, and how it is recorded."""


async def main(names: list[str]) -> None:
    env = await start_time_skipping_server()
    try:
        for name in names or RECORDERS:
            history = await RECORDERS[name](env)
            target = HISTORIES / f"{name}.json"
            target.write_text(history.to_json() + "\n")
            log.info("wrote %s (%d events)", target, len(history.events))
    finally:
        await env.shutdown()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main(sys.argv[1:]))
