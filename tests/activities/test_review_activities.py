"""The shared message path sending to a customer, and the review workflow's record activities, against a real
database (SQLite and PostgreSQL) and a real SMTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.outbound import OutboundActivities
from activities.reviews import ReviewActivities
from core.config import Settings
from core.ids import new_id
from core.security import verify_unsubscribe
from db.base import utcnow
from db.models import Company, Customer, DomainEvent, Interaction, MessageDelivery, Referral, Review, Sale, WorkflowRun
from db.session import transaction
from schemas.leads import Channel
from schemas.messaging import MessageContext, MessageSpec, StepInput
from schemas.review_request import IssueReferralInput, ReferralExpiryInput, ReferralSent, ReviewRequestSent
from tests.activities.test_outbound_activities import load, smtp_settings
from tests.support.smtp_server import SmtpServer, text_of

REVIEW_LINK = "https://g.page/r/acme/review"


@dataclass
class Purchase:
    company_id: str
    customer_id: str
    sale_id: str
    review_id: str
    run_id: str

    def step(self, template: str, context: MessageContext, step: int = 0, subject: str | None = None) -> StepInput:
        return StepInput(
            idempotency_key=f"review-request/{self.sale_id}/{self.run_id}/{step}",
            company_id=self.company_id,
            contact_id=self.customer_id,
            config_id=None,
            run_id=self.run_id,
            step=step,
            step_spec=MessageSpec(template_key=f"t{step}", template=template, channel=Channel.email, subject=subject),
            context=context,
        )

    def issue(self) -> IssueReferralInput:
        return IssueReferralInput(
            idempotency_key=f"review-request/{self.sale_id}/{self.run_id}/referral",
            company_id=self.company_id,
            customer_id=self.customer_id,
            review_id=self.review_id,
            run_id=self.run_id,
            offer="$20 off for new customers",
            referrer_offer="10% off next purchase",
            expires_in_days=30,
            max_uses=5,
        )


@pytest.fixture
def env() -> ActivityEnvironment:
    return ActivityEnvironment()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


async def seed(sessions: async_sessionmaker[AsyncSession], review_links: dict[str, str] | None = None) -> Purchase:
    company = Company(
        id=new_id("cmp"),
        name="Acme Plumbing",
        timezone="UTC",
        postal_address="1 Main Street",
        settings={"review_links": review_links if review_links is not None else {"google": REVIEW_LINK}},
    )
    customer = Customer(id=new_id("cust"), company_id=company.id, name="Grace Hopper", email="grace@example.com")
    sale = Sale(
        id=new_id("sale"),
        company_id=company.id,
        customer_id=customer.id,
        service_name="Boiler service",
        amount=Decimal("240.00"),
        status="completed",
    )
    review = Review(
        id=new_id("rev"), company_id=company.id, customer_id=customer.id, sale_id=sale.id, platform="google"
    )
    run = WorkflowRun(
        id=new_id("run"),
        company_id=company.id,
        workflow_type="review_referral",
        temporal_workflow_id=f"review-request/{sale.id}",
        status="running",
        trigger_type="sale_completed",
        trigger_id=sale.id,
    )
    async with transaction(sessions) as session:
        session.add(company)
        await session.flush()
        session.add(customer)
        await session.flush()
        session.add_all([sale, run])
        await session.flush()
        session.add(review)
    return Purchase(company.id, customer.id, sale.id, review.id, run.id)


async def test_a_customer_gets_the_review_request_with_the_platform_link_and_unsubscribe(
    settings: Settings, db: async_sessionmaker[AsyncSession], smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    configured = smtp_settings(settings, smtp)
    outbound, reviews = OutboundActivities(db, configured), ReviewActivities(db)
    purchase = await seed(db)
    step = purchase.step(
        "Hi {{first_name}}, how was {{service_name}} ({{amount}})? Review us on {{platform}}: {{review_link}}",
        MessageContext(sale_id=purchase.sale_id, review_platform="google"),
        subject="About {{service_name}}",
    )

    assert (await env.run(outbound.compose_message, step)).skipped_reason is None
    outcome = await env.run(outbound.deliver_message, step)
    assert outcome.status == "sent"
    [message] = smtp.messages
    assert message["Subject"] == "About Boiler service"
    assert message["To"] == "Grace Hopper <grace@example.com>"
    assert f"Hi Grace, how was Boiler service (240.00)? Review us on Google: {REVIEW_LINK}" in text_of(message)
    link = message["List-Unsubscribe"].strip("<>")
    assert verify_unsubscribe(configured, link.rsplit("/", 1)[1]) == (purchase.company_id, purchase.customer_id)
    [delivery] = await load(db, MessageDelivery, idempotency_key=step.idempotency_key)
    assert (delivery.customer_id, delivery.lead_id, delivery.status) == (purchase.customer_id, None, "sent")
    assert await load(db, Interaction) == []  # a customer's messages are its delivery rows, not a lead timeline

    sent = ReviewRequestSent(review_id=purchase.review_id, delivery_id=outcome.delivery_id)
    await env.run(reviews.record_request_sent, sent)
    await env.run(reviews.record_request_sent, sent)  # a retry records nothing twice
    [review] = await load(db, Review, id=purchase.review_id)
    assert review.request_sent_at == delivery.sent_at
    requested = await load(db, DomainEvent, type="review.requested")
    assert [event.entity_id for event in requested] == [purchase.review_id]


async def test_without_a_review_link_the_request_is_skipped_and_says_why(
    settings: Settings, db: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    purchase = await seed(db, review_links={"facebook": "https://facebook.com/acme/reviews"})
    step = purchase.step("{{review_link}}", MessageContext(sale_id=purchase.sale_id, review_platform="google"))
    composed = await env.run(OutboundActivities(db, settings).compose_message, step)
    assert composed.skipped_reason == "the company has no review link for google"


async def test_an_unsubscribed_customer_is_suppressed_right_before_sending(
    settings: Settings, db: async_sessionmaker[AsyncSession], smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    outbound = OutboundActivities(db, smtp_settings(settings, smtp))
    purchase = await seed(db)
    step = purchase.step("Hello {{name}}", MessageContext())
    await env.run(outbound.compose_message, step)
    async with transaction(db) as session:
        customer = await session.get(Customer, purchase.customer_id)
        assert customer is not None
        customer.unsubscribed_at = utcnow()
    outcome = await env.run(outbound.deliver_message, step)
    assert outcome.status == "suppressed"
    assert smtp.messages == []
    [delivery] = await load(db, MessageDelivery, idempotency_key=step.idempotency_key)
    assert delivery.error == "the customer unsubscribed"


async def test_a_referral_is_issued_once_with_a_readable_code_and_the_same_offer_with_or_without_a_review(
    settings: Settings, db: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    reviews = ReviewActivities(db)
    purchase = await seed(db)
    issued = await env.run(reviews.issue_referral, purchase.issue())
    assert await env.run(reviews.issue_referral, purchase.issue()) == issued  # a retry finds the same one
    [referral] = await load(db, Referral, customer_id=purchase.customer_id)
    assert referral.id == issued.referral_id
    assert referral.code.startswith("GRACE-") and len(referral.code) == len("GRACE-") + 8
    assert (referral.status, referral.max_uses, referral.times_used) == ("created", 5, 0)
    assert referral.review_id is None  # no review was left: the offer is the same, just not linked
    assert referral.expires_at is not None
    assert abs(referral.expires_at - referral.created_at - timedelta(days=30)) < timedelta(seconds=1)
    assert [e.entity_id for e in await load(db, DomainEvent, type="referral.created")] == [referral.id]

    # The offer reaches the customer: "sent", once.
    step = purchase.step("Share {{referral_code}}", MessageContext(referral_id=referral.id), step=2)
    outbound = OutboundActivities(db, settings)
    await env.run(outbound.compose_message, step)
    [delivery] = await load(db, MessageDelivery, idempotency_key=step.idempotency_key)
    assert delivery.body == f"Share {referral.code}"
    await env.run(reviews.record_referral_sent, ReferralSent(referral_id=referral.id, delivery_id=delivery.id))
    [sent] = await load(db, Referral, id=referral.id)
    assert sent.status == "sent" and sent.sent_at is not None


async def test_a_referral_after_a_review_links_it_and_expiry_marks_it_once(
    db: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    reviews = ReviewActivities(db)
    purchase = await seed(db)
    async with transaction(db) as session:
        review = await session.get(Review, purchase.review_id)
        assert review is not None
        review.status, review.rating, review.submitted_at = "submitted", 2, utcnow()
    issued = await env.run(reviews.issue_referral, purchase.issue())
    [referral] = await load(db, Referral, id=issued.referral_id)
    # A two-star review gets exactly the offer a five-star one (or none) gets.
    assert (referral.review_id, referral.offer, referral.referrer_offer) == (
        purchase.review_id,
        "$20 off for new customers",
        "10% off next purchase",
    )

    assert issued.expires_at is not None
    expiry = ReferralExpiryInput(
        company_id=purchase.company_id, referral_id=issued.referral_id, expires_at=issued.expires_at
    )
    await env.run(reviews.expire_referral, expiry)
    await env.run(reviews.expire_referral, expiry)
    [expired] = await load(db, Referral, id=issued.referral_id)
    assert expired.status == "expired"
    assert len(await load(db, DomainEvent, type="referral.expired")) == 1
