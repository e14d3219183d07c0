"""Publishing content: the platform words each surface accepts, the API bodies, and the activities' payloads.

A publish is a ``publications`` row (written before the platform is called) and a ``PublishContentWorkflow``
(``content-publish/{publication_id}``). The contracts the newsletter side shares are in ``content_workflows``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, PlainSerializer, WithJsonSchema

from schemas.content import ContentSummary
from schemas.content_workflows import PUBLISHER_LABELS, NewsletterProgress, Publisher
from schemas.ids import EndpointsId


def publish_workflow_id(publication_id: str) -> str:
    return f"content-publish/{publication_id}"


_PUBLISHER_WORDS = {label.lower(): publisher for publisher, label in PUBLISHER_LABELS.items()} | {
    "wp": Publisher.wordpress,
    "email": Publisher.newsletter,
    "email_newsletter": Publisher.newsletter,
}


def _publisher(value: object) -> object:
    if isinstance(value, str):
        word = value.strip().lower()
        return _PUBLISHER_WORDS.get(word, word)
    return value


PublisherIn = Annotated[
    Publisher,
    BeforeValidator(_publisher),
    WithJsonSchema(
        {"type": "string", "enum": [p.value for p in Publisher] + list(PUBLISHER_LABELS.values())},
    ),
]
"""``wordpress`` or ``WordPress`` (either case), ``webhook``, ``newsletter`` (``email``), ``recorded``."""

PublisherLabel = Annotated[
    Publisher,
    PlainSerializer(lambda publisher: PUBLISHER_LABELS[publisher], return_type=str),
    WithJsonSchema({"type": "string", "enum": list(PUBLISHER_LABELS.values())}),
]


class PublicationStatus(StrEnum):
    pending = "pending"
    scheduled = "scheduled"
    """Waits durably for ``publish_at``; a cancel before then publishes nothing."""
    sending = "sending"
    """The platform was called and has not answered yet."""
    published = "published"
    failed = "failed"
    """The platform refused it, or it could not be reached for long: nothing was published."""
    unknown = "unknown"
    """The request left and no answer came: a person checks, then confirms or retries (never retried blindly)."""
    cancelled = "cancelled"


LIVE = frozenset({PublicationStatus.pending, PublicationStatus.scheduled, PublicationStatus.sending})
SETTLED = frozenset(
    {PublicationStatus.published, PublicationStatus.failed, PublicationStatus.unknown, PublicationStatus.cancelled}
)


# ---- API bodies


class PublishRequest(BaseModel):
    """``POST /v1/content/{id}/publish`` and ``POST /api/content-generation/publish/{id}``."""

    model_config = ConfigDict(extra="forbid")

    platform: PublisherIn | None = Field(
        None,
        description="WordPress, webhook, newsletter or recorded (default: the company's configured publisher)",
    )
    schedule: bool = Field(False, description="true: publish at `published_at` (a future time) instead of now")
    published_at: datetime | None = Field(None, description="with `schedule: true`: when to publish")


class EndpointsPublishRequest(PublishRequest):
    platform: PublisherIn  # required on /api, as the spec shows it


class ResolveAction(StrEnum):
    confirm = "confirm"
    """A person checked the platform: the item is out (give its ``url`` if it has one)."""
    retry = "retry"
    """It is not out: publish again (WordPress is asked first whether the post exists, so it is not doubled)."""


class ResolveRequest(BaseModel):
    """``POST /v1/content/{id}/publications/{publication_id}/resolve``: settle an unknown outcome."""

    model_config = ConfigDict(extra="forbid")

    action: ResolveAction
    url: HttpUrl | None = Field(None, description="with `confirm`: where the item can be read")


class CancelRequest(BaseModel):
    """``POST /v1/content/{id}/publish/cancel``: every scheduled publish of the item, or only one platform's."""

    model_config = ConfigDict(extra="forbid")

    platform: PublisherIn | None = None


class PublicationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: str
    content_id: str
    platform: PublisherLabel
    status: PublicationStatus
    publish_at: datetime | None
    published_at: datetime | None
    url: str | None
    external_id: str | None = Field(description="the platform's id for it (a WordPress post id)")
    error: str | None
    attempts: int
    progress: dict[str, Any] = Field(description="a newsletter's counts; `recorded` says why nothing was sent")
    run_id: str | None = Field(validation_alias="workflow_run_id")
    created_at: datetime
    updated_at: datetime


class ContentPublished(ContentSummary):
    """The spec's Publish Content answer (the item as it stands), with the publication that carries it out."""

    publication: PublicationPublic


class PublishCancelled(BaseModel):
    content: ContentSummary
    cancelled: list[PublicationPublic]


class PublishAccepted(BaseModel):
    """``POST /api/content-generation/publish/{id}``: answered at once; poll the content or the run."""

    message: str
    status: Literal["pending", "scheduled"]
    content_id: EndpointsId
    publication_id: EndpointsId
    run_id: EndpointsId


# ---- activity payloads


class PublishFailed(BaseModel):
    publication_id: str
    reason: str


class AutoPublishInput(BaseModel):
    """A generation that publishes what it wrote: the publication is created once per content and platform."""

    company_id: str
    content_id: str
    platform: Publisher
    generation_run_id: str


class PreparedPublication(BaseModel):
    publication_id: str
    run_id: str
    """The ``workflow_runs`` row of the publish (finished by ``PublishContentWorkflow``)."""
    status: PublicationStatus


class NewsletterOutcome(BaseModel):
    publication_id: str
    progress: NewsletterProgress | None = None
    """What the newsletter run returned; ``None`` when it failed (the counts it last wrote are read instead)."""
    error: str | None = None
