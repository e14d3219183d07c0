from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Company, User
from schemas.common import readable_errors
from schemas.companies import INTEGRATIONS, CompanyUpdate, without_masks
from schemas.enums import Role
from services.errors import InvalidField, NotFound
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
    if body.integrations is not None:
        require_role(actor, Role.admin)  # they hold the passwords of the company's sites
        company.integrations = _merged_integrations(
            company.integrations, body.integrations.model_dump(mode="json", exclude_unset=True)
        )
    await session.flush()
    return company


def _merged_integrations(stored: dict[str, Any] | None, patch: dict[str, Any]) -> dict[str, Any]:
    """``patch`` merged into what is stored; each integration left must be complete (a partial patch may rotate
    one secret). An echoed ``********`` keeps the stored secret."""
    merged = deep_merge(stored or {}, without_masks(patch))
    for name, model in INTEGRATIONS.items():
        if name not in merged:
            continue
        try:
            merged[name] = model.model_validate(merged[name]).model_dump(mode="json")
        except ValidationError as exc:
            field, message = next(iter(readable_errors(exc.errors())))
            raise InvalidField(f"integrations.{name}.{field}" if field else f"integrations.{name}", message) from exc
    return merged
