"""A content schedule's run: take the schedule's next topic and record the content and the run that will write it.

Atomic: the topic counter moves in the same transaction that adds the content, so two runs never take the
same turn and a failed attempt takes none. The ids come from the workflow, so a retried attempt after a commit
finds its own content and does not take another topic.
"""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from db.content import new_content
from db.models import Company, Content, ContentSchedule, WorkflowRun
from schemas.content import ContentType
from schemas.content_schedules import ScheduledRun, brief_for
from schemas.content_workflows import Publisher, ScheduledContent
from schemas.workflow_configs import WorkflowType

log = logging.getLogger(__name__)

SCHEDULE_RUN_KEY = "schedule_run"
"""Content metadata naming the scheduled workflow that asked for the piece."""


class ScheduleActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def start_scheduled_content(self, run: ScheduledRun) -> ScheduledContent | None:
        """The content of this run with the next topic, ready to write; ``None`` if the schedule is gone."""
        async with self._sessions() as session:
            # The counter first: its write lock makes concurrent runs queue up (SQLite included) instead of
            # reading the same turn.
            taken = await session.scalar(
                update(ContentSchedule)
                .where(ContentSchedule.id == run.schedule_id)
                .values(runs_started=ContentSchedule.runs_started + 1)
                .returning(ContentSchedule.runs_started)
            )
            schedule = await session.get(ContentSchedule, run.schedule_id, populate_existing=True)
            company = await session.get(Company, schedule.company_id) if schedule else None
            if taken is None or schedule is None or company is None or not schedule.topics:
                await session.rollback()
                log.warning("content schedule %s is gone or has no topics; nothing to write", run.schedule_id)
                return None
            existing = await session.get(Content, run.content_id)
            if existing is not None:  # an earlier attempt committed: this one takes no turn
                scheduled = _result(run, schedule, company.id, str(existing.parameters.get("topic", "")))
                await session.rollback()
                return scheduled
            topic = schedule.topics[(taken - 1) % len(schedule.topics)]
            brief = brief_for(ContentType(schedule.content_type), topic, schedule.parameters)
            content = new_content(
                session, company, brief, created_by=schedule.id, schedule=schedule, content_id=run.content_id
            )
            content.meta = {SCHEDULE_RUN_KEY: run.scheduled_by}
            session.add(
                WorkflowRun(
                    id=run.run_id,
                    company_id=company.id,
                    workflow_config_id=schedule.workflow_config_id,
                    workflow_type=WorkflowType.content_generation,
                    temporal_workflow_id=run.workflow_id,
                    status="running",
                    trigger_type="schedule",
                    trigger_id=content.id,
                )
            )
            scheduled = _result(run, schedule, company.id, topic)
            await session.commit()
        log.info(
            "schedule %s: run %d writes %s about %r (%s)",
            run.schedule_id,
            taken,
            run.content_id,
            topic,
            run.scheduled_by,
        )
        return scheduled


def _result(run: ScheduledRun, schedule: ContentSchedule, company_id: str, topic: str) -> ScheduledContent:
    return ScheduledContent(
        content_id=run.content_id,
        run_id=run.run_id,
        publish_to=Publisher(schedule.publish_to) if schedule.publish_to else None,
        company_id=company_id,
        workflow_config_id=schedule.workflow_config_id,
        topic=topic,
    )
