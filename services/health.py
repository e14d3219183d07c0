"""What ``GET /api/system/health`` reports and what ``POST /api/system/check`` proves."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue as TaskQueueRef
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowFailureError

from core.config import Settings
from core.ids import new_id
from core.temporal import ui_link
from db.models import User
from schemas.system import ComponentState, HealthReport, SystemCheckInput, SystemCheckReport, TaskQueueHealth
from schemas.temporal import QueueKind
from services import unknown_outcomes
from services.errors import ServiceUnavailable
from workflows.system import SystemCheckWorkflow

log = logging.getLogger(__name__)

VERSION = "1.0.0"
PROBE_TIMEOUT = timedelta(seconds=3)


async def _database(session: AsyncSession) -> ComponentState:
    try:
        await asyncio.wait_for(session.execute(text("SELECT 1")), PROBE_TIMEOUT.total_seconds())
    except Exception:  # any failure here means "down"; the reason goes to the log
        log.exception("health: database probe failed")
        return "unavailable"
    return "connected"


async def _pollers(client: Client, settings: Settings, queue: str, kind: TaskQueueType.ValueType) -> int:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=settings.temporal_namespace, task_queue=TaskQueueRef(name=queue), task_queue_type=kind
        ),
        timeout=PROBE_TIMEOUT,
    )
    return len(response.pollers)


async def _temporal(client: Client | None, settings: Settings) -> tuple[ComponentState, list[TaskQueueHealth]]:
    if client is None:
        return "unavailable", []
    try:
        await client.service_client.check_health(timeout=PROBE_TIMEOUT)
        queues = []
        for queue in (settings.task_queue(kind) for kind in QueueKind):
            # A queue counts as served if anything polls it for workflow or activity tasks.
            workflow_pollers = await _pollers(client, settings, queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
            activity_pollers = await _pollers(client, settings, queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
            queues.append(TaskQueueHealth(name=queue, pollers=max(workflow_pollers, activity_pollers)))
    except Exception:
        log.exception("health: Temporal probe failed at %s", settings.temporal_address)
        return "unavailable", []
    return "connected", queues


def provider_state(configured: bool) -> ComponentState:
    return "operational" if configured else "recorded"


def provider_states(settings: Settings) -> dict[str, ComponentState]:
    """Whether email, SMS and the LLM go to a real provider or are only recorded; the health report and the
    console's settings page both show this, so the rule lives here once."""
    return {
        "openai": provider_state(bool(settings.llm_base_url)),
        "email": provider_state(bool(settings.smtp_host)),
        "sms": provider_state(bool(settings.sms_api_url)),
    }


def _issues(database: ComponentState, temporal: ComponentState, queues: list[TaskQueueHealth]) -> list[str]:
    issues = []
    if database == "unavailable":
        issues.append("the database is not reachable")
    if temporal == "unavailable":
        issues.append("Temporal is not reachable: no workflow can start")
    issues += [f"no worker polls task queue {queue.name}" for queue in queues if not queue.pollers]
    return issues


_last_issues: list[str] = []


def _log_change(status: str, issues: list[str]) -> None:
    """Once per change, not once per load-balancer probe."""
    global _last_issues
    if issues != _last_issues:
        if issues:
            log.warning("health: %s: %s", status, "; ".join(issues))
        else:
            log.info("health: healthy again")
        _last_issues = issues


async def _unresolved(session: AsyncSession, company_id: str) -> list[str]:
    """The company's messages no attempt could settle: not the platform's health, but what its admin must see."""
    unknown = await unknown_outcomes.count(session, company_id)
    if not unknown:
        return []
    noun = "message" if unknown == 1 else "messages"
    return [
        f"{unknown} {noun} with an unknown outcome: GET /v1/deliveries?status=unknown lists them, "
        "POST /v1/deliveries/{id}/resend resends one"
    ]


async def report(
    session: AsyncSession, client: Client | None, settings: Settings, company_id: str | None = None
) -> HealthReport:
    """The full report (admins only, with ``company_id`` their company); ``HealthSummary`` of it is what anyone
    else gets."""
    database = await _database(session)
    temporal, queues = await _temporal(client, settings)
    workers: ComponentState = "operational" if queues and all(q.pollers for q in queues) else "unavailable"
    if queues and workers == "unavailable" and any(q.pollers for q in queues):
        workers = "degraded"
    if database == "unavailable":
        overall = "unhealthy"
    elif temporal == "connected" and workers == "operational":
        overall = "healthy"
    else:
        overall = "degraded"
    issues = _issues(database, temporal, queues)
    _log_change(overall, issues)
    if company_id is not None and database == "connected":
        issues += await _unresolved(session, company_id)
    return HealthReport(
        status=overall,
        version=VERSION,
        database=database,
        api="operational",
        temporal=temporal,
        workers=workers,
        task_queues=queues,
        services=provider_states(settings),
        issues=issues,
    )


async def run_system_check(
    client: Client, settings: Settings, actor: User, wait_seconds: float = 15.0
) -> SystemCheckReport:
    """Start the heartbeat workflow and wait for its activity to write to the database."""
    check_id = new_id("chk")
    workflow_id = f"system-check/{check_id}"
    try:
        result = await client.execute_workflow(
            SystemCheckWorkflow.run,
            SystemCheckInput(check_id=check_id, requested_by=actor.id),
            id=workflow_id,
            task_queue=settings.task_queue(QueueKind.MAIN),
            execution_timeout=timedelta(seconds=wait_seconds),
        )
    except WorkflowFailureError as exc:
        log.error("system check %s failed: %s", workflow_id, exc.cause)
        raise ServiceUnavailable(
            f"The system check did not complete within {wait_seconds:.0f}s: is a worker running?"
        ) from exc
    return SystemCheckReport(
        check_id=result.check_id,
        workflow_id=workflow_id,
        worker_identity=result.worker_identity,
        recorded_at=result.recorded_at,
        temporal_ui_url=ui_link(settings, workflow_id),
    )
