"""Sign-up, sign-in, refresh-token rotation and access-token checks."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import security
from core.config import Settings
from core.ids import new_id
from db.base import utcnow
from db.models import Company, RefreshToken, User
from schemas.auth import RegisterRequest
from schemas.enums import Role
from services.errors import AuthenticationFailed, Conflict

log = logging.getLogger(__name__)

_BAD_CREDENTIALS = "Incorrect email or password"


@dataclass(frozen=True)
class IssuedTokens:
    user: User
    access_token: str
    refresh_token: str
    expires_in: int


async def _issue(session: AsyncSession, settings: Settings, user: User, family_id: str | None = None) -> IssuedTokens:
    access = security.create_token(settings, user_id=user.id, company_id=user.company_id, kind="access")
    refresh = security.create_token(settings, user_id=user.id, company_id=user.company_id, kind="refresh")
    session.add(
        RefreshToken(id=refresh.jti, user_id=user.id, family_id=family_id or refresh.jti, expires_at=refresh.expires_at)
    )
    return IssuedTokens(
        user=user,
        access_token=security.encode_token(settings, access),
        refresh_token=security.encode_token(settings, refresh),
        expires_in=settings.access_token_minutes * 60,
    )


async def register(session: AsyncSession, settings: Settings, body: RegisterRequest) -> IssuedTokens:
    """Create a company and its first user, an admin."""
    email = body.email.lower()
    if await session.scalar(select(User.id).where(or_(User.email == email, User.username == email))):
        raise Conflict("An account with this email already exists")
    company = Company(id=new_id("cmp"), name=body.company_name)
    user = User(
        id=new_id("usr"),
        company_id=company.id,
        email=email,
        username=email,
        name=body.name,
        password_hash=security.hash_password(body.password),
        role=Role.admin,
        last_login=utcnow(),
    )
    session.add_all([company, user])
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent registration with the same email won the race
        raise Conflict("An account with this email already exists") from exc
    log.info("registered company %s with admin %s", company.id, user.id)
    return await _issue(session, settings, user)


async def login(session: AsyncSession, settings: Settings, login_name: str, password: str) -> IssuedTokens:
    """Sign in by email or username. Unknown account and wrong password cost the same and read the same."""
    name = login_name.strip().lower()
    user = await session.scalar(select(User).where(or_(User.email == name, User.username == name)))
    valid = security.verify_password(password, user.password_hash if user else None)
    if user is None or not valid:
        raise AuthenticationFailed(_BAD_CREDENTIALS)
    if not user.is_active:
        raise AuthenticationFailed("This account is disabled")
    user.last_login = utcnow()
    return await _issue(session, settings, user)


async def refresh(session: AsyncSession, settings: Settings, refresh_token: str) -> IssuedTokens:
    """Trade a refresh token for a new pair. Each refresh token works once.

    A second use means the token leaked (or a client raced itself): the whole family of tokens from
    that login is revoked, so the thief's copy and the owner's both stop working.
    """
    try:
        claims = security.decode_token(settings, refresh_token, expected="refresh")
    except security.InvalidToken as exc:
        raise AuthenticationFailed("Invalid or expired refresh token") from exc
    stored = await session.get(RefreshToken, claims.jti)
    if stored is None or stored.revoked_at is not None:
        raise AuthenticationFailed("Invalid or expired refresh token")
    now = utcnow()
    claimed = await session.execute(
        update(RefreshToken).where(RefreshToken.id == stored.id, RefreshToken.used_at.is_(None)).values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        log.warning("refresh token reuse for user %s; revoking family %s", stored.user_id, stored.family_id)
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == stored.family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await session.commit()  # the revocation must survive the error response
        raise AuthenticationFailed("Refresh token already used; sign in again")
    user = await session.get(User, stored.user_id)
    if user is None or not user.is_active:
        raise AuthenticationFailed("Invalid or expired refresh token")
    return await _issue(session, settings, user, family_id=stored.family_id)


async def user_from_access_token(session: AsyncSession, settings: Settings, token: str) -> User:
    try:
        claims = security.decode_token(settings, token, expected="access")
    except security.InvalidToken as exc:
        raise AuthenticationFailed("Invalid or expired token") from exc
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active or user.company_id != claims.company_id:
        raise AuthenticationFailed("Invalid or expired token")
    if user.tokens_valid_after and (claims.issued_at is None or claims.issued_at < user.tokens_valid_after):
        raise AuthenticationFailed("This session was signed out; sign in again")
    return user


async def sign_out(session: AsyncSession, settings: Settings, refresh_token: str) -> None:
    """End one session: the refresh token's whole family (this login) is revoked; a bad token is ignored."""
    try:
        claims = security.decode_token(settings, refresh_token, expected="refresh")
    except security.InvalidToken:
        return
    stored = await session.get(RefreshToken, claims.jti)
    if stored is not None:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == stored.family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


async def sign_out_everywhere(session: AsyncSession, user: User) -> None:
    """End every session of the user: refresh tokens revoked, access tokens issued until now refused."""
    now = utcnow()
    user.tokens_valid_after = now
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    log.info("user %s signed out everywhere", user.id)
