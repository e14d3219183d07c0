"""``/v1/leads`` and their interactions (spec/api-v1-resources.md, Leads and Interactions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse

from api.deps import CurrentUser, IdempotencyKey, LeadWriter, SessionDep, SettingsDep, TemporalDep
from api.idempotent import CONFLICT_DOC, created_or_merged, duplicate_doc, respond_once
from api.lead_capture import as_seen_by_caller
from api.pagination import ResourcesPage, data_page
from schemas.common import DataPage
from schemas.enums import Role
from schemas.leads import (
    InteractionCreate,
    InteractionFilter,
    InteractionPublic,
    InteractionType,
    LeadCreate,
    LeadDetailPublic,
    LeadFilter,
    LeadPublic,
    LeadStatus,
    LeadUpdate,
    SourceIn,
)
from services import idempotency, interactions, lead_import, leads
from services.users import require_role

router = APIRouter(prefix="/leads", tags=["leads"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=LeadPublic,
    responses={200: duplicate_doc(LeadPublic), 409: CONFLICT_DOC},
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
        public = as_seen_by_caller(LeadPublic.model_validate(created.lead).model_dump(mode="json"))
        return created_or_merged(public, duplicate=created.duplicate)

    return await respond_once(session, user, request, idempotency_key, body, create)


@router.get("")
async def list_leads(
    user: CurrentUser,
    session: SessionDep,
    page: ResourcesPage,
    status: Annotated[LeadStatus | None, Query(description="Filter by status")] = None,
    source: Annotated[SourceIn | None, Query(description="Filter by source")] = None,
    tags: Annotated[list[str] | None, Query(description="Leads carrying all of these tags (comma-separated)")] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Leads whose name or email contains this text (any case)")
    ] = None,
) -> DataPage[LeadPublic]:
    """Your company's leads, newest first unless sort_by/sort_dir say otherwise; q searches name and email."""
    filters = LeadFilter(status=status, source=source, tags=tags or [], q=q)
    return data_page(await leads.list_leads(session, user, filters, page), LeadPublic.model_validate)


# Declared before /{lead_id}, which would otherwise take "export" for an id.
@router.get("/export", response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
async def export_leads(user: CurrentUser, request: Request) -> StreamingResponse:
    """All your company's leads as CSV, the columns `bas leads import` reads back (admins and managers)."""
    require_role(user, Role.admin, Role.manager)
    filename = f"leads-{datetime.now(UTC):%Y-%m-%d}.csv"
    return StreamingResponse(
        lead_import.export_stream(request.app.state.sessions, user),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/{lead_id}")
async def read_lead(lead_id: str, user: CurrentUser, session: SessionDep) -> LeadDetailPublic:
    """One lead with its interactions."""
    return LeadDetailPublic.model_validate(await leads.get(session, user, lead_id, with_interactions=True))


@router.patch("/{lead_id}")
async def update_lead(
    lead_id: str, body: LeadUpdate, user: CurrentUser, session: SessionDep, temporal: TemporalDep
) -> LeadPublic:
    """Change a lead; status converted or lost stops its follow-up sequences."""
    return LeadPublic.model_validate(await leads.update(session, temporal, user, lead_id, body))


@router.delete("/{lead_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_lead(lead_id: str, user: CurrentUser, session: SessionDep, temporal: TemporalDep) -> Response:
    """Erase a lead and its interactions for good; its sequences stop."""
    await leads.delete_lead(session, temporal, user, lead_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{lead_id}/interactions")
async def list_interactions(
    lead_id: str,
    user: CurrentUser,
    session: SessionDep,
    page: ResourcesPage,
    type: Annotated[InteractionType | None, Query(description="Filter by type")] = None,
) -> DataPage[InteractionPublic]:
    """One lead's interactions, newest first."""
    result = await interactions.list_for_lead(session, user, lead_id, InteractionFilter(type=type), page)
    return data_page(result, InteractionPublic.model_validate)


@router.post(
    "/{lead_id}/interactions",
    status_code=status.HTTP_201_CREATED,
    response_model=InteractionPublic,
    responses={409: CONFLICT_DOC},
)
async def create_interaction(
    lead_id: str,
    body: InteractionCreate,
    user: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Log an interaction; an inbound one (a reply) marks the lead engaged and stops its sequences."""

    async def create() -> idempotency.StoredResponse:
        interaction = await interactions.create(session, temporal, user, lead_id, body)
        return idempotency.StoredResponse(201, InteractionPublic.model_validate(interaction).model_dump(mode="json"))

    return await respond_once(session, user, request, idempotency_key, body, create)
