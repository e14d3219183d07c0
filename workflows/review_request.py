"""``ReviewRequestWorkflow``: after a completed sale, ask for a review, remind, then offer a referral code.

Every customer gets the same request (no sentiment gating), and the referral offer follows whether or not a
review was left: it depends on nothing the customer wrote. A refund, a cancellation, an unsubscribe or an
erasure stops the run; a recorded review only stops the reminders.

``ReferralExpiryWorkflow`` is a durable timer per referral: at ``expires_at`` the code stops working and
the referral says so, without anyone calling the API.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.reviews import ReviewActivities
    from schemas.messaging import DELIVERED, FinishRunInput, MessageContext
    from schemas.review_request import (
        STOPPING_EVENTS,
        IssueReferralInput,
        ReferralExpiryInput,
        ReferralOfferSpec,
        ReferralSent,
        ReviewEvent,
        ReviewEventSignal,
        ReviewProgress,
        ReviewRequestInput,
        ReviewRequestSent,
        ReviewStage,
        TimedMessage,
    )
    from workflows.messaging import DB_RETRY, DB_TIMEOUT, MessagePath, finish_run


def referral_expiry_workflow_id(referral_id: str) -> str:
    return f"referral-expiry/{referral_id}"


@workflow.defn
class ReferralExpiryWorkflow:
    @workflow.run
    async def run(self, input: ReferralExpiryInput) -> None:
        remaining = (input.expires_at - workflow.now()).total_seconds()
        if remaining > 0:
            await workflow.sleep(remaining)
        await workflow.execute_activity_method(
            ReviewActivities.expire_referral, input, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
        )


@workflow.defn
class ReviewRequestWorkflow:
    def __init__(self) -> None:
        self._stage = ReviewStage.requesting
        self._stopped_by: ReviewEvent | None = None
        self._review_recorded = False
        self._messages_total = 0
        self._messages_sent = 0
        self._next_step: int | None = None
        self._next_message: str | None = None
        self._referral_id: str | None = None
        self._path: MessagePath | None = None

    @workflow.signal
    def review_event(self, signal: ReviewEventSignal) -> None:
        """The review was recorded (reminders stop), or the sale was refunded, cancelled... (everything stops)."""
        if self._stage in (ReviewStage.completed, ReviewStage.stopped):
            return
        if signal.event == ReviewEvent.review_recorded:
            self._review_recorded = True
        elif signal.event in STOPPING_EVENTS and self._stopped_by is None:
            self._stopped_by = signal.event

    @workflow.query
    def progress(self) -> ReviewProgress:
        live = self._stopped_by is None and self._stage not in (ReviewStage.completed, ReviewStage.stopped)
        return ReviewProgress(
            stage=self._stage,
            sending=self._path is not None and self._path.sending,
            messages_total=self._messages_total,
            messages_sent=self._messages_sent,
            review_recorded=self._review_recorded,
            next_step=self._next_step if live and self._next_message else None,
            next_message=self._next_message if live else None,
            next_message_at=self._path.next_at if live and self._path else None,
            referral_id=self._referral_id,
            stopped_by=self._stopped_by,
        )

    def _stopped(self) -> bool:
        return self._stopped_by is not None

    def _stopped_or_reviewed(self) -> bool:
        return self._stopped_by is not None or self._review_recorded

    @workflow.run
    async def run(self, input: ReviewRequestInput) -> ReviewProgress:
        self._messages_total = 1 + len(input.reminders) + (1 if input.referral else 0)
        path = self._path = MessagePath(
            company_id=input.company_id,
            contact_id=input.customer_id,
            config_id=input.config_id,
            run_id=input.run_id,
            send_window=input.send_window,
            personalise=input.personalise,
        )
        try:
            await self._ask_for_review(input, path)
            if input.referral is not None and not self._stopped():
                await self._offer_referral(input, input.referral, path)
        except ActivityError:
            # Failed for good: the run row must not stay "running"; the workflow still fails, so Temporal shows why.
            await self._finish(input, "failed")
            raise
        self._stage = ReviewStage.stopped if self._stopped() else ReviewStage.completed
        await self._finish(input, self._stage.value)
        return self.progress()

    async def _send(self, path: MessagePath, step: int, message: TimedMessage, context: MessageContext) -> str | None:
        """Wait the message's delay and send it: the delivery's id once the contact got it, else ``None``."""
        self._next_step, self._next_message = step, message.template_key
        # A recorded review cuts short a reminder, never the referral offer.
        stop = self._stopped if self._stage == ReviewStage.offering_referral else self._stopped_or_reviewed
        if not await path.wait_hours(message.delay_hours, stop):
            return None
        outcome = await path.send(step, message, stop, context)
        self._next_message = None
        if outcome is None or outcome.status not in DELIVERED:
            return None
        self._messages_sent += 1
        return outcome.delivery_id

    async def _ask_for_review(self, input: ReviewRequestInput, path: MessagePath) -> None:
        about = MessageContext(sale_id=input.sale_id, review_platform=input.platform)
        asked = False
        for index, message in enumerate([input.request, *input.reminders]):
            if index == 1:
                self._stage = ReviewStage.reminding
            if self._stopped_or_reviewed():
                return
            delivery_id = await self._send(path, index, message, about)
            # The first message that reaches the customer is when they were asked: a reminder, if the request
            # itself could not be delivered.
            if delivery_id is not None and not asked:
                asked = True
                await workflow.execute_activity_method(
                    ReviewActivities.record_request_sent,
                    ReviewRequestSent(review_id=input.review_id, delivery_id=delivery_id),
                    start_to_close_timeout=DB_TIMEOUT,
                    retry_policy=DB_RETRY,
                )

    async def _offer_referral(self, input: ReviewRequestInput, offer: ReferralOfferSpec, path: MessagePath) -> None:
        self._stage = ReviewStage.offering_referral
        self._next_step, self._next_message = 1 + len(input.reminders), offer.message.template_key
        if not await path.wait_hours(offer.message.delay_hours, self._stopped):
            return
        issued = await workflow.execute_activity_method(
            ReviewActivities.issue_referral,
            IssueReferralInput(
                idempotency_key=f"{workflow.info().workflow_id}/{input.run_id}/referral",
                company_id=input.company_id,
                customer_id=input.customer_id,
                review_id=input.review_id,
                run_id=input.run_id,
                offer=offer.offer,
                referrer_offer=offer.referrer_offer,
                expires_in_days=offer.expires_in_days,
                max_uses=offer.max_uses,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._referral_id = issued.referral_id
        if issued.expires_at is not None:
            try:
                # Abandoned on close: the code must expire months after this run has finished.
                await workflow.start_child_workflow(
                    ReferralExpiryWorkflow.run,
                    ReferralExpiryInput(
                        company_id=input.company_id, referral_id=issued.referral_id, expires_at=issued.expires_at
                    ),
                    id=referral_expiry_workflow_id(issued.referral_id),
                    parent_close_policy=ParentClosePolicy.ABANDON,
                )
            except WorkflowAlreadyStartedError:
                # A run reset to before the offer finds the same referral (same key) and its timer already set.
                workflow.logger.info("expiry timer of referral %s already running", issued.referral_id)
        message = offer.message.model_copy(update={"delay_hours": 0})  # the delay was waited above
        about = MessageContext(sale_id=input.sale_id, referral_id=issued.referral_id)
        if (delivery_id := await self._send(path, 1 + len(input.reminders), message, about)) is not None:
            await workflow.execute_activity_method(
                ReviewActivities.record_referral_sent,
                ReferralSent(referral_id=issued.referral_id, delivery_id=delivery_id),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
            )

    async def _finish(self, input: ReviewRequestInput, status: str) -> None:
        self._next_message = None
        await finish_run(
            FinishRunInput(
                run_id=input.run_id,
                status=status,
                steps_sent=self._messages_sent,
                stopped_by=self._stopped_by,
                results={
                    "review_id": input.review_id,
                    "review_recorded": self._review_recorded,
                    "referral_id": self._referral_id,
                },
            )
        )
