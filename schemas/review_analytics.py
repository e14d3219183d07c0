"""Review and referral analytics. Figures are computed by the database; the rate is 0 when there is nothing to
divide by, the average is null when there is nothing to average."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ReviewRequestCounts(BaseModel):
    sent: int = Field(description="reviews whose request was sent in the period")
    completed: int = Field(description="reviews submitted (or since verified) in the period")


class ReferralOfferCounts(BaseModel):
    sent: int = Field(description="referral offers sent in the period")
    used: int = Field(description="of those offers, the ones used at least once, whenever")


class ReviewReferralAnalytics(BaseModel):
    """``GET /api/review-referral/analytics``."""

    review_requests: ReviewRequestCounts
    average_rating: float | None = Field(
        description="mean rating of the reviews completed in the period that carry one; null when none do"
    )
    rating_distribution: dict[str, int] = Field(
        description='reviews completed in the period by rating, "1" to "5", every key present'
    )
    platform_distribution: dict[str, int] = Field(
        description="reviews completed in the period by platform; reviews without a platform are left out"
    )
    referral_offers: ReferralOfferCounts
    referral_conversion_rate: float = Field(description="offers used, out of the offers sent in the period")
    estimated_revenue: float = Field(
        description="total of the completed sales made through a referral, recorded in the period"
    )
