"""A company with an audience for a newsletter: leads and customers, some unsubscribed, some suppressed, some
without an address, one address held by both a lead and a customer, and a neighbour company's contact.

``Audience`` says who must get the newsletter (one contact per address) and who must not, so tests assert
against what was seeded rather than hand-counted numbers.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.ids import new_id
from db.base import utcnow
from db.models import Company, Content, Customer, Lead, MessageDelivery, Publication, Suppression, WorkflowRun
from db.session import transaction
from schemas.content_workflows import NewsletterInput, NewsletterProgress

POSTAL_ADDRESS = "12 Harbour Road, Springfield 4021"
TITLE = "Spring news from Acme"
# Braces and a link: the text must go out as written, never run as a template.
BODY = "Our spring offers are here: {{ not a template }} and 20% off.\n\nRead more: https://acme.example.com/spring"
SHARED = "Sam.Shared@Example.com"
"""Held by a lead and (lower-cased) by a customer: one email, to the customer (customer ids sort first)."""


@dataclass
class Audience:
    company_id: str
    content_id: str
    publication_id: str
    run_id: str
    receives: dict[str, str] = field(default_factory=dict)
    """Lower-cased address -> the contact id the newsletter goes to: everyone counted in ``total``."""
    suppressed: set[str] = field(default_factory=set)
    """In the audience, but on the suppression list: skipped right before the send."""
    left_out: set[str] = field(default_factory=set)
    """Not in the audience at all: unsubscribed before the newsletter, or another company's."""
    leads: int = 0
    customers: int = 0

    def input(self) -> NewsletterInput:
        return NewsletterInput(
            company_id=self.company_id,
            content_id=self.content_id,
            publication_id=self.publication_id,
            run_id=self.run_id,
        )

    def expected(self, refused: Collection[str] = ()) -> NewsletterProgress:
        """The final counts when ``refused`` addresses are turned away by the SMTP server for good."""
        failed = len(set(refused) - self.suppressed)
        return NewsletterProgress(
            total=len(self.receives),
            sent=len(self.receives) - len(self.suppressed) - failed,
            skipped=len(self.suppressed),
            failed=failed,
        )

    @property
    def mailed(self) -> set[str]:
        """The addresses that must get exactly one email."""
        return set(self.receives) - self.suppressed


async def seed_audience(
    sessions: async_sessionmaker[AsyncSession], *, leads: int, customers: int, body: str | None = BODY
) -> Audience:
    """``leads`` + ``customers`` contacts with addresses (every 25th from the 7th unsubscribed, every 25th from
    the 11th suppressed), plus the shared address, three leads without one and another company's lead."""
    company = Company(id=new_id("cmp"), name="Acme Inc", postal_address=POSTAL_ADDRESS)
    neighbour = Company(id=new_id("cmp"), name="Other Co")
    content = Content(id=new_id("cont"), company_id=company.id, type="email", title=TITLE, body=body, status="approved")
    run = WorkflowRun(
        id=new_id("run"),
        company_id=company.id,
        workflow_type="content_publishing",
        temporal_workflow_id=f"content-publish/{content.id}",
        status="running",
        trigger_type="manual",
        trigger_id=content.id,
    )
    publication = Publication(
        id=new_id("pub"),
        company_id=company.id,
        content_id=content.id,
        platform="newsletter",
        status="sending",
        workflow_run_id=run.id,
    )
    audience = Audience(company.id, content.id, publication.id, run.id, leads=leads, customers=customers)
    earlier = utcnow() - timedelta(days=1)
    rows: list[Lead | Customer] = []
    suppressions: list[Suppression] = []
    for kind, count in (("lead", leads), ("customer", customers)):
        for index in range(count):
            address = f"{kind}-{index:03d}@example.com"
            model = Lead if kind == "lead" else Customer
            contact = model(
                id=new_id("lead" if kind == "lead" else "cust"),
                company_id=company.id,
                name=f"{kind.title()} {index:03d}",
                email=address,
                unsubscribed_at=earlier if index % 25 == 7 else None,
            )
            rows.append(contact)
            if contact.unsubscribed_at is not None:
                audience.left_out.add(address)
                continue
            audience.receives[address] = contact.id
            if index % 25 == 11:
                audience.suppressed.add(address)
                suppressions.append(
                    Suppression(
                        id=new_id("sup"), company_id=company.id, channel="email", address=address, reason="bounce"
                    )
                )
    shared_lead = Lead(id=new_id("lead"), company_id=company.id, name="Sam Shared", email=SHARED)
    shared_customer = Customer(id=new_id("cust"), company_id=company.id, name="Sam Shared", email=SHARED.lower())
    rows += [shared_lead, shared_customer]
    audience.receives[SHARED.lower()] = shared_customer.id
    rows += [
        Lead(id=new_id("lead"), company_id=company.id, name=f"Phone only {i}", phone=f"+1555010{i}") for i in range(3)
    ]
    rows.append(Lead(id=new_id("lead"), company_id=neighbour.id, name="Neighbour", email="neighbour@example.com"))
    audience.left_out.add("neighbour@example.com")
    async with transaction(sessions) as session:
        session.add_all([company, neighbour])
        await session.flush()
        session.add_all([content, run, *rows, *suppressions])
        await session.flush()
        session.add(publication)
    return audience


async def deliveries(sessions: async_sessionmaker[AsyncSession], audience: Audience) -> dict[str, MessageDelivery]:
    """The newsletter's delivery rows by lower-cased recipient address."""
    async with sessions() as session:
        rows = await session.scalars(
            select(MessageDelivery).where(
                MessageDelivery.idempotency_key.startswith(f"newsletter/{audience.publication_id}/")
            )
        )
        return {row.recipient.lower(): row for row in rows}


async def publication_progress(sessions: async_sessionmaker[AsyncSession], audience: Audience) -> NewsletterProgress:
    async with sessions() as session:
        publication = await session.get(Publication, audience.publication_id)
        assert publication is not None
        return NewsletterProgress.model_validate(publication.progress)


async def content_meta(sessions: async_sessionmaker[AsyncSession], audience: Audience) -> dict[str, object]:
    async with sessions() as session:
        content = await session.get(Content, audience.content_id)
        assert content is not None
        return dict(content.meta)
