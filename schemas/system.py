from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class SystemCheckInput(BaseModel):
    check_id: str
    requested_by: str | None = None


class SystemCheckResult(BaseModel):
    check_id: str
    worker_identity: str
    recorded_at: datetime


ComponentState = Literal["connected", "operational", "unavailable", "degraded", "not_configured", "recorded"]


class TaskQueueHealth(BaseModel):
    name: str
    pollers: int


class HealthReport(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    version: str
    database: ComponentState
    api: ComponentState
    temporal: ComponentState
    workers: ComponentState
    task_queues: list[TaskQueueHealth]
    services: dict[str, ComponentState]


class SystemCheckReport(BaseModel):
    check_id: str
    workflow_id: str
    worker_identity: str
    recorded_at: datetime
    temporal_ui_url: str
