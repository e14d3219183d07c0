"""Workflow runs: one Temporal execution as the product shows it, with a link to its page in the Temporal UI."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class RunStatus(StrEnum):
    pending = "pending"
    running = "running"
    completed = "completed"
    stopped = "stopped"
    """Ended early on purpose: the lead replied, unsubscribed, converted, was lost or deleted; the sale was
    refunded or cancelled; the customer unsubscribed."""
    failed = "failed"


class WorkflowRunFilter(BaseModel):
    workflow_config_id: str | None = None
    status: RunStatus | None = None


class WorkflowRunPublic(BaseModel):
    id: str
    workflow_config_id: str | None
    workflow_name: str | None
    status: RunStatus
    started_at: datetime
    completed_at: datetime | None
    trigger_type: str
    trigger_id: str | None
    temporal_ui_url: str = Field(description="this execution's page in the Temporal Web UI")


class ActionPerformed(BaseModel):
    type: str
    timestamp: datetime
    details: dict[str, Any]


class NextStep(BaseModel):
    """The live state of a running automation, as its workflow answers its ``progress`` query."""

    state: str = Field(
        description="lead follow-up: waiting, sending, completed, stopped; review request: requesting, reminding, "
        "offering_referral, sending, completed, stopped"
    )
    step: int | None = Field(description="index of the next message (0 is the first); null when none will follow")
    template: str | None
    scheduled_for: datetime | None = Field(description="when the next message is due (before send-window checks)")
    steps_sent: int
    steps_total: int
    stopped_by: str | None = Field(description="what ended it early: a reply, an opt-out, a refund...")


class WorkflowRunDetail(WorkflowRunPublic):
    actions_performed: list[ActionPerformed]
    results: dict[str, Any]
    error: str | None
    next_step: NextStep | None = Field(
        description="asked live from the running workflow; null once the run has finished or if it did not answer"
    )
    next_step_error: str | None = Field(None, description="why `next_step` could not be asked, when it could not")


class WorkflowRunTrigger(BaseModel):
    """``POST /v1/workflow-runs/trigger``: run a lead-nurturing config for one lead now."""

    workflow_config_id: str = Field(min_length=1, max_length=40)
    trigger_type: Literal["manual"] = "manual"
    entity_id: str = Field(min_length=1, max_length=40, description="the lead to run the config for")
