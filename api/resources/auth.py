from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import SessionDep, SettingsDep
from schemas.auth import AuthSession, LoginRequest, RefreshedTokens, RefreshRequest, RegisterRequest
from services import auth

router = APIRouter(prefix="/auth", tags=["auth"])


def _session(issued: auth.IssuedTokens) -> AuthSession:
    return AuthSession(
        user_id=issued.user.id,
        company_id=issued.user.company_id,
        email=issued.user.email,
        name=issued.user.name,
        token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
    )


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(body: RegisterRequest, session: SessionDep, settings: SettingsDep) -> AuthSession:
    """Create a company and its first user (an admin), and sign that user in."""
    return _session(await auth.register(session, settings, body))


@router.post("/login")
async def login(body: LoginRequest, session: SessionDep, settings: SettingsDep) -> AuthSession:
    """Sign in with email and password."""
    return _session(await auth.login(session, settings, body.email, body.password))


@router.post("/refresh")
async def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> RefreshedTokens:
    """Trade a refresh token for a new access token and a new refresh token; each refresh token works once."""
    issued = await auth.refresh(session, settings, body.refresh_token)
    return RefreshedTokens(token=issued.access_token, refresh_token=issued.refresh_token, expires_in=issued.expires_in)
