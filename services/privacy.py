"""Privacy requests about one person, found by email address within one company: erase or export everything.

Erasure (GDPR Art. 17) goes in two steps:

1. Tell the person's running automations, best effort: each lead's follow-ups (``LeadEvent.deleted``, the lead
   service's own path) and each sale's review request (``ReviewEvent.erased``). When Temporal is away this is
   logged and the erasure goes on: the send activity re-checks the suppression list before every message, and
   finds no contact to write to. Referral expiry timers need no signal; they find their row gone.
2. In the caller's one transaction: delete the leads (with their interactions), message deliveries, the run log
   entries naming the person, referral uses, referrals issued to them, reviews, domain events about any of these
   and stored idempotent responses; delete the customer, or keep it as an anonymous "Erased customer" when it has
   sales (the business's financial records: Art. 17(3)(b)); leave one suppression entry (reason ``erased``) so
   the address is never messaged again, even if it comes back in an import.

Workflow histories in Temporal carry ids only, by design, so nothing personal remains there. The audit log names
the person by a short SHA-256 of the lowercased address (``email_fingerprint``), never by the address.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Text, cast, delete, func, or_, select, union, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from temporalio.client import Client

from db.base import utcnow
from db.models import (
    Customer,
    DomainEvent,
    IdempotencyRecord,
    Interaction,
    Lead,
    MessageDelivery,
    Referral,
    ReferralUse,
    Review,
    Sale,
    Suppression,
    User,
    WorkflowAction,
    WorkflowRun,
)
from schemas.ids import to_api_id
from schemas.lead_follow_up import LeadEvent
from schemas.leads import Channel
from schemas.privacy import (
    ERASED_CUSTOMER_NAME,
    ERASED_REASON,
    ERASED_TAG,
    CustomerExport,
    DeliveryExport,
    ErasedCounts,
    ErasureResult,
    EventExport,
    InteractionExport,
    LeadExport,
    PersonExport,
    ReferralExport,
    ReferralUseExport,
    ReviewExport,
    SaleExport,
    SuppressionExport,
    WorkflowRunExport,
)
from schemas.review_request import ReviewEvent
from services import audit, idempotency, leads, opt_outs, review_requests

log = logging.getLogger(__name__)

FINGERPRINT_LENGTH = 16
"""Hex digits of SHA-256 kept in the audit log: enough to match a later request, not the address itself."""
# Payload keys through which an event (or a run log entry) names one of the person's records.
_REFERENCING_KEYS = ("id", "lead_id", "customer_id", "entity_id")

ExportModel = TypeVar("ExportModel", bound=BaseModel)


def email_fingerprint(email: str) -> str:
    """What the audit log keeps of an address: the first hex digits of the SHA-256 of its lowercased form."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:FINGERPRINT_LENGTH]


@dataclass(frozen=True)
class Person:
    """The leads and customers of one company with this address, and the ids of everything hanging off them."""

    company_id: str
    email: str
    leads: list[Lead]
    customers: list[Customer]
    interaction_ids: list[str]
    sale_ids: list[str]
    review_ids: list[str]
    referral_ids: list[str]
    """Referral codes issued to the person's customers."""

    @property
    def lead_ids(self) -> list[str]:
        return [lead.id for lead in self.leads]

    @property
    def customer_ids(self) -> list[str]:
        return [customer.id for customer in self.customers]

    @property
    def record_ids(self) -> set[str]:
        """Every id of the person's records, in both spellings the API surfaces use (``lead_x``, ``lead-x``)."""
        canonical = [
            *self.lead_ids,
            *self.customer_ids,
            *self.interaction_ids,
            *self.sale_ids,
            *self.review_ids,
            *self.referral_ids,
        ]
        return set(canonical) | {to_api_id(record_id) or record_id for record_id in canonical}


def _same_address(column: Any, email: str) -> ColumnElement[bool]:
    result: ColumnElement[bool] = func.lower(column) == email
    return result


def _mentions(column: Any, email: str) -> ColumnElement[bool]:
    """The JSON column's text holds the address, in any spelling a database stores (SQLite escapes non-ASCII)."""
    text = func.lower(cast(column, Text), type_=Text)
    spellings = {email, json.dumps(email)[1:-1], json.dumps(email, ensure_ascii=False)[1:-1]}
    return or_(*(text.contains(spelling, autoescape=True) for spelling in spellings))


def _references(column: Any, ids: Collection[str]) -> ColumnElement[bool]:
    return or_(*(column[key].as_string().in_(ids) for key in _REFERENCING_KEYS))


async def _ids(session: AsyncSession, column: Any, *conditions: ColumnElement[bool]) -> list[str]:
    return list(await session.scalars(select(column).where(*conditions)))


async def find(session: AsyncSession, company_id: str, email: str) -> Person:
    """The company's leads and customers whose address is ``email`` (case-insensitive)."""
    email = email.strip().lower()
    found_leads = list(
        await session.scalars(
            select(Lead)
            .where(Lead.company_id == company_id, _same_address(Lead.email, email))
            .order_by(Lead.created_at, Lead.id)
        )
    )
    found_customers = list(
        await session.scalars(
            select(Customer)
            .where(Customer.company_id == company_id, _same_address(Customer.email, email))
            .order_by(Customer.created_at, Customer.id)
        )
    )
    lead_ids = [lead.id for lead in found_leads]
    customer_ids = [customer.id for customer in found_customers]
    return Person(
        company_id=company_id,
        email=email,
        leads=found_leads,
        customers=found_customers,
        interaction_ids=await _ids(session, Interaction.id, Interaction.lead_id.in_(lead_ids)),
        sale_ids=await _ids(session, Sale.id, Sale.customer_id.in_(customer_ids)),
        review_ids=await _ids(session, Review.id, Review.customer_id.in_(customer_ids)),
        referral_ids=await _ids(session, Referral.id, Referral.customer_id.in_(customer_ids)),
    )


async def companies_holding(session: AsyncSession, email: str) -> list[str]:
    """Every company with a lead, customer, message or suppression entry for the address (the command line)."""
    email = email.strip().lower()
    holders = union(
        select(Lead.company_id).where(_same_address(Lead.email, email)),
        select(Customer.company_id).where(_same_address(Customer.email, email)),
        select(MessageDelivery.company_id).where(_same_address(MessageDelivery.recipient, email)),
        select(Suppression.company_id).where(
            Suppression.channel == Channel.email, _same_address(Suppression.address, email)
        ),
    )
    return sorted(await session.scalars(select(holders.subquery().c.company_id)))


def _deliveries_condition(person: Person) -> ColumnElement[bool]:
    result: ColumnElement[bool] = (MessageDelivery.company_id == person.company_id) & or_(
        MessageDelivery.lead_id.in_(person.lead_ids),
        MessageDelivery.customer_id.in_(person.customer_ids),
        _same_address(MessageDelivery.recipient, person.email),
    )
    return result


def _events_condition(person: Person) -> ColumnElement[bool]:
    """Events about one of the person's records (as the entity, or named in the payload), or naming the address."""
    ids = person.record_ids
    result: ColumnElement[bool] = (DomainEvent.company_id == person.company_id) & or_(
        DomainEvent.entity_id.in_(ids),
        _references(DomainEvent.payload, ids),
        _mentions(DomainEvent.payload, person.email),
    )
    return result


# ---- erasure


async def _stop_automations(session: AsyncSession, client: Client | None, person: Person) -> None:
    """Before anything is deleted: a run told now stops before its next message."""
    for lead in person.leads:
        await leads.notify_sequences(session, client, lead.id, LeadEvent.deleted)
    if person.sale_ids:
        await review_requests.notify(session, client, person.sale_ids, ReviewEvent.erased)


async def _deleted(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement.execution_options(synchronize_session=False))
    count: int = result.rowcount  # type: ignore[attr-defined]
    return count


async def _erase_messages(session: AsyncSession, person: Person, counts: ErasedCounts) -> None:
    """Deliveries (address, subject, body) and the run log entries that named the recipient."""
    delivery_ids = await _ids(session, MessageDelivery.id, _deliveries_condition(person))
    company_runs = select(WorkflowRun.id).where(WorkflowRun.company_id == person.company_id)
    counts.workflow_actions = await _deleted(
        session,
        delete(WorkflowAction).where(
            WorkflowAction.run_id.in_(company_runs),
            or_(
                WorkflowAction.details["delivery_id"].as_string().in_(delivery_ids),
                _mentions(WorkflowAction.details, person.email),
            ),
        ),
    )
    counts.deliveries = await _deleted(session, delete(MessageDelivery).where(MessageDelivery.id.in_(delivery_ids)))


async def _erase_records(session: AsyncSession, person: Person, counts: ErasedCounts) -> None:
    counts.events = await _deleted(session, delete(DomainEvent).where(_events_condition(person)))
    await idempotency.forget_responses_about(session, person.company_id, person.record_ids)
    await session.execute(
        delete(IdempotencyRecord)
        .where(
            IdempotencyRecord.company_id == person.company_id, _mentions(IdempotencyRecord.response_body, person.email)
        )
        .execution_options(synchronize_session=False)
    )
    # The person's uses of other customers' codes. The referrer's times_used stays: it is their tally (a reward
    # may have been given on it), and it names nobody.
    counts.referral_uses = await _deleted(session, delete(ReferralUse).where(ReferralUse.lead_id.in_(person.lead_ids)))
    counts.reviews = await _deleted(session, delete(Review).where(Review.id.in_(person.review_ids)))
    # A code issued to the person carries their first name; other people's uses of it go with it (cascade).
    counts.referrals = await _deleted(session, delete(Referral).where(Referral.id.in_(person.referral_ids)))
    counts.interactions = len(person.interaction_ids)
    for lead in person.leads:
        await leads.erase(session, lead)
    counts.leads = len(person.leads)


async def _erase_customers(session: AsyncSession, person: Person) -> int:
    """Delete each customer, or keep it as an anonymous "Erased customer" when it has sales; returns sales kept.

    ``sales.customer_id`` is required and cascades: deleting the customer would delete the sales, and with them
    the revenue figures the business must keep for its accounts. The kept row names nobody.
    """
    sales_kept = 0
    now = utcnow()
    for customer in person.customers:
        sales = await session.scalar(select(func.count()).select_from(Sale).where(Sale.customer_id == customer.id))
        if not sales:
            await session.delete(customer)
            continue
        sales_kept += sales
        customer.name = ERASED_CUSTOMER_NAME
        customer.email = customer.phone = customer.timezone = customer.lead_id = None
        customer.tags = [ERASED_TAG]
        customer.custom_fields = {}
        customer.unsubscribed_at = customer.unsubscribed_at or now
        # Notes are free text a person typed about the sale; they may name the buyer.
        await session.execute(
            update(Sale)
            .where(Sale.customer_id == customer.id)
            .values(notes=None)
            .execution_options(synchronize_session=False)
        )
    await session.flush()
    return sales_kept


async def _suppress(session: AsyncSession, person: Person) -> None:
    """Exactly one email suppression entry for the address, reason ``erased``; the earliest opt-out's date kept."""
    entries = list(
        await session.scalars(
            select(Suppression)
            .where(
                Suppression.company_id == person.company_id,
                Suppression.channel == Channel.email,
                _same_address(Suppression.address, person.email),
            )
            .order_by(Suppression.created_at, Suppression.id)
        )
    )
    if not entries:
        await opt_outs.suppress(session, person.company_id, Channel.email, person.email, ERASED_REASON)
        return
    kept, *spellings = entries
    for entry in spellings:  # the same mailbox stored in another letter case
        await session.delete(entry)
    await session.flush()
    kept.address, kept.reason = person.email, ERASED_REASON
    await session.flush()


async def erase(
    session: AsyncSession, client: Client | None, company_id: str, email: str, actor: User | None
) -> ErasureResult:
    """Erase everything the company holds about the person with this address; see the module docstring.

    An address nobody in the company has is still suppressed ("never contact me" is a request of its own) and
    answered with zero counts. Nothing is committed here: the caller's transaction holds the whole erasure, so
    it happens entirely or not at all. ``actor`` is None for the command line.
    """
    person = await find(session, company_id, email)
    # Read before the rows go: someone re-imported with only their phone number must not get an SMS either.
    phones = sorted(
        {lead.phone for lead in person.leads if lead.phone} | {c.phone for c in person.customers if c.phone}
    )
    await _stop_automations(session, client, person)
    counts = ErasedCounts(customers=len(person.customers))
    await _erase_messages(session, person, counts)
    await _erase_records(session, person, counts)
    sales_kept = await _erase_customers(session, person)
    await _suppress(session, person)
    for phone in phones:
        await opt_outs.suppress(session, company_id, Channel.sms, phone, ERASED_REASON)
    fingerprint = email_fingerprint(person.email)
    audit.record(
        session,
        company_id,
        actor,
        "person.erased",
        "person",
        None,
        {"email_sha256": fingerprint, "erased": counts.model_dump(), "sales_kept": sales_kept},
    )
    log.info(
        "erased person %s in %s: %s; %d sale(s) kept on an anonymous customer",
        fingerprint,
        company_id,
        counts.model_dump(),
        sales_kept,
    )
    return ErasureResult(erased=counts, sales_kept=sales_kept, suppressed=True)


# ---- export


def _exported(model: type[ExportModel], row: object, **nested: object) -> ExportModel:
    """``model`` from the row's columns plus the nested lists given."""
    columns = {name: getattr(row, name) for name in model.model_fields if name not in nested}
    return model.model_validate({**columns, **nested})


def _grouped(rows: Iterable[Any], key: str) -> dict[str | None, list[Any]]:
    groups: dict[str | None, list[Any]] = {}
    for row in rows:
        groups.setdefault(getattr(row, key), []).append(row)
    return groups


async def _rows(session: AsyncSession, statement: Any) -> list[Any]:
    return list(await session.scalars(statement))


async def export(session: AsyncSession, company_id: str, email: str, actor: User | None) -> PersonExport:
    """Everything the company holds about the person with this address, as one document (audited)."""
    person = await find(session, company_id, email)
    interactions = _grouped(
        await _rows(
            session,
            select(Interaction)
            .where(Interaction.id.in_(person.interaction_ids))
            .order_by(Interaction.created_at, Interaction.id),
        ),
        "lead_id",
    )
    deliveries = await _rows(
        session,
        select(MessageDelivery)
        .where(_deliveries_condition(person))
        .order_by(MessageDelivery.created_at, MessageDelivery.id),
    )
    by_lead, by_customer = _grouped(deliveries, "lead_id"), _grouped(deliveries, "customer_id")
    uses_by_lead = _grouped(
        await _rows(
            session, select(ReferralUse).where(ReferralUse.lead_id.in_(person.lead_ids)).order_by(ReferralUse.used_at)
        ),
        "lead_id",
    )
    sales = _grouped(
        await _rows(session, select(Sale).where(Sale.id.in_(person.sale_ids)).order_by(Sale.created_at, Sale.id)),
        "customer_id",
    )
    reviews = _grouped(
        await _rows(
            session, select(Review).where(Review.id.in_(person.review_ids)).order_by(Review.created_at, Review.id)
        ),
        "customer_id",
    )
    issued = _grouped(
        await _rows(
            session,
            select(Referral)
            .where(Referral.id.in_(person.referral_ids))
            .options(selectinload(Referral.uses))
            .order_by(Referral.created_at, Referral.id),
        ),
        "customer_id",
    )
    linked = set(person.lead_ids) | set(person.customer_ids)
    document = PersonExport(
        email=person.email,
        company_id=company_id,
        exported_at=utcnow(),
        leads=[
            _exported(
                LeadExport,
                lead,
                interactions=[InteractionExport.model_validate(i) for i in interactions.get(lead.id, [])],
                deliveries=[DeliveryExport.model_validate(d) for d in by_lead.get(lead.id, [])],
                referral_uses=[ReferralUseExport.model_validate(u) for u in uses_by_lead.get(lead.id, [])],
            )
            for lead in person.leads
        ],
        customers=[
            _exported(
                CustomerExport,
                customer,
                sales=[SaleExport.model_validate(s) for s in sales.get(customer.id, [])],
                reviews=[ReviewExport.model_validate(r) for r in reviews.get(customer.id, [])],
                referrals=[
                    _exported(
                        ReferralExport, referral, uses=[ReferralUseExport.model_validate(u) for u in referral.uses]
                    )
                    for referral in issued.get(customer.id, [])
                ],
                deliveries=[DeliveryExport.model_validate(d) for d in by_customer.get(customer.id, [])],
            )
            for customer in person.customers
        ],
        other_deliveries=[
            DeliveryExport.model_validate(d) for d in deliveries if not {d.lead_id, d.customer_id} & linked
        ],
        workflow_runs=[
            WorkflowRunExport.model_validate(run)
            for run in await _rows(
                session,
                select(WorkflowRun)
                .where(
                    WorkflowRun.company_id == company_id,
                    WorkflowRun.trigger_id.in_([*person.lead_ids, *person.sale_ids]),
                )
                .order_by(WorkflowRun.started_at, WorkflowRun.id),
            )
        ],
        suppressions=[SuppressionExport.model_validate(entry) for entry in await _rows(session, _suppressions(person))],
        events=[
            EventExport.model_validate(event)
            for event in await _rows(
                session, select(DomainEvent).where(_events_condition(person)).order_by(DomainEvent.created_at)
            )
        ],
    )
    fingerprint = email_fingerprint(person.email)
    audit.record(
        session,
        company_id,
        actor,
        "person.exported",
        "person",
        None,
        {"email_sha256": fingerprint, "leads": len(document.leads), "customers": len(document.customers)},
    )
    log.info(
        "exported person %s in %s (%d lead(s), %d customer(s))",
        fingerprint,
        company_id,
        len(person.leads),
        len(person.customers),
    )
    return document


def _suppressions(person: Person) -> Any:
    """The address's email entries and the SMS entries of the person's phone numbers."""
    phones = {lead.phone for lead in person.leads if lead.phone} | {c.phone for c in person.customers if c.phone}
    return (
        select(Suppression)
        .where(
            Suppression.company_id == person.company_id,
            or_(
                (Suppression.channel == Channel.email) & _same_address(Suppression.address, person.email),
                (Suppression.channel == Channel.sms) & Suppression.address.in_(phones),
            ),
        )
        .order_by(Suppression.created_at, Suppression.id)
    )
