"""Per-company API keys: what a key may do, and the bodies of ``/api/api-keys``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationInfo, field_validator

from schemas.ids import EndpointsId
from schemas.leads import EndpointsSource, LeadSource, SourceIn, Tags


class ApiKeyScope(StrEnum):
    lead_capture = "lead_capture"
    """Create leads only: server-to-server lead capture, and the public form named by the key's prefix."""
    full = "full"
    """Everything the creating user may do, except managing users, API keys and other admin-only actions."""


SCOPE_CODES = {ApiKeyScope.lead_capture: "lc", ApiKeyScope.full: "full"}
"""The scope as it appears in the key itself (``bas_lc_...``), so a leaked key shows what it can do."""

FORM_SETTINGS = ("thank_you_url", "lead_source", "tags")
"""What a lead-capture key keeps in its ``settings`` for the public form it names."""
DEFAULT_FORM_SOURCE = LeadSource.website_form


class ApiKeyCreate(BaseModel):
    """``POST /api/api-keys`` (admins only). The form settings apply to ``lead_capture`` keys only."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, description="what the key is for, e.g. 'Contact form'")
    scope: ApiKeyScope = ApiKeyScope.lead_capture
    thank_you_url: HttpUrl | None = Field(
        None, description="where the public form sends the visitor after a submission (303 redirect)"
    )
    lead_source: SourceIn | None = Field(None, description="the source of leads from the form; default website_form")
    tags: Tags | None = Field(None, description="tags every lead from the form gets (workflow triggers match them)")

    @field_validator(*FORM_SETTINGS)
    @classmethod
    def _only_for_forms(cls, value: Any, info: ValidationInfo) -> Any:
        # ``scope`` is declared first, so it is already validated here (absent from data if it was invalid).
        if value is not None and info.data.get("scope", ApiKeyScope.lead_capture) != ApiKeyScope.lead_capture:
            raise ValueError("a form setting; only lead_capture keys have a public form")
        return value


class ApiKeyPublic(BaseModel):
    """A key as lists show it: by its prefix, never the key itself (only a hash of it is stored)."""

    id: EndpointsId
    name: str
    prefix: str
    scope: ApiKeyScope
    form_url: str | None = Field(description="the public form's address (lead_capture keys); null otherwise")
    thank_you_url: str | None
    lead_source: EndpointsSource | None
    tags: list[str]
    created_by: EndpointsId
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    """The answer to a create: the only time the whole key is shown."""

    key: str = Field(description="send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`; store it now")
