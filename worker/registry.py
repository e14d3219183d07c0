"""Which workflows and activities run on which task queue. The only place that wires them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.backup import BackupActivities
from activities.content.generation import ContentActivities
from activities.content.newsletter import NewsletterActivities
from activities.content.publishing import PublishingActivities
from activities.content.schedules import ScheduleActivities
from activities.housekeeping import HousekeepingActivities
from activities.outbound import OutboundActivities
from activities.reviews import ReviewActivities
from activities.system import SystemActivities
from activities.webhooks import WebhookActivities
from core.config import Settings
from schemas.temporal import QueueKind
from workflows.backup import BackupWorkflow, RestoreWorkflow
from workflows.content import GenerateContentWorkflow
from workflows.content_schedule import ScheduledGenerationWorkflow
from workflows.housekeeping import HousekeepingWorkflow
from workflows.lead_follow_up import LeadFollowUpWorkflow
from workflows.messaging import ResendDeliveryWorkflow
from workflows.newsletter import NewsletterWorkflow
from workflows.publishing import PublishContentWorkflow
from workflows.review_request import ReferralExpiryWorkflow, ReviewRequestWorkflow
from workflows.system import SystemCheckWorkflow
from workflows.webhooks import DeliverWebhookWorkflow


@dataclass(frozen=True)
class QueueWiring:
    kind: QueueKind
    workflows: Sequence[type]
    activities: Sequence[Callable[..., Any]]
    max_concurrent_activities: int | None = None


def wiring(settings: Settings, sessions: async_sessionmaker[AsyncSession], identity: str) -> list[QueueWiring]:
    system = SystemActivities(sessions, identity)
    outbound = OutboundActivities(sessions, settings)
    reviews = ReviewActivities(sessions)
    content = ContentActivities(sessions, settings)
    newsletter = NewsletterActivities(sessions, settings)
    publishing = PublishingActivities(sessions, settings)
    schedules = ScheduleActivities(sessions)
    housekeeping = HousekeepingActivities(sessions)
    backups = BackupActivities(sessions, settings)
    webhooks = WebhookActivities(sessions, settings)
    return [
        QueueWiring(
            kind=QueueKind.MAIN,
            workflows=[
                SystemCheckWorkflow,
                LeadFollowUpWorkflow,
                ReviewRequestWorkflow,
                ReferralExpiryWorkflow,
                GenerateContentWorkflow,
                NewsletterWorkflow,
                PublishContentWorkflow,
                ScheduledGenerationWorkflow,
                HousekeepingWorkflow,
                BackupWorkflow,
                RestoreWorkflow,
                DeliverWebhookWorkflow,
                ResendDeliveryWorkflow,
            ],
            activities=[
                system.record_system_check,
                outbound.plan_send_time,
                outbound.compose_message,
                outbound.deliver_message,
                outbound.finish_run,
                outbound.resend_delivery,
                reviews.record_request_sent,
                reviews.issue_referral,
                reviews.record_referral_sent,
                reviews.expire_referral,
                content.record_generation_failed,
                newsletter.snapshot_audience,
                newsletter.send_batch,
                publishing.publish,
                publishing.cancel_publication,
                publishing.record_publish_failed,
                publishing.begin_newsletter,
                publishing.record_newsletter_outcome,
                publishing.prepare_publication,
                schedules.start_scheduled_content,
                housekeeping.delete_expired_idempotency_records,
                housekeeping.delete_dispatched_events,
                backups.create_backup,
                backups.verify_backup,
                backups.stop_workflows,
                backups.restore_backup,
                backups.record_backup,
                backups.record_restore,
                webhooks.attempt_delivery,
                webhooks.record_given_up,
            ],
        ),
        # Personalised messages are written here, at most BAS_LLM_MAX_CONCURRENT at a time per worker.
        QueueWiring(
            kind=QueueKind.LLM,
            workflows=[],
            activities=[outbound.compose_message, content.write_content],
            max_concurrent_activities=settings.llm_max_concurrent,
        ),
    ]
