from __future__ import annotations

from pydantic import BaseModel, EmailStr, Field

PASSWORD_MIN_LENGTH = 8


class RegisterRequest(BaseModel):
    email: EmailStr
    password: str = Field(min_length=PASSWORD_MIN_LENGTH, max_length=256)
    name: str = Field(min_length=1, max_length=200)
    company_name: str = Field(min_length=1, max_length=200)


class LoginRequest(BaseModel):
    email: EmailStr
    password: str = Field(min_length=1, max_length=256)


class TokenRequest(BaseModel):
    """``POST /token`` as the spec writes it: ``username`` is the account's email or username."""

    username: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class AuthSession(BaseModel):
    """``/v1/auth/register`` and ``/v1/auth/login``."""

    user_id: str
    company_id: str
    email: str
    name: str | None
    token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    expires_in: int


class RefreshedTokens(BaseModel):
    token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    expires_in: int


class BearerToken(BaseModel):
    """``POST /token``: the OAuth2 password-flow answer."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    refresh_token: str
    expires_in: int
