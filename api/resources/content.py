"""``/v1/content`` (spec/api-v1-resources.md, Content)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse

from api.deps import CurrentUser, OptionalTemporal, SessionDep, SettingsDep, TemporalDep
from api.pagination import ResourcesPage, data_page
from db.models import Content, Publication
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
from schemas.publishing import (
    CancelRequest,
    ContentPublished,
    PublicationPublic,
    PublishCancelled,
    PublishRequest,
    ResolveRequest,
)
from services import content as content_service
from services import publishing as publishing_service
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
async def update_content(
    content_id: str,
    body: ContentUpdate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: OptionalTemporal,
) -> ContentPublic:
    """Edit a draft's title, body or tags, approve it (`status: approved`), or schedule its publish
    (`status: scheduled` with a future `published_at` and a `platform`)."""
    if body.status == ContentStatus.scheduled:
        content = await publishing_service.schedule_from_update(session, temporal, settings, user, content_id, body)
    else:
        content = await content_service.update(session, user, content_id, body)
    return ContentPublic.model_validate(content)


@router.post("/{content_id}/approve", responses={409: {"description": "Not a written draft"}})
async def approve_content(content_id: str, user: CurrentUser, session: SessionDep) -> ContentPublic:
    """Approve a draft for publishing (managers and admins)."""
    content = await content_service.get(session, user, content_id)
    await content_service.approve(session, user, content)
    return ContentPublic.model_validate(content)


def _published(content: Content, publication: Publication) -> ContentPublished:
    return ContentPublished(
        **ContentSummary.model_validate(content).model_dump(),
        publication=PublicationPublic.model_validate(publication),
    )


@router.post(
    "/{content_id}/publish",
    response_model=ContentPublished,
    responses={
        202: {"model": ContentPublished, "description": "Scheduled, or still going out: poll the content"},
        409: {"description": "Waiting for approval, or already published (or going out) to that platform"},
    },
)
async def publish_content(
    content_id: str,
    body: PublishRequest,
    user: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Publish now (the outcome if known within a short wait, else 202), or at `published_at` with `schedule: true`."""
    started = await publishing_service.publish(
        session,
        temporal,
        settings,
        user,
        content_id,
        body.platform,
        schedule=body.schedule,
        publish_at=body.published_at,
    )
    started = await publishing_service.publish_and_wait(session, temporal, settings, started)
    answer = _published(started.content, started.publication).model_dump(mode="json")
    return JSONResponse(answer, status_code=200 if started.finished else 202)


@router.post("/{content_id}/publish/cancel", responses={409: {"description": "Nothing scheduled to cancel"}})
async def cancel_publish(
    content_id: str,
    user: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporal,
    body: CancelRequest | None = None,
) -> PublishCancelled:
    """Cancel the item's scheduled publish (every platform's, or `platform`'s): nothing is published."""
    content, cancelled = await publishing_service.cancel(
        session, temporal, user, content_id, body.platform if body else None
    )
    return PublishCancelled(
        content=ContentSummary.model_validate(content),
        cancelled=[PublicationPublic.model_validate(publication) for publication in cancelled],
    )


@router.get("/{content_id}/publications")
async def list_publications(
    content_id: str, user: CurrentUser, session: SessionDep, page: ResourcesPage
) -> DataPage[PublicationPublic]:
    """Every publish of the item: platform, status (an `unknown` one waits for a person), address, attempts."""
    found = await publishing_service.publications(session, user, content_id, page)
    return data_page(found, PublicationPublic.model_validate)


@router.post(
    "/{content_id}/publications/{publication_id}/resolve",
    responses={409: {"description": "The publication's outcome is not unknown"}},
)
async def resolve_publication(
    content_id: str,
    publication_id: str,
    body: ResolveRequest,
    user: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporal,
    settings: SettingsDep,
) -> ContentPublished:
    """Settle an unknown outcome: `confirm` it is out (with its `url`), or `retry` it (WordPress is asked first)."""
    started = await publishing_service.resolve(session, temporal, settings, user, content_id, publication_id, body)
    return _published(started.content, started.publication)
