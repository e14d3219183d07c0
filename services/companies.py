from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Company, User
from schemas.companies import CompanyUpdate
from schemas.enums import Role
from services.errors import NotFound
from services.merge import deep_merge
from services.users import require_role


async def current(session: AsyncSession, actor: User) -> Company:
    company = await session.get(Company, actor.company_id)
    if company is None:
        raise NotFound("company", actor.company_id)
    return company


async def update_current(session: AsyncSession, actor: User, body: CompanyUpdate) -> Company:
    require_role(actor, Role.admin, Role.manager)
    company = await current(session, actor)
    for field in ("name", "industry", "postal_address", "timezone"):
        value = getattr(body, field)
        if value is not None:
            setattr(company, field, value)
    for field in ("website", "logo_url"):
        value = getattr(body, field)
        if value is not None:
            setattr(company, field, str(value))
    if body.settings is not None:
        company.settings = deep_merge(company.settings, body.settings)
    await session.flush()
    return company
