"""``/api/lead-nurturing`` leads and interactions (spec/api-v1-workflow-endpoints.md, Lead Nurturing API)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from api.deps import CurrentUser, IdempotencyKey, SessionDep, SettingsDep, TemporalDep
from api.pagination import EndpointsPage, items_page
from schemas.common import ItemsPage, Success
from schemas.ids import EndpointsId
from schemas.leads import (
    Direction,
    InteractionEndpointsCreate,
    InteractionEndpointsPublic,
    InteractionFilter,
    InteractionType,
    LeadCreate,
    LeadEndpointsPublic,
    LeadFilter,
    LeadStatus,
    LeadUpdate,
    SourceIn,
)
from services import idempotency, interactions, leads

router = APIRouter(prefix="/lead-nurturing", tags=["lead-nurturing"])

DUPLICATE_HEADER = "X-Duplicate-Of"
_CONFLICT: dict[str, Any] = {
    "description": "The Idempotency-Key was used with a different request, or that request is still running"
}


def _tags(tags: list[str] | None) -> list[str]:
    """``?tags=a,b`` and ``?tags=a&tags=b`` mean the same."""
    return [tag.strip() for value in tags or [] for tag in value.split(",") if tag.strip()]


def _lead(lead: object) -> LeadEndpointsPublic:
    return LeadEndpointsPublic.model_validate(lead)


def _interaction(interaction: object) -> InteractionEndpointsPublic:
    return InteractionEndpointsPublic.model_validate(interaction)


def _respond(stored: idempotency.StoredResponse) -> JSONResponse:
    return JSONResponse(stored.body, status_code=stored.status_code, headers=stored.headers)


@router.post(
    "/leads",
    status_code=status.HTTP_201_CREATED,
    response_model=LeadEndpointsPublic,
    responses={
        200: {
            "model": LeadEndpointsPublic,
            "description": "A lead with this email already existed: it is returned, merged with the new non-empty "
            "fields, and no second sequence starts. The `X-Duplicate-Of` header names it.",
            "headers": {DUPLICATE_HEADER: {"description": "id of the existing lead", "schema": {"type": "string"}}},
        },
        409: _CONFLICT,
    },
)
async def create_lead(
    body: LeadCreate,
    user: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Add a lead and start its matching follow-up sequences (an existing email: 200 + X-Duplicate-Of)."""

    async def create() -> idempotency.StoredResponse:
        created = await leads.create(session, temporal, settings, user, body)
        public = _lead(created.lead).model_dump(mode="json")
        if created.duplicate:
            return idempotency.StoredResponse(200, public, {DUPLICATE_HEADER: public["id"]})
        return idempotency.StoredResponse(201, public)

    scope = f"POST {request.url.path}"
    body_json = body.model_dump(mode="json")
    return _respond(
        await idempotency.once(session, user.company_id, idempotency_key, scope=scope, body=body_json, action=create)
    )


@router.get("/leads")
async def list_leads(
    user: CurrentUser,
    session: SessionDep,
    page: EndpointsPage,
    status: Annotated[LeadStatus | None, Query(description="Filter by status")] = None,
    source: Annotated[SourceIn | None, Query(description="Filter by source")] = None,
    tags: Annotated[list[str] | None, Query(description="Leads carrying all of these tags (comma-separated)")] = None,
) -> ItemsPage[LeadEndpointsPublic]:
    """Your company's leads, newest first unless sort/order say otherwise."""
    filters = LeadFilter(status=status, source=source, tags=_tags(tags))
    return items_page(await leads.list_leads(session, user, filters, page), _lead)


@router.get("/leads/{lead_id}")
async def read_lead(lead_id: EndpointsId, user: CurrentUser, session: SessionDep) -> LeadEndpointsPublic:
    """One lead."""
    return _lead(await leads.get(session, user, lead_id))


@router.put("/leads/{lead_id}")
async def update_lead(
    lead_id: EndpointsId, body: LeadUpdate, user: CurrentUser, session: SessionDep, temporal: TemporalDep
) -> LeadEndpointsPublic:
    """Change the fields sent (others stay); status converted or lost stops its follow-up sequences."""
    return _lead(await leads.update(session, temporal, user, lead_id, body))


@router.delete("/leads/{lead_id}")
async def delete_lead(lead_id: EndpointsId, user: CurrentUser, session: SessionDep, temporal: TemporalDep) -> Success:
    """Erase a lead and its interactions for good; its sequences stop."""
    await leads.delete_lead(session, temporal, user, lead_id)
    return Success(message="Lead deleted successfully")


@router.post(
    "/interactions",
    status_code=status.HTTP_201_CREATED,
    response_model=InteractionEndpointsPublic,
    responses={409: _CONFLICT},
)
async def create_interaction(
    body: InteractionEndpointsCreate,
    user: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Log an interaction with a lead; an inbound one (a reply) marks it engaged and stops its sequences."""

    async def create() -> idempotency.StoredResponse:
        interaction = await interactions.create(session, temporal, user, body.lead_id, body)
        return idempotency.StoredResponse(201, _interaction(interaction).model_dump(mode="json"))

    scope = f"POST {request.url.path}"
    body_json = body.model_dump(mode="json")
    return _respond(
        await idempotency.once(session, user.company_id, idempotency_key, scope=scope, body=body_json, action=create)
    )


@router.get("/interactions")
async def list_interactions(
    user: CurrentUser,
    session: SessionDep,
    page: EndpointsPage,
    lead_id: Annotated[EndpointsId | None, Query(description="Filter by lead")] = None,
    type: Annotated[InteractionType | None, Query(description="Filter by type")] = None,
    direction: Annotated[Direction | None, Query(description="inbound or outbound")] = None,
) -> ItemsPage[InteractionEndpointsPublic]:
    """Your company's interactions, newest first."""
    filters = InteractionFilter(lead_id=lead_id, type=type, direction=direction)
    return items_page(await interactions.list_interactions(session, user, filters, page), _interaction)
