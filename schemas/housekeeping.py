"""The housekeeping workflow's contract: what it clears and what it reports."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HousekeepingInput(BaseModel):
    idempotency_retention_hours: float = Field(gt=0)
    """Stored ``Idempotency-Key`` responses older than this are deleted (``BAS_IDEMPOTENCY_RETENTION_HOURS``)."""


class HousekeepingResult(BaseModel):
    idempotency_records_deleted: int
