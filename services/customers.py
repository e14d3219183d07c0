"""Customers: one per email per company, optionally converted from a lead. Lifetime value is derived from sales."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from core.ids import new_id
from db.models import Customer, Lead, Referral, Review, Sale, User
from schemas.common import Page, PageRequest
from schemas.customers import CustomerCreate, CustomerUpdate
from schemas.lead_follow_up import LeadEvent
from schemas.leads import LeadStatus
from services import events, leads, referrals
from services.errors import Conflict, InvalidField, NotFound
from services.merge import merge_bounded
from services.paging import paginate
from services.tenancy import owned

log = logging.getLogger(__name__)

SORTABLE = {
    "created_at": Customer.created_at,
    "updated_at": Customer.updated_at,
    "name": Customer.name,
    "email": Customer.email,
    "lifetime_value": Customer.lifetime_value,
}
_PLAIN_FIELDS = ("name", "email", "phone", "timezone")


@dataclass(frozen=True)
class CreatedCustomer:
    customer: Customer
    duplicate: bool
    """True when the email already belonged to a customer of the company: ``customer`` is that one, merged."""


@dataclass(frozen=True)
class CustomerRecords:
    customer: Customer
    sales: list[Sale]
    reviews: list[Review]
    referrals: list[Referral]


async def get(session: AsyncSession, actor: User, customer_id: str) -> Customer:
    return await owned(session, actor, Customer, customer_id, "customer")


async def referenced(session: AsyncSession, actor: User, customer_id: str, field: str = "customer_id") -> Customer:
    """A customer named in a request body: a missing one is a 422 on that field, not a 404 of the route."""
    try:
        return await get(session, actor, customer_id)
    except NotFound as exc:
        raise InvalidField(field, f"{customer_id} is not a customer of your company") from exc


async def fresh(session: AsyncSession, customer: Customer) -> Customer:
    """Reload the derived lifetime value after the customer's sales changed in this transaction."""
    await session.flush()
    await session.refresh(customer, ["lifetime_value", "updated_at"])
    return customer


async def list_customers(session: AsyncSession, actor: User, page: PageRequest) -> Page[Customer]:
    statement = select(Customer).where(Customer.company_id == actor.company_id)
    return await paginate(
        session, statement, page, sortable=SORTABLE, default_sort="created_at", tie_breaker=Customer.id
    )


async def records(session: AsyncSession, actor: User, customer_id: str) -> CustomerRecords:
    """The customer with its sales, reviews and referrals, newest first."""
    customer = await get(session, actor, customer_id)
    sales = await session.scalars(
        select(Sale).where(Sale.customer_id == customer.id).order_by(Sale.created_at.desc(), Sale.id)
    )
    reviews = await session.scalars(
        select(Review).where(Review.customer_id == customer.id).order_by(Review.created_at.desc(), Review.id)
    )
    issued = await session.scalars(
        select(Referral).where(Referral.customer_id == customer.id).order_by(Referral.created_at.desc(), Referral.id)
    )
    return CustomerRecords(customer, list(sales), list(reviews), list(issued))


async def _by_email(session: AsyncSession, company_id: str, email: str) -> Customer | None:
    return await session.scalar(select(Customer).where(Customer.company_id == company_id, Customer.email == email))


def _summary(customer: Customer) -> dict[str, Any]:
    return {"id": customer.id, "name": customer.name, "email": customer.email, "lead_id": customer.lead_id}


async def create(session: AsyncSession, client: Client | None, actor: User, body: CustomerCreate) -> CreatedCustomer:
    """Write the customer; from a lead, the lead becomes converted, its follow-ups stop and its referral uses count.

    An email the company's customers already have is merged into that customer instead (tags and custom
    fields add up), as with leads.
    """
    lead = await _lead(session, actor, body.lead_id) if body.lead_id else None
    email = body.email or (lead.email if lead else None)
    if email is not None and (existing := await _by_email(session, actor.company_id, email)):
        return CreatedCustomer(await _merge(session, existing, body), duplicate=True)
    customer = Customer(
        id=new_id("cust"),
        company_id=actor.company_id,
        lead_id=lead.id if lead else None,
        name=body.name,
        email=email,
        phone=body.phone or (lead.phone if lead else None),
        timezone=body.timezone or (lead.timezone if lead else None),
        tags=body.tags,
        custom_fields=body.custom_fields,
    )
    try:
        async with session.begin_nested():
            session.add(customer)
            await session.flush()
    except IntegrityError:
        existing = await _by_email(session, actor.company_id, email or "")
        if existing is None:
            raise
        return CreatedCustomer(await _merge(session, existing, body), duplicate=True)
    await events.emit(session, customer.company_id, "customer.created", customer.id, _summary(customer))
    log.info("user %s created customer %s in %s (from lead %s)", actor.id, customer.id, actor.company_id, body.lead_id)
    if lead is not None:
        await _convert(session, client, lead)
    return CreatedCustomer(await fresh(session, customer), duplicate=False)


async def _lead(session: AsyncSession, actor: User, lead_id: str) -> Lead:
    try:
        return await leads.get(session, actor, lead_id)
    except NotFound as exc:
        raise InvalidField("lead_id", f"{lead_id} is not a lead of your company") from exc


async def _convert(session: AsyncSession, client: Client | None, lead: Lead) -> None:
    converted_now = await leads.change_status(session, lead, LeadStatus.converted)
    await referrals.mark_converted(session, lead.id)
    if converted_now:
        await session.commit()
        await leads.notify_sequences(session, client, lead.id, LeadEvent.converted)


async def _merge(session: AsyncSession, customer: Customer, body: CustomerCreate) -> Customer:
    changes: dict[str, Any] = {}
    for name in ("name", "phone", "timezone"):
        value = getattr(body, name)
        if value not in (None, "") and value != getattr(customer, name):
            changes[name] = value
    _merge_collections(customer, body.tags, body.custom_fields, changes)
    await _apply(session, customer, changes)
    log.info("customer %s submitted again; merged %s", customer.id, sorted(changes) or "nothing")
    return await fresh(session, customer)


def _merge_collections(
    customer: Customer, tags: list[str] | None, custom_fields: dict[str, Any] | None, changes: dict[str, Any]
) -> None:
    """Tags add up (order kept, no repeats); custom fields merge, a null value removing a key."""
    if tags:
        merged_tags = list(dict.fromkeys([*(customer.tags or []), *tags]))
        if merged_tags != (customer.tags or []):
            changes["tags"] = merged_tags
    if custom_fields:
        merged_fields = merge_bounded(customer.custom_fields or {}, custom_fields, "custom_fields")
        if merged_fields != (customer.custom_fields or {}):
            changes["custom_fields"] = merged_fields


async def _apply(session: AsyncSession, customer: Customer, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(customer, name, value)
    if changes:
        await session.flush()
        await events.emit(
            session, customer.company_id, "customer.updated", customer.id, {"id": customer.id, "changes": changes}
        )


async def update(session: AsyncSession, actor: User, customer_id: str, body: CustomerUpdate) -> Customer:
    customer = await get(session, actor, customer_id)
    sent = body.model_fields_set
    if "name" in sent and body.name is None:
        raise InvalidField("name", "may not be null")
    if "email" in sent and body.email is not None and body.email != customer.email:
        other = await _by_email(session, actor.company_id, body.email)
        if other is not None:
            raise Conflict(f"Another customer of your company ({other.id}) already has this email address")
    changes: dict[str, Any] = {
        name: getattr(body, name)
        for name in sent.intersection(_PLAIN_FIELDS)
        if getattr(body, name) != getattr(customer, name)
    }
    _merge_collections(customer, body.tags, body.custom_fields, changes)
    await _apply(session, customer, changes)
    return await fresh(session, customer)
