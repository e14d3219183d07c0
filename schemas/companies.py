from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from schemas.common import FreeFormJson, TimeZoneName

SECRET_MASK = "********"  # noqa: S105 (a mask, not a secret)
"""What the API shows instead of a stored secret; sent back unchanged, it keeps the stored value."""
_SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey")

DEFAULT_SEND_WINDOW = "send_window"
"""Company setting ``{"send_window": {"start": "09:00", "end": "17:00", "days": [0, 1, 2, 3, 4]}}``: the window
for automations that set none of their own."""


def _is_secret(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_WORDS)


def mask_secrets(value: Any) -> Any:
    """The same structure with every secret-looking value (``app_password``, ``secret``...) replaced by the mask."""
    if isinstance(value, dict):
        return {
            key: SECRET_MASK if _is_secret(str(key)) and item not in (None, "") else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    return value


def without_masks(value: Any) -> Any:
    """A patch with the masks it echoes back left out, so they never overwrite the stored secrets."""
    if isinstance(value, dict):
        return {key: without_masks(item) for key, item in value.items() if item != SECRET_MASK}
    return value


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
    integrations: Annotated[dict[str, Any], AfterValidator(mask_secrets)]
    """Secrets (passwords, signing secrets, tokens) never come back out: they show as ``********``."""


# ---- publishing integrations: ``Company.integrations``


class WordPressIntegration(BaseModel):
    """A WordPress site's REST API, signed in with an application password (Users > Profile > Application
    Passwords): ``POST {url}/wp-json/wp/v2/posts``."""

    url: HttpUrl
    username: Annotated[str, Field(min_length=1, max_length=200)]
    app_password: Annotated[str, Field(min_length=1, max_length=200)]


class WebhookIntegration(BaseModel):
    """A signed JSON POST of each published item (Postiz, Buffer, n8n, Zapier...)."""

    url: HttpUrl
    secret: Annotated[str, Field(min_length=16, max_length=500)]
    """Signs each POST: ``X-BAS-Signature: sha256=HMAC-SHA256(secret, timestamp + "." + body)``."""


INTEGRATIONS: dict[str, type[BaseModel]] = {"wordpress": WordPressIntegration, "webhook": WebhookIntegration}


def integration(integrations: dict[str, Any] | None, name: str) -> Any:
    """The stored ``name`` integration, validated; ``None`` when it is missing or incomplete."""
    stored = (integrations or {}).get(name)
    if not isinstance(stored, dict):
        return None
    try:
        return INTEGRATIONS[name].model_validate(stored)
    except ValidationError:
        return None


def wordpress_of(integrations: dict[str, Any] | None) -> WordPressIntegration | None:
    found: WordPressIntegration | None = integration(integrations, "wordpress")
    return found


def webhook_of(integrations: dict[str, Any] | None) -> WebhookIntegration | None:
    found: WebhookIntegration | None = integration(integrations, "webhook")
    return found


class WordPressIntegrationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = None
    username: str | None = Field(None, max_length=200)
    app_password: str | None = Field(None, max_length=200)


class WebhookIntegrationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = None
    secret: str | None = Field(None, max_length=500)


class IntegrationsPatch(BaseModel):
    """Merged into what is stored, like ``settings``; ``null`` removes an integration."""

    model_config = ConfigDict(extra="forbid")

    wordpress: WordPressIntegrationPatch | None = None
    webhook: WebhookIntegrationPatch | None = None


class CompanyUpdate(BaseModel):
    """``PATCH /v1/companies/current``: ``settings`` and ``integrations`` are merged, not replaced."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    industry: str | None = Field(None, max_length=120)
    website: HttpUrl | None = None
    logo_url: HttpUrl | None = None
    postal_address: str | None = Field(None, max_length=1000)
    timezone: TimeZoneName | None = None
    settings: FreeFormJson | None = None
    integrations: IntegrationsPatch | None = Field(
        None,
        description=(
            "Publishing platforms (admins only): `wordpress` {url, username, app_password}, `webhook` {url, secret}. "
            "Secrets show as `********` and sending that back keeps them."
        ),
    )
