"""Saved histories replay against the current ``LeadFollowUpWorkflow``: a non-deterministic change fails here.

Runs in flight when a new worker version is deployed are replayed by that version. If a change alters
which commands the workflow issues for an old history, those runs break; guard such a change with
``workflow.patched`` until no old run is left. ``record_histories`` wrote the files in ``histories/``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

# The sandbox re-imports the module of every workflow class it runs, this one included (for the altered
# workflow below); the test machinery comes from outside it.
with workflow.unsafe.imports_passed_through():
    import pytest
    from temporalio.client import WorkflowHistory
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Replayer

    from activities.lead_follow_up import LeadFollowUpActivities
    from schemas.lead_follow_up import FollowUpProgress, LeadFollowUpInput, StepInput
    from tests.workflows.record_histories import HISTORIES, record_replied
    from workflows.lead_follow_up import LeadFollowUpWorkflow


def saved_histories() -> list[WorkflowHistory]:
    return [WorkflowHistory.from_json(path.stem, path.read_text()) for path in sorted(HISTORIES.glob("*.json"))]


async def replay(workflow_class: type, histories: list[WorkflowHistory]) -> None:
    replayer = Replayer(workflows=[workflow_class], data_converter=pydantic_data_converter)
    for history in histories:
        await replayer.replay_workflow(history)


async def test_saved_histories_replay_on_the_current_code() -> None:
    histories = saved_histories()
    assert "lead_follow_up_replied" in [history.workflow_id for history in histories]
    # Not an empty shell: the run sent a message, took the reply and finished.
    assert all(len(history.events) > 20 for history in histories)
    await replay(LeadFollowUpWorkflow, histories)


@workflow.defn(name="LeadFollowUpWorkflow")
class ComposesBeforePlanning(LeadFollowUpWorkflow):
    """A careless refactor: writes the first message before asking when it may go out."""

    @workflow.run
    async def run(self, input: LeadFollowUpInput) -> FollowUpProgress:
        first = input.steps[0]
        await workflow.execute_activity_method(
            LeadFollowUpActivities.compose_message,
            StepInput(
                idempotency_key=f"{workflow.info().workflow_id}/0",
                company_id=input.company_id,
                lead_id=input.lead_id,
                config_id=input.config_id,
                run_id=input.run_id,
                step=0,
                step_spec=first,
            ),
            start_to_close_timeout=timedelta(minutes=2),
        )
        return await super().run(input)


async def test_a_reordered_workflow_fails_the_replay() -> None:
    with pytest.raises(workflow.NondeterminismError, match=r"'plan_send_time' does not match .* 'compose_message'"):
        await replay(ComposesBeforePlanning, saved_histories())


async def test_the_recorder_still_records_a_replayable_history(temporal_time_skipping: WorkflowEnvironment) -> None:
    history = await record_replied(temporal_time_skipping.client)
    await replay(LeadFollowUpWorkflow, [history])
    with pytest.raises(workflow.NondeterminismError):
        await replay(ComposesBeforePlanning, [history])
