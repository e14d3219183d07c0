"""Every side effect of a lead follow-up sequence. Activities are idempotent under their step key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from core.config import Settings
from schemas.lead_follow_up import (
    ComposedMessage,
    DeliveryOutcome,
    FinishRunInput,
    PlanSendInput,
    StepInput,
)


class LeadFollowUpActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    @activity.defn
    async def plan_send_time(self, input: PlanSendInput) -> datetime:
        """The first moment at or after ``not_before`` inside the send window in the recipient's zone."""
        raise NotImplementedError

    @activity.defn
    async def compose_message(self, input: StepInput) -> ComposedMessage:
        """Render the step's template with the lead's current data into a pending delivery row."""
        raise NotImplementedError

    @activity.defn
    async def deliver_message(self, input: StepInput) -> DeliveryOutcome:
        """Check suppression, send once, record the outbound interaction."""
        raise NotImplementedError

    @activity.defn
    async def finish_run(self, input: FinishRunInput) -> None:
        """Write the run's final status and results."""
        raise NotImplementedError
