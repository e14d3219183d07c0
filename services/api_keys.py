"""Per-company API keys: hashed at rest, shown once, narrowed to a scope, revocable."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import security
from db.base import utcnow
from db.models import ApiKey, User
from services.errors import AuthenticationFailed

log = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)


async def authenticate(session: AsyncSession, presented: str) -> tuple[User, ApiKey]:
    """The key's user and the key, or AuthenticationFailed with one message for every way it can be wrong."""
    prefix = security.api_key_prefix(presented)
    key = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix)) if prefix else None
    if key is None or key.revoked_at is not None or not security.api_key_matches(presented, key.secret_hash):
        raise AuthenticationFailed("Invalid or revoked API key")
    user = await session.get(User, key.created_by)
    if user is None or not user.is_active or user.company_id != key.company_id:
        raise AuthenticationFailed("Invalid or revoked API key")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now  # at most one write a minute per key, not one per call
    return user, key
