"""Test doubles for ``ReviewActivities``, on top of the message path's, and the scaffolding to run the review
workflow (and the referral expiry timer it starts) against them.

``ReviewDoubles`` extends ``doubles.OutboundDoubles``: one object serves both activity classes, so its
``calls`` hold every activity the run scheduled, in order, whichever class it belongs to.

One trap of the time-skipping server shapes ``ReviewRun``: once a child started with
``ParentClosePolicy.ABANDON`` *completes after its parent has closed*, the server never skips time again, for
any later test (temporalio/sdk-typescript#1101). The referral's expiry workflow is exactly such a child, so a
test never lets it run to its end after the review run: ``ReviewRun.finish_within`` stops the clock where the
review run is over, and the expiry timer is terminated, still asleep, when the test ends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.reviews import ReviewActivities
from schemas.leads import Channel
from schemas.review_request import (
    IssuedReferral,
    IssueReferralInput,
    ReferralExpiryInput,
    ReferralOfferSpec,
    ReferralSent,
    ReviewEvent,
    ReviewEventSignal,
    ReviewProgress,
    ReviewRequestInput,
    ReviewRequestSent,
    TimedMessage,
)
from tests.workflows.doubles import RESULT_TIMEOUT, OutboundDoubles, end, workers
from workflows.review_request import ReferralExpiryWorkflow, ReviewRequestWorkflow, referral_expiry_workflow_id

RECORD_REQUEST = ReviewActivities.record_request_sent.__name__
ISSUE = ReviewActivities.issue_referral.__name__
RECORD_REFERRAL = ReviewActivities.record_referral_sent.__name__
EXPIRE = ReviewActivities.expire_referral.__name__

REVIEW_WORKFLOWS = (ReviewRequestWorkflow, ReferralExpiryWorkflow)


@dataclass
class ReviewDoubles(OutboundDoubles):
    referral_id: str = field(default_factory=lambda: f"ref_{uuid.uuid4().hex[:10]}")
    """What ``issue_referral`` issues. Unique per test: the expiry timer's workflow id is made of it."""

    @activity.defn(name=RECORD_REQUEST)
    async def record_request_sent(self, input: ReviewRequestSent) -> None:
        await self._record(input)

    @activity.defn(name=ISSUE)
    async def issue_referral(self, input: IssueReferralInput) -> IssuedReferral:
        await self._record(input)
        days = input.expires_in_days
        # Counted from the workflow clock, as the real activity counts from its own "now".
        expires_at = activity.info().scheduled_time + timedelta(days=days) if days else None
        return IssuedReferral(referral_id=self.referral_id, expires_at=expires_at)

    @activity.defn(name=RECORD_REFERRAL)
    async def record_referral_sent(self, input: ReferralSent) -> None:
        await self._record(input)

    @activity.defn(name=EXPIRE)
    async def expire_referral(self, input: ReferralExpiryInput) -> None:
        await self._record(input)

    def all(self) -> list[Callable[..., object]]:
        return [
            *super().all(),
            self.record_request_sent,
            self.issue_referral,
            self.record_referral_sent,
            self.expire_referral,
        ]


def message(delay_hours: float, key: str, channel: Channel = Channel.email) -> TimedMessage:
    return TimedMessage(
        delay_hours=delay_hours, template_key=key, template=f"Hello {{{{name}}}} ({key})", channel=channel
    )


OFFER = "10% off your next visit"
REFERRER_OFFER = "a free coffee"
MAX_USES = 5


def review_input(
    request_delay: float,
    *reminder_delays: float,
    referral_delay: float | None = 24,
    expires_in_days: int | None = None,
) -> ReviewRequestInput:
    """A request after ``request_delay`` hours, reminders ``reminder-1``, ``reminder-2``... after theirs, and
    (unless ``referral_delay`` is None) the referral offer ``referral-offer`` after its own."""
    referral = None
    if referral_delay is not None:
        referral = ReferralOfferSpec(
            message=message(referral_delay, "referral-offer"),
            offer=OFFER,
            referrer_offer=REFERRER_OFFER,
            expires_in_days=expires_in_days,
            max_uses=MAX_USES,
        )
    return ReviewRequestInput(
        company_id="cmp_test",
        customer_id="cust_test",
        sale_id="sale_test",
        review_id="rev_test",
        config_id="wfc_review",
        run_id="run_test",
        platform="google",
        request=message(request_delay, "review-request"),
        reminders=[message(delay, f"reminder-{index}") for index, delay in enumerate(reminder_delays, start=1)],
        referral=referral,
    )


async def end_if_started(handle: WorkflowHandle[Any, Any]) -> None:
    try:
        await end(handle)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


@dataclass(frozen=True)
class ReviewRun:
    env: WorkflowEnvironment
    handle: WorkflowHandle[ReviewRequestWorkflow, ReviewProgress]
    doubles: ReviewDoubles
    referral_expires: bool
    """Whether the run's referral offer starts an expiry timer."""

    async def result(self) -> ReviewProgress:
        """Awaits the run's end; meanwhile the time-skipping server jumps over its timers."""
        # The server would go on skipping past the run's end into the expiry timer, which would then complete.
        assert not self.referral_expires, "a run whose referral expires ends with finish_within()"
        async with asyncio.timeout(RESULT_TIMEOUT):
            return await self.handle.result()

    async def finish_within(self, duration: timedelta) -> ReviewProgress:
        """Moves the clock on by ``duration``, by which the run must be over, and returns its result.

        The clock stops there, long before any referral expires, so the expiry timer is still asleep.
        """
        await self.advance(duration)
        with self.env.auto_time_skipping_disabled():
            async with asyncio.timeout(5):  # already over, or it is not going to end without more time
                return await self.handle.result()

    async def progress(self) -> ReviewProgress:
        return await self.handle.query(ReviewRequestWorkflow.progress)

    async def wait_for_progress(self, **expected: object) -> ReviewProgress:
        """Query until the progress shows ``expected`` (a signal or an activity result is handled asynchronously)."""
        async with asyncio.timeout(10):
            while True:
                progress = await self.progress()
                if all(getattr(progress, name) == value for name, value in expected.items()):
                    return progress
                await asyncio.sleep(0.02)

    async def signal(self, event: ReviewEvent) -> None:
        await self.handle.signal(ReviewRequestWorkflow.review_event, ReviewEventSignal(event=event))

    async def advance(self, duration: timedelta) -> None:
        """Moves the server's clock on by ``duration``, running every timer and activity due meanwhile."""
        async with asyncio.timeout(RESULT_TIMEOUT):
            await self.env.sleep(duration)

    def expiry(self) -> WorkflowHandle[ReferralExpiryWorkflow, None]:
        """The expiry timer of the referral the doubles issue (started only if it has an ``expires_at``)."""
        return self.env.client.get_workflow_handle_for(
            ReferralExpiryWorkflow.run, referral_expiry_workflow_id(self.doubles.referral_id)
        )

    async def expiry_started(self) -> bool:
        try:
            await self.expiry().describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True


@asynccontextmanager
async def running_review(
    env: WorkflowEnvironment, prefix: str, doubles: ReviewDoubles, workflow_input: ReviewRequestInput
) -> AsyncIterator[ReviewRun]:
    """A worker on ``{prefix}-main`` serving both review workflows, and a ``ReviewRequestWorkflow`` started on it."""
    async with workers(env.client, prefix, REVIEW_WORKFLOWS, doubles) as main_queue:
        handle = await env.client.start_workflow(
            ReviewRequestWorkflow.run,
            workflow_input,
            id=f"review-request/{uuid.uuid4().hex[:10]}",
            task_queue=main_queue,
        )
        referral = workflow_input.referral
        run = ReviewRun(env, handle, doubles, referral is not None and referral.expires_in_days is not None)
        try:
            yield run
        finally:
            await end(handle)
            # The expiry timer outlives its parent and sleeps for weeks: ended while asleep (a termination is
            # not reported to the closed parent, so it does not trip the server). With the parent over, no
            # new one can start behind our back.
            await end_if_started(run.expiry())


@asynccontextmanager
async def running_expiry(
    env: WorkflowEnvironment, prefix: str, doubles: ReviewDoubles, workflow_input: ReferralExpiryInput
) -> AsyncIterator[WorkflowHandle[ReferralExpiryWorkflow, None]]:
    """A ``ReferralExpiryWorkflow`` on its own, as the review workflow starts it."""
    async with workers(env.client, prefix, REVIEW_WORKFLOWS, doubles) as main_queue:
        handle = await env.client.start_workflow(
            ReferralExpiryWorkflow.run,
            workflow_input,
            id=referral_expiry_workflow_id(workflow_input.referral_id),
            task_queue=main_queue,
        )
        try:
            yield handle
        finally:
            await end(handle)
