"""Inputs and results of ``DeliverWebhookWorkflow`` and its activities.

The retry numbers travel in the workflow input because workflow code cannot read settings; they are the
settings' values at the moment the delivery was started.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class DeliveryStatus(StrEnum):
    pending = "pending"
    """Not delivered yet: waiting for its first attempt or for the next retry."""
    delivered = "delivered"
    """The receiver answered 2xx."""
    failed = "failed"
    """Every attempt within the retry window failed."""
    gone = "gone"
    """The receiver answered 410 Gone; the webhook was disabled at once."""
    refused = "refused"
    """The URL resolved to an address deliveries may not reach; nothing was sent."""
    cancelled = "cancelled"
    """The webhook was deleted or disabled before the event could be delivered."""


SETTLED = frozenset(
    {
        DeliveryStatus.delivered,
        DeliveryStatus.failed,
        DeliveryStatus.gone,
        DeliveryStatus.refused,
        DeliveryStatus.cancelled,
    }
)
"""A delivery in one of these states is finished: a retried activity leaves it as it is."""


class AttemptRefusal(StrEnum):
    """Error types of the attempt activity that no retry can fix; each ends the delivery with its status."""

    gone = "WebhookGone"
    unsafe_target = "UnsafeTarget"
    inactive = "WebhookInactive"

    @property
    def outcome(self) -> DeliveryStatus:
        return _REFUSAL_OUTCOME[self]


_REFUSAL_OUTCOME = {
    AttemptRefusal.gone: DeliveryStatus.gone,
    AttemptRefusal.unsafe_target: DeliveryStatus.refused,
    AttemptRefusal.inactive: DeliveryStatus.cancelled,
}


class DeliverWebhookInput(BaseModel):
    delivery_id: str
    company_id: str
    webhook_id: str
    first_retry_seconds: float = Field(gt=0)
    retry_hours: float = Field(gt=0)
    timeout_seconds: float = Field(gt=0)
    disable_after_failures: int = Field(ge=1)


class AttemptInput(BaseModel):
    delivery_id: str


class AttemptResult(BaseModel):
    delivery_id: str
    status: DeliveryStatus
    attempts: int
    response_status: int | None = None


class GiveUpInput(BaseModel):
    delivery_id: str
    outcome: DeliveryStatus
    reason: str
    disable_after_failures: int = Field(ge=1)


class DeliveryResult(BaseModel):
    """What ``DeliverWebhookWorkflow`` returns (and the Temporal UI shows as its result)."""

    status: DeliveryStatus
    attempts: int
    response_status: int | None = None
