"""The contract of ``LeadFollowUpWorkflow``: its input, signal, query and activity payloads.

Workflows carry IDs, never personal data: names, addresses and message bodies stay in the database and
activities load them, so deleting a lead leaves no email address in any workflow history.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from schemas.leads import Channel


class SendWindow(BaseModel):
    """When a step may go out, in the recipient's time zone (the lead's, else the company's).

    SMS additionally never goes out between 21:00 and 08:00 recipient time, whatever this says.
    """

    start: str = Field("09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="opening time, HH:MM")
    end: str = Field("17:00", pattern=r"^([01]\d|2[0-4]):[0-5]\d$", description="closing time, HH:MM")
    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default=[0, 1, 2, 3, 4], min_length=1, description="ISO weekdays, Monday=0 ... Sunday=6"
    )

    @model_validator(mode="after")
    def _opens_at_some_time(self) -> SendWindow:
        if self.start == self.end:
            raise ValueError(f"the window opens and closes at the same time ({self.start})")
        return self

    def allows_sms(self) -> bool:
        """Whether any minute of the window falls in the SMS hours (08:00-21:00); a window may cross midnight."""
        start, end = _minutes(self.start), _minutes(self.end)
        spans = [(start, end)] if start < end else [(start, 24 * 60), (0, end)]
        return any(low < SMS_CLOSES_MINUTE and high > SMS_OPENS_MINUTE for low, high in spans)


SMS_OPENS_MINUTE = 8 * 60
SMS_CLOSES_MINUTE = 21 * 60


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class FollowUpStep(BaseModel):
    """One message of the sequence, as it was configured when the run started."""

    delay_hours: float = Field(ge=0, description="wait after the previous step (the first step waits initial delay)")
    template_key: str
    template: str
    channel: Channel
    subject: str | None = None


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


# ---- activity payloads


class PlanSendInput(BaseModel):
    company_id: str
    lead_id: str
    channel: Channel
    not_before: datetime
    send_window: SendWindow | None


class StepInput(BaseModel):
    """Identifies one step of one run; ``idempotency_key`` is ``{workflow_id}/{run_id}/{step}``."""

    idempotency_key: str
    company_id: str
    lead_id: str
    config_id: str
    run_id: str
    step: int
    step_spec: FollowUpStep
    personalise: bool = False


class ComposedMessage(BaseModel):
    delivery_id: str
    """The ``message_deliveries`` row holding recipient, subject and body (the history holds only this id)."""
    skipped_reason: str | None = None
    """Set when nothing can be sent (no address on the lead, lead gone, suppressed)."""


class DeliveryOutcome(BaseModel):
    delivery_id: str
    status: str
    """sent | recorded | suppressed | failed | unknown"""


class FinishRunInput(BaseModel):
    run_id: str
    status: str
    """completed | stopped | failed"""
    steps_sent: int
    stopped_by: LeadEvent | None = None
