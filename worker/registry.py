"""Which workflows and activities run on which task queue. The only place that wires them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.system import SystemActivities
from core.config import Settings
from schemas.temporal import QueueKind
from workflows.system import SystemCheckWorkflow


@dataclass(frozen=True)
class QueueWiring:
    kind: QueueKind
    workflows: Sequence[type]
    activities: Sequence[Callable[..., Any]]
    max_concurrent_activities: int | None = None


def wiring(settings: Settings, sessions: async_sessionmaker[AsyncSession], identity: str) -> list[QueueWiring]:
    system = SystemActivities(sessions, identity)
    return [
        QueueWiring(
            kind=QueueKind.MAIN,
            workflows=[SystemCheckWorkflow],
            activities=[system.record_system_check],
        ),
    ]
