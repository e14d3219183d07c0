"""``/api/content-generation`` (spec/api-v1-workflow-endpoints.md, Content Generation API).

Each generation endpoint answers at once with the documented ``message`` and ``status: pending``, plus the
new content's id and the run's id to poll.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep
from schemas.content import (
    BlogPostRequest,
    ContentBrief,
    ContentEndpointsItem,
    ContentEndpointsPublic,
    GenerationAccepted,
    NewsletterRequest,
    ProductDescriptionRequest,
    SocialMediaRequest,
)
from schemas.ids import EndpointsId, to_api_id
from schemas.publishing import EndpointsPublishRequest, PublishAccepted
from services import content as content_service
from services import publishing as publishing_service

router = APIRouter(prefix="/content-generation", tags=["content-generation"])

ACCEPTED = status.HTTP_202_ACCEPTED


async def _start(
    session: SessionDep, temporal: TemporalDep, settings: SettingsDep, user: CurrentUser, brief: ContentBrief, what: str
) -> GenerationAccepted:
    generation = await content_service.generate(session, temporal, settings, user, brief)
    return GenerationAccepted(
        message=f"Generating {what} in the background", content_id=generation.content.id, run_id=generation.run.id
    )


@router.post("/blog-post", status_code=ACCEPTED)
async def generate_blog_post(
    body: BlogPostRequest, user: CurrentUser, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> GenerationAccepted:
    """Write a blog post in the background."""
    return await _start(session, temporal, settings, user, body.to_brief(), f"blog post on topic '{body.topic}'")


@router.post("/social-media", status_code=ACCEPTED)
async def generate_social_post(
    body: SocialMediaRequest, user: CurrentUser, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> GenerationAccepted:
    """Write a social media post in the background, within the network's length limit."""
    what = f"{body.platform.value} post on topic '{body.topic}'"
    return await _start(session, temporal, settings, user, body.to_brief(), what)


@router.post("/email-newsletter", status_code=ACCEPTED)
async def generate_newsletter(
    body: NewsletterRequest, user: CurrentUser, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> GenerationAccepted:
    """Write an email newsletter in the background."""
    what = f"email newsletter on topic '{body.topic}'"
    return await _start(session, temporal, settings, user, body.to_brief(), what)


@router.post("/product-description", status_code=ACCEPTED)
async def generate_product_description(
    body: ProductDescriptionRequest,
    user: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> GenerationAccepted:
    """Write a product description in the background."""
    what = f"product description for '{body.product_name}'"
    return await _start(session, temporal, settings, user, body.to_brief(), what)


@router.get("/content/{content_id}")
async def read_content(content_id: EndpointsId, user: CurrentUser, session: SessionDep) -> ContentEndpointsPublic:
    """One content item."""
    content = await content_service.get(session, user, content_id)
    return ContentEndpointsPublic(
        message=f"Content {to_api_id(content.id)} retrieved successfully",
        content=ContentEndpointsItem.model_validate(content),
    )


@router.post(
    "/publish/{content_id}",
    status_code=ACCEPTED,
    responses={409: {"description": "Waiting for approval, or already published (or going out) to that platform"}},
)
async def publish_content(
    content_id: EndpointsId,
    body: EndpointsPublishRequest,
    user: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> PublishAccepted:
    """Publish content to a platform in the background (or at `published_at` with `schedule: true`)."""
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
    assert started.run is not None
    when = f"at {body.published_at.isoformat()}" if body.schedule and body.published_at else "in the background"
    return PublishAccepted(
        message=f"Publishing content {to_api_id(started.content.id)} to {body.platform.value} {when}",
        status="scheduled" if body.schedule else "pending",
        content_id=started.content.id,
        publication_id=started.publication.id,
        run_id=started.run.id,
    )
