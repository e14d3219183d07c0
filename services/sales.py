"""Sales: a completed one asks for a review, a refunded or cancelled one stops that request.

A sale may bring a referral code: the code's use is taken (atomically) and counts as converted at once.
A sale by a lead that had used a code is a referred sale too.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from core.config import Settings
from core.ids import new_id
from db.base import utcnow
from db.models import Customer, Referral, Sale, User
from schemas.common import Page, PageRequest
from schemas.customers import SALE_TRANSITIONS, SaleCreate, SaleFilter, SaleStatus, SaleUpdate
from schemas.review_request import ReviewEvent
from services import customers, events, referrals, review_requests
from services.errors import Conflict, InvalidField, NotFound
from services.paging import paginate
from services.tenancy import owned

log = logging.getLogger(__name__)

SORTABLE = {
    "created_at": Sale.created_at,
    "updated_at": Sale.updated_at,
    "amount": Sale.amount,
    "status": Sale.status,
}
_STOPS_REVIEW_REQUEST = {SaleStatus.refunded: ReviewEvent.refunded, SaleStatus.cancelled: ReviewEvent.cancelled}


async def get(session: AsyncSession, actor: User, sale_id: str) -> Sale:
    return await owned(session, actor, Sale, sale_id, "sale")


async def list_sales(session: AsyncSession, actor: User, filters: SaleFilter, page: PageRequest) -> Page[Sale]:
    statement = select(Sale).where(Sale.company_id == actor.company_id)
    if filters.customer_id is not None:
        statement = statement.where(Sale.customer_id == filters.customer_id)
    if filters.status is not None:
        statement = statement.where(Sale.status == filters.status)
    return await paginate(session, statement, page, sortable=SORTABLE, default_sort="created_at", tie_breaker=Sale.id)


def _summary(sale: Sale) -> dict[str, Any]:
    return {
        "id": sale.id,
        "customer_id": sale.customer_id,
        "amount": str(sale.amount),
        "status": sale.status,
        "service_id": sale.service_id,
        "referral_id": sale.referral_id,
    }


async def _referral_for(session: AsyncSession, customer: Customer, code: str | None) -> Referral | None:
    """The referral behind this sale: the code it brought (a use is taken), else one its lead had used."""
    if code is None:
        return await referrals.mark_converted(session, customer.lead_id) if customer.lead_id else None
    try:
        referral = await referrals.by_code(session, customer.company_id, code)
    except NotFound as exc:
        raise InvalidField("referral_code", f"no referral code {code!r} in your company") from exc
    if referral.customer_id == customer.id:
        raise InvalidField("referral_code", "a customer cannot refer themselves")
    try:
        redemption = await referrals.redeem(session, referral, customer.lead_id)
    except Conflict as exc:
        raise InvalidField("referral_code", exc.message) from exc
    if customer.lead_id is not None:
        await referrals.mark_converted(session, customer.lead_id)
    elif not redemption.use.converted:
        # A buyer who never was a lead: the use this sale just took is itself the conversion.
        redemption.use.converted = True
        redemption.use.converted_at = utcnow()
    return referral


async def create(
    session: AsyncSession, client: Client | None, settings: Settings, actor: User, body: SaleCreate
) -> Sale:
    """Record the sale; a completed one starts the review request once committed."""
    customer = await customers.referenced(session, actor, body.customer_id)
    referral = await _referral_for(session, customer, body.referral_code)
    sale = Sale(
        id=new_id("sale"),
        company_id=actor.company_id,
        customer_id=customer.id,
        # Set, not lazy-loaded later: the identity map holds the customer only weakly, and every view of the
        # sale names its customer once this function has returned.
        customer=customer,
        service_id=body.service_id,
        service_name=body.service_name,
        amount=body.amount,
        status=body.status,
        payment_method=body.payment_method,
        notes=body.notes,
        referral_id=referral.id if referral else None,
    )
    session.add(sale)
    await session.flush()
    await events.emit(session, sale.company_id, "sale.created", sale.id, _summary(sale))
    log.info("user %s recorded sale %s (%s %s) for %s", actor.id, sale.id, sale.status, sale.amount, customer.id)
    await customers.fresh(session, customer)
    if sale.status == SaleStatus.completed:
        await session.commit()
        await review_requests.start_after_sale(session, client, settings, sale)
    return sale


async def update(
    session: AsyncSession, client: Client | None, settings: Settings, actor: User, sale_id: str, body: SaleUpdate
) -> Sale:
    """Change the sale; completing it asks for a review, refunding or cancelling it stops the request."""
    sale = await get(session, actor, sale_id)
    for name in ("service_name", "payment_method", "notes"):
        if name in body.model_fields_set:
            setattr(sale, name, getattr(body, name))
    previous = SaleStatus(sale.status)
    status = body.status
    if status is None or status == previous:
        await session.flush()
        return sale
    if status not in SALE_TRANSITIONS[previous]:
        allowed = ", ".join(sorted(SALE_TRANSITIONS[previous])) or "nothing: it is final"
        raise Conflict(f"Sale {sale.id} is {previous}; it can become {allowed}")
    sale.status = status
    await session.flush()
    await events.emit(
        session, sale.company_id, "sale.status_changed", sale.id, {"id": sale.id, "from": previous, "to": status}
    )
    log.info("sale %s %s -> %s", sale.id, previous, status)
    await customers.fresh(session, sale.customer)
    await session.commit()
    if status == SaleStatus.completed:
        await review_requests.start_after_sale(session, client, settings, sale)
    elif (event := _STOPS_REVIEW_REQUEST.get(status)) is not None:
        await review_requests.notify(session, client, [sale.id], event)
    return sale
