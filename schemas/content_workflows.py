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
    company_id: str
    workflow_config_id: str | None = None
    """Set when a ``content_generation`` workflow config owns the schedule."""
    topic: str = ""
    """This run's topic, for the Temporal UI's summary of the generation."""


class NewsletterInput(BaseModel):
    """``NewsletterWorkflow``: send the content as an email to every subscribed contact of the company."""

    company_id: str
    content_id: str
    publication_id: str
    run_id: str
    resume: NewsletterResume | None = None
    """Set by the workflow itself when it continues as new; a caller leaves it out."""


class NewsletterProgress(BaseModel):
    """Counted from the deliveries, so it survives a crash and shows on the content and in the query."""

    total: int = 0
    sent: int = 0
    skipped: int = 0
    """Suppressed, unsubscribed or without an address."""
    failed: int = 0
    unknown: int = 0
    """The SMTP server took the message but did not confirm: never resent blindly."""


class NewsletterResume(BaseModel):
    """Where a newsletter stands between batches: enough for a continued-as-new run to pick up, and no more."""

    cutoff: datetime
    """The audience is the contacts that existed (and had not unsubscribed) at this moment."""
    after: str | None
    """The last contact id sent to, in audience order; ``None`` before the first batch."""
    progress: NewsletterProgress
    batches: int
    """Batches sent so far, over every run."""
