"""``/api/lead-nurturing`` leads and interactions (spec/api-v1-workflow-endpoints.md, Lead Nurturing API)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from api.deps import CurrentUser, IdempotencyKey, LeadWriter, SessionDep, SettingsDep, TemporalDep
from api.idempotent import CONFLICT_DOC, created_or_merged, duplicate_doc, respond_once
from api.lead_capture import as_seen_by_caller
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


def _lead(lead: object) -> LeadEndpointsPublic:
    return LeadEndpointsPublic.model_validate(lead)


def _interaction(interaction: object) -> InteractionEndpointsPublic:
    return InteractionEndpointsPublic.model_validate(interaction)


@router.post(
    "/leads",
    status_code=status.HTTP_201_CREATED,
    response_model=LeadEndpointsPublic,
    responses={200: duplicate_doc(LeadEndpointsPublic), 409: CONFLICT_DOC},
)
async def create_lead(
    body: LeadCreate,
    user: LeadWriter,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Add a lead and start its matching follow-up sequences (an existing email: 200 + X-Duplicate-Of)."""

    async def create() -> idempotency.StoredResponse:
        created = await leads.create(session, temporal, settings, user, body)
        public = as_seen_by_caller(_lead(created.lead).model_dump(mode="json"))
        return created_or_merged(public, duplicate=created.duplicate)

    return await respond_once(session, user, request, idempotency_key, body, create)


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
    filters = LeadFilter(status=status, source=source, tags=tags or [])
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
    responses={409: CONFLICT_DOC},
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

    return await respond_once(session, user, request, idempotency_key, body, create)


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
