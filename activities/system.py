"""Activities of the system heartbeat: the smallest path that touches every moving part."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from db.models import SystemCheck
from db.session import transaction
from schemas.system import SystemCheckInput, SystemCheckResult


class SystemActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], worker_identity: str) -> None:
        self._sessions = sessions
        self._worker_identity = worker_identity

    @activity.defn
    async def record_system_check(self, input: SystemCheckInput) -> SystemCheckResult:
        worker = f"{self._worker_identity} on {activity.info().task_queue}"
        async with transaction(self._sessions) as session:
            existing = await session.get(SystemCheck, input.check_id)
            if existing is None:  # a retried attempt finds its own row and reports it
                existing = SystemCheck(id=input.check_id, requested_by=input.requested_by, worker_identity=worker)
                session.add(existing)
                await session.flush()
        return SystemCheckResult(
            check_id=existing.id, worker_identity=existing.worker_identity or worker, recorded_at=existing.created_at
        )
