"""``/api/audit-log``: who changed users, roles, API keys and webhooks, and when (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminUser, SessionDep
from api.pagination import EndpointsPage, items_page
from schemas.audit import AuditEntryPublic, AuditFilter
from schemas.common import ItemsPage
from services import audit

router = APIRouter(prefix="/audit-log", tags=["audit-log"])


@router.get("")
async def list_audit_log(
    admin: AdminUser, session: SessionDep, page: EndpointsPage, filters: Annotated[AuditFilter, Query()]
) -> ItemsPage[AuditEntryPublic]:
    """Your company's audit entries, newest first; filter by action, target, actor and days."""
    result = await audit.list_entries(session, admin, filters, page)
    return items_page(result, AuditEntryPublic.model_validate)
