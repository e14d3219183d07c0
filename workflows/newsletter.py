"""``NewsletterWorkflow``: a content item emailed to the company's subscribed contacts, one batch at a time.

``PublishContentWorkflow`` runs it as a child for the ``newsletter`` platform (ID ``newsletter_workflow_id``)
and decides the publication's final status from the ``NewsletterProgress`` it returns; the counts themselves
are written here, on the publication and the content, after every batch.

The history holds no recipients: the audience is snapshotted by a cut-off time, and each batch activity is
told only where in the audience it starts (a contact id), reads its page from the database and sends through
the shared message path. A batch is one activity, six events however many recipients it holds; after
``BATCHES_PER_RUN`` batches (or when Temporal suggests it) the workflow continues as new with its cursor and
counts, so no run's history grows with the size of the audience.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.content.newsletter import NOTHING_TO_SEND, NewsletterActivities
    from schemas.content_workflows import NewsletterInput, NewsletterProgress, NewsletterResume
    from schemas.newsletter import NewsletterBatch
    from workflows.messaging import DB_TIMEOUT

BATCH_SIZE = 100
"""Recipients per batch activity: 100 sends of a second or less each fit well inside ``BATCH_TIMEOUT``."""
BATCHES_PER_RUN = 50
"""Batches before continuing as new: 5,000 recipients, about 300 events per run."""

BATCH_TIMEOUT = timedelta(minutes=30)
# The batch heartbeats per recipient and in the background, so a short timeout is safe: a killed worker's
# batch is retried on another worker within seconds, and each recipient already sent is found, not resent.
BATCH_HEARTBEAT = timedelta(seconds=10)
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=[NOTHING_TO_SEND],
)


def newsletter_workflow_id(publication_id: str) -> str:
    return f"newsletter/{publication_id}"


@workflow.defn
class NewsletterWorkflow:
    def __init__(self) -> None:
        self._progress = NewsletterProgress()

    @workflow.query
    def progress(self) -> NewsletterProgress:
        """The counts as of the last finished batch (also on the publication's ``progress``)."""
        return self._progress

    @workflow.run
    async def run(self, input: NewsletterInput) -> NewsletterProgress:
        state = input.resume or await self._snapshot(input)
        self._progress = state.progress
        batches_this_run = 0
        more = state.progress.total > 0
        while more:
            if batches_this_run >= BATCHES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(input.model_copy(update={"resume": state}))
            result = await workflow.execute_activity_method(
                NewsletterActivities.send_batch,
                NewsletterBatch(
                    company_id=input.company_id,
                    content_id=input.content_id,
                    publication_id=input.publication_id,
                    run_id=input.run_id,
                    cutoff=state.cutoff,
                    after=state.after,
                    size=BATCH_SIZE,
                    before=state.progress,
                ),
                start_to_close_timeout=BATCH_TIMEOUT,
                heartbeat_timeout=BATCH_HEARTBEAT,
                retry_policy=RETRY,
            )
            batches_this_run += 1
            more = result.more and result.last_contact_id is not None
            state = NewsletterResume(
                cutoff=state.cutoff,
                after=result.last_contact_id or state.after,
                progress=result.progress,
                batches=state.batches + 1,
            )
            self._progress = result.progress
            workflow.set_current_details(_details(result.progress))
        return self._progress

    async def _snapshot(self, input: NewsletterInput) -> NewsletterResume:
        audience = await workflow.execute_activity_method(
            NewsletterActivities.snapshot_audience, input, start_to_close_timeout=DB_TIMEOUT, retry_policy=RETRY
        )
        return NewsletterResume(
            cutoff=audience.cutoff, after=None, progress=NewsletterProgress(total=audience.total), batches=0
        )


def _details(progress: NewsletterProgress) -> str:
    done = progress.sent + progress.skipped + progress.failed + progress.unknown
    return (
        f"{done} of {progress.total} recipients: {progress.sent} sent, {progress.skipped} skipped, "
        f"{progress.failed} failed, {progress.unknown} unknown"
    )
