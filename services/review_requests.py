"""Starting and signalling review requests: one ``ReviewRequestWorkflow`` per sale, driven by the company's
active ``review_referral`` config (or built-in defaults when a user asks by hand and none is active)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from core.config import Settings
from core.ids import new_id
from db.models import Customer, Review, Sale, WorkflowConfig, WorkflowRun
from schemas.messaging import SendWindow
from schemas.review_request import (
    ReferralOfferSpec,
    ReviewEvent,
    ReviewEventSignal,
    ReviewRequestInput,
    TimedMessage,
)
from schemas.reviews import NO_SOLICITING, PLATFORM_LABELS, RECORDED_REVIEW, ReviewPlatform, ReviewStatus
from schemas.workflow_configs import ReviewReferralActions, WorkflowType
from services import companies
from services.errors import InvalidField
from services.referrals import OfferTerms
from services.runs import RunStart, live_run, signal_live, start_recorded
from workflows.review_request import ReviewRequestWorkflow

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES = {
    "review_request": (
        "Hi {{first_name}}, thank you for choosing {{company_name}}! Would you tell others how {{service_name}} "
        "went? It takes a minute: {{review_link}}"
    ),
    "review_reminder": (
        "Hi {{first_name}}, a quick reminder: a few words about {{service_name}} would help others find "
        "{{company_name}}. {{review_link}}"
    ),
    "referral_offer": (
        "Hi {{first_name}}, thanks again for choosing {{company_name}}. Share your code {{referral_code}}: "
        "friends who use it get {{referral_offer}}{% if referrer_offer %}, and you get {{referrer_offer}}"
        "{% endif %}.{% if referral_expires_on %} Valid until {{referral_expires_on}}.{% endif %}"
    ),
}
DEFAULT_ACTIONS = ReviewReferralActions.model_validate(
    {
        "delay_hours": 24,
        "message_template": "review_request",
        "subject": "How did we do, {{first_name}}?",
        "reminders": [{"delay_hours": 72, "message_template": "review_reminder"}],
        "referral": {"message_template": "referral_offer", "subject": "A thank-you to share, {{first_name}}"},
    }
)
"""Used when a user asks for a review by hand while no review_referral config is active."""


@dataclass(frozen=True)
class ReviewRequest:
    review: Review
    run: WorkflowRun | None
    """``None`` when the review was already left: there is nothing to ask."""
    started: bool
    """False when the run already running for the sale was reused."""


def workflow_id_for(sale_id: str) -> str:
    return f"review-request/{sale_id}"


async def active_config(session: AsyncSession, company_id: str) -> WorkflowConfig | None:
    """The company's review_referral config in force: the most recently changed active one."""
    config: WorkflowConfig | None = await session.scalar(
        select(WorkflowConfig)
        .where(
            WorkflowConfig.company_id == company_id,
            WorkflowConfig.workflow_type == WorkflowType.review_referral,
            WorkflowConfig.active.is_(True),
        )
        .order_by(WorkflowConfig.updated_at.desc(), WorkflowConfig.id)
        .limit(1)
    )
    return config


def _plan(config: WorkflowConfig | None) -> tuple[ReviewReferralActions, dict[str, str]]:
    if config is None:
        return DEFAULT_ACTIONS, DEFAULT_TEMPLATES
    return ReviewReferralActions.model_validate(config.actions), dict(config.templates)


def offer_terms(config: WorkflowConfig | None) -> OfferTerms:
    """The referral offer of the config in force (or the defaults): the same for every customer."""
    referral = _plan(config)[0].referral
    if referral is None:
        return OfferTerms()
    return OfferTerms(referral.offer, referral.referrer_offer, referral.max_uses, referral.expires_in_days)


def check_can_ask(platform: ReviewPlatform, field: str = "platform") -> None:
    if platform in NO_SOLICITING:
        raise InvalidField(
            field,
            f"{PLATFORM_LABELS[platform]} does not allow businesses to ask for reviews; a review a customer left "
            "there on their own can still be recorded",
        )


def build_input(
    config: WorkflowConfig | None,
    sale: Sale,
    review: Review,
    run_id: str,
    *,
    platform: ReviewPlatform,
    request_template: str | None,
    ask_now: bool,
    company_window: SendWindow | None = None,
) -> ReviewRequestInput:
    """Snapshot the config into the run's input: later edits change new runs only."""
    actions, templates = _plan(config)
    request_key = request_template or actions.message_template
    if request_key not in templates:
        raise InvalidField("message_template", f"template {request_key!r} is not defined in the review config")

    def message(key: str, delay_hours: float, subject: str | None) -> TimedMessage:
        return TimedMessage(
            template_key=key,
            template=templates[key],
            channel=actions.channel,
            subject=subject or actions.subject,
            delay_hours=delay_hours,
        )

    referral = None
    if actions.referral is not None:
        offer = actions.referral
        referral = ReferralOfferSpec(
            message=message(offer.message_template, offer.delay_hours, offer.subject),
            offer=offer.offer,
            referrer_offer=offer.referrer_offer,
            expires_in_days=offer.expires_in_days,
            max_uses=offer.max_uses,
        )
    return ReviewRequestInput(
        company_id=sale.company_id,
        customer_id=sale.customer_id,
        sale_id=sale.id,
        review_id=review.id,
        config_id=config.id if config else None,
        run_id=run_id,
        platform=platform,
        request=message(request_key, 0 if ask_now else actions.delay_hours, actions.subject),
        reminders=[message(r.message_template, r.delay_hours, r.subject) for r in actions.reminders],
        referral=referral,
        send_window=actions.send_window or company_window,
        personalise=actions.personalize,
    )


async def review_of_sale(session: AsyncSession, sale: Sale, platform: ReviewPlatform) -> Review:
    """The sale's review row (one per sale), created ``requested`` if it has none yet."""
    review = await session.scalar(select(Review).where(Review.sale_id == sale.id))
    if review is None:
        review = Review(
            id=new_id("rev"),
            company_id=sale.company_id,
            customer_id=sale.customer_id,
            # Set, not lazy-loaded later: every view of the review names its customer (see services.sales).
            customer=sale.customer,
            sale_id=sale.id,
            platform=platform,
            status=ReviewStatus.requested,
        )
        session.add(review)
        await session.flush()
    return review


async def start(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    sale: Sale,
    *,
    trigger_type: str,
    platform: ReviewPlatform | None = None,
    request_template: str | None = None,
    ask_now: bool = False,
) -> ReviewRequest:
    """Ask the sale's customer for a review, or reuse the request already running for the sale."""
    config = await active_config(session, sale.company_id)
    chosen = platform or _plan(config)[0].platform
    check_can_ask(chosen)
    review = await review_of_sale(session, sale, chosen)
    if review.status in RECORDED_REVIEW:
        return ReviewRequest(review, None, started=False)
    workflow_id = workflow_id_for(sale.id)
    running = await live_run(session, workflow_id)
    if running is not None:
        return ReviewRequest(review, running, started=False)
    review.platform = chosen
    customer: Customer = sale.customer
    window = await companies.default_send_window(session, sale.company_id)
    run = await start_recorded(
        session,
        client,
        settings,
        RunStart(
            workflow_id=workflow_id,
            workflow_type=WorkflowType.review_referral,
            company_id=sale.company_id,
            entity_id=sale.id,
            config_id=config.id if config else None,
            trigger_type=trigger_type,
            summary=f"Review request to {customer.id} for sale {sale.id} ({PLATFORM_LABELS[chosen]})",
        ),
        ReviewRequestWorkflow.run,
        lambda run_id: build_input(
            config,
            sale,
            review,
            run_id,
            platform=chosen,
            request_template=request_template,
            ask_now=ask_now,
            company_window=window,
        ),
    )
    return ReviewRequest(review, run, started=True)


async def start_after_sale(session: AsyncSession, client: Client | None, settings: Settings, sale: Sale) -> None:
    """A completed sale: ask for a review if the company has an active review_referral config."""
    if await active_config(session, sale.company_id) is None:
        log.info("sale %s completed; no active review_referral config, so no review request", sale.id)
        return
    if client is None:
        log.error("Temporal not connected: no review request for sale %s (request it again later)", sale.id)
        return
    try:
        await start(session, client, settings, sale, trigger_type="sale_completed")
    except RPCError as exc:
        log.error("could not start the review request of sale %s: %s", sale.id, exc.message)


async def notify(session: AsyncSession, client: Client | None, sale_ids: Iterable[str], event: ReviewEvent) -> int:
    """Tell the sales' running review requests; best effort, like a lead's sequences (the change stands)."""
    workflow_ids = [workflow_id_for(sale_id) for sale_id in sale_ids]
    if client is None:
        log.error("Temporal not connected: review requests %s were not told %s", workflow_ids, event)
        return 0
    try:
        told = await signal_live(
            session, client, workflow_ids, ReviewRequestWorkflow.review_event, ReviewEventSignal(event=event)
        )
    except RPCError as exc:
        log.error("could not tell review requests %s that %s: %s", workflow_ids, event, exc.message)
        return 0
    if told:
        log.info("told %d review request(s) %s", told, event)
    return told


async def notify_customer(session: AsyncSession, client: Client | None, customer_id: str, event: ReviewEvent) -> int:
    sale_ids = await session.scalars(select(Sale.id).where(Sale.customer_id == customer_id))
    return await notify(session, client, list(sale_ids), event)
