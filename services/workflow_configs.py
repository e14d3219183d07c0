"""Workflow configurations. A lead-nurturing config is checked in full when saved, so a dangling template
reference, an unknown variable or a sandbox escape is a 422 now rather than a failed send days later."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import templates as template_engine
from core.ids import new_id
from db.base import utcnow
from db.models import Lead, User, WorkflowConfig, WorkflowRun
from schemas.common import Page, PageRequest, readable_errors
from schemas.enums import Role
from schemas.leads import SOURCE_ALIASES, LeadSource, LeadStatus
from schemas.workflow_configs import (
    LeadNurturingActions,
    LeadTriggers,
    ReviewReferralActions,
    WorkflowConfigCreate,
    WorkflowConfigDetail,
    WorkflowConfigFilter,
    WorkflowConfigPublic,
    WorkflowConfigStats,
    WorkflowConfigUpdate,
    WorkflowType,
)
from services import content_schedules
from services.errors import InvalidField
from services.merge import deep_merge
from services.paging import paginate
from services.tenancy import owned
from services.users import require_role

log = logging.getLogger(__name__)

SUCCESSFUL_RUN_STATES = ("completed", "stopped")
FAILED_RUN_STATE = "failed"
_SOURCES = {source.value for source in LeadSource}


def _first_error(prefix: str, exc: ValidationError) -> InvalidField:
    path, message = readable_errors(exc.errors())[0]
    return InvalidField(f"{prefix}.{path}" if path else prefix, message)


def _check_template(field: str, text: str, sample: dict[str, Any] = template_engine.LEAD_SAMPLE) -> None:
    try:
        template_engine.check(text, sample)
    except template_engine.TemplateRejected as exc:
        raise InvalidField(field, str(exc)) from exc


def _lead_triggers(raw: dict[str, Any]) -> dict[str, Any]:
    # LeadTriggers ignores unknown keys; a misspelt key here would silently widen the trigger to every lead.
    for key in raw:
        if key not in LeadTriggers.model_fields:
            raise InvalidField(f"triggers.{key}", f"unknown trigger; use {', '.join(LeadTriggers.model_fields)}")
    try:
        triggers = LeadTriggers.model_validate(raw)
    except ValidationError as exc:
        raise _first_error("triggers", exc) from exc
    sources = []
    for index, word in enumerate(triggers.lead_source):
        # Stored canonically: a trigger saying "manual_entry" must match leads stored as "manual".
        source = SOURCE_ALIASES.get(word, word)
        if source not in _SOURCES:
            raise InvalidField(f"triggers.lead_source.{index}", f"unknown lead source {word!r}")
        sources.append(str(source))
    return LeadTriggers(lead_source=sources, tags=triggers.tags).model_dump(mode="json")


def _lead_actions(raw: dict[str, Any], templates: dict[str, str]) -> dict[str, Any]:
    try:
        actions = LeadNurturingActions.model_validate(raw)
    except ValidationError as exc:
        raise _first_error("actions", exc) from exc
    references = [("actions.message_template", actions.message_template)]
    references += [
        (f"actions.follow_up.{index}.message_template", step.message_template)
        for index, step in enumerate(actions.follow_up)
    ]
    for field, name in references:
        if name not in templates:
            raise InvalidField(field, f"template {name!r} is not defined in templates")
    subjects = [("actions.subject", actions.subject)]
    subjects += [(f"actions.follow_up.{index}.subject", step.subject) for index, step in enumerate(actions.follow_up)]
    for field, subject in subjects:
        if subject is not None:
            _check_template(field, subject)
    window = actions.send_window
    if window is not None:
        if window.start >= window.end:
            raise InvalidField("actions.send_window.end", "the window must close after it opens")
        if not window.days or any(day not in range(7) for day in window.days):
            raise InvalidField("actions.send_window.days", "give at least one ISO weekday, Monday=0 ... Sunday=6")
    return actions.model_dump(mode="json", exclude_unset=True)


def _review_actions(raw: dict[str, Any], templates: dict[str, str]) -> dict[str, Any]:
    try:
        actions = ReviewReferralActions.model_validate(raw)
    except ValidationError as exc:
        raise _first_error("actions", exc) from exc
    for field, name in actions.template_references():
        if name not in templates:
            raise InvalidField(field, f"template {name!r} is not defined in templates")
    for field, subject in actions.subjects():
        if subject is not None:
            _check_template(field, subject, template_engine.CUSTOMER_SAMPLE)
    return actions.model_dump(mode="json", exclude_unset=True)


def _validated(
    workflow_type: str, triggers: dict[str, Any], actions: dict[str, Any], templates: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Triggers and actions as they will be stored; raises ``InvalidField`` naming the first bad field."""
    if workflow_type == WorkflowType.lead_nurturing:
        for key, text in templates.items():
            _check_template(f"templates.{key}", text)
        return _lead_triggers(triggers), _lead_actions(actions, templates)
    if workflow_type == WorkflowType.review_referral:
        for key in triggers:
            # Fair-review rule: no trigger may pick which customers are asked (by amount, by tag, by mood...).
            raise InvalidField(f"triggers.{key}", "review_referral configs take no triggers: every sale is asked alike")
        for key, text in templates.items():
            _check_template(f"templates.{key}", text, template_engine.CUSTOMER_SAMPLE)
        return {}, _review_actions(actions, templates)
    if workflow_type == WorkflowType.content_generation:
        for key in triggers:
            raise InvalidField(
                f"triggers.{key}", "content_generation configs take no triggers: they run on their schedule"
            )
        return {}, content_schedules.config_actions(actions)
    return triggers, actions


async def create(session: AsyncSession, actor: User, body: WorkflowConfigCreate) -> WorkflowConfig:
    require_role(actor, Role.admin, Role.manager)
    triggers, actions = _validated(body.workflow_type, body.triggers, body.actions, body.templates)
    now = utcnow()
    config = WorkflowConfig(
        id=new_id("wf"),
        company_id=actor.company_id,
        name=body.name,
        workflow_type=body.workflow_type,
        active=body.active,
        triggers=triggers,
        actions=actions,
        templates=body.templates,
        created_by=actor.id,
        created_at=now,
        updated_at=now,
    )
    session.add(config)
    await session.flush()
    log.info(
        "user %s created workflow config %s (%s) in %s", actor.id, config.id, config.workflow_type, actor.company_id
    )
    return config


async def get(session: AsyncSession, actor: User, config_id: str) -> WorkflowConfig:
    return await owned(session, actor, WorkflowConfig, config_id, "workflow_config")


async def list_configs(
    session: AsyncSession, actor: User, filters: WorkflowConfigFilter, page: PageRequest
) -> Page[WorkflowConfig]:
    statement = select(WorkflowConfig).where(WorkflowConfig.company_id == actor.company_id)
    if filters.workflow_type is not None:
        statement = statement.where(WorkflowConfig.workflow_type == filters.workflow_type)
    if filters.active is not None:
        statement = statement.where(WorkflowConfig.active.is_(filters.active))
    return await paginate(
        session,
        statement,
        page,
        sortable={
            "created_at": WorkflowConfig.created_at,
            "updated_at": WorkflowConfig.updated_at,
            "name": WorkflowConfig.name,
        },
        default_sort="created_at",
        tie_breaker=WorkflowConfig.id,
    )


async def read_with_stats(session: AsyncSession, actor: User, config_id: str) -> WorkflowConfigDetail:
    config = await get(session, actor, config_id)
    public = WorkflowConfigPublic.model_validate(config)
    return WorkflowConfigDetail(**public.model_dump(), stats=await _stats(session, actor, config))


async def _stats(session: AsyncSession, actor: User, config: WorkflowConfig) -> WorkflowConfigStats:
    """Run counts and the share of the config's distinct leads that are converted now, in one query."""
    row = (
        await session.execute(
            select(
                func.count(WorkflowRun.id),
                func.count(case((WorkflowRun.status.in_(SUCCESSFUL_RUN_STATES), WorkflowRun.id))),
                func.count(case((WorkflowRun.status == FAILED_RUN_STATE, WorkflowRun.id))),
                func.count(distinct(Lead.id)),
                func.count(distinct(case((Lead.status == LeadStatus.converted, Lead.id)))),
            )
            .select_from(WorkflowRun)
            # Runs of other types point at sales or content; only leads of this company count.
            .outerjoin(Lead, (Lead.id == WorkflowRun.trigger_id) & (Lead.company_id == actor.company_id))
            .where(WorkflowRun.company_id == actor.company_id, WorkflowRun.workflow_config_id == config.id)
        )
    ).one()
    total, successful, failed, leads, converted = (int(value or 0) for value in row)
    return WorkflowConfigStats(
        runs_total=total,
        runs_successful=successful,
        runs_failed=failed,
        conversion_rate=round(converted / leads, 4) if leads else 0.0,
    )


async def update(session: AsyncSession, actor: User, config_id: str, body: WorkflowConfigUpdate) -> WorkflowConfig:
    """Apply a partial change. Runs already in flight keep the snapshot they started with."""
    require_role(actor, Role.admin, Role.manager)
    config = await get(session, actor, config_id)
    templates = deep_merge(config.templates, body.templates) if body.templates is not None else config.templates
    actions = deep_merge(config.actions, body.actions) if body.actions is not None else config.actions
    triggers = body.triggers if body.triggers is not None else config.triggers
    triggers, actions = _validated(config.workflow_type, triggers, actions, templates)
    if body.name is not None:
        config.name = body.name
    if body.active is not None:
        config.active = body.active
    config.templates = templates
    config.actions = actions
    config.triggers = triggers
    await session.flush()
    log.info("user %s updated workflow config %s", actor.id, config.id)
    return config


async def delete(session: AsyncSession, actor: User, config_id: str) -> None:
    """Delete a config; runs it started keep going on their snapshot (their rows lose the config link)."""
    require_role(actor, Role.admin, Role.manager)
    config = await get(session, actor, config_id)
    await session.delete(config)
    await session.flush()
    log.info("user %s deleted workflow config %s", actor.id, config_id)
