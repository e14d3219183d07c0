"""Housekeeping: rows the product keeps only for a while.

Deleted in batches, each its own transaction, so a large backlog neither holds one long lock nor has to start
over after a crash: a retried attempt just finds fewer rows.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute
from temporalio import activity

from db.base import utcnow
from db.models import DomainEvent, IdempotencyRecord, WebhookDelivery
from db.session import transaction
from schemas.housekeeping import HousekeepingInput, HousekeepingResult
from schemas.webhook_delivery import DeliveryStatus

log = logging.getLogger(__name__)

BATCH = 5000


class HousekeepingActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], batch: int = BATCH) -> None:
        self._sessions = sessions
        self._batch = batch

    async def _delete_in_batches(self, key: InstrumentedAttribute[Any], expired: ColumnElement[bool]) -> int:
        """Delete the rows matching ``expired``, ``batch`` keys per transaction, heartbeating the running total."""
        deleted = 0
        while True:
            async with transaction(self._sessions) as session:
                keys = list(await session.scalars(select(key).where(expired).order_by(key).limit(self._batch)))
                if keys:
                    await session.execute(delete(key.class_).where(key.in_(keys)))
            deleted += len(keys)
            if len(keys) < self._batch:
                return deleted
            activity.heartbeat(deleted)

    @activity.defn
    async def delete_expired_idempotency_records(self, input: HousekeepingInput) -> HousekeepingResult:
        """Forget stored ``Idempotency-Key`` responses older than the retention: a retry after that is new."""
        cutoff = utcnow() - timedelta(hours=input.idempotency_retention_hours)
        deleted = await self._delete_in_batches(IdempotencyRecord.id, IdempotencyRecord.created_at < cutoff)
        log.info("housekeeping: %d idempotency records older than %s deleted", deleted, cutoff.isoformat())
        return HousekeepingResult(idempotency_records_deleted=deleted)

    @activity.defn
    async def delete_dispatched_events(self, input: HousekeepingInput) -> int:
        """Empty the outbox of events dispatched before the retention (their delivery log goes with them, by
        cascade), keeping any event one of whose deliveries is still being retried."""
        cutoff = utcnow() - timedelta(days=input.event_retention_days)
        still_retried = exists().where(
            WebhookDelivery.event_id == DomainEvent.id, WebhookDelivery.status == DeliveryStatus.pending
        )
        deleted = await self._delete_in_batches(DomainEvent.id, (DomainEvent.dispatched_at < cutoff) & ~still_retried)
        log.info("housekeeping: %d domain events dispatched before %s deleted", deleted, cutoff.isoformat())
        return deleted
