"""Reviews: requested after a sale, recorded when left. Recording one stops the request's reminders.

Fair-review rules: every customer is asked the same way (nothing here looks at a rating before asking),
and nothing a customer gets depends on leaving a review or on what it says.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from core.config import Settings
from core.ids import new_id
from db.base import utcnow
from db.models import Review, Sale, User
from schemas.common import Page, PageRequest
from schemas.customers import SaleStatus
from schemas.review_request import ReviewEvent
from schemas.reviews import (
    RECORDED_REVIEW,
    ReviewEndpointsCreate,
    ReviewFilter,
    ReviewRequestCreate,
    ReviewStatus,
    ReviewUpdate,
)
from services import customers, events, review_requests
from services.errors import Conflict, InvalidField
from services.paging import paginate
from services.tenancy import owned

log = logging.getLogger(__name__)

SORTABLE = {
    "created_at": Review.created_at,
    "updated_at": Review.updated_at,
    "request_sent_at": Review.request_sent_at,
    "submitted_at": Review.submitted_at,
    "rating": Review.rating,
}


async def get(session: AsyncSession, actor: User, review_id: str) -> Review:
    return await owned(session, actor, Review, review_id, "review")


async def list_reviews(session: AsyncSession, actor: User, filters: ReviewFilter, page: PageRequest) -> Page[Review]:
    statement = select(Review).where(Review.company_id == actor.company_id)
    if filters.customer_id is not None:
        statement = statement.where(Review.customer_id == filters.customer_id)
    if filters.status is not None:
        statement = statement.where(Review.status == filters.status)
    if filters.platform is not None:
        statement = statement.where(Review.platform == filters.platform)
    return await paginate(session, statement, page, sortable=SORTABLE, default_sort="created_at", tie_breaker=Review.id)


async def _sale_of(session: AsyncSession, actor: User, customer_id: str, sale_id: str) -> Sale:
    customer = await customers.referenced(session, actor, customer_id)
    sale = await session.get(Sale, sale_id)
    if sale is None or sale.company_id != actor.company_id:
        raise InvalidField("sale_id", f"{sale_id} is not a sale of your company")
    if sale.customer_id != customer.id:
        raise InvalidField("sale_id", f"sale {sale_id} belongs to another customer")
    return sale


async def request(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    actor: User,
    body: ReviewRequestCreate | ReviewEndpointsCreate,
    *,
    ask_now: bool,
) -> review_requests.ReviewRequest:
    """Ask for a review of a completed sale, or return the request already running for it."""
    if body.sale_id is None:
        raise InvalidField("sale_id", "a review request is about a sale")
    sale = await _sale_of(session, actor, body.customer_id, body.sale_id)
    if sale.status != SaleStatus.completed:
        raise Conflict(f"Sale {sale.id} is {sale.status}: a review is asked for once it is completed")
    template = body.message_template if isinstance(body, ReviewRequestCreate) else None
    requested = await review_requests.start(
        session,
        client,
        settings,
        sale,
        trigger_type="review_requested",
        platform=body.platform,
        request_template=template,
        ask_now=ask_now,
    )
    run_id = requested.run.id if requested.run else None
    log.info(
        "user %s asked for a review of sale %s (review %s, run %s)", actor.id, sale.id, requested.review.id, run_id
    )
    return requested


async def create(
    session: AsyncSession, client: Client, settings: Settings, actor: User, body: ReviewEndpointsCreate
) -> review_requests.ReviewRequest:
    """``/api``: a review request, or (with a rating or a submitted status) a review left without being asked."""
    if body.rating is None and body.status not in RECORDED_REVIEW:
        return await request(session, client, settings, actor, body, ask_now=False)
    customer = await customers.referenced(session, actor, body.customer_id)
    review = None
    if body.sale_id is not None:
        sale = await _sale_of(session, actor, customer.id, body.sale_id)
        review = await session.scalar(select(Review).where(Review.sale_id == sale.id))
    if review is None:
        review = Review(
            id=new_id("rev"),
            company_id=actor.company_id,
            customer_id=customer.id,
            customer=customer,  # set, not lazy-loaded later (see services.sales)
            sale_id=body.sale_id,
            platform=body.platform,
            status=ReviewStatus.requested,
        )
        session.add(review)
        await session.flush()
    update = ReviewUpdate.model_validate(body.model_dump(include=set(ReviewUpdate.model_fields), exclude_unset=True))
    await record(session, client, review, update)
    return review_requests.ReviewRequest(review, None, started=False)


async def update(
    session: AsyncSession, client: Client | None, actor: User, review_id: str, body: ReviewUpdate
) -> Review:
    review = await get(session, actor, review_id)
    await record(session, client, review, body)
    return review


async def record(session: AsyncSession, client: Client | None, review: Review, body: ReviewUpdate) -> None:
    """Write what the customer left; the first time it counts as left, the sale's request stops reminding."""
    sent = body.model_fields_set
    for name in ("rating", "content", "platform", "review_url"):
        if name in sent:
            setattr(review, name, getattr(body, name))
    was_recorded = review.status in RECORDED_REVIEW
    status = body.status or (ReviewStatus.submitted if body.rating is not None and not was_recorded else None)
    now = utcnow()
    if status is not None:
        _move(review, status, body.submitted_at or now, now)
    elif body.submitted_at is not None:
        review.submitted_at = body.submitted_at
    review.updated_at = now
    await session.flush()
    if was_recorded or review.status not in RECORDED_REVIEW:
        return
    await events.emit(session, review.company_id, "review.submitted", review.id, _submitted(review))
    log.info("review %s recorded (%s, %s stars)", review.id, review.platform, review.rating)
    if review.sale_id is not None:
        await session.commit()
        await review_requests.notify(session, client, [review.sale_id], ReviewEvent.review_recorded)


def _move(review: Review, status: ReviewStatus, submitted_at: datetime, now: datetime) -> None:
    review.status = status
    if status in RECORDED_REVIEW:
        review.submitted_at = review.submitted_at or submitted_at
    if status == ReviewStatus.verified:
        review.verified_at = review.verified_at or now
    if status == ReviewStatus.requested:  # recorded by mistake: back to waiting for one
        review.submitted_at = review.verified_at = None


def _submitted(review: Review) -> dict[str, Any]:
    return {
        "id": review.id,
        "customer_id": review.customer_id,
        "sale_id": review.sale_id,
        "platform": review.platform,
        "rating": review.rating,
    }
