"""``/api/privacy``: erase or export everything the company holds about one person, by email (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminUser, OptionalTemporal, SessionDep
from schemas.leads import LeadEmail
from schemas.privacy import ErasureResult, PersonErase, PersonExport
from services import privacy

router = APIRouter(prefix="/privacy", tags=["privacy"])


@router.post("/erase")
async def erase_person(
    body: PersonErase, admin: AdminUser, session: SessionDep, temporal: OptionalTemporal
) -> ErasureResult:
    """Erase everything your company holds about a person and never message the address again (admins only)."""
    return await privacy.erase(session, temporal, admin.company_id, body.email, admin)


@router.get("/export")
async def export_person(
    email: Annotated[LeadEmail, Query(description="the person's address; matched case-insensitively")],
    admin: AdminUser,
    session: SessionDep,
) -> PersonExport:
    """Everything your company holds about a person, as one JSON document (admins only)."""
    return await privacy.export(session, admin.company_id, email, admin)
