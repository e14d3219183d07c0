"""The review and referral records the review workflow writes. Each is idempotent: a retry changes nothing."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db import events as db_events
from db import referrals
from db.base import utcnow
from db.models import Customer, MessageDelivery, Referral, Review
from db.session import transaction
from schemas.review_request import (
    IssuedReferral,
    IssueReferralInput,
    ReferralExpiryInput,
    ReferralSent,
    ReviewRequestSent,
)
from schemas.reviews import RECORDED_REVIEW, ReferralStatus

log = logging.getLogger(__name__)


class ReviewActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def record_request_sent(self, input: ReviewRequestSent) -> None:
        """The review request reached the customer: the review says when, and ``review.requested`` is emitted."""
        async with transaction(self._sessions) as session:
            review = await session.get(Review, input.review_id, with_for_update=True)
            if review is None:
                log.info("review %s is gone (customer erased?); request not recorded", input.review_id)
                return
            if review.request_sent_at is not None:
                return  # recorded by an earlier attempt
            review.request_sent_at = await _sent_at(session, input.delivery_id)
            db_events.record(
                session,
                review.company_id,
                "review.requested",
                review.id,
                {
                    "id": review.id,
                    "customer_id": review.customer_id,
                    "sale_id": review.sale_id,
                    "platform": review.platform,
                },
            )
        log.info("review %s requested from customer %s", input.review_id, review.customer_id)

    @activity.defn
    async def issue_referral(self, input: IssueReferralInput) -> IssuedReferral:
        """A fresh referral code for the customer; linked to the review only if one was left (the offer is the same)."""
        async with transaction(self._sessions) as session:
            existing = await session.scalar(select(Referral).where(Referral.issue_key == input.idempotency_key))
            if existing is not None:
                return IssuedReferral(referral_id=existing.id, expires_at=existing.expires_at)
            customer = await session.get(Customer, input.customer_id)
            if customer is None or customer.company_id != input.company_id:
                raise ApplicationError(
                    f"customer {input.customer_id} no longer exists", type="NotFound", non_retryable=True
                )
            review = await session.get(Review, input.review_id)
            left_a_review = review is not None and review.status in RECORDED_REVIEW
            referral = await referrals.issue(
                session,
                customer,
                offer=input.offer,
                referrer_offer=input.referrer_offer,
                max_uses=input.max_uses,
                expires_in_days=input.expires_in_days,
                review_id=input.review_id if left_a_review else None,
                issue_key=input.idempotency_key,
            )
        log.info(
            "referral %s (%s) issued to customer %s by run %s", referral.id, referral.code, customer.id, input.run_id
        )
        return IssuedReferral(referral_id=referral.id, expires_at=referral.expires_at)

    @activity.defn
    async def record_referral_sent(self, input: ReferralSent) -> None:
        """The offer reached the customer: a referral still ``created`` becomes ``sent``."""
        async with transaction(self._sessions) as session:
            sent_at = await _sent_at(session, input.delivery_id)
            await session.execute(
                update(Referral)
                .where(Referral.id == input.referral_id, Referral.sent_at.is_(None))
                .values(sent_at=sent_at, updated_at=utcnow())
            )
            await session.execute(
                update(Referral)
                .where(Referral.id == input.referral_id, Referral.status == ReferralStatus.created)
                .values(status=ReferralStatus.sent)
            )

    @activity.defn
    async def expire_referral(self, input: ReferralExpiryInput) -> None:
        """At ``expires_at`` the code stops working; ``referral.expired`` says so once."""
        async with transaction(self._sessions) as session:
            referral = await session.get(Referral, input.referral_id, with_for_update=True)
            if referral is None or referral.status == ReferralStatus.expired:
                return
            referral.status = ReferralStatus.expired
            referral.updated_at = utcnow()
            db_events.record(
                session,
                referral.company_id,
                "referral.expired",
                referral.id,
                {"id": referral.id, "customer_id": referral.customer_id, "times_used": referral.times_used},
            )
        log.info("referral %s expired", input.referral_id)


async def _sent_at(session: AsyncSession, delivery_id: str) -> datetime:
    delivery = await session.get(MessageDelivery, delivery_id)
    return (delivery.sent_at if delivery else None) or utcnow()
