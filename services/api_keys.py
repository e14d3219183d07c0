"""Per-company API keys: hashed at rest, shown once, narrowed to a scope, revocable."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import security
from core.ids import new_id
from db.base import utcnow
from db.models import ApiKey, User
from schemas.api_keys import DEFAULT_FORM_SOURCE, SCOPE_CODES, ApiKeyCreate, ApiKeyScope
from schemas.common import Page, PageRequest
from schemas.enums import Role
from services import audit
from services.errors import AuthenticationFailed
from services.paging import paginate
from services.tenancy import owned
from services.users import require_role

log = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)
SORTABLE = {"created_at": ApiKey.created_at, "name": ApiKey.name, "last_used_at": ApiKey.last_used_at}


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str
    """The whole key: returned to the caller once, never stored or logged."""


def touch(key: ApiKey) -> None:
    """Note that the key was used, at most one write a minute per key rather than one per call."""
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now


async def _acting_user(session: AsyncSession, key: ApiKey) -> User | None:
    """The user a key acts as; a deactivated (or moved) user's keys stop working with them."""
    user = await session.get(User, key.created_by)
    return user if user is not None and user.is_active and user.company_id == key.company_id else None


async def authenticate(session: AsyncSession, presented: str) -> tuple[User, ApiKey]:
    """The key's user and the key, or AuthenticationFailed with one message for every way it can be wrong."""
    prefix = security.api_key_prefix(presented)
    key = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix)) if prefix else None
    if key is None or key.revoked_at is not None or not security.api_key_matches(presented, key.secret_hash):
        raise AuthenticationFailed("Invalid or revoked API key")
    user = await _acting_user(session, key)
    if user is None:
        raise AuthenticationFailed("Invalid or revoked API key")
    touch(key)
    return user, key


async def create(session: AsyncSession, actor: User, body: ApiKeyCreate) -> CreatedKey:
    require_role(actor, Role.admin)
    prefix, secret = security.new_api_key(SCOPE_CODES[body.scope])
    settings: dict[str, object] = {}
    if body.scope == ApiKeyScope.lead_capture:
        settings = {
            "thank_you_url": str(body.thank_you_url) if body.thank_you_url else None,
            "lead_source": (body.lead_source or DEFAULT_FORM_SOURCE).value,
            "tags": body.tags or [],
        }
    key = ApiKey(
        id=new_id("key"),
        company_id=actor.company_id,
        created_by=actor.id,
        name=body.name,
        prefix=prefix,
        secret_hash=security.api_key_digest(secret),
        scope=body.scope.value,
        settings=settings,
    )
    session.add(key)
    await session.flush()
    audit.record(
        session,
        actor.company_id,
        actor,
        "api_key.created",
        "api_key",
        key.id,
        audit.changed({}, {"name": key.name, "scope": key.scope, "prefix": key.prefix}),
    )
    log.info("user %s created API key %s (%s, %s) in %s", actor.id, key.id, key.prefix, key.scope, actor.company_id)
    return CreatedKey(key, secret)


async def get(session: AsyncSession, actor: User, key_id: str) -> ApiKey:
    require_role(actor, Role.admin)
    return await owned(session, actor, ApiKey, key_id, "api_key")


async def list_keys(session: AsyncSession, actor: User, page: PageRequest, *, include_revoked: bool) -> Page[ApiKey]:
    require_role(actor, Role.admin)
    statement = select(ApiKey).where(ApiKey.company_id == actor.company_id)
    if not include_revoked:
        statement = statement.where(ApiKey.revoked_at.is_(None))
    return await paginate(session, statement, page, sortable=SORTABLE, default_sort="created_at", tie_breaker=ApiKey.id)


async def revoke(session: AsyncSession, actor: User, key_id: str) -> ApiKey:
    """Stop the key working, at once and for good; revoking a revoked key changes nothing."""
    key = await get(session, actor, key_id)
    if key.revoked_at is not None:
        return key
    key.revoked_at = utcnow()
    await session.flush()
    audit.record(session, actor.company_id, actor, "api_key.revoked", "api_key", key.id, {"revoked": [False, True]})
    log.info("user %s revoked API key %s (%s) in %s", actor.id, key.id, key.prefix, actor.company_id)
    return key


async def form_key(session: AsyncSession, prefix: str) -> tuple[User, ApiKey] | None:
    """The live lead-capture key whose prefix names a public form, with the user leads are created as."""
    key = await session.scalar(
        select(ApiKey).where(
            ApiKey.prefix == prefix, ApiKey.scope == ApiKeyScope.lead_capture.value, ApiKey.revoked_at.is_(None)
        )
    )
    user = await _acting_user(session, key) if key is not None else None
    return (user, key) if user is not None and key is not None else None
