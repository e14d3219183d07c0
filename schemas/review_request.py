"""The contract of ``ReviewRequestWorkflow`` and ``ReferralExpiryWorkflow``: inputs, signal, query, activities.

Fair-review rules are built into the shape: there is no field for a customer's expected sentiment (every
customer gets the same request), and the referral offer has no field that depends on a review or rating.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from schemas.messaging import MessageSpec, SendWindow


class TimedMessage(MessageSpec):
    delay_hours: float = Field(ge=0, description="wait before this message (after the sale, or the previous one)")


class ReferralOfferSpec(BaseModel):
    message: TimedMessage
    offer: str
    referrer_offer: str | None = None
    expires_in_days: int | None = None
    max_uses: int | None = None


class ReviewRequestInput(BaseModel):
    company_id: str
    customer_id: str
    sale_id: str
    review_id: str
    """The ``reviews`` row (status ``requested``) the request is about."""
    config_id: str | None
    """``None`` when no review_referral config is active and the built-in defaults are used."""
    run_id: str
    platform: str
    request: TimedMessage
    reminders: list[TimedMessage] = Field(default_factory=list)
    referral: ReferralOfferSpec | None = None
    send_window: SendWindow | None = None
    personalise: bool = False


class ReviewEvent(StrEnum):
    review_recorded = "review_recorded"
    """The review was left: reminders stop, the referral offer still follows."""
    refunded = "refunded"
    cancelled = "cancelled"
    unsubscribed = "unsubscribed"
    erased = "erased"


STOPPING_EVENTS = frozenset({ReviewEvent.refunded, ReviewEvent.cancelled, ReviewEvent.unsubscribed, ReviewEvent.erased})


class ReviewEventSignal(BaseModel):
    event: ReviewEvent


class ReviewStage(StrEnum):
    requesting = "requesting"
    reminding = "reminding"
    offering_referral = "offering_referral"
    completed = "completed"
    stopped = "stopped"


class ReviewProgress(BaseModel):
    """What the ``progress`` query answers."""

    stage: ReviewStage
    sending: bool
    messages_total: int
    messages_sent: int
    review_recorded: bool
    next_step: int | None
    """The index of the next message (0 is the request), while one is due."""
    next_message: str | None
    """Its template key."""
    next_message_at: datetime | None
    referral_id: str | None
    stopped_by: ReviewEvent | None


# ---- activity payloads


class ReviewRequestSent(BaseModel):
    review_id: str
    delivery_id: str


class IssueReferralInput(BaseModel):
    idempotency_key: str
    """``{workflow_id}/{run_id}/referral``: a retried activity returns the referral it already issued."""
    company_id: str
    customer_id: str
    review_id: str
    run_id: str
    offer: str
    referrer_offer: str | None
    expires_in_days: int | None
    max_uses: int | None


class IssuedReferral(BaseModel):
    referral_id: str
    expires_at: datetime | None


class ReferralSent(BaseModel):
    referral_id: str
    delivery_id: str


class ReferralExpiryInput(BaseModel):
    company_id: str
    referral_id: str
    expires_at: datetime
