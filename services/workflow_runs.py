"""Workflow runs: the product's record of each execution, the live progress of running ones, manual triggers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError, RPCStatusCode

from core.config import Settings
from core.temporal import ui_link
from db.models import Lead, User, WorkflowAction, WorkflowConfig, WorkflowRun
from schemas.common import Page, PageRequest
from schemas.lead_follow_up import FollowUpProgress
from schemas.review_request import ReviewProgress
from schemas.workflow_configs import WorkflowType
from schemas.workflow_runs import (
    ActionPerformed,
    NextStep,
    RunStatus,
    WorkflowRunDetail,
    WorkflowRunFilter,
    WorkflowRunPublic,
    WorkflowRunTrigger,
)
from services import workflow_configs
from services.errors import InvalidField, NotFound, ServiceUnavailable
from services.lead_follow_up import start_sequence
from services.paging import paginate
from services.runs import ACTIVE_RUN_STATES
from workflows.lead_follow_up import LeadFollowUpWorkflow
from workflows.review_request import ReviewRequestWorkflow

log = logging.getLogger(__name__)

PROGRESS_TIMEOUT = timedelta(seconds=3)
"""How long a run's page waits for its workflow to answer the progress query."""


def _public(run: WorkflowRun, workflow_name: str | None, settings: Settings) -> WorkflowRunPublic:
    return WorkflowRunPublic(
        id=run.id,
        workflow_config_id=run.workflow_config_id,
        workflow_name=workflow_name,
        status=RunStatus(run.status),
        started_at=run.started_at,
        completed_at=run.completed_at,
        trigger_type=run.trigger_type,
        trigger_id=run.trigger_id,
        temporal_ui_url=ui_link(settings, run.temporal_workflow_id, run.temporal_run_id),
    )


async def _config_names(session: AsyncSession, config_ids: set[str]) -> dict[str, str]:
    if not config_ids:
        return {}
    rows = await session.execute(
        select(WorkflowConfig.id, WorkflowConfig.name).where(WorkflowConfig.id.in_(config_ids))
    )
    return {config_id: name for config_id, name in rows}


async def list_runs(
    session: AsyncSession, settings: Settings, actor: User, filters: WorkflowRunFilter, page: PageRequest
) -> Page[WorkflowRunPublic]:
    statement = (
        select(WorkflowRun)
        .outerjoin(WorkflowConfig, WorkflowConfig.id == WorkflowRun.workflow_config_id)
        .where(WorkflowRun.company_id == actor.company_id)
    )
    if filters.workflow_config_id is not None:
        statement = statement.where(WorkflowRun.workflow_config_id == filters.workflow_config_id)
    if filters.status is not None:
        statement = statement.where(WorkflowRun.status == filters.status)
    runs = await paginate(
        session,
        statement,
        page,
        sortable={
            "started_at": WorkflowRun.started_at,
            "completed_at": WorkflowRun.completed_at,
            "status": WorkflowRun.status,
            "workflow_name": WorkflowConfig.name,
        },
        default_sort="started_at",
        tie_breaker=WorkflowRun.id,
    )
    names = await _config_names(session, {run.workflow_config_id for run in runs.items if run.workflow_config_id})
    items = [_public(run, names.get(run.workflow_config_id or ""), settings) for run in runs.items]
    return Page(items=items, total=runs.total, request=runs.request)


async def runs_about(
    session: AsyncSession, settings: Settings, actor: User, entity_ids: Collection[str]
) -> list[WorkflowRunPublic]:
    """The company's runs about these records (a lead's sequences, a sale's review request), newest first."""
    if not entity_ids:
        return []
    runs = list(
        await session.scalars(
            select(WorkflowRun)
            .where(WorkflowRun.company_id == actor.company_id, WorkflowRun.trigger_id.in_(set(entity_ids)))
            .order_by(WorkflowRun.started_at.desc(), WorkflowRun.id)
        )
    )
    names = await _config_names(session, {run.workflow_config_id for run in runs if run.workflow_config_id})
    return [_public(run, names.get(run.workflow_config_id or ""), settings) for run in runs]


def _lead_step(progress: FollowUpProgress) -> NextStep:
    return NextStep(
        state=progress.state,
        step=progress.next_step,
        template=progress.next_step_template,
        scheduled_for=progress.next_step_at,
        steps_sent=progress.steps_sent,
        steps_total=progress.steps_total,
        stopped_by=progress.stopped_by,
    )


def _review_step(progress: ReviewProgress) -> NextStep:
    return NextStep(
        state="sending" if progress.sending else progress.stage,
        step=progress.next_step,
        template=progress.next_message,
        scheduled_for=progress.next_message_at,
        steps_sent=progress.messages_sent,
        steps_total=progress.messages_total,
        stopped_by=progress.stopped_by,
    )


# Each automation's progress query and how its answer reads on the run's page.
_PROGRESS: dict[str, tuple[Any, Callable[[Any], NextStep]]] = {
    WorkflowType.lead_nurturing: (LeadFollowUpWorkflow.progress, _lead_step),
    WorkflowType.review_referral: (ReviewRequestWorkflow.progress, _review_step),
}
_FINISHED_STATES = frozenset({"completed", "stopped"})


async def _progress(client: Client | None, run: WorkflowRun) -> tuple[NextStep | None, str | None]:
    """Ask the running workflow where it is; any failure becomes an explanation, never an error response."""
    if client is None:
        return None, "Temporal is not reachable right now"
    query, present = _PROGRESS[run.workflow_type]
    handle = client.get_workflow_handle(run.temporal_workflow_id, run_id=run.temporal_run_id)
    try:
        # wait_for as well as the RPC deadline: the page must answer even if the connection itself stalls.
        answer = await asyncio.wait_for(
            handle.query(query, rpc_timeout=PROGRESS_TIMEOUT), PROGRESS_TIMEOUT.total_seconds() + 1
        )
        progress = present(answer)
    except TimeoutError:
        log.warning("progress query for run %s (%s) timed out", run.id, run.temporal_workflow_id)
        return None, f"the workflow did not answer within {PROGRESS_TIMEOUT.total_seconds():.0f}s"
    except RPCError as exc:
        # The client reports its own deadline as CANCELLED ("Timeout expired"), the server as DEADLINE_EXCEEDED.
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            reason = (
                f"the workflow did not answer within {PROGRESS_TIMEOUT.total_seconds():.0f}s (is a worker running?)"
            )
        elif exc.status == RPCStatusCode.NOT_FOUND:
            reason = "Temporal has no such workflow execution"
        else:
            reason = f"Temporal could not ask the workflow: {exc.message}"
        log.warning(
            "progress query for run %s (%s) failed: %s (%s)",
            run.id,
            run.temporal_workflow_id,
            exc.message,
            exc.status.name,
        )
        return None, reason
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
        log.warning("progress query for run %s (%s) failed: %s", run.id, run.temporal_workflow_id, exc)
        return None, f"the workflow could not answer: {exc}"
    except Exception as exc:
        # Anything else (an answer this code cannot decode, a broken connection) must not break the run's page.
        log.exception("progress query for run %s (%s) failed", run.id, run.temporal_workflow_id)
        return None, f"the workflow's progress could not be read: {exc}"
    if progress.state in _FINISHED_STATES:
        # The workflow's finish_run activity writes the row; reporting here must not race it.
        log.info("run %s: workflow reports %s, the run row still says %s", run.id, progress.state, run.status)
    return progress, None


# Closed without running finish_run (terminated from the UI or CLI, timed out): the row must not say "running".
_CLOSED_WITHOUT_FINISH = {
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TIMED_OUT: "timed out",
}


async def _reconcile(client: Client | None, run: WorkflowRun) -> bool:
    """Bring a live-looking row in line with Temporal when its workflow ended without reporting back."""
    if client is None:
        return False
    handle = client.get_workflow_handle(run.temporal_workflow_id, run_id=run.temporal_run_id)
    try:
        description = await handle.describe(rpc_timeout=PROGRESS_TIMEOUT)
    except RPCError as exc:
        log.warning("could not describe %s for run %s: %s", run.temporal_workflow_id, run.id, exc.message)
        return False
    how = _CLOSED_WITHOUT_FINISH.get(description.status) if description.status else None
    if how is None:
        return False
    run.status = RunStatus.failed
    run.error = f"the workflow was {how} in Temporal before it finished"
    run.completed_at = description.close_time
    log.warning("run %s: workflow %s was %s; run marked failed", run.id, run.temporal_workflow_id, how)
    return True


async def detail(
    session: AsyncSession, client: Client | None, settings: Settings, actor: User, run_id: str
) -> WorkflowRunDetail:
    run = await session.get(WorkflowRun, run_id)
    if run is None or run.company_id != actor.company_id:
        raise NotFound("workflow_run", run_id)
    names = await _config_names(session, {run.workflow_config_id} if run.workflow_config_id else set())
    actions = await session.scalars(
        select(WorkflowAction)
        .where(WorkflowAction.run_id == run.id)
        .order_by(WorkflowAction.timestamp, WorkflowAction.id)
    )
    next_step, next_step_error = None, None
    live = run.status in ACTIVE_RUN_STATES and not await _reconcile(client, run)
    if live and run.workflow_type in _PROGRESS:
        next_step, next_step_error = await _progress(client, run)
    return WorkflowRunDetail(
        **_public(run, names.get(run.workflow_config_id or ""), settings).model_dump(),
        actions_performed=[
            ActionPerformed(type=action.type, timestamp=action.timestamp, details=action.details) for action in actions
        ],
        results=run.results,
        error=run.error,
        next_step=next_step,
        next_step_error=next_step_error,
    )


async def trigger(
    session: AsyncSession, client: Client, settings: Settings, actor: User, body: WorkflowRunTrigger
) -> WorkflowRunPublic:
    """Start the config's sequence for one lead now, whether or not the config is active or its triggers match."""
    config = await workflow_configs.get(session, actor, body.workflow_config_id)
    if config.workflow_type != WorkflowType.lead_nurturing:
        hint = (
            " (ask for a review with POST /v1/reviews/request)"
            if config.workflow_type == WorkflowType.review_referral
            else ""
        )
        raise InvalidField(
            "workflow_config_id",
            f"only lead_nurturing configs run for a lead by hand, not {config.workflow_type}{hint}",
        )
    lead = await session.get(Lead, body.entity_id)
    if lead is None or lead.company_id != actor.company_id:
        raise NotFound("lead", body.entity_id)
    run = await start_sequence(session, client, settings, lead, config, body.trigger_type)
    if run.status == "failed":
        raise ServiceUnavailable(f"Run {run.id} could not be started: {run.error}")
    log.info("user %s triggered config %s for lead %s (run %s)", actor.id, config.id, lead.id, run.id)
    return _public(run, config.name, settings)
