"""The newsletter's activity payloads. A batch names where it starts in the audience, never who is in it:
the activity reads that page of contact ids from the database, so no address or name enters a history."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from schemas.content_workflows import NewsletterProgress


class NewsletterAudience(BaseModel):
    """The audience as snapshotted when the newsletter started."""

    cutoff: datetime
    total: int
    """Distinct addresses among the company's subscribed contacts at ``cutoff``."""


class NewsletterBatch(BaseModel):
    company_id: str
    content_id: str
    publication_id: str
    run_id: str
    cutoff: datetime
    after: str | None
    """Send to the contacts after this id in audience order (``None``: from the first)."""
    size: int
    before: NewsletterProgress
    """The counts of the batches before this one; the batch adds its own and writes the sum."""


class NewsletterBatchResult(BaseModel):
    recipients: int
    last_contact_id: str | None
    """Where the next batch starts; ``None`` when this page was empty."""
    more: bool
    """Whether the audience goes on after this page."""
    progress: NewsletterProgress
    """Every batch so far, this one included."""
