from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import AdminUser, SessionDep, SettingsDep, TemporalDep
from schemas.system import HealthReport, SystemCheckReport
from services import health

router = APIRouter(prefix="/system", tags=["system"])


@router.get("/health", response_model=HealthReport, responses={503: {"model": HealthReport}})
async def read_health(request: Request, session: SessionDep, settings: SettingsDep) -> JSONResponse:
    """Database, Temporal and worker status; 503 when the database is down (no sign-in needed)."""
    report = await health.report(session, request.app.state.temporal, settings)
    return JSONResponse(report.model_dump(mode="json"), status_code=503 if report.status == "unhealthy" else 200)


@router.post("/check")
async def run_check(admin: AdminUser, client: TemporalDep, settings: SettingsDep) -> SystemCheckReport:
    """Run a workflow through Temporal and a worker that writes to the database; proves the whole path."""
    return await health.run_system_check(client, settings, admin)
