"""Review and referral analytics, aggregated by the database (SQLite and PostgreSQL alike) over a period.

Each figure takes the rows whose own milestone falls in the period: a review request when it was sent, a
review when it was submitted, a referral offer when it was sent (its uses count whenever they happened),
a sale when it was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, SQLColumnExpression, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Referral, Review, Sale, User
from schemas.customers import SaleStatus
from schemas.review_analytics import ReferralOfferCounts, ReviewReferralAnalytics, ReviewRequestCounts
from schemas.reviews import RECORDED_REVIEW
from services.analytics import bounds, ratio, resolve_period

RATINGS = range(1, 6)


@dataclass(frozen=True)
class Window:
    company_id: str
    start: datetime
    end: datetime
    """Exclusive: midnight after the period's last day."""

    def contains(self, moment: SQLColumnExpression[datetime | None]) -> list[ColumnElement[bool]]:
        return [moment >= self.start, moment < self.end]


def _completed_reviews(window: Window) -> list[ColumnElement[bool]]:
    return [
        Review.company_id == window.company_id,
        Review.status.in_(sorted(RECORDED_REVIEW)),
        *window.contains(Review.submitted_at),
    ]


async def _requests_sent(session: AsyncSession, window: Window) -> int:
    sent = await session.scalar(
        select(func.count()).where(Review.company_id == window.company_id, *window.contains(Review.request_sent_at))
    )
    return int(sent or 0)


@dataclass(frozen=True)
class _Completed:
    count: int
    rated: int
    rating_total: int


async def _completed(session: AsyncSession, window: Window) -> _Completed:
    count, rated, rating_total = (
        await session.execute(
            select(func.count(), func.count(Review.rating), func.sum(Review.rating)).where(*_completed_reviews(window))
        )
    ).one()
    return _Completed(int(count), int(rated), int(rating_total or 0))


async def _by_rating(session: AsyncSession, window: Window) -> dict[str, int]:
    rows = await session.execute(
        select(Review.rating, func.count())
        .where(*_completed_reviews(window), Review.rating.is_not(None))
        .group_by(Review.rating)
    )
    counts = {str(rating): 0 for rating in RATINGS}
    counts.update({str(rating): int(count) for rating, count in rows})
    return counts


async def _by_platform(session: AsyncSession, window: Window) -> dict[str, int]:
    rows = await session.execute(
        select(Review.platform, func.count())
        .where(*_completed_reviews(window), Review.platform.is_not(None))
        .group_by(Review.platform)
        .order_by(func.count().desc(), Review.platform)
    )
    return {str(platform): int(count) for platform, count in rows}


async def _referral_offers(session: AsyncSession, window: Window) -> ReferralOfferCounts:
    sent, used = (
        await session.execute(
            select(func.count(), func.count(case((Referral.times_used > 0, Referral.id)))).where(
                Referral.company_id == window.company_id, *window.contains(Referral.sent_at)
            )
        )
    ).one()
    return ReferralOfferCounts(sent=int(sent), used=int(used))


async def _referred_revenue(session: AsyncSession, window: Window) -> float:
    total = await session.scalar(
        select(func.sum(Sale.amount)).where(
            Sale.company_id == window.company_id,
            Sale.status == SaleStatus.completed,
            Sale.referral_id.is_not(None),
            *window.contains(Sale.created_at),
        )
    )
    return float(total or 0)


async def review_referral_analytics(
    session: AsyncSession, actor: User, start: date | None, end: date | None
) -> ReviewReferralAnalytics:
    """``/api`` review and referral figures for the period (see the module docstring for what counts when)."""
    window = Window(actor.company_id, *bounds(resolve_period(start, end)))
    completed = await _completed(session, window)
    offers = await _referral_offers(session, window)
    return ReviewReferralAnalytics(
        review_requests=ReviewRequestCounts(sent=await _requests_sent(session, window), completed=completed.count),
        average_rating=round(completed.rating_total / completed.rated, 2) if completed.rated else None,
        rating_distribution=await _by_rating(session, window),
        platform_distribution=await _by_platform(session, window),
        referral_offers=offers,
        referral_conversion_rate=ratio(offers.used, offers.sent),
        estimated_revenue=await _referred_revenue(session, window),
    )
