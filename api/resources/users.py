from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep
from schemas.users import UserPublic, UserSelfUpdate
from services import users

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me")
async def read_me(user: CurrentUser) -> UserPublic:
    """The signed-in user."""
    return UserPublic.model_validate(user)


@router.patch("/me")
async def update_me(body: UserSelfUpdate, user: CurrentUser, session: SessionDep) -> UserPublic:
    """Change your name or settings; settings merge into what is stored (a null value removes a key)."""
    return UserPublic.model_validate(await users.update_self(session, user, body))
