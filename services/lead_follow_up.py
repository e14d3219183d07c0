"""Starting and signalling lead follow-up sequences (the run page's progress query lives in services.workflow_runs)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from core.config import Settings
from core.ids import new_id
from db.base import utcnow
from db.models import Lead, WorkflowConfig, WorkflowRun
from schemas.lead_follow_up import FollowUpStep, LeadEvent, LeadEventSignal, LeadFollowUpInput
from schemas.temporal import COMPANY_ID, ENTITY_ID, WORKFLOW_CONFIG_ID, QueueKind
from schemas.workflow_configs import LeadNurturingActions, LeadTriggers, WorkflowType
from services.errors import Conflict
from workflows.lead_follow_up import LeadFollowUpWorkflow

log = logging.getLogger(__name__)

ACTIVE_RUN_STATES = ("pending", "running")


def workflow_id_for(lead_id: str, config_id: str) -> str:
    return f"lead-follow-up/{lead_id}/{config_id}"


def matches(config: WorkflowConfig, lead: Lead) -> bool:
    triggers = LeadTriggers.model_validate(config.triggers or {})
    if triggers.lead_source and lead.source not in triggers.lead_source:
        return False
    return set(triggers.tags) <= set(lead.tags or [])


def build_input(config: WorkflowConfig, lead: Lead, run_id: str) -> LeadFollowUpInput:
    """Snapshot the config into the run's input: later edits change new runs only."""
    actions = LeadNurturingActions.model_validate(config.actions)
    steps = [
        FollowUpStep(
            delay_hours=actions.initial_delay_minutes / 60,
            template_key=actions.message_template,
            template=config.templates[actions.message_template],
            channel=actions.channel,
            subject=actions.subject,
        )
    ]
    steps += [
        FollowUpStep(
            delay_hours=follow_up.delay_hours,
            template_key=follow_up.message_template,
            template=config.templates[follow_up.message_template],
            channel=follow_up.channel or actions.channel,
            subject=follow_up.subject or actions.subject,
        )
        for follow_up in actions.follow_up
    ]
    return LeadFollowUpInput(
        company_id=lead.company_id,
        lead_id=lead.id,
        config_id=config.id,
        run_id=run_id,
        steps=steps,
        send_window=actions.send_window,
        personalise=actions.personalize,
    )


async def matching_configs(session: AsyncSession, lead: Lead) -> list[WorkflowConfig]:
    configs = await session.scalars(
        select(WorkflowConfig)
        .where(
            WorkflowConfig.company_id == lead.company_id,
            WorkflowConfig.workflow_type == WorkflowType.lead_nurturing,
            WorkflowConfig.active.is_(True),
        )
        .order_by(WorkflowConfig.created_at)
    )
    return [config for config in configs if matches(config, lead)]


async def start_sequence(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    lead: Lead,
    config: WorkflowConfig,
    trigger_type: str,
) -> WorkflowRun:
    """Record a run, commit (so the worker's activities can read lead and run), then start the workflow.

    Raises ``Conflict`` if this lead already has a live sequence for this config. If Temporal cannot be
    reached the run stays recorded as ``failed`` with the reason, and can be triggered again by hand.
    """
    workflow_id = workflow_id_for(lead.id, config.id)
    live = await session.scalar(
        select(WorkflowRun.id).where(
            WorkflowRun.temporal_workflow_id == workflow_id, WorkflowRun.status.in_(ACTIVE_RUN_STATES)
        )
    )
    if live:
        raise Conflict(f"Lead {lead.id} already has a running sequence for workflow config {config.id} ({live})")
    run = WorkflowRun(
        id=new_id("run"),
        company_id=lead.company_id,
        workflow_config_id=config.id,
        workflow_type=WorkflowType.lead_nurturing,
        temporal_workflow_id=workflow_id,
        status="pending",
        trigger_type=trigger_type,
        trigger_id=lead.id,
    )
    session.add(run)
    workflow_input = build_input(config, lead, run.id)
    await session.commit()
    try:
        handle = await client.start_workflow(
            LeadFollowUpWorkflow.run,
            workflow_input,
            id=workflow_id,
            task_queue=settings.task_queue(QueueKind.MAIN),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(COMPANY_ID, lead.company_id),
                    SearchAttributePair(ENTITY_ID, lead.id),
                    SearchAttributePair(WORKFLOW_CONFIG_ID, config.id),
                ]
            ),
            static_summary=f"Follow-up of {lead.id} by '{config.name}' ({len(workflow_input.steps)} steps)",
            memo={"run_id": run.id, "trigger_type": trigger_type},
        )
    except WorkflowAlreadyStartedError as exc:
        await session.delete(run)
        await session.commit()
        raise Conflict(f"Lead {lead.id} already has a running sequence for workflow config {config.id}") from exc
    except RPCError as exc:
        run.status = "failed"
        run.error = f"could not start on Temporal: {exc.message}"
        run.completed_at = utcnow()
        await session.commit()
        log.error("could not start %s for run %s: %s", workflow_id, run.id, exc.message)
        return run
    run.temporal_run_id = handle.first_execution_run_id or handle.result_run_id
    run.status = "running"
    await session.commit()
    log.info("started %s (run %s, temporal run %s) by %s", workflow_id, run.id, run.temporal_run_id, trigger_type)
    return run


async def start_matching(
    session: AsyncSession, client: Client, settings: Settings, lead: Lead, trigger_type: str
) -> list[WorkflowRun]:
    """One sequence per active lead-nurturing config whose triggers match the lead."""
    runs = []
    for config in await matching_configs(session, lead):
        try:
            runs.append(await start_sequence(session, client, settings, lead, config, trigger_type))
        except Conflict:
            log.info("lead %s already in sequence for config %s; not starting another", lead.id, config.id)
    return runs


async def signal_lead(
    session: AsyncSession, client: Client, lead_id: str, event: LeadEvent, interaction_id: str | None = None
) -> int:
    """Tell every live sequence of the lead; returns how many were told. A finished run is not an error."""
    workflow_ids = await session.scalars(
        select(WorkflowRun.temporal_workflow_id).where(
            WorkflowRun.trigger_id == lead_id,
            WorkflowRun.workflow_type == WorkflowType.lead_nurturing,
            WorkflowRun.status.in_(ACTIVE_RUN_STATES),
        )
    )
    told = 0
    for workflow_id in set(workflow_ids):
        handle: WorkflowHandle[LeadFollowUpWorkflow, object] = client.get_workflow_handle_for(
            LeadFollowUpWorkflow.run, workflow_id
        )
        try:
            await handle.signal(
                LeadFollowUpWorkflow.lead_event, LeadEventSignal(event=event, interaction_id=interaction_id)
            )
            told += 1
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            log.info("sequence %s already finished; %s not delivered", workflow_id, event)
    if told:
        log.info("lead %s %s: told %d running sequence(s)", lead_id, event, told)
    return told
