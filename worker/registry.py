"""Which workflows and activities run on which task queue. The only place that wires them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.lead_follow_up import LeadFollowUpActivities
from activities.system import SystemActivities
from core.config import Settings
from schemas.temporal import QueueKind
from workflows.lead_follow_up import LeadFollowUpWorkflow
from workflows.system import SystemCheckWorkflow


@dataclass(frozen=True)
class QueueWiring:
    kind: QueueKind
    workflows: Sequence[type]
    activities: Sequence[Callable[..., Any]]
    max_concurrent_activities: int | None = None


def wiring(settings: Settings, sessions: async_sessionmaker[AsyncSession], identity: str) -> list[QueueWiring]:
    system = SystemActivities(sessions, identity)
    follow_up = LeadFollowUpActivities(sessions, settings)
    return [
        QueueWiring(
            kind=QueueKind.MAIN,
            workflows=[SystemCheckWorkflow, LeadFollowUpWorkflow],
            activities=[
                system.record_system_check,
                follow_up.plan_send_time,
                follow_up.compose_message,
                follow_up.deliver_message,
                follow_up.finish_run,
            ],
        ),
        # Personalised messages are written here, at most BAS_LLM_MAX_CONCURRENT at a time per worker.
        QueueWiring(
            kind=QueueKind.LLM,
            workflows=[],
            activities=[follow_up.compose_message],
            max_concurrent_activities=settings.llm_max_concurrent,
        ),
    ]
