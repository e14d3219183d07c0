"""Everything a route may ask for: settings, a database session, the signed-in user, the Temporal client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from core.config import Settings
from db.models import User
from schemas.enums import Role
from services import auth
from services.errors import AuthenticationFailed, ServiceUnavailable
from services.users import require_role

# tokenUrl makes Swagger UI's "Authorize" button sign in through POST /token.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/token", auto_error=False)


def get_settings(request: Request) -> Settings:
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


async def get_current_user(
    session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User:
    if not token:
        raise AuthenticationFailed("Not authenticated")
    return await auth.user_from_access_token(session, settings, token)


CurrentUser = Annotated[User, Depends(get_current_user, scope="function")]


async def get_admin(user: CurrentUser) -> User:
    require_role(user, Role.admin)
    return user


AdminUser = Annotated[User, Depends(get_admin, scope="function")]


def get_temporal(request: Request) -> Client:
    client: Client | None = request.app.state.temporal
    if client is None:
        raise ServiceUnavailable("Temporal is not reachable; workflows cannot be started right now")
    return client


TemporalDep = Annotated[Client, Depends(get_temporal)]


def get_temporal_if_connected(request: Request) -> Client | None:
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
