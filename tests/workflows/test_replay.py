"""Saved histories replay against the current ``LeadFollowUpWorkflow`` and ``ReviewRequestWorkflow``: a
non-deterministic change fails here.

Runs in flight when a new worker version is deployed are replayed by that version. If a change alters
which commands the workflow issues for an old history, those runs break; guard such a change with
``workflow.patched`` until no old run is left. ``record_histories`` wrote the files in ``histories/``; each
file's name starts with the workflow it belongs to (``lead_follow_up_...``, ``review_request_...``).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

# The sandbox re-imports the module of every workflow class it runs, this one included (for the altered
# workflow below); the test machinery comes from outside it.
with workflow.unsafe.imports_passed_through():
    import pytest
    from temporalio.api.history.v1 import HistoryEvent
    from temporalio.client import WorkflowHistory
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Replayer

    from activities.outbound import OutboundActivities
    from activities.reviews import ReviewActivities
    from schemas.lead_follow_up import FollowUpProgress, LeadFollowUpInput
    from schemas.messaging import StepInput
    from schemas.review_request import IssueReferralInput, ReviewProgress, ReviewRequestInput
    from tests.workflows.doubles import COMPOSE, DELIVER, FINISH, PLAN
    from tests.workflows.record_histories import HISTORIES, record_replied, record_review
    from tests.workflows.review_doubles import ISSUE, RECORD_REFERRAL, RECORD_REQUEST
    from workflows.lead_follow_up import LeadFollowUpWorkflow
    from workflows.messaging import DB_TIMEOUT
    from workflows.review_request import ReviewRequestWorkflow


def saved_histories(prefix: str) -> list[WorkflowHistory]:
    """The saved histories of one workflow, named by its files' prefix: a replayer knows only its own workflow."""
    paths = sorted(HISTORIES.glob(f"{prefix}_*.json"))
    return [WorkflowHistory.from_json(path.stem, path.read_text()) for path in paths]


def saved_history(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())


async def replay(workflow_class: type, histories: list[WorkflowHistory]) -> None:
    replayer = Replayer(workflows=[workflow_class], data_converter=pydantic_data_converter)
    for history in histories:
        await replayer.replay_workflow(history)


async def test_saved_histories_replay_on_the_current_code() -> None:
    histories = saved_histories("lead_follow_up")
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
            OutboundActivities.compose_message,
            StepInput(
                idempotency_key=f"{workflow.info().workflow_id}/0",
                company_id=input.company_id,
                contact_id=input.lead_id,
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
        await replay(ComposesBeforePlanning, saved_histories("lead_follow_up"))


async def test_the_recorder_still_records_a_replayable_history(temporal_time_skipping: WorkflowEnvironment) -> None:
    history = await record_replied(temporal_time_skipping.client)
    await replay(LeadFollowUpWorkflow, [history])
    with pytest.raises(workflow.NondeterminismError):
        await replay(ComposesBeforePlanning, [history])


def activities_scheduled(events: list[HistoryEvent]) -> list[str]:
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]


async def test_saved_review_histories_replay_on_the_current_code() -> None:
    history = saved_history("review_request_recorded")
    # The whole run: request, one reminder, the review (a signal), the referral with its expiry timer, the end.
    assert activities_scheduled(list(history.events)) == [
        *(PLAN, COMPOSE, DELIVER, RECORD_REQUEST),
        *(PLAN, COMPOSE, DELIVER),
        *(ISSUE, PLAN, COMPOSE, DELIVER, RECORD_REFERRAL),
        FINISH,
    ]
    signals = [
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in history.events
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert signals == ["review_event"]
    children = [
        event.start_child_workflow_execution_initiated_event_attributes.workflow_type.name
        for event in history.events
        if event.HasField("start_child_workflow_execution_initiated_event_attributes")
    ]
    assert children == ["ReferralExpiryWorkflow"]
    await replay(ReviewRequestWorkflow, saved_histories("review_request"))


@workflow.defn(name="ReviewRequestWorkflow")
class IssuesReferralUpFront(ReviewRequestWorkflow):
    """A careless refactor: the referral does not depend on the review, so why not issue it as the run starts?"""

    @workflow.run
    async def run(self, input: ReviewRequestInput) -> ReviewProgress:
        assert input.referral is not None
        await workflow.execute_activity_method(
            ReviewActivities.issue_referral,
            IssueReferralInput(
                idempotency_key=f"{workflow.info().workflow_id}/{input.run_id}/referral",
                company_id=input.company_id,
                customer_id=input.customer_id,
                review_id=input.review_id,
                run_id=input.run_id,
                offer=input.referral.offer,
                referrer_offer=input.referral.referrer_offer,
                expires_in_days=input.referral.expires_in_days,
                max_uses=input.referral.max_uses,
            ),
            start_to_close_timeout=DB_TIMEOUT,
        )
        return await super().run(input)


async def test_a_reordered_review_workflow_fails_the_replay() -> None:
    # The history's first command is the 2h wait for the request, not an activity.
    with pytest.raises(workflow.NondeterminismError, match=r"Activity machine does not handle .*TimerStarted"):
        await replay(IssuesReferralUpFront, saved_histories("review_request"))


async def test_the_review_recorder_still_records_a_replayable_history(
    temporal_time_skipping: WorkflowEnvironment,
) -> None:
    history = await record_review(temporal_time_skipping)
    saved = saved_history("review_request_recorded")
    assert activities_scheduled(list(history.events)) == activities_scheduled(list(saved.events))
    await replay(ReviewRequestWorkflow, [history])
    with pytest.raises(workflow.NondeterminismError):
        await replay(IssuesReferralUpFront, [history])
