"""``/api/api-keys``: the company's API keys and the public lead forms they name (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import AdminUser, SessionDep, SettingsDep
from api.pagination import EndpointsPage, items_page
from core.config import Settings
from db.models import ApiKey
from schemas.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeyScope
from schemas.common import ItemsPage
from schemas.ids import EndpointsId
from services import api_keys, lead_forms

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


def _fields(key: ApiKey, settings: Settings) -> dict[str, object]:
    form = key.settings if key.scope == ApiKeyScope.lead_capture else {}
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scope": key.scope,
        "form_url": lead_forms.form_url(settings, key.prefix) if key.scope == ApiKeyScope.lead_capture else None,
        "thank_you_url": form.get("thank_you_url"),
        "lead_source": form.get("lead_source"),
        "tags": form.get("tags") or [],
        "created_by": key.created_by,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


def _public(key: ApiKey, settings: Settings) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(_fields(key, settings))


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyCreate, admin: AdminUser, session: SessionDep, settings: SettingsDep
) -> ApiKeyCreated:
    """Create a key; the whole key is in this answer only (lead_capture keys also get a public form)."""
    created = await api_keys.create(session, admin, body)
    return ApiKeyCreated.model_validate({**_fields(created.key, settings), "key": created.secret})


@router.get("")
async def list_api_keys(
    admin: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    page: EndpointsPage,
    include_revoked: Annotated[bool, Query(description="also list revoked keys")] = False,
) -> ItemsPage[ApiKeyPublic]:
    """Your company's keys, newest first, by prefix (a key itself is never shown again)."""
    result = await api_keys.list_keys(session, admin, page, include_revoked=include_revoked)
    return items_page(result, lambda key: _public(key, settings))


@router.get("/{key_id}")
async def read_api_key(
    key_id: EndpointsId, admin: AdminUser, session: SessionDep, settings: SettingsDep
) -> ApiKeyPublic:
    """One key: its scope, form settings and when it was last used."""
    return _public(await api_keys.get(session, admin, key_id), settings)


@router.delete("/{key_id}")
async def revoke_api_key(
    key_id: EndpointsId, admin: AdminUser, session: SessionDep, settings: SettingsDep
) -> ApiKeyPublic:
    """Revoke the key: it stops working at once, its form answers 404 (revoking again changes nothing)."""
    return _public(await api_keys.revoke(session, admin, key_id), settings)
