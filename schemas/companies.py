from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from schemas.common import TimeZoneName


class CompanyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    industry: str | None
    website: str | None
    logo_url: str | None
    postal_address: str | None
    timezone: str
    created_at: datetime
    subscription_tier: str
    subscription_status: str
    settings: dict[str, Any]
    integrations: dict[str, Any]


class CompanyUpdate(BaseModel):
    """``PATCH /v1/companies/current``: ``settings`` is merged, not replaced."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    industry: str | None = Field(None, max_length=120)
    website: HttpUrl | None = None
    logo_url: HttpUrl | None = None
    postal_address: str | None = Field(None, max_length=1000)
    timezone: TimeZoneName | None = None
    settings: dict[str, Any] | None = None
