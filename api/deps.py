"""Everything a route may ask for: settings, a database session, the signed-in user, the Temporal client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from core import security
from core.config import Settings
from core.request_context import CallerContext, set_caller
from db.models import User
from schemas.api_keys import ApiKeyScope
from schemas.enums import Role
from services import api_keys, auth
from services.errors import AuthenticationFailed, PermissionDenied, ServiceUnavailable
from services.users import require_role

# tokenUrl makes Swagger UI's "Authorize" button sign in through POST /token.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/token", auto_error=False)


# The cheap dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker
# thread, a thread hop per request for reading an attribute.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back if it raises."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": commit before the response is sent, so a client never sees a 201 for a
# write that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


@dataclass(frozen=True)
class Principal:
    user: User
    key_scope: ApiKeyScope | None
    """None for a user's own token."""
    key_id: str | None


async def _authenticate(request: Request, session: AsyncSession, settings: Settings, token: str | None) -> Principal:
    """A user's access token, or an API key (``Authorization: Bearer bas_...`` or ``X-API-Key``)."""
    presented = token or request.headers.get("x-api-key")
    ip_address = request.client.host if request.client else None
    if not presented:
        raise AuthenticationFailed("Not authenticated")
    if presented.startswith(security.API_KEY_MARK):
        user, key = await api_keys.authenticate(session, presented)
        set_caller(CallerContext(ip_address=ip_address, api_key_id=key.id, api_key_scope=key.scope))
        return Principal(user, ApiKeyScope(key.scope), key.id)
    user = await auth.user_from_access_token(session, settings, presented)
    set_caller(CallerContext(ip_address=ip_address))
    return Principal(user, None, None)


async def get_lead_writer(
    request: Request, session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User:
    """Anyone who may create leads: a signed-in user or an API key of any scope."""
    return (await _authenticate(request, session, settings, token)).user


LeadWriter = Annotated[User, Depends(get_lead_writer, scope="function")]


async def get_current_user(
    request: Request, session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User:
    principal = await _authenticate(request, session, settings, token)
    if principal.key_scope == ApiKeyScope.lead_capture:
        raise PermissionDenied("This API key may only create leads")
    return principal.user


CurrentUser = Annotated[User, Depends(get_current_user, scope="function")]


async def get_signed_in_user(
    request: Request, session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User:
    """A person with their own token: what managing users and keys needs (no key may mint or widen keys)."""
    principal = await _authenticate(request, session, settings, token)
    if principal.key_scope is not None:
        raise PermissionDenied("This action needs a signed-in user, not an API key")
    return principal.user


async def get_admin(user: Annotated[User, Depends(get_signed_in_user, scope="function")]) -> User:
    require_role(user, Role.admin)
    return user


AdminUser = Annotated[User, Depends(get_admin, scope="function")]


async def get_manager(user: CurrentUser) -> User:
    """Admins and managers, signed in or through a full-scope key (integrations register webhooks)."""
    require_role(user, Role.admin, Role.manager)
    return user


ManagerUser = Annotated[User, Depends(get_manager, scope="function")]


async def get_temporal(request: Request) -> Client:
    client: Client | None = request.app.state.temporal
    if client is None:
        raise ServiceUnavailable("Temporal is not reachable; workflows cannot be started right now")
    return client


TemporalDep = Annotated[Client, Depends(get_temporal)]


async def get_temporal_if_connected(request: Request) -> Client | None:
    # Unlike TemporalDep this never answers 503: an opt-out or a reply must be recorded even while Temporal
    # is away (the change stands; telling running sequences is best effort and logged).
    client: Client | None = request.app.state.temporal
    return client


OptionalTemporal = Annotated[Client | None, Depends(get_temporal_if_connected)]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Makes the create safe to retry: the same key and body return the first response again",
    ),
]
