"""Privacy requests about one person, found by email address: erase everything (GDPR Art. 17) or export it (Art. 15/20).

Ids are shown in their canonical (stored) form, the form the Temporal workflow ids in the same document use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.customers import Money
from schemas.leads import LeadEmail

ERASED_REASON = "erased"
"""The suppression reason an erasure leaves: the address may never be messaged again."""
ERASED_CUSTOMER_NAME = "Erased customer"
ERASED_TAG = "erased"


class PersonErase(BaseModel):
    """``POST /api/privacy/erase``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: LeadEmail = Field(description="the person's address; matched case-insensitively")


class ErasedCounts(BaseModel):
    """How many rows of each kind were deleted."""

    leads: int = 0
    customers: int = 0
    """Customers deleted, or (when they had sales) made anonymous: see ``sales_kept``."""
    interactions: int = 0
    deliveries: int = 0
    referral_uses: int = 0
    """The person's uses of other customers' referral codes."""
    reviews: int = 0
    referrals: int = 0
    """Referral codes issued to the person (other people's uses of them go with them)."""
    events: int = 0
    workflow_actions: int = 0
    """Run log entries that named the person (a message's recipient and subject)."""


class ErasureResult(BaseModel):
    success: bool = True
    erased: ErasedCounts
    sales_kept: int = Field(description="sales kept as business records, now on an anonymous 'Erased customer'")
    suppressed: bool = Field(description="the address is on the company's suppression list (reason 'erased')")


class CompanyErasure(BaseModel):
    """One company's part of an erasure run from the command line (every company holding the address)."""

    company_id: str
    result: ErasureResult


# ---- export


class InteractionExport(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    direction: str
    channel: str
    status: str
    content: str | None
    metadata: dict[str, Any] = Field(validation_alias="meta")
    created_by: str | None
    created_at: datetime


class DeliveryExport(BaseModel):
    """A message sent (or meant) for the person, with its body."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    channel: str
    recipient: str
    subject: str | None
    body: str
    status: str
    provider: str
    error: str | None
    lead_id: str | None
    customer_id: str | None
    workflow_run_id: str | None
    created_at: datetime
    sent_at: datetime | None


class ReferralUseExport(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    referral_id: str
    lead_id: str | None
    converted: bool
    used_at: datetime
    converted_at: datetime | None


class LeadExport(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    email: str | None
    phone: str | None
    source: str
    status: str
    notes: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    assigned_to: str | None
    timezone: str | None
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime | None
    converted_at: datetime | None
    unsubscribed_at: datetime | None
    interactions: list[InteractionExport]
    deliveries: list[DeliveryExport]
    referral_uses: list[ReferralUseExport] = Field(description="the lead's uses of other customers' referral codes")


class SaleExport(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    service_id: str | None
    service_name: str | None
    amount: Money
    status: str
    payment_method: str | None
    notes: str | None
    referral_id: str | None
    created_at: datetime
    updated_at: datetime


class ReviewExport(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    sale_id: str | None
    platform: str | None
    rating: int | None
    content: str | None
    status: str
    review_url: str | None
    request_sent_at: datetime | None
    submitted_at: datetime | None
    verified_at: datetime | None
    created_at: datetime


class ReferralExport(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    code: str
    offer: str
    referrer_offer: str | None
    status: str
    max_uses: int | None
    times_used: int
    sent_at: datetime | None
    expires_at: datetime | None
    created_at: datetime
    uses: list[ReferralUseExport]


class CustomerExport(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    lead_id: str | None
    name: str
    email: str | None
    phone: str | None
    timezone: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    lifetime_value: Money
    unsubscribed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sales: list[SaleExport]
    reviews: list[ReviewExport]
    referrals: list[ReferralExport] = Field(description="referral codes issued to the customer, with their uses")
    deliveries: list[DeliveryExport]


class WorkflowRunExport(BaseModel):
    """An automation run about the person: ids, type, status and times (runs carry no personal data)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    temporal_workflow_id: str
    workflow_type: str
    workflow_config_id: str | None
    status: str
    trigger_type: str
    trigger_id: str | None
    started_at: datetime
    completed_at: datetime | None


class SuppressionExport(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: str
    address: str
    reason: str
    created_at: datetime


class EventExport(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    entity_id: str | None
    payload: dict[str, Any]
    created_at: datetime


class PersonExport(BaseModel):
    """``GET /api/privacy/export``: everything one company holds about the person with this address."""

    email: str
    company_id: str
    exported_at: datetime
    leads: list[LeadExport]
    customers: list[CustomerExport]
    other_deliveries: list[DeliveryExport] = Field(
        description="messages to the address that no longer belong to one of the leads or customers above"
    )
    workflow_runs: list[WorkflowRunExport] = Field(
        description="lead follow-ups of the leads, review requests of the sales"
    )
    suppressions: list[SuppressionExport] = Field(description="do-not-contact entries for the address or the phones")
    events: list[EventExport] = Field(description="domain events about the records above")
