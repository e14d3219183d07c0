"""The one message path every automation uses: plan when, compose, deliver, and record the run's end.

A message goes to a *contact*: a lead or a customer, named by its canonical id (``lead_...`` or
``cust_...``; the prefix says which table holds it). Workflows carry those ids and the message's template,
never personal data: activities load the contact's current name and address when they write and send.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.leads import Channel


class ContactKind(StrEnum):
    lead = "lead"
    customer = "customer"


_KIND_BY_PREFIX = {"lead": ContactKind.lead, "cust": ContactKind.customer}


def contact_kind(contact_id: str) -> ContactKind:
    """Which table a contact id names; ids are canonical and prefixed (``core.ids``)."""
    kind = _KIND_BY_PREFIX.get(contact_id.partition("_")[0])
    if kind is None:
        raise ValueError(f"{contact_id!r} is neither a lead nor a customer id")
    return kind


class SendWindow(BaseModel):
    """When a message may go out, in the recipient's time zone (the contact's, else the company's).

    SMS additionally never goes out between 21:00 and 08:00 recipient time, whatever this says.
    """

    start: str = Field("09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="opening time, HH:MM")
    end: str = Field("17:00", pattern=r"^([01]\d|2[0-4]):[0-5]\d$", description="closing time, HH:MM")
    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default=[0, 1, 2, 3, 4], min_length=1, description="ISO weekdays, Monday=0 ... Sunday=6"
    )

    @model_validator(mode="after")
    def _opens_at_some_time(self) -> SendWindow:
        if self.start == self.end:
            raise ValueError(f"the window opens and closes at the same time ({self.start})")
        return self

    def allows_sms(self) -> bool:
        """Whether any minute of the window falls in the SMS hours (08:00-21:00); a window may cross midnight."""
        start, end = _minutes(self.start), _minutes(self.end)
        spans = [(start, end)] if start < end else [(start, 24 * 60), (0, end)]
        return any(low < SMS_CLOSES_MINUTE and high > SMS_OPENS_MINUTE for low, high in spans)


SMS_OPENS_MINUTE = 8 * 60
SMS_CLOSES_MINUTE = 21 * 60


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class MessageSpec(BaseModel):
    """One message as configured when the run started: which template, on which channel."""

    template_key: str
    template: str
    channel: Channel
    subject: str | None = None


class MessageContext(BaseModel):
    """Records, beyond the contact and the company, whose fields the template may use (ids only)."""

    sale_id: str | None = None
    """Adds ``service_name`` and ``amount``."""
    review_platform: str | None = None
    """Adds ``platform`` and ``review_link`` (from the company's ``review_links`` setting)."""
    referral_id: str | None = None
    """Adds ``referral_code``, ``referral_offer``, ``referrer_offer`` and ``referral_expires_on``."""
    content_id: str | None = None
    """Adds ``content_title`` and ``content_body`` (a newsletter: the content item's own text, as written)."""


# ---- activity payloads


class PlanSendInput(BaseModel):
    company_id: str
    contact_id: str
    channel: Channel
    not_before: datetime
    send_window: SendWindow | None


class StepInput(BaseModel):
    """One message of one run; ``idempotency_key`` is ``{workflow_id}/{run_id}/{step}``."""

    idempotency_key: str
    company_id: str
    contact_id: str
    config_id: str | None
    run_id: str
    step: int
    step_spec: MessageSpec
    personalise: bool = False
    context: MessageContext = Field(default_factory=MessageContext)


class ComposedMessage(BaseModel):
    delivery_id: str
    """The ``message_deliveries`` row holding recipient, subject and body (the history holds only this id)."""
    skipped_reason: str | None = None
    """Set when nothing can be sent (no address, contact gone, no review link...)."""


class DeliveryOutcome(BaseModel):
    delivery_id: str
    status: str
    """sent | recorded | suppressed | skipped | failed | unknown"""


DELIVERED = frozenset({"sent", "recorded"})
"""The delivery outcomes that count as a message the contact got."""


class FinishRunInput(BaseModel):
    run_id: str
    status: str
    """completed | stopped | failed"""
    steps_sent: int
    stopped_by: str | None = None
    results: dict[str, Any] = Field(default_factory=dict)
    """Figures of the automation's own to keep on the run (a review's id, the referral issued...)."""
    error: str | None = None
    """Why a failed run failed, in words for the run's page."""


class ResendDeliveryInput(BaseModel):
    """A person asked to settle a delivery left ``unknown`` (``POST /v1/deliveries/{id}/resend``)."""

    delivery_id: str
    requested_by: str


# ---- the deliveries API (``/v1/deliveries``)


class DeliveryStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    recorded = "recorded"
    suppressed = "suppressed"
    skipped = "skipped"
    failed = "failed"
    unknown = "unknown"


class DeliveryPublic(BaseModel):
    """One outbound message as ``message_deliveries`` holds it (``unknown``: no attempt could settle whether the
    provider took it; ``error`` says why)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    channel: str
    recipient: str
    subject: str | None
    status: str
    error: str | None
    provider: str
    provider_message_id: str | None = Field(description="the email's Message-ID, or the SMS provider's sid")
    lead_id: str | None
    customer_id: str | None
    workflow_run_id: str | None
    created_at: datetime
    sent_at: datetime | None


class DeliveryResendAccepted(BaseModel):
    """``POST /v1/deliveries/{id}/resend``: the resend runs in the background; read the delivery to see it settle."""

    delivery_id: str
    status: str = Field(description="the delivery's status when the resend was accepted (unknown)")
    workflow_id: str
    temporal_ui_url: str
