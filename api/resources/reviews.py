"""``/v1/reviews`` and ``/v1/referrals`` (spec/api-v1-resources.md, Reviews and Referrals), under the
fair-review rules (``schemas.reviews.FAIR_REVIEW_RULES``), which the OpenAPI text states too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from api.deps import CurrentUser, IdempotencyKey, OptionalTemporal, SessionDep, SettingsDep, TemporalDep
from api.idempotent import CONFLICT_DOC, respond_once
from api.pagination import ResourcesPage, data_page
from schemas.common import DataPage
from schemas.reviews import (
    FAIR_REVIEW_RULES,
    RESOURCES_REFERRAL_FILTERS,
    PlatformIn,
    ReferralCreate,
    ReferralDetailPublic,
    ReferralFilter,
    ReferralPublic,
    ReferralTrack,
    ReviewFilter,
    ReviewPublic,
    ReviewRequestCreate,
    ReviewStatusIn,
    ReviewUpdate,
)
from services import customers, idempotency, referrals, reviews
from services.errors import InvalidField

router = APIRouter(tags=["reviews"])
referrals_router = APIRouter(prefix="/referrals", tags=["referrals"])


@router.get("/reviews")
async def list_reviews(
    user: CurrentUser,
    session: SessionDep,
    page: ResourcesPage,
    customer_id: Annotated[str | None, Query(description="Filter by customer")] = None,
    status: Annotated[ReviewStatusIn | None, Query(description="requested, completed or verified")] = None,
    platform: Annotated[PlatformIn | None, Query(description="Google, Facebook, Yelp...")] = None,
) -> DataPage[ReviewPublic]:
    """Your company's reviews, newest first."""
    filters = ReviewFilter(customer_id=customer_id, status=status, platform=platform)
    return data_page(await reviews.list_reviews(session, user, filters, page), ReviewPublic.model_validate)


@router.post(
    "/reviews/request",
    status_code=status.HTTP_201_CREATED,
    response_model=ReviewPublic,
    responses={
        200: {"model": ReviewPublic, "description": "The sale's request was already running (or left): reused"},
        409: {"description": "The sale is not completed"},
    },
    description=f"Ask the customer of a completed sale for a review, now. {FAIR_REVIEW_RULES}",
)
async def request_review(
    body: ReviewRequestCreate, user: CurrentUser, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> JSONResponse:
    """Ask for a review of a sale (or reuse its running request)."""
    requested = await reviews.request(session, temporal, settings, user, body, ask_now=True)
    public = ReviewPublic.model_validate(requested.review).model_dump(mode="json")
    return JSONResponse(public, status_code=201 if requested.started else 200)


@router.get("/reviews/{review_id}")
async def read_review(review_id: str, user: CurrentUser, session: SessionDep) -> ReviewPublic:
    """One review."""
    return ReviewPublic.model_validate(await reviews.get(session, user, review_id))


@router.patch("/reviews/{review_id}")
async def update_review(
    review_id: str, body: ReviewUpdate, user: CurrentUser, session: SessionDep, temporal: OptionalTemporal
) -> ReviewPublic:
    """Record the review the customer left (rating 1-5, content, URL, status); its reminders stop."""
    review = await reviews.update(session, temporal, user, review_id, body)
    return ReviewPublic.model_validate(review)


@referrals_router.get("")
async def list_referrals(
    user: CurrentUser,
    session: SessionDep,
    page: ResourcesPage,
    customer_id: Annotated[str | None, Query(description="Filter by customer")] = None,
    status: Annotated[str | None, Query(description="active, exhausted or expired")] = None,
) -> DataPage[ReferralPublic]:
    """Your company's referral codes, newest first."""
    if status is not None and status not in RESOURCES_REFERRAL_FILTERS:
        raise InvalidField("status", f"choose one of {', '.join(RESOURCES_REFERRAL_FILTERS)}")
    statuses = RESOURCES_REFERRAL_FILTERS[status] if status else None
    filters = ReferralFilter(customer_id=customer_id, statuses=statuses)
    return data_page(await referrals.list_referrals(session, user, filters, page), ReferralPublic.model_validate)


@referrals_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralPublic,
    responses={409: CONFLICT_DOC},
    description=f"Issue a referral code to a customer. {FAIR_REVIEW_RULES}",
)
async def create_referral(
    body: ReferralCreate,
    user: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporal,
    settings: SettingsDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Issue a referral code."""

    async def create() -> idempotency.StoredResponse:
        customer = await customers.referenced(session, user, body.customer_id)
        referral = await referrals.create(session, temporal, settings, customer, referrals.terms_of(body))
        return idempotency.StoredResponse(201, ReferralPublic.model_validate(referral).model_dump(mode="json"))

    return await respond_once(session, user, request, idempotency_key, body, create)


@referrals_router.get("/{referral_id}")
async def read_referral(referral_id: str, user: CurrentUser, session: SessionDep) -> ReferralDetailPublic:
    """One referral with every use."""
    return ReferralDetailPublic.model_validate(await referrals.get(session, user, referral_id, with_uses=True))


@referrals_router.post("/{referral_id}/track", responses={409: {"description": "The code expired or is used up"}})
async def track_referral(
    referral_id: str, body: ReferralTrack, user: CurrentUser, session: SessionDep
) -> ReferralDetailPublic:
    """Record a use of the code (by a lead); the same lead counts once."""
    referral = await referrals.get(session, user, referral_id)
    await referrals.redeem(session, referral, body.lead_id)
    return ReferralDetailPublic.model_validate(await referrals.get(session, user, referral_id, with_uses=True))
