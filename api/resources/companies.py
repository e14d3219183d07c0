from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep
from schemas.companies import CompanyPublic, CompanyUpdate
from services import companies

router = APIRouter(prefix="/companies", tags=["companies"])


@router.get("/current")
async def read_current(user: CurrentUser, session: SessionDep) -> CompanyPublic:
    """The signed-in user's company."""
    return CompanyPublic.model_validate(await companies.current(session, user))


@router.patch("/current")
async def update_current(body: CompanyUpdate, user: CurrentUser, session: SessionDep) -> CompanyPublic:
    """Change the company (admins and managers); settings merge into what is stored."""
    return CompanyPublic.model_validate(await companies.update_current(session, user, body))
