from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from api.deps import AdminUser, SessionDep, SettingsDep, TemporalDep, get_admin, get_signed_in_user, oauth2_scheme
from db.models import User
from schemas.system import HealthReport, HealthSummary, SystemCheckReport, SystemStats
from services import health, system_stats
from services.errors import AuthenticationFailed, PermissionDenied

router = APIRouter(prefix="/system", tags=["system"])


async def _admin_if_any(
    request: Request, session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User | None:
    """The signed-in admin, or None for anyone else: health never answers 401 (load balancers have no token)."""
    if token is None:
        return None
    try:
        return await get_admin(await get_signed_in_user(request, session, settings, token))
    except (AuthenticationFailed, PermissionDenied):
        return None
    except SQLAlchemyError:  # the database is down: the probe says so, in the short answer with its 503
        await session.rollback()
        return None


_HEALTH_DESCRIPTION = (
    "No sign-in needed, for load balancers: `{status, version}`; 503 when the database is down. `degraded` "
    "means the API answers but automations will not run: Temporal is unreachable or a task queue has no worker "
    "polling it. With an admin's token the answer adds each component, the pollers of each task queue, whether "
    "email, SMS and the LLM go to a provider (`operational`) or are only recorded (`recorded`), and `issues` in "
    "words. It never shows a host, key or secret."
)


@router.get(
    "/health",
    response_model=HealthReport | HealthSummary,
    responses={503: {"model": HealthSummary}},
    description=_HEALTH_DESCRIPTION,
)
async def read_health(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    admin: Annotated[User | None, Depends(_admin_if_any)],
) -> JSONResponse:
    """Database, Temporal and worker status; 503 when the database is down (no sign-in needed)."""
    company_id = admin.company_id if admin is not None else None
    report = await health.report(session, request.app.state.temporal, settings, company_id)
    shown = report if admin is not None else HealthSummary(status=report.status, version=report.version)
    return JSONResponse(shown.model_dump(mode="json"), status_code=503 if report.status == "unhealthy" else 200)


_STATS_DESCRIPTION = (
    "Admins only. Counts of your company's users, leads, customers, reviews, referrals and content "
    "(`companies` is 1, yours). `api_calls`: the authenticated calls made with your company's tokens and API "
    "keys (401 answers do not count), `total` ever and `last_24h` (the current hour and the 23 before it). "
    "`storage` is the installation's: `used` = the database (SQLite file and WAL, or `pg_database_size`) plus "
    "the backups folder under the data directory; `total` = the capacity of the disk holding the data "
    "directory; as text (1 GB = 1024^3 bytes) and exactly in `used_bytes` and `total_bytes`."
)


@router.get("/stats", description=_STATS_DESCRIPTION)
async def read_stats(request: Request, admin: AdminUser, session: SessionDep, settings: SettingsDep) -> SystemStats:
    """Your company's record counts, API calls and the installation's storage."""
    return await system_stats.system_stats(
        session, request.app.state.sessions, settings, request.app.state.api_usage, admin
    )


@router.post("/check")
async def run_check(admin: AdminUser, client: TemporalDep, settings: SettingsDep) -> SystemCheckReport:
    """Run a workflow through Temporal and a worker that writes to the database; proves the whole path."""
    return await health.run_system_check(client, settings, admin)
