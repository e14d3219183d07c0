from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Company, User
from schemas.common import readable_errors
from schemas.companies import DEFAULT_SEND_WINDOW, INTEGRATIONS, CompanyUpdate, without_masks
from schemas.enums import Role
from schemas.messaging import SendWindow
from services.errors import InvalidField, NotFound
from services.merge import deep_merge, merge_bounded
from services.users import require_role


def _check_send_window(settings: dict[str, Any]) -> None:
    stored = settings.get(DEFAULT_SEND_WINDOW)
    if stored is None:
        return
    try:
        SendWindow.model_validate(stored)
    except ValidationError as exc:
        field, message = readable_errors(exc.errors())[0]
        raise InvalidField(f"settings.{DEFAULT_SEND_WINDOW}.{field}".rstrip("."), message) from exc


async def default_send_window(session: AsyncSession, company_id: str) -> SendWindow | None:
    """The company's send window for automations that set none of their own (checked when it was saved)."""
    company = await session.get(Company, company_id)
    return send_window_of(company) if company else None


def send_window_of(company: Company) -> SendWindow | None:
    """``default_send_window`` of a company already loaded."""
    stored = company.settings.get(DEFAULT_SEND_WINDOW)
    return SendWindow.model_validate(stored) if stored else None


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
        company.settings = merge_bounded(company.settings, body.settings, "settings")
        _check_send_window(company.settings)
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
