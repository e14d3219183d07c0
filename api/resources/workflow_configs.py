from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import CurrentUser, OptionalTemporal, SessionDep, SettingsDep
from api.pagination import ResourcesPage, data_page
from schemas.common import DataPage
from schemas.workflow_configs import (
    WorkflowConfigCreate,
    WorkflowConfigDetail,
    WorkflowConfigFilter,
    WorkflowConfigPublic,
    WorkflowConfigSummary,
    WorkflowConfigUpdate,
    WorkflowType,
)
from services import content_schedules, workflow_configs

router = APIRouter(prefix="/workflow-configs", tags=["workflow-configs"])

_UPDATE_DESCRIPTION = (
    "Change a workflow config (admins and managers). `actions` and `templates` merge into what is stored "
    "(a given `follow_up` list replaces the stored one; a null value removes a key); `triggers` is replaced.\n\n"
    "**Runs already in flight are not changed**: every run keeps the snapshot of steps, templates, channel and "
    "send window it started with, and finishes on it. The new version applies to runs started after the "
    "change. Deactivating a config stops new runs from starting automatically; it does not stop running ones."
)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_config(
    body: WorkflowConfigCreate,
    user: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporal,
    settings: SettingsDep,
) -> WorkflowConfigPublic:
    """Create a workflow config (admins and managers); templates are checked in the sandbox before saving."""
    config = await workflow_configs.create(session, user, body)
    await content_schedules.follow_config(session, temporal, settings, config)  # content_generation: its schedule
    return WorkflowConfigPublic.model_validate(config)


@router.get("")
async def list_configs(
    user: CurrentUser,
    session: SessionDep,
    page: ResourcesPage,
    workflow_type: Annotated[WorkflowType | None, Query(description="lead_nurturing, review_referral, ...")] = None,
    active: Annotated[bool | None, Query(description="only active (true) or inactive (false) configs")] = None,
) -> DataPage[WorkflowConfigSummary]:
    """Your company's workflow configs, newest first."""
    filters = WorkflowConfigFilter(workflow_type=workflow_type, active=active)
    result = await workflow_configs.list_configs(session, user, filters, page)
    return data_page(result, WorkflowConfigSummary.model_validate)


@router.get("/{workflow_id}")
async def read_config(workflow_id: str, user: CurrentUser, session: SessionDep) -> WorkflowConfigDetail:
    """One workflow config with its run statistics."""
    return await workflow_configs.read_with_stats(session, user, workflow_id)


@router.patch("/{workflow_id}", description=_UPDATE_DESCRIPTION)
async def update_config(
    workflow_id: str,
    body: WorkflowConfigUpdate,
    user: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporal,
    settings: SettingsDep,
) -> WorkflowConfigPublic:
    """Change a workflow config; runs in flight keep the version they started with."""
    config = await workflow_configs.update(session, user, workflow_id, body)
    await content_schedules.follow_config(session, temporal, settings, config)  # content_generation: its schedule
    return WorkflowConfigPublic.model_validate(config)


@router.delete("/{workflow_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_config(workflow_id: str, user: CurrentUser, session: SessionDep, temporal: OptionalTemporal) -> None:
    """Delete a workflow config (admins and managers); a content_generation config's schedule goes with it."""
    await content_schedules.forget_config(session, temporal, user, workflow_id)
    await workflow_configs.delete(session, user, workflow_id)
