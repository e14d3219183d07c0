"""``GET /api/audit-log``: who changed users, roles, API keys and webhooks, and when."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.ids import EndpointsId


class AuditFilter(BaseModel):
    action: str | None = Field(None, max_length=60, description="e.g. user.updated, api_key.revoked")
    target_type: str | None = Field(None, max_length=40, description="e.g. user, api_key, webhook")
    target_id: EndpointsId | None = None
    actor_id: EndpointsId | None = Field(None, description="a user, or an API key for changes made through one")
    since: date | None = Field(None, description="first day, YYYY-MM-DD (UTC)")
    until: date | None = Field(None, description="last day, YYYY-MM-DD (UTC), included")


class AuditEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: EndpointsId
    actor_id: EndpointsId | None = Field(description="null for the command line")
    action: str
    target_type: str
    target_id: EndpointsId | None
    changes: dict[str, Any] = Field(description='what changed, as {"field": [before, after]}; never a secret')
    ip_address: str | None
    created_at: datetime
