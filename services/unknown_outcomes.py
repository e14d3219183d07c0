"""Messages whose outcome no attempt could settle (``unknown``): how many, which, and a person's resend.

The send path resolves what it can by itself (an email is resent under its Message-ID, an SMS provider is asked
first); what is left here is shown on the run (``results.unresolved``), the lead's timeline and the health
report, until a manager resends it through ``ResendDeliveryWorkflow``.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from core.config import Settings
from core.temporal import ui_link
from db.models import MessageDelivery, User
from schemas.common import Page, PageRequest
from schemas.messaging import DeliveryResendAccepted, DeliveryStatus, ResendDeliveryInput
from schemas.temporal import QueueKind, run_attributes
from services import audit
from services.errors import Conflict, ServiceUnavailable
from services.paging import paginate
from services.tenancy import owned
from workflows.messaging import ResendDeliveryWorkflow, resend_workflow_id

log = logging.getLogger(__name__)

UNKNOWN = DeliveryStatus.unknown.value


async def count(session: AsyncSession, company_id: str) -> int:
    """The company's messages with an unknown outcome."""
    unknown = await session.scalar(
        select(func.count())
        .select_from(MessageDelivery)
        .where(MessageDelivery.company_id == company_id, MessageDelivery.status == UNKNOWN)
    )
    return unknown or 0


async def list_deliveries(
    session: AsyncSession, actor: User, status: DeliveryStatus | None, page: PageRequest
) -> Page[MessageDelivery]:
    query = select(MessageDelivery).where(MessageDelivery.company_id == actor.company_id)
    if status is not None:
        query = query.where(MessageDelivery.status == status.value)
    return await paginate(
        session,
        query,
        page,
        sortable={"created_at": MessageDelivery.created_at, "sent_at": MessageDelivery.sent_at},
        default_sort="created_at",
        tie_breaker=MessageDelivery.id,
    )


async def read(session: AsyncSession, actor: User, delivery_id: str) -> MessageDelivery:
    return await owned(session, actor, MessageDelivery, delivery_id, "delivery")


async def resend(
    session: AsyncSession, client: Client, settings: Settings, actor: User, delivery_id: str
) -> DeliveryResendAccepted:
    """Start the resend of an ``unknown`` delivery: the email again under its Message-ID, the SMS only if the
    provider has no such message. 409 for any other status, or while a resend of it is under way."""
    delivery = await read(session, actor, delivery_id)
    if delivery.status != UNKNOWN:
        raise Conflict(
            f"Delivery {delivery.id} is {delivery.status}; only a delivery with an unknown outcome is resent"
        )
    workflow_id = resend_workflow_id(delivery.id)
    try:
        await client.start_workflow(
            ResendDeliveryWorkflow.run,
            ResendDeliveryInput(delivery_id=delivery.id, requested_by=actor.id),
            id=workflow_id,
            task_queue=settings.task_queue(QueueKind.MAIN),
            search_attributes=run_attributes(
                delivery.company_id, delivery.lead_id or delivery.customer_id or delivery.id
            ),
            static_summary=f"Resend of {delivery.channel} {delivery.id}, whose outcome was unknown",
        )
    except WorkflowAlreadyStartedError as exc:
        raise Conflict(f"A resend of delivery {delivery.id} is already under way") from exc
    except RPCError as exc:
        raise ServiceUnavailable(f"Temporal is not reachable; delivery {delivery.id} was not resent") from exc
    audit.record(session, actor.company_id, actor, "delivery.resend_requested", "delivery", delivery.id)
    log.info(
        "user %s asked to resend %s %s (outcome unknown: %s)", actor.id, delivery.channel, delivery.id, delivery.error
    )
    return DeliveryResendAccepted(
        delivery_id=delivery.id,
        status=delivery.status,
        workflow_id=workflow_id,
        temporal_ui_url=ui_link(settings, workflow_id),
    )
