"""The scheduled-generation and housekeeping activities against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.content.schedules import SCHEDULE_RUN_KEY, ScheduleActivities
from activities.housekeeping import HousekeepingActivities
from core.ids import new_id
from db.base import utcnow
from db.models import (
    Company,
    Content,
    ContentSchedule,
    DomainEvent,
    IdempotencyRecord,
    Webhook,
    WebhookDelivery,
    WorkflowConfig,
    WorkflowRun,
)
from db.session import transaction
from schemas.content import ContentBrief, ContentType, SocialNetwork, Tone
from schemas.content_schedules import ScheduledRun, brief_for
from schemas.content_workflows import Publisher
from schemas.housekeeping import HousekeepingInput
from schemas.webhook_delivery import DeliveryStatus

TOPICS = ["software development", "business growth", "technology trends"]


async def seed(
    db: async_sessionmaker[AsyncSession],
    *,
    require_approval: bool = True,
    company_settings: dict[str, Any] | None = None,
    with_config: bool = False,
) -> ContentSchedule:
    company_id = new_id("cmp")
    async with transaction(db) as session:
        session.add(Company(id=company_id, name="Acme", settings=company_settings or {}))
        await session.flush()
        config_id = None
        if with_config:
            config_id = new_id("wf")
            session.add(
                WorkflowConfig(id=config_id, company_id=company_id, name="Weekly", workflow_type="content_generation")
            )
            await session.flush()
        schedule = ContentSchedule(
            id=new_id("sched"),
            company_id=company_id,
            workflow_config_id=config_id,
            content_type="blog",
            frequency="weekly",
            day_of_week="Monday",
            time_of_day="09:00",
            timezone="Europe/Paris",
            topics=TOPICS,
            parameters={"word_count": 800, "call_to_action": "Contact us for a free consultation"},
            publish_to="wordpress",
            require_approval=require_approval,
            runs_started=0,
            active=True,
        )
        session.add(schedule)
    return schedule


def scheduled_run(schedule_id: str) -> ScheduledRun:
    content_id = f"cont_{uuid.uuid4().hex[:16]}"
    return ScheduledRun(
        schedule_id=schedule_id,
        content_id=content_id,
        run_id=f"run_{uuid.uuid4().hex[:16]}",
        workflow_id=f"content-generate/{content_id}",
        scheduled_by=f"content-schedule/{schedule_id}-2027-03-15T08:00:00Z",
    )


async def test_topics_rotate_and_each_run_records_its_content_and_run(db: async_sessionmaker[AsyncSession]) -> None:
    schedule = await seed(db, with_config=True)
    activities = ScheduleActivities(db)
    runs = [scheduled_run(schedule.id) for _ in range(4)]
    results = [await ActivityEnvironment().run(activities.start_scheduled_content, run) for run in runs]

    assert [r.topic for r in results if r] == [*TOPICS, TOPICS[0]]
    async with db() as session:
        stored = await session.get(ContentSchedule, schedule.id)
        assert stored is not None and stored.runs_started == 4
        for run, result in zip(runs, results, strict=True):
            assert result is not None
            assert (result.content_id, result.run_id, result.company_id) == (
                run.content_id,
                run.run_id,
                schedule.company_id,
            )
            assert result.publish_to == Publisher.wordpress and result.workflow_config_id == schedule.workflow_config_id
            content = await session.get(Content, run.content_id)
            assert content is not None
            assert (content.type, content.status, content.schedule_id) == ("blog", "generating", schedule.id)
            assert content.company_id == schedule.company_id and content.requires_approval is True
            assert content.meta == {SCHEDULE_RUN_KEY: run.scheduled_by}
            brief = ContentBrief.model_validate(content.parameters)
            assert brief.topic == result.topic and brief.word_count == 800
            assert brief.call_to_action == "Contact us for a free consultation"
            workflow_run = await session.get(WorkflowRun, run.run_id)
            assert workflow_run is not None
            assert (workflow_run.status, workflow_run.trigger_type, workflow_run.trigger_id) == (
                "running",
                "schedule",
                run.content_id,
            )
            assert workflow_run.temporal_workflow_id == run.workflow_id
            assert workflow_run.workflow_config_id == schedule.workflow_config_id
            assert workflow_run.workflow_type == "content_generation"


async def test_a_retried_attempt_takes_no_second_topic(db: async_sessionmaker[AsyncSession]) -> None:
    schedule = await seed(db)
    activities = ScheduleActivities(db)
    run = scheduled_run(schedule.id)
    first = await ActivityEnvironment().run(activities.start_scheduled_content, run)
    again = await ActivityEnvironment().run(activities.start_scheduled_content, run)
    assert first == again and first is not None and first.topic == TOPICS[0]
    following = await ActivityEnvironment().run(activities.start_scheduled_content, scheduled_run(schedule.id))
    assert following is not None and following.topic == TOPICS[1]
    async with db() as session:
        stored = await session.get(ContentSchedule, schedule.id)
        assert stored is not None and stored.runs_started == 2
        made = await session.scalars(select(Content.id).where(Content.schedule_id == schedule.id))
        assert sorted(made) == sorted([run.content_id, following.content_id])


async def test_concurrent_runs_take_distinct_turns(db: async_sessionmaker[AsyncSession]) -> None:
    schedule = await seed(db)
    activities = ScheduleActivities(db)
    results = await asyncio.gather(
        *(ActivityEnvironment().run(activities.start_scheduled_content, scheduled_run(schedule.id)) for _ in range(3))
    )
    assert sorted(r.topic for r in results if r) == sorted(TOPICS)


async def test_a_deleted_schedule_writes_nothing(db: async_sessionmaker[AsyncSession]) -> None:
    schedule = await seed(db)
    async with transaction(db) as session:
        stored = await session.get(ContentSchedule, schedule.id)
        await session.delete(stored)
    run = scheduled_run(schedule.id)
    assert await ActivityEnvironment().run(ScheduleActivities(db).start_scheduled_content, run) is None
    async with db() as session:
        assert await session.get(Content, run.content_id) is None
        assert await session.get(WorkflowRun, run.run_id) is None


@pytest.mark.parametrize(
    ("require_approval", "company_settings", "held"),
    [
        pytest.param(False, {}, False, id="publishes-at-once"),
        pytest.param(True, {}, True, id="schedule-asks-approval"),
        pytest.param(False, {"content_requires_approval": True}, True, id="company-asks-approval"),
    ],
)
async def test_approval_follows_the_schedule_and_the_company(
    db: async_sessionmaker[AsyncSession], require_approval: bool, company_settings: dict[str, Any], held: bool
) -> None:
    schedule = await seed(db, require_approval=require_approval, company_settings=company_settings)
    run = scheduled_run(schedule.id)
    await ActivityEnvironment().run(ScheduleActivities(db).start_scheduled_content, run)
    async with db() as session:
        content = await session.get(Content, run.content_id)
        assert content is not None and content.requires_approval is held


def test_briefs_follow_the_content_type_and_parameters() -> None:
    social = brief_for(ContentType.social, "launch day", {"platform": "x", "hashtags": "#launch #saas"})
    assert (social.network, social.hashtags, social.tone, social.word_count) == (
        SocialNetwork.twitter,
        ["#launch", "#saas"],
        Tone.friendly,
        None,
    )
    newsletter = brief_for(ContentType.email, "May news", {"content_sections": "news, tips", "day_of_month": 15})
    assert (newsletter.sections, newsletter.word_count) == (["news", "tips"], 500)
    product = brief_for(ContentType.product, "Custom CRM", {"keywords": "crm, sales"})
    assert (product.title, product.product, product.keywords, product.tone) == (
        "Custom CRM",
        {"name": "Custom CRM"},
        ["crm", "sales"],
        Tone.persuasive,
    )
    blog = brief_for(ContentType.blog, "automation", {})
    assert (blog.word_count, blog.tone, blog.network) == (800, Tone.professional, None)


async def test_housekeeping_deletes_only_expired_idempotency_records(db: async_sessionmaker[AsyncSession]) -> None:
    company_id = new_id("cmp")
    now = utcnow()
    ages = {"ancient": 24 * 30, "expired": 73, "recent": 71, "fresh": 0}
    async with transaction(db) as session:
        session.add(Company(id=company_id, name="Acme"))
        await session.flush()
        for key, hours in ages.items():
            session.add(
                IdempotencyRecord(
                    company_id=company_id,
                    key=key,
                    request_fingerprint="f" * 64,
                    status_code=201,
                    response_body={"id": key},
                    created_at=now - timedelta(hours=hours),
                )
            )
    heartbeats: list[Any] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: heartbeats.append(details)
    # A batch of one: every batch is its own transaction, and the work goes on until a batch comes back short.
    activities = HousekeepingActivities(db, batch=1)
    result = await env.run(
        activities.delete_expired_idempotency_records, HousekeepingInput(idempotency_retention_hours=72)
    )
    assert result.idempotency_records_deleted == 2
    assert heartbeats == [(1,), (2,)]
    async with db() as session:
        left = await session.scalars(select(IdempotencyRecord.key).where(IdempotencyRecord.company_id == company_id))
        assert sorted(left) == ["fresh", "recent"]
    again = await env.run(
        activities.delete_expired_idempotency_records, HousekeepingInput(idempotency_retention_hours=72)
    )
    assert again.idempotency_records_deleted == 0


async def test_housekeeping_empties_the_outbox_of_old_dispatched_events_only(
    db: async_sessionmaker[AsyncSession],
) -> None:
    company_id = new_id("cmp")
    now = utcnow()
    # name: (days since dispatched or None if still in the outbox, its one delivery's status or None)
    events: dict[str, tuple[float | None, DeliveryStatus | None]] = {
        "old_unheard": (31, None),
        "old_delivered": (40, DeliveryStatus.delivered),
        "old_still_retried": (31, DeliveryStatus.pending),
        "old_undispatched": (None, None),
        "recent": (29, DeliveryStatus.delivered),
    }
    async with transaction(db) as session:
        session.add(Company(id=company_id, name="Acme"))
        webhook = Webhook(
            id=new_id("hook"),
            company_id=company_id,
            url="https://example.com/hook",
            events=["lead.created"],
            secret="s",
        )
        session.add(webhook)
        await session.flush()
        for name, (days, delivery_status) in events.items():
            dispatched_at = None if days is None else now - timedelta(days=days)
            event = DomainEvent(
                id=name,
                company_id=company_id,
                type="lead.created",
                created_at=now - timedelta(days=60),
                dispatched_at=dispatched_at,
            )
            session.add(event)
            await session.flush()
            if delivery_status is not None:
                session.add(
                    WebhookDelivery(id=new_id("whd"), webhook_id=webhook.id, event_id=name, status=delivery_status)
                )
    activities = HousekeepingActivities(db, batch=1)
    retention = HousekeepingInput(idempotency_retention_hours=72, event_retention_days=30)
    env = ActivityEnvironment()
    assert await env.run(activities.delete_dispatched_events, retention) == 2
    async with db() as session:
        left = await session.scalars(select(DomainEvent.id).where(DomainEvent.company_id == company_id))
        assert sorted(left) == ["old_still_retried", "old_undispatched", "recent"]
        # The delivered event's log row went with it (cascade); the retried one's stays.
        deliveries = await session.scalars(
            select(WebhookDelivery.event_id).where(WebhookDelivery.webhook_id == webhook.id)
        )
        assert sorted(deliveries) == ["old_still_retried", "recent"]
    assert await env.run(activities.delete_dispatched_events, retention) == 0
