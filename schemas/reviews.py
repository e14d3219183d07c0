"""Reviews and referrals: one stored vocabulary, each surface's own words, and the API bodies.

The two documents name the same things differently. Stored (canonical), then ``/v1`` and ``/api`` words:

- review status: ``requested`` / ``submitted`` (``/v1``: "completed") / ``verified``;
- review platform: lower-case ``google`` (``/v1`` shows "Google");
- referral status: ``created``, ``sent``, ``used``, ``exhausted``, ``expired``; ``/v1`` says "active" for
  the first three, ``/api`` says "used" for exhausted;
- referral offer: two columns, ``offer`` (what the new customer gets; ``/api``: ``offer.description``) and
  ``referrer_offer`` (what the referring customer gets).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AliasPath, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from schemas.ids import EndpointsId, RecordId


class ReviewPlatform(StrEnum):
    google = "google"
    facebook = "facebook"
    yelp = "yelp"
    trustpilot = "trustpilot"
    tripadvisor = "tripadvisor"
    other = "other"


PLATFORM_LABELS = {
    ReviewPlatform.google: "Google",
    ReviewPlatform.facebook: "Facebook",
    ReviewPlatform.yelp: "Yelp",
    ReviewPlatform.trustpilot: "Trustpilot",
    ReviewPlatform.tripadvisor: "Tripadvisor",
    ReviewPlatform.other: "Other",
}
NO_SOLICITING = frozenset({ReviewPlatform.yelp})
"""Platforms whose terms forbid asking customers for reviews: a review there may be recorded, never requested."""
FAIR_REVIEW_RULES = (
    "Fair-review rules: every customer gets the same review request whatever their expected sentiment (no "
    "gating), no reward or discount ever depends on leaving a review or on its rating, and reviews are never "
    "requested on Yelp, which forbids soliciting them (422); a Yelp review a customer left on their own can be "
    "recorded."
)
REVIEW_LINKS_SETTING = "review_links"
"""Company setting: ``{"review_links": {"google": "https://g.page/r/.../review", ...}}``."""


def review_platform_label(platform: str) -> str:
    return PLATFORM_LABELS[ReviewPlatform(platform)] if platform in ReviewPlatform.__members__ else platform


def review_link(company_settings: dict[str, Any], platform: str) -> str | None:
    """Where a customer leaves a review on ``platform`` for this company, from its settings."""
    links = company_settings.get(REVIEW_LINKS_SETTING)
    link = links.get(platform) if isinstance(links, dict) else None
    return link if isinstance(link, str) and link.strip() else None


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


PlatformIn = Annotated[
    ReviewPlatform,
    BeforeValidator(_lower),
    WithJsonSchema(
        {"type": "string", "enum": [p.value for p in ReviewPlatform] + list(PLATFORM_LABELS.values())},
    ),
]
"""A platform as either surface sends it ("Google" or "google")."""

PlatformLabel = Annotated[
    ReviewPlatform,
    PlainSerializer(lambda platform: PLATFORM_LABELS[platform], return_type=str),
    WithJsonSchema({"type": "string", "enum": list(PLATFORM_LABELS.values())}),
]
"""A platform as ``/v1`` shows it."""


# ---- review lifecycle


class ReviewStatus(StrEnum):
    requested = "requested"
    submitted = "submitted"
    verified = "verified"


RECORDED_REVIEW = frozenset({ReviewStatus.submitted, ReviewStatus.verified})
"""A review in one of these states has been left: the request workflow stops reminding."""
_RESOURCES_REVIEW_WORDS = {ReviewStatus.submitted: "completed"}
_REVIEW_STATUS_ALIASES = {"completed": ReviewStatus.submitted}


def _canonical_review_status(value: object) -> object:
    return _REVIEW_STATUS_ALIASES.get(value, value) if isinstance(value, str) else value


ReviewStatusIn = Annotated[
    ReviewStatus,
    BeforeValidator(_canonical_review_status),
    WithJsonSchema({"type": "string", "enum": ["requested", "submitted", "completed", "verified"]}),
]
ResourcesReviewStatus = Annotated[
    ReviewStatus,
    PlainSerializer(lambda status: _RESOURCES_REVIEW_WORDS.get(status, status.value), return_type=str),
    WithJsonSchema({"type": "string", "enum": ["requested", "completed", "verified"]}),
]

Rating = Annotated[int, Field(ge=1, le=5, description="1 to 5 stars")]
ReviewContent = Annotated[str, Field(max_length=20_000)]
ReviewUrl = Annotated[str, Field(max_length=500, pattern=r"^https?://")]


class ReviewRequestCreate(BaseModel):
    """``POST /v1/reviews/request``: ask the customer of a completed sale for a review (now)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: RecordId
    sale_id: RecordId
    platform: PlatformIn | None = Field(None, description="default: the review config's platform, else Google")
    message_template: str | None = Field(
        None, max_length=100, description="a template of the active review_referral config (default: its request)"
    )


class ReviewEndpointsCreate(BaseModel):
    """``POST /api/review-referral/reviews``.

    With only ``customer_id`` and ``sale_id`` it is a review *request* (the sale's workflow starts, or the
    running one is reused). With a ``rating`` or a ``status`` of submitted/verified it records a review the
    customer left on their own (allowed on any platform, Yelp included); no request is sent.
    """

    model_config = ConfigDict(extra="forbid")

    customer_id: EndpointsId
    sale_id: EndpointsId | None = None
    platform: PlatformIn | None = None
    rating: Rating | None = None
    content: ReviewContent | None = None
    status: ReviewStatusIn | None = None
    review_url: ReviewUrl | None = None
    submitted_at: datetime | None = None


class ReviewUpdate(BaseModel):
    """``PATCH /v1/reviews/{id}`` and ``PUT /api/review-referral/reviews/{id}``: record what the customer left."""

    model_config = ConfigDict(extra="forbid")

    status: ReviewStatusIn | None = None
    rating: Rating | None = None
    content: ReviewContent | None = None
    platform: PlatformIn | None = None
    review_url: ReviewUrl | None = None
    submitted_at: datetime | None = Field(None, description="when it was left (default: now)")


class ReviewFilter(BaseModel):
    customer_id: str | None = None
    status: ReviewStatus | None = None
    platform: ReviewPlatform | None = None


class ReviewSummary(BaseModel):
    """A review inside ``GET /v1/customers/{id}``."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    platform: PlatformLabel | None
    rating: int | None
    status: ResourcesReviewStatus
    completed_at: datetime | None = Field(validation_alias="submitted_at")


class ReviewPublic(BaseModel):
    """A review as ``/v1`` shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    customer_name: str = Field(validation_alias=AliasPath("customer", "name"))
    sale_id: str | None
    platform: PlatformLabel | None
    rating: int | None
    content: str | None
    status: ResourcesReviewStatus
    request_sent_at: datetime | None
    completed_at: datetime | None = Field(validation_alias="submitted_at")
    review_url: str | None


class ReviewEndpointsPublic(BaseModel):
    """A review as ``/api`` shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: EndpointsId
    company_id: EndpointsId
    customer_id: EndpointsId
    sale_id: EndpointsId | None
    rating: int | None
    content: str | None
    platform: ReviewPlatform | None
    status: ReviewStatus
    review_url: str | None
    request_sent_at: datetime | None
    submitted_at: datetime | None
    verified_at: datetime | None
    created_at: datetime
    updated_at: datetime


# ---- referrals


class ReferralStatus(StrEnum):
    created = "created"
    """Issued; the offer has not been sent to the referring customer (yet)."""
    sent = "sent"
    used = "used"
    """Redeemed at least once, uses left."""
    exhausted = "exhausted"
    """Every use taken."""
    expired = "expired"


REDEEMABLE = frozenset({ReferralStatus.created, ReferralStatus.sent, ReferralStatus.used})
_RESOURCES_REFERRAL_WORDS = {status: "active" for status in REDEEMABLE}
_ENDPOINTS_REFERRAL_WORDS = {ReferralStatus.exhausted: "used"}
RESOURCES_REFERRAL_FILTERS: dict[str, frozenset[ReferralStatus]] = {
    "active": REDEEMABLE,
    "exhausted": frozenset({ReferralStatus.exhausted}),
    "expired": frozenset({ReferralStatus.expired}),
}
ENDPOINTS_REFERRAL_FILTERS: dict[str, frozenset[ReferralStatus]] = {
    "created": frozenset({ReferralStatus.created}),
    "sent": frozenset({ReferralStatus.sent}),
    "used": frozenset({ReferralStatus.used, ReferralStatus.exhausted}),
    "expired": frozenset({ReferralStatus.expired}),
}

ResourcesReferralStatus = Annotated[
    ReferralStatus,
    PlainSerializer(lambda status: _RESOURCES_REFERRAL_WORDS.get(status, status.value), return_type=str),
    WithJsonSchema({"type": "string", "enum": list(RESOURCES_REFERRAL_FILTERS)}),
]
EndpointsReferralStatus = Annotated[
    ReferralStatus,
    PlainSerializer(lambda status: _ENDPOINTS_REFERRAL_WORDS.get(status, status.value), return_type=str),
    WithJsonSchema({"type": "string", "enum": list(ENDPOINTS_REFERRAL_FILTERS)}),
]

Offer = Annotated[str, Field(min_length=1, max_length=500)]
DEFAULT_OFFER = "10% off your first purchase"
DEFAULT_REFERRER_OFFER = "10% off your next purchase"
DEFAULT_EXPIRY_DAYS = 90


class ReferralCreate(BaseModel):
    """``POST /v1/referrals``."""

    model_config = ConfigDict(extra="forbid")

    customer_id: RecordId
    offer: Offer = Field(DEFAULT_OFFER, description="what the referred new customer gets")
    referrer_offer: Offer | None = Field(None, description="what the referring customer gets")
    max_uses: int | None = Field(None, ge=1, le=100_000, description="null: no limit")
    expires_in_days: int | None = Field(DEFAULT_EXPIRY_DAYS, ge=1, le=3650, description="null: never expires")


class ReferralEndpointsCreate(BaseModel):
    """``POST /api/review-referral/referrals``: the offer comes from the review_referral config (or defaults).

    Whether or not the customer left a review, and whatever its rating, the offer is the same.
    """

    model_config = ConfigDict(extra="forbid")

    customer_id: EndpointsId
    review_id: EndpointsId | None = None


class ReferralTrack(BaseModel):
    """``POST /v1/referrals/{id}/track``."""

    model_config = ConfigDict(extra="forbid")

    lead_id: RecordId | None = Field(None, description="the referred lead; the same lead counts once")


class ReferralUseRequest(BaseModel):
    """``POST /api/review-referral/referrals/use``."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=40)
    lead_id: EndpointsId | None = None


class ReferralFilter(BaseModel):
    customer_id: str | None = None
    statuses: frozenset[ReferralStatus] | None = None


class ReferralUsePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    lead_id: str | None
    used_at: datetime
    converted: bool


class ReferralSummary(BaseModel):
    """A referral inside ``GET /v1/customers/{id}``."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    code: str
    status: ResourcesReferralStatus = Field(validation_alias="current_status")
    times_used: int
    created_at: datetime


class ReferralPublic(BaseModel):
    """A referral as ``/v1`` shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    customer_name: str = Field(validation_alias=AliasPath("customer", "name"))
    code: str
    offer: str
    status: ResourcesReferralStatus = Field(validation_alias="current_status")
    created_at: datetime
    expires_at: datetime | None
    times_used: int
    max_uses: int | None


class ReferralDetailPublic(ReferralPublic):
    """``POST /v1/referrals/{id}/track``: the referral with every use."""

    uses: list[ReferralUsePublic]


class OfferEndpoints(BaseModel):
    referrer_offer: str | None = None
    description: str


class ReferralEndpointsPublic(BaseModel):
    """A referral as ``/api`` shows it."""

    id: EndpointsId
    company_id: EndpointsId
    customer_id: EndpointsId
    review_id: EndpointsId | None
    code: str
    status: EndpointsReferralStatus
    offer: OfferEndpoints
    times_used: int
    max_uses: int | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None


class RedeemedOffer(BaseModel):
    description: str = Field(description="what the referred new customer gets")


class ReferralUseResult(BaseModel):
    """``POST /api/review-referral/referrals/use``."""

    success: bool
    referral_id: EndpointsId
    lead_id: EndpointsId | None
    offer: RedeemedOffer
