"""The contract of ``LeadFollowUpWorkflow``: its input, signal and query (activity payloads: ``schemas.messaging``).

Workflows carry IDs, never personal data: names, addresses and message bodies stay in the database and
activities load them, so deleting a lead leaves no email address in any workflow history.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from schemas.messaging import MessageSpec, SendWindow


class FollowUpStep(MessageSpec):
    """One message of the sequence, as it was configured when the run started."""

    delay_hours: float = Field(ge=0, description="wait after the previous step (the first step waits initial delay)")


class LeadFollowUpInput(BaseModel):
    company_id: str
    lead_id: str
    config_id: str
    run_id: str
    """The ``workflow_runs`` row that mirrors this execution."""
    steps: list[FollowUpStep]
    """A snapshot: editing the config later changes new runs, not this one."""
    send_window: SendWindow | None = None
    personalise: bool = False


class LeadEvent(StrEnum):
    replied = "replied"
    unsubscribed = "unsubscribed"
    converted = "converted"
    lost = "lost"
    deleted = "deleted"


class LeadEventSignal(BaseModel):
    event: LeadEvent
    interaction_id: str | None = None


class RunState(StrEnum):
    waiting = "waiting"
    sending = "sending"
    completed = "completed"
    stopped = "stopped"


class FollowUpProgress(BaseModel):
    """What the ``progress`` query answers: enough for an operator or the API to show the live state."""

    state: RunState
    steps_total: int
    steps_sent: int
    next_step: int | None
    next_step_template: str | None
    next_step_at: datetime | None
    stopped_by: LeadEvent | None
