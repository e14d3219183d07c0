"""Record the workflow histories that ``test_replay`` replays against the current workflow code.

Run once per shape of history worth guarding, and commit the JSON it writes:

    .venv/bin/python -m tests.workflows.record_histories

Re-record only when an intended, ``workflow.patched``-guarded change has shipped: the point of the saved
files is that they come from the code that was running before.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from schemas.lead_follow_up import LeadEvent, LeadEventSignal
from tests.workflows.doubles import DELIVER, FollowUpDoubles, running, sequence
from workflows.lead_follow_up import LeadFollowUpWorkflow

HISTORIES = Path(__file__).parent / "histories"

log = logging.getLogger(__name__)


async def record_replied(client: Client) -> WorkflowHistory:
    """Three steps over three days; the lead replies after the first message."""
    doubles = FollowUpDoubles()
    async with running(client, f"record-{uuid.uuid4().hex[:10]}", doubles, sequence(0, 24, 48)) as run:
        await doubles.wait_for(DELIVER)
        await run.progress()
        await run.handle.signal(
            LeadFollowUpWorkflow.lead_event, LeadEventSignal(event=LeadEvent.replied, interaction_id="int_1")
        )
        await run.result()
        return await run.handle.fetch_history()


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    try:
        history = await record_replied(env.client)
    finally:
        await env.shutdown()
    target = HISTORIES / "lead_follow_up_replied.json"
    target.write_text(history.to_json() + "\n")
    log.info("wrote %s (%d events)", target, len(history.events))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
