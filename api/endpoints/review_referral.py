"""``/api/review-referral`` reviews and referrals (spec/api-v1-workflow-endpoints.md, Review & Referral API),
under the fair-review rules (``schemas.reviews.FAIR_REVIEW_RULES``), which the OpenAPI text states too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from api.deps import CurrentUser, IdempotencyKey, OptionalTemporal, SessionDep, SettingsDep, TemporalDep
from api.idempotent import CONFLICT_DOC, respond_once
from api.pagination import EndpointsPage, items_page
from db.models import Referral
from schemas.common import ItemsPage
from schemas.ids import EndpointsId
from schemas.reviews import (
    ENDPOINTS_REFERRAL_FILTERS,
    FAIR_REVIEW_RULES,
    OfferEndpoints,
    PlatformIn,
    RedeemedOffer,
    ReferralEndpointsCreate,
    ReferralEndpointsPublic,
    ReferralFilter,
    ReferralUseRequest,
    ReferralUseResult,
    ReviewEndpointsCreate,
    ReviewEndpointsPublic,
    ReviewFilter,
    ReviewStatusIn,
    ReviewUpdate,
)
from services import customers, idempotency, referrals, review_requests, reviews
from services.errors import InvalidField

router = APIRouter(prefix="/review-referral", tags=["review-referral"])


def _review(review: object) -> ReviewEndpointsPublic:
    return ReviewEndpointsPublic.model_validate(review)


def _referral(referral: Referral) -> ReferralEndpointsPublic:
    return ReferralEndpointsPublic(
        id=referral.id,
        company_id=referral.company_id,
        customer_id=referral.customer_id,
        review_id=referral.review_id,
        code=referral.code,
        status=referral.current_status,
        offer=OfferEndpoints(referrer_offer=referral.referrer_offer, description=referral.offer),
        times_used=referral.times_used,
        max_uses=referral.max_uses,
        created_at=referral.created_at,
        updated_at=referral.updated_at,
        expires_at=referral.expires_at,
    )


@router.post(
    "/reviews",
    status_code=status.HTTP_201_CREATED,
    response_model=ReviewEndpointsPublic,
    responses={
        200: {"model": ReviewEndpointsPublic, "description": "The sale's request was already running: reused"},
        409: {"description": "The sale is not completed, or the Idempotency-Key was used for another request"},
    },
    description=f"Ask for a review of a completed sale, or record one the customer left. {FAIR_REVIEW_RULES}",
)
async def create_review(
    body: ReviewEndpointsCreate,
    user: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Ask for a review of a sale, or record one the customer left on their own (with a rating)."""

    async def create() -> idempotency.StoredResponse:
        requested = await reviews.create(session, temporal, settings, user, body)
        code = 200 if requested.run is not None and not requested.started else 201
        return idempotency.StoredResponse(code, _review(requested.review).model_dump(mode="json"))

    return await respond_once(session, user, request, idempotency_key, body, create)


@router.get("/reviews")
async def list_reviews(
    user: CurrentUser,
    session: SessionDep,
    page: EndpointsPage,
    status: Annotated[ReviewStatusIn | None, Query(description="requested, submitted or verified")] = None,
    platform: Annotated[PlatformIn | None, Query(description="google, yelp...")] = None,
    customer_id: Annotated[EndpointsId | None, Query(description="Filter by customer")] = None,
) -> ItemsPage[ReviewEndpointsPublic]:
    """Your company's reviews, newest first."""
    filters = ReviewFilter(customer_id=customer_id, status=status, platform=platform)
    return items_page(await reviews.list_reviews(session, user, filters, page), _review)


@router.get("/reviews/{review_id}")
async def read_review(review_id: EndpointsId, user: CurrentUser, session: SessionDep) -> ReviewEndpointsPublic:
    """One review."""
    return _review(await reviews.get(session, user, review_id))


@router.put("/reviews/{review_id}")
async def update_review(
    review_id: EndpointsId, body: ReviewUpdate, user: CurrentUser, session: SessionDep, temporal: OptionalTemporal
) -> ReviewEndpointsPublic:
    """Record the review the customer left (the fields sent change); its reminders stop."""
    return _review(await reviews.update(session, temporal, user, review_id, body))


@router.post(
    "/referrals",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralEndpointsPublic,
    responses={409: CONFLICT_DOC},
    description=f"Issue a referral code with the review config's offer. {FAIR_REVIEW_RULES}",
)
async def create_referral(
    body: ReferralEndpointsCreate,
    user: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporal,
    settings: SettingsDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Issue a referral code with the review config's offer; the same offer whether or not a review was left."""

    async def create() -> idempotency.StoredResponse:
        customer = await customers.referenced(session, user, body.customer_id)
        review_id = await referrals.check_review(session, customer, body.review_id)
        terms = review_requests.offer_terms(await review_requests.active_config(session, user.company_id))
        referral = await referrals.create(session, temporal, settings, customer, terms, review_id)
        return idempotency.StoredResponse(201, _referral(referral).model_dump(mode="json"))

    return await respond_once(session, user, request, idempotency_key, body, create)


@router.get("/referrals")
async def list_referrals(
    user: CurrentUser,
    session: SessionDep,
    page: EndpointsPage,
    status: Annotated[str | None, Query(description="created, sent, used or expired")] = None,
    customer_id: Annotated[EndpointsId | None, Query(description="Filter by customer")] = None,
) -> ItemsPage[ReferralEndpointsPublic]:
    """Your company's referral codes, newest first."""
    if status is not None and status not in ENDPOINTS_REFERRAL_FILTERS:
        raise InvalidField("status", f"choose one of {', '.join(ENDPOINTS_REFERRAL_FILTERS)}")
    filters = ReferralFilter(customer_id=customer_id, statuses=ENDPOINTS_REFERRAL_FILTERS[status] if status else None)
    return items_page(await referrals.list_referrals(session, user, filters, page), _referral)


@router.post(
    "/referrals/use",
    responses={
        404: {"description": "No such referral code in your company"},
        409: {"description": "The code expired or has no uses left"},
    },
)
async def use_referral(body: ReferralUseRequest, user: CurrentUser, session: SessionDep) -> ReferralUseResult:
    """Redeem a referral code for a lead; the same lead twice counts once."""
    referral = await referrals.by_code(session, user.company_id, body.code)
    redemption = await referrals.redeem(session, referral, body.lead_id)
    return ReferralUseResult(
        success=True,
        referral_id=redemption.referral.id,
        lead_id=redemption.use.lead_id,
        offer=RedeemedOffer(description=redemption.referral.offer),
    )


@router.get("/referrals/{referral_id}")
async def read_referral(referral_id: EndpointsId, user: CurrentUser, session: SessionDep) -> ReferralEndpointsPublic:
    """One referral."""
    return _referral(await referrals.get(session, user, referral_id))
