"""``/api/review-referral/analytics`` (spec/api-v1-workflow-endpoints.md, Get Review & Referral Analytics)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep
from api.pagination import PeriodQuery
from schemas.review_analytics import ReviewReferralAnalytics
from services import review_analytics

router = APIRouter(prefix="/review-referral", tags=["review-referral"])

_DESCRIPTION = (
    "Figures for the period from `start_date` to `end_date` (both included, UTC; default the last 30 days). "
    "`review_requests.sent`: reviews whose request was sent in the period. `review_requests.completed`: reviews "
    "now submitted or verified whose submission falls in the period; `average_rating` (rounded to 2 places, null "
    "when none carries a rating), `rating_distribution` (keys 1 to 5, always present) and `platform_distribution` "
    "(reviews without a platform left out) describe those completed reviews. `referral_offers.sent`: referral "
    "offers sent in the period; `referral_offers.used`: of those, the ones used at least once, whenever. "
    "`referral_conversion_rate`: used out of sent (0 when none was sent). `estimated_revenue`: total amount of "
    "the completed sales made through a referral and recorded in the period."
)


@router.get("/analytics", description=_DESCRIPTION)
async def read_analytics(
    user: CurrentUser,
    session: SessionDep,
    period: PeriodQuery,
) -> ReviewReferralAnalytics:
    """Review and referral analytics for a period."""
    return await review_analytics.review_referral_analytics(session, user, period.start, period.end)
