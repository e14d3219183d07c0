"""``/v1/content`` (spec/api-v1-resources.md, Content)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse

from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep
from api.pagination import ResourcesPage, data_page
from schemas.common import DataPage
from schemas.content import (
    ContentAccepted,
    ContentDetailPublic,
    ContentFilter,
    ContentGenerate,
    ContentPublic,
    ContentStatus,
    ContentSummary,
    ContentTypeIn,
    ContentUpdate,
)
from services import content as content_service
from services.errors import InvalidField

router = APIRouter(prefix="/content", tags=["content"])


@router.get("")
async def list_content(
    user: CurrentUser,
    session: SessionDep,
    page: ResourcesPage,
    type: Annotated[ContentTypeIn | None, Query(description="blog, social, email or product")] = None,
    status: Annotated[ContentStatus | None, Query(description="Filter by status")] = None,
) -> DataPage[ContentSummary]:
    """Your company's content, newest first."""
    filters = ContentFilter(type=type, status=status)
    return data_page(await content_service.list_content(session, user, filters, page), ContentSummary.model_validate)


@router.post(
    "/generate",
    status_code=status.HTTP_201_CREATED,
    response_model=ContentPublic,
    responses={202: {"model": ContentAccepted, "description": "Still being written: poll GET /v1/content/{id}"}},
)
async def generate_content(
    body: ContentGenerate, user: CurrentUser, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> JSONResponse:
    """Write a piece with the configured writer; the draft if done within the wait, else 202 and its id."""
    try:
        brief = body.to_brief()
    except ValueError as exc:
        raise InvalidField("topic", str(exc)) from exc
    generation = await content_service.generate_and_wait(session, temporal, settings, user, brief)
    if generation.finished:
        return JSONResponse(ContentPublic.model_validate(generation.content).model_dump(mode="json"), status_code=201)
    accepted = ContentAccepted(
        id=generation.content.id,
        status=ContentStatus(generation.content.status),
        run_id=generation.run.id,
        message=f"Still writing {generation.content.id}; GET /v1/content/{generation.content.id} shows it when done",
    )
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202)


@router.get("/{content_id}")
async def read_content(content_id: str, user: CurrentUser, session: SessionDep) -> ContentDetailPublic:
    """One content item with its engagement figures."""
    content = await content_service.get(session, user, content_id)
    metrics = await content_service.metrics_of(session, content)
    return ContentDetailPublic(**ContentPublic.model_validate(content).model_dump(by_alias=False), metrics=metrics)


@router.patch("/{content_id}", responses={409: {"description": "Not editable in its current status"}})
async def update_content(content_id: str, body: ContentUpdate, user: CurrentUser, session: SessionDep) -> ContentPublic:
    """Edit a draft's title, body or tags, or approve it (`status: approved`; managers and admins)."""
    return ContentPublic.model_validate(await content_service.update(session, user, content_id, body))


@router.post("/{content_id}/approve", responses={409: {"description": "Not a written draft"}})
async def approve_content(content_id: str, user: CurrentUser, session: SessionDep) -> ContentPublic:
    """Approve a draft for publishing (managers and admins)."""
    content = await content_service.get(session, user, content_id)
    await content_service.approve(session, user, content)
    return ContentPublic.model_validate(content)
