"""Starting and signalling lead follow-up sequences (the run page's progress query lives in services.workflow_runs)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from core.config import Settings
from db.models import Company, Lead, WorkflowConfig, WorkflowRun
from schemas.lead_follow_up import FollowUpStep, LeadEvent, LeadEventSignal, LeadFollowUpInput
from schemas.messaging import SendWindow
from schemas.workflow_configs import LeadNurturingActions, LeadTriggers, WorkflowType
from services import companies
from services.errors import Conflict
from services.runs import RunStart, signal_live, start_recorded
from workflows.lead_follow_up import LeadFollowUpWorkflow

log = logging.getLogger(__name__)


def workflow_id_for(lead_id: str, config_id: str) -> str:
    return f"lead-follow-up/{lead_id}/{config_id}"


def matches(config: WorkflowConfig, lead: Lead) -> bool:
    triggers = LeadTriggers.model_validate(config.triggers or {})
    if triggers.lead_source and lead.source not in triggers.lead_source:
        return False
    return set(triggers.tags) <= set(lead.tags or [])


def build_input(
    config: WorkflowConfig, lead: Lead, run_id: str, company_window: SendWindow | None = None
) -> LeadFollowUpInput:
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
        send_window=actions.send_window or company_window,
        personalise=actions.personalize,
    )


async def matching_configs(session: AsyncSession, lead: Lead) -> list[tuple[WorkflowConfig, Company]]:
    """The active lead-nurturing configs whose triggers match, each with the company (whose send window the run
    takes when the config sets none): one query for both."""
    rows = await session.execute(
        select(WorkflowConfig, Company)
        .join(Company, Company.id == WorkflowConfig.company_id)
        .where(
            WorkflowConfig.company_id == lead.company_id,
            WorkflowConfig.workflow_type == WorkflowType.lead_nurturing,
            WorkflowConfig.active.is_(True),
        )
        .order_by(WorkflowConfig.created_at)
    )
    return [(config, company) for config, company in rows if matches(config, lead)]


async def start_sequence(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    lead: Lead,
    config: WorkflowConfig,
    trigger_type: str,
    *,
    new_lead: bool = False,
    company: Company | None = None,
) -> WorkflowRun:
    """Start the config's sequence for the lead (``services.runs.start_recorded``): ``Conflict`` while one is live.

    ``new_lead``: the lead was created in this transaction (no sequence of it can be live yet). ``company``: the
    lead's company when the caller has it already (else it is read for its send window).
    """
    steps = len(LeadNurturingActions.model_validate(config.actions).follow_up) + 1
    start = RunStart(
        workflow_id=workflow_id_for(lead.id, config.id),
        workflow_type=WorkflowType.lead_nurturing,
        company_id=lead.company_id,
        entity_id=lead.id,
        config_id=config.id,
        trigger_type=trigger_type,
        summary=f"Follow-up of {lead.id} by '{config.name}' ({steps} steps)",
    )
    window = (
        companies.send_window_of(company)
        if company is not None
        else await companies.default_send_window(session, lead.company_id)
    )
    return await start_recorded(
        session,
        client,
        settings,
        start,
        LeadFollowUpWorkflow.run,
        lambda run_id: build_input(config, lead, run_id, window),
        new_entity=new_lead,
    )


async def start_matching(
    session: AsyncSession, client: Client, settings: Settings, lead: Lead, trigger_type: str
) -> list[WorkflowRun]:
    """One sequence per active lead-nurturing config whose triggers match the new lead."""
    runs = []
    for config, company in await matching_configs(session, lead):
        try:
            runs.append(
                await start_sequence(
                    session, client, settings, lead, config, trigger_type, new_lead=True, company=company
                )
            )
        except Conflict:
            log.info("lead %s already in sequence for config %s; not starting another", lead.id, config.id)
    return runs


async def signal_lead(
    session: AsyncSession, client: Client, lead_id: str, event: LeadEvent, interaction_id: str | None = None
) -> int:
    """Tell every live sequence of the lead; returns how many were told. A finished run is not an error."""
    workflow_ids = await session.scalars(
        select(WorkflowRun.temporal_workflow_id).where(
            WorkflowRun.trigger_id == lead_id, WorkflowRun.workflow_type == WorkflowType.lead_nurturing
        )
    )
    told = await signal_live(
        session,
        client,
        workflow_ids,
        LeadFollowUpWorkflow.lead_event,
        LeadEventSignal(event=event, interaction_id=interaction_id),
    )
    if told:
        log.info("lead %s %s: told %d running sequence(s)", lead_id, event, told)
    return told
