"""Housekeeping: rows the product keeps only for a while.

Deleted in batches, each its own transaction, so a large backlog neither holds one long lock nor has to start
over after a crash: a retried attempt just finds fewer rows.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from db.base import utcnow
from db.models import IdempotencyRecord
from db.session import transaction
from schemas.housekeeping import HousekeepingInput, HousekeepingResult

log = logging.getLogger(__name__)

BATCH = 5000


class HousekeepingActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], batch: int = BATCH) -> None:
        self._sessions = sessions
        self._batch = batch

    @activity.defn
    async def delete_expired_idempotency_records(self, input: HousekeepingInput) -> HousekeepingResult:
        """Forget stored ``Idempotency-Key`` responses older than the retention: a retry after that is new."""
        cutoff = utcnow() - timedelta(hours=input.idempotency_retention_hours)
        deleted = 0
        while True:
            async with transaction(self._sessions) as session:
                ids = list(
                    await session.scalars(
                        select(IdempotencyRecord.id)
                        .where(IdempotencyRecord.created_at < cutoff)
                        .order_by(IdempotencyRecord.id)
                        .limit(self._batch)
                    )
                )
                if ids:
                    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids)))
            deleted += len(ids)
            if len(ids) < self._batch:
                break
            activity.heartbeat(deleted)
        log.info("housekeeping: %d idempotency records older than %s deleted", deleted, cutoff.isoformat())
        return HousekeepingResult(idempotency_records_deleted=deleted)
