"""Starting and signalling workflows that have a ``workflow_runs`` row: the plumbing every automation shares."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from core.config import Settings
from core.ids import new_id
from db.base import utcnow
from db.models import WorkflowRun
from schemas.temporal import QueueKind, run_attributes
from services.errors import Conflict

log = logging.getLogger(__name__)

ACTIVE_RUN_STATES = ("pending", "running")


@dataclass(frozen=True)
class RunStart:
    """What a run is: its business-key workflow id, whose it is, and what the Temporal UI shows for it."""

    workflow_id: str
    workflow_type: str
    company_id: str
    entity_id: str
    """The record the run is about (a lead, a sale); also the ``EntityId`` search attribute."""
    config_id: str | None
    trigger_type: str
    summary: str


async def live_run(session: AsyncSession, workflow_id: str) -> WorkflowRun | None:
    run: WorkflowRun | None = await session.scalar(
        select(WorkflowRun).where(
            WorkflowRun.temporal_workflow_id == workflow_id, WorkflowRun.status.in_(ACTIVE_RUN_STATES)
        )
    )
    return run


async def start_recorded(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    start: RunStart,
    workflow: Any,
    build_input: Callable[[str], BaseModel],
    *,
    new_entity: bool = False,
) -> WorkflowRun:
    """Record a run, commit (so the worker's activities can read what it is about), then start the workflow.

    ``workflow`` is the workflow's run method; ``build_input`` makes its input from the new run's id. Raises
    ``Conflict`` while the business key already has a live run. If Temporal cannot be reached the run stays
    recorded as ``failed`` with the reason, and can be started again.

    ``new_entity``: the record was created in this transaction, so no run of its business key can be live and
    the lookup is skipped (a query less per new lead); Temporal's own duplicate check still stands behind it.
    """
    live = None if new_entity else await live_run(session, start.workflow_id)
    if live is not None:
        raise Conflict(f"{start.workflow_id} is already running ({live.id})")
    run = WorkflowRun(
        id=new_id("run"),
        company_id=start.company_id,
        workflow_config_id=start.config_id,
        workflow_type=start.workflow_type,
        temporal_workflow_id=start.workflow_id,
        status="pending",
        trigger_type=start.trigger_type,
        trigger_id=start.entity_id,
    )
    session.add(run)
    workflow_input = build_input(run.id)
    await session.commit()
    try:
        handle = await client.start_workflow(
            workflow,
            workflow_input,
            id=start.workflow_id,
            task_queue=settings.task_queue(QueueKind.MAIN),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=run_attributes(start.company_id, start.entity_id, start.config_id),
            static_summary=start.summary,
            memo={"run_id": run.id, "trigger_type": start.trigger_type},
        )
    except WorkflowAlreadyStartedError as exc:
        await session.delete(run)
        await session.commit()
        raise Conflict(f"{start.workflow_id} is already running") from exc
    except RPCError as exc:
        run.status = "failed"
        run.error = f"could not start on Temporal: {exc.message}"
        run.completed_at = utcnow()
        await session.commit()
        log.error("could not start %s for run %s: %s", start.workflow_id, run.id, exc.message)
        return run
    run.temporal_run_id = handle.first_execution_run_id or handle.result_run_id
    run.status = "running"
    await session.commit()
    log.info(
        "started %s (run %s, temporal run %s) by %s", start.workflow_id, run.id, run.temporal_run_id, start.trigger_type
    )
    return run


async def signal_live(
    session: AsyncSession, client: Client, workflow_ids: Iterable[str], signal: Any, argument: BaseModel
) -> int:
    """Send ``signal`` to each of the workflows that still has a live run; returns how many were told.

    A run that finished meanwhile is not an error: it has nothing left to stop.
    """
    live = await session.scalars(
        select(WorkflowRun.temporal_workflow_id).where(
            WorkflowRun.temporal_workflow_id.in_(set(workflow_ids)), WorkflowRun.status.in_(ACTIVE_RUN_STATES)
        )
    )
    told = 0
    for workflow_id in set(live):
        try:
            await client.get_workflow_handle(workflow_id).signal(signal, argument)
            told += 1
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            log.info("%s already finished; %s not delivered", workflow_id, argument)
    return told
