from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from schemas.auth import PASSWORD_MIN_LENGTH
from schemas.common import FreeFormJson
from schemas.enums import Role
from schemas.ids import EndpointsId


class UserPublic(BaseModel):
    """``/v1/users/me``."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    name: str | None
    company_id: str
    role: Role
    created_at: datetime
    last_login: datetime | None
    settings: dict[str, Any]


class UserSelfUpdate(BaseModel):
    """``PATCH /v1/users/me``: ``settings`` is merged into the stored settings, not replaced."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    settings: FreeFormJson | None = None


class UserCreate(BaseModel):
    """``POST /api/users`` (admins only)."""

    username: str | None = Field(None, min_length=1, max_length=320)
    email: EmailStr
    password: str = Field(min_length=PASSWORD_MIN_LENGTH, max_length=256)
    full_name: str | None = Field(None, max_length=200)
    role: Role = Role.user


class UserUpdate(BaseModel):
    """``PUT /api/users/{id}`` (admins only)."""

    model_config = ConfigDict(extra="forbid")

    full_name: str | None = Field(None, max_length=200)
    email: EmailStr | None = None
    role: Role | None = None
    is_active: bool | None = None
    password: str | None = Field(None, min_length=PASSWORD_MIN_LENGTH, max_length=256)


class UserFilter(BaseModel):
    role: Role | None = None
    is_active: bool | None = None


class UserEndpointsPublic(BaseModel):
    """A user as the ``/api`` surface shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: EndpointsId
    username: str
    email: str
    full_name: str | None = Field(validation_alias="name")
    company_id: EndpointsId
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime
