from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep
from api.pagination import ResourcesPage, data_page
from schemas.common import DataPage
from schemas.workflow_runs import RunStatus, WorkflowRunDetail, WorkflowRunFilter, WorkflowRunPublic, WorkflowRunTrigger
from services import workflow_runs

router = APIRouter(prefix="/workflow-runs", tags=["workflow-runs"])

_TRIGGER_DESCRIPTION = (
    "Run a `lead_nurturing` config for one lead now (`entity_id` is the lead's id). The config's triggers "
    "are not checked and an inactive config may be run this way: deactivating a config only stops automatic "
    "starts. 409 if this lead already has a running sequence for this config. The answer is the new run; "
    "follow it with `GET /v1/workflow-runs/{run_id}` or its `temporal_ui_url`. Any member of the company may "
    "trigger a run (creating a lead starts the same sequences)."
)


@router.get("")
async def list_runs(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    page: ResourcesPage,
    workflow_config_id: Annotated[str | None, Query(description="only runs of this workflow config")] = None,
    run_status: Annotated[RunStatus | None, Query(alias="status", description="only runs in this status")] = None,
) -> DataPage[WorkflowRunPublic]:
    """Your company's workflow runs; sort_by started_at (default), completed_at, status or workflow_name."""
    filters = WorkflowRunFilter(workflow_config_id=workflow_config_id, status=run_status)
    result = await workflow_runs.list_runs(session, settings, user, filters, page)
    return data_page(result, WorkflowRunPublic.model_validate)


@router.post("/trigger", status_code=status.HTTP_201_CREATED, description=_TRIGGER_DESCRIPTION)
async def trigger_run(
    body: WorkflowRunTrigger, user: CurrentUser, session: SessionDep, settings: SettingsDep, client: TemporalDep
) -> WorkflowRunPublic:
    """Run a lead-nurturing config for one lead by hand."""
    return await workflow_runs.trigger(session, client, settings, user, body)


@router.get("/{run_id}")
async def read_run(
    run_id: str, request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> WorkflowRunDetail:
    """One run: the actions it performed, its results, and for a running sequence its live next step."""
    # Not TemporalDep: the record is still worth showing while Temporal is down (next_step_error says so).
    return await workflow_runs.detail(session, request.app.state.temporal, settings, user, run_id)
