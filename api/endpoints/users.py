from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import AdminUser, CurrentUser, SessionDep
from api.pagination import EndpointsPage, items_page
from schemas.common import ItemsPage, Success
from schemas.enums import Role
from schemas.ids import EndpointsId
from schemas.users import UserCreate, UserEndpointsPublic, UserFilter, UserUpdate
from services import users

router = APIRouter(prefix="/users", tags=["users"])


def _public(user: object) -> UserEndpointsPublic:
    return UserEndpointsPublic.model_validate(user)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, admin: AdminUser, session: SessionDep) -> UserEndpointsPublic:
    """Add a user to your company (admins only)."""
    return _public(await users.create(session, admin, body))


@router.get("")
async def list_users(
    admin: AdminUser,
    session: SessionDep,
    page: EndpointsPage,
    role: Annotated[Role | None, Query(description="admin, manager or user")] = None,
    is_active: Annotated[bool | None, Query()] = None,
) -> ItemsPage[UserEndpointsPublic]:
    """Your company's users (admins only)."""
    result = await users.list_users(session, admin, UserFilter(role=role, is_active=is_active), page)
    return items_page(result, _public)


@router.get("/me")
async def read_me(user: CurrentUser) -> UserEndpointsPublic:
    """The signed-in user."""
    return _public(user)


@router.get("/{user_id}")
async def read_user(user_id: EndpointsId, admin: AdminUser, session: SessionDep) -> UserEndpointsPublic:
    """One of your company's users (admins only)."""
    return _public(await users.get(session, admin, user_id))


@router.put("/{user_id}")
async def update_user(
    user_id: EndpointsId, body: UserUpdate, admin: AdminUser, session: SessionDep
) -> UserEndpointsPublic:
    """Change a user's name, email, role, password or active flag (admins only)."""
    return _public(await users.update(session, admin, user_id, body))


@router.delete("/{user_id}")
async def delete_user(user_id: EndpointsId, admin: AdminUser, session: SessionDep) -> Success:
    """Remove a user (admins only; not yourself)."""
    await users.delete(session, admin, user_id)
    return Success(message="User deleted successfully")
