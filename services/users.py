"""Users of a company: self-service profile and admin management."""

from __future__ import annotations

import logging

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import security
from core.ids import new_id
from db.models import User
from schemas.common import Page, PageRequest
from schemas.enums import Role
from schemas.users import UserCreate, UserFilter, UserSelfUpdate, UserUpdate
from services import audit, auth
from services.errors import Conflict, InvalidField, NotFound, PermissionDenied
from services.merge import merge_bounded
from services.paging import paginate

log = logging.getLogger(__name__)


def require_role(actor: User, *roles: Role) -> None:
    if actor.role not in roles:
        raise PermissionDenied()


async def get(session: AsyncSession, actor: User, user_id: str) -> User:
    user = await session.get(User, user_id)
    # Another company's user is reported exactly like a missing one: no existence leak.
    if user is None or user.company_id != actor.company_id:
        raise NotFound("user", user_id)
    return user


async def list_users(session: AsyncSession, actor: User, filters: UserFilter, page: PageRequest) -> Page[User]:
    statement = select(User).where(User.company_id == actor.company_id)
    if filters.role is not None:
        statement = statement.where(User.role == filters.role)
    if filters.is_active is not None:
        statement = statement.where(User.is_active == filters.is_active)
    return await paginate(
        session,
        statement,
        page,
        sortable={"created_at": User.created_at, "email": User.email, "name": User.name, "role": User.role},
        default_sort="created_at",
        tie_breaker=User.id,
    )


async def _ensure_login_free(session: AsyncSession, *names: str, exclude_id: str | None = None) -> None:
    statement = select(User.id).where(or_(User.email.in_(names), User.username.in_(names)))
    if exclude_id:
        statement = statement.where(User.id != exclude_id)
    if await session.scalar(statement):
        raise Conflict("A user with this email or username already exists")


async def create(session: AsyncSession, actor: User, body: UserCreate) -> User:
    require_role(actor, Role.admin)
    email = body.email.lower()
    username = (body.username or email).strip().lower()
    await _ensure_login_free(session, email, username)
    user = User(
        id=new_id("usr"),
        company_id=actor.company_id,
        email=email,
        username=username,
        name=body.full_name,
        password_hash=security.hash_password(body.password),
        role=body.role,
    )
    session.add(user)
    await session.flush()
    audit.record(session, actor.company_id, actor, "user.created", "user", user.id, audit.changed({}, _audited(user)))
    log.info("user %s created %s (%s) in %s", actor.id, user.id, user.role, actor.company_id)
    return user


def _audited(user: User) -> dict[str, object]:
    """What the audit log follows about a user (the password only as "changed")."""
    return {"email": user.email, "name": user.name, "role": user.role, "is_active": user.is_active}


async def _keep_an_admin(session: AsyncSession, user: User, doing: str) -> None:
    """Refuse to take away the company's last active admin: nobody could manage users or keys any more."""
    if user.role != Role.admin or not user.is_active:
        return
    # Lock every active admin row (in one order, so two admins demoting each other cannot deadlock): of two
    # concurrent demotions the second waits, then sees the first's change and is refused.
    admins = await session.scalars(
        select(User.id)
        .where(User.company_id == user.company_id, User.role == Role.admin, User.is_active.is_(True))
        .order_by(User.id)
        .with_for_update()
    )
    if not [admin_id for admin_id in admins if admin_id != user.id]:
        raise Conflict(f"Cannot {doing} the last active admin of the company; make another user an admin first")


async def update(session: AsyncSession, actor: User, user_id: str, body: UserUpdate) -> User:
    require_role(actor, Role.admin)
    user = await get(session, actor, user_id)
    if user.id == actor.id and (body.role not in (None, Role.admin) or body.is_active is False):
        # An admin who wants to step down asks another admin, who sees what it leaves behind.
        raise InvalidField("role" if body.role else "is_active", "admins cannot demote or deactivate themselves")
    if body.role not in (None, Role.admin):
        await _keep_an_admin(session, user, "demote")
    if body.is_active is False:
        await _keep_an_admin(session, user, "deactivate")
    before = _audited(user)
    deactivated = user.is_active and body.is_active is False
    if body.email is not None:
        await _ensure_login_free(session, body.email.lower(), exclude_id=user.id)
        user.email = body.email.lower()
    if body.full_name is not None:
        user.name = body.full_name
    if body.role is not None:
        user.role = body.role
    if body.is_active is not None:
        user.is_active = body.is_active
    if body.password is not None:
        user.password_hash = security.hash_password(body.password)
    if deactivated:
        # Refresh tokens die now; access tokens already fail on the next request (is_active is checked on each).
        await auth.sign_out_everywhere(session, user)
    await session.flush()
    changes = audit.changed(before, _audited(user)) | ({"password": "changed"} if body.password is not None else {})
    if changes:
        audit.record(session, actor.company_id, actor, "user.updated", "user", user.id, changes)
        log.info("user %s updated %s in %s: %s", actor.id, user.id, actor.company_id, sorted(changes))
    return user


async def delete(session: AsyncSession, actor: User, user_id: str) -> None:
    require_role(actor, Role.admin)
    user = await get(session, actor, user_id)
    if user.id == actor.id:
        raise Conflict("You cannot delete your own account")
    await _keep_an_admin(session, user, "delete")
    gone = {name: [value, None] for name, value in _audited(user).items()}
    audit.record(session, actor.company_id, actor, "user.deleted", "user", user.id, gone)
    await session.delete(user)
    await session.flush()
    log.info("user %s deleted %s in %s", actor.id, user_id, actor.company_id)


async def update_self(session: AsyncSession, actor: User, body: UserSelfUpdate) -> User:
    if body.name is not None:
        actor.name = body.name
    if body.settings is not None:
        actor.settings = merge_bounded(actor.settings, body.settings, "settings")
    await session.flush()
    return actor
