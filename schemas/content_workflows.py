"""The contracts of the content workflows: generation, publishing and scheduled generation.

As everywhere, workflows carry ids: the brief and the text live on the ``content`` row, the outcome of each
publish on its ``publications`` row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel


class Publisher(StrEnum):
    wordpress = "wordpress"
    """WordPress REST API (``/wp-json/wp/v2/posts``) with an application password."""
    webhook = "webhook"
    """A signed JSON POST, for social posts through Postiz, Buffer, n8n or Zapier."""
    newsletter = "newsletter"
    """An email to every subscribed contact of the company, over the shared message path."""
    recorded = "recorded"
    """Nothing leaves: the publish is recorded (the default when no publisher is configured)."""


PUBLISHER_LABELS = {
    Publisher.wordpress: "WordPress",
    Publisher.webhook: "Webhook",
    Publisher.newsletter: "Newsletter",
    Publisher.recorded: "Recorded",
}


class GenerateContentInput(BaseModel):
    company_id: str
    content_id: str
    run_id: str
    publish_to: Publisher | None = None
    """Publish once written, unless the company or the schedule requires approval first."""


class GenerationResult(BaseModel):
    content_id: str
    status: str
    """draft, or approved when nothing asks for a person's approval."""


class GenerateStep(BaseModel):
    company_id: str
    content_id: str
    run_id: str


class GenerationFailed(BaseModel):
    content_id: str
    reason: str


class PublishContentInput(BaseModel):
    company_id: str
    content_id: str
    publication_id: str
    run_id: str
    platform: Publisher
    publish_at: datetime | None = None
    """Wait durably until then (a cancel before it means nothing is published)."""


class PublishStep(BaseModel):
    publication_id: str


class PublishOutcome(BaseModel):
    publication_id: str
    status: str
    """published | unknown | failed | cancelled"""
    url: str | None = None


class ScheduledGenerationInput(BaseModel):
    schedule_id: str


class ScheduledContent(BaseModel):
    """What a schedule's run produced: a new content row with the next topic, ready to generate."""

    content_id: str
    run_id: str
    publish_to: Publisher | None


class NewsletterInput(BaseModel):
    """``NewsletterWorkflow``: send the content as an email to every subscribed contact of the company."""

    company_id: str
    content_id: str
    publication_id: str
    run_id: str


class NewsletterProgress(BaseModel):
    """Counted from the deliveries, so it survives a crash and shows on the content and in the query."""

    total: int = 0
    sent: int = 0
    skipped: int = 0
    """Suppressed, unsubscribed or without an address."""
    failed: int = 0
    unknown: int = 0
    """The SMTP server took the message but did not confirm: never resent blindly."""
