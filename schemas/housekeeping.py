"""The housekeeping workflow's contract: what it clears and what it reports."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HousekeepingInput(BaseModel):
    idempotency_retention_hours: float = Field(gt=0)
    """Stored ``Idempotency-Key`` responses older than this are deleted (``BAS_IDEMPOTENCY_RETENTION_HOURS``)."""
    event_retention_days: float = Field(30.0, gt=0)
    """Dispatched domain events older than this are deleted (``BAS_EVENT_RETENTION_DAYS``). The default lets a
    schedule written before the field existed decode."""


class HousekeepingResult(BaseModel):
    idempotency_records_deleted: int
    events_deleted: int = 0
