from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


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


class HealthSummary(BaseModel):
    """What anyone (a load balancer) is told: no components, hosts or queue names."""

    status: Literal["healthy", "degraded", "unhealthy"] = Field(
        description="unhealthy (503): the database is down; degraded: Temporal is unreachable or a task queue has "
        "no worker polling it"
    )
    version: str


class HealthReport(HealthSummary):
    """What an admin is told."""

    database: ComponentState
    api: ComponentState
    temporal: ComponentState
    workers: ComponentState = Field(
        description="operational: every task queue has a poller; degraded: some do; unavailable: none do"
    )
    task_queues: list[TaskQueueHealth]
    services: dict[str, ComponentState] = Field(
        description="openai, email, sms: operational when a provider is configured, recorded when messages and "
        "drafts are only recorded (no external send)"
    )
    issues: list[str] = Field(description="what makes the status less than healthy, in words")


class ApiCallStats(BaseModel):
    total: int = Field(description="authenticated calls of the company, ever")
    last_24h: int = Field(description="in the current hour and the 23 before it")


class StorageStats(BaseModel):
    """The whole installation's, not one company's: the database and its backups share one disk."""

    used: str = Field(description="used_bytes for people, e.g. 1.2 GB (1 GB = 1024^3 bytes)")
    total: str
    used_bytes: int = Field(description="the database (SQLite file and its WAL, or pg_database_size) + backups")
    total_bytes: int = Field(description="the capacity of the disk that holds the data directory")


class SystemStats(BaseModel):
    """``GET /api/system/stats``: the caller's company."""

    users: int
    companies: int = Field(description="always 1: the caller's company")
    leads: int
    customers: int
    reviews: int
    referrals: int
    content: int
    api_calls: ApiCallStats
    storage: StorageStats


class SystemCheckReport(BaseModel):
    check_id: str
    workflow_id: str
    worker_identity: str
    recorded_at: datetime
    temporal_ui_url: str
