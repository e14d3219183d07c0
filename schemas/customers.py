"""Customers and their sales (``/v1``). A customer's lifetime value is the sum of its completed sales."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AliasPath, BaseModel, ConfigDict, Field, PlainSerializer

from schemas.common import TimeZoneName
from schemas.ids import RecordId
from schemas.leads import CustomFields, Notes, OptionalEmail, OptionalPhone, Tags
from schemas.reviews import ReferralSummary, ReviewSummary

Money = Annotated[
    Decimal,
    PlainSerializer(float, return_type=float, when_used="json"),
]
"""Stored exactly (``NUMERIC(12, 2)``), shown as the JSON number the spec uses (``1500.00`` -> ``1500.0``)."""
Amount = Annotated[Decimal, Field(ge=0, le=Decimal("9999999999.99"), max_digits=12, decimal_places=2)]


class SaleStatus(StrEnum):
    pending = "pending"
    completed = "completed"
    refunded = "refunded"
    cancelled = "cancelled"


SALE_TRANSITIONS: dict[SaleStatus, frozenset[SaleStatus]] = {
    SaleStatus.pending: frozenset({SaleStatus.completed, SaleStatus.cancelled}),
    SaleStatus.completed: frozenset({SaleStatus.refunded}),
    SaleStatus.refunded: frozenset(),
    SaleStatus.cancelled: frozenset(),
}
"""Where a sale may go from each status; refunded and cancelled are final."""


# ---- customers


class CustomerCreate(BaseModel):
    """``POST /v1/customers``. With ``lead_id`` the lead becomes ``converted`` and its follow-ups stop."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    email: OptionalEmail = None
    phone: OptionalPhone = None
    lead_id: RecordId | None = None
    tags: Tags = Field(default_factory=list)
    custom_fields: CustomFields = Field(default_factory=dict)
    timezone: TimeZoneName | None = None


class CustomerUpdate(BaseModel):
    """``PATCH /v1/customers/{id}``: ``tags`` are added to the stored ones, ``custom_fields`` merged (null
    removes a key); other fields sent replace what is stored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    email: OptionalEmail = None
    phone: OptionalPhone = None
    tags: Tags | None = None
    custom_fields: CustomFields | None = None
    timezone: TimeZoneName | None = None


class CustomerPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    email: str | None
    phone: str | None
    lead_id: str | None
    created_at: datetime
    updated_at: datetime
    lifetime_value: Money = Field(description="the sum of the customer's completed sales")
    tags: list[str]
    custom_fields: dict[str, Any]
    timezone: str | None
    unsubscribed_at: datetime | None


class SaleSummary(BaseModel):
    """A sale inside ``GET /v1/customers/{id}``."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    service_id: str | None
    service_name: str | None
    amount: Money
    status: SaleStatus
    created_at: datetime


class CustomerDetailPublic(CustomerPublic):
    """``GET /v1/customers/{id}``: the customer with its sales, reviews and referrals, newest first."""

    sales: list[SaleSummary]
    reviews: list[ReviewSummary]
    referrals: list[ReferralSummary]


# ---- sales


class SaleCreate(BaseModel):
    """``POST /v1/sales``. A completed sale starts the review request; a pending one waits until completed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: RecordId
    service_id: str | None = Field(None, max_length=64)
    service_name: str | None = Field(None, max_length=200)
    amount: Amount
    status: SaleStatus = SaleStatus.completed
    payment_method: str | None = Field(None, max_length=40)
    notes: Notes | None = None
    referral_code: str | None = Field(
        None, max_length=40, description="a referral code the buyer brought: its use is recorded as converted"
    )


class SaleUpdate(BaseModel):
    """``PATCH /v1/sales/{id}``: pending -> completed or cancelled, completed -> refunded."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: SaleStatus | None = None
    service_name: str | None = Field(None, max_length=200)
    payment_method: str | None = Field(None, max_length=40)
    notes: Notes | None = None


class SaleFilter(BaseModel):
    customer_id: str | None = None
    status: SaleStatus | None = None


class SalePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    customer_name: str = Field(validation_alias=AliasPath("customer", "name"))
    service_id: str | None
    service_name: str | None
    amount: Money
    status: SaleStatus
    created_at: datetime
    updated_at: datetime
    payment_method: str | None
    notes: str | None
    referral_id: str | None
