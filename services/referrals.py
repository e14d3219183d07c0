"""Referrals: issuing codes, redeeming them atomically, counting conversions, and their expiry timers.

Redemption is one conditional ``UPDATE`` (still redeemable, not expired, a use left): the database decides,
so two requests racing for the last use get one success and one refusal, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import case, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from core.config import Settings
from core.ids import new_id
from db import referrals as issuing
from db.base import utcnow
from db.models import Customer, Lead, Referral, ReferralUse, Review, User
from schemas.common import Page, PageRequest
from schemas.review_request import ReferralExpiryInput
from schemas.reviews import (
    DEFAULT_EXPIRY_DAYS,
    DEFAULT_OFFER,
    DEFAULT_REFERRER_OFFER,
    REDEEMABLE,
    ReferralCreate,
    ReferralFilter,
    ReferralStatus,
)
from schemas.temporal import QueueKind
from services import events
from services.errors import Conflict, InvalidField, NotFound
from services.paging import paginate
from services.tenancy import owned
from workflows.review_request import ReferralExpiryWorkflow, referral_expiry_workflow_id

log = logging.getLogger(__name__)

SORTABLE = {
    "created_at": Referral.created_at,
    "expires_at": Referral.expires_at,
    "times_used": Referral.times_used,
    "code": Referral.code,
}


@dataclass(frozen=True)
class OfferTerms:
    offer: str = DEFAULT_OFFER
    referrer_offer: str | None = DEFAULT_REFERRER_OFFER
    max_uses: int | None = None
    expires_in_days: int | None = DEFAULT_EXPIRY_DAYS


@dataclass(frozen=True)
class Redemption:
    referral: Referral
    use: ReferralUse
    counted: bool
    """False when this lead had already used the code: the earlier use stands and nothing is counted twice."""


async def get(session: AsyncSession, actor: User, referral_id: str, *, with_uses: bool = False) -> Referral:
    options = [selectinload(Referral.uses)] if with_uses else []
    return await owned(session, actor, Referral, referral_id, "referral", options)


async def list_referrals(
    session: AsyncSession, actor: User, filters: ReferralFilter, page: PageRequest
) -> Page[Referral]:
    statement = select(Referral).where(Referral.company_id == actor.company_id)
    if filters.customer_id is not None:
        statement = statement.where(Referral.customer_id == filters.customer_id)
    if filters.statuses is not None:
        now = utcnow()
        lapsed = Referral.expires_at.is_not(None) & (Referral.expires_at <= now)
        wanted = Referral.status.in_(sorted(filters.statuses))
        if ReferralStatus.expired in filters.statuses:
            # The expiry timer may not have written "expired" yet: a lapsed code counts as expired already.
            statement = statement.where(or_(wanted, Referral.status.in_(sorted(REDEEMABLE)) & lapsed))
        else:
            statement = statement.where(wanted, ~lapsed)
    return await paginate(
        session, statement, page, sortable=SORTABLE, default_sort="created_at", tie_breaker=Referral.id
    )


async def create(
    session: AsyncSession,
    client: Client | None,
    settings: Settings,
    customer: Customer,
    terms: OfferTerms,
    review_id: str | None = None,
) -> Referral:
    """Issue a code to the customer and start its expiry timer once committed."""
    referral = await issuing.issue(
        session,
        customer,
        offer=terms.offer,
        referrer_offer=terms.referrer_offer,
        max_uses=terms.max_uses,
        expires_in_days=terms.expires_in_days,
        review_id=review_id,
    )
    await session.commit()
    log.info("referral %s (%s) created for customer %s", referral.id, referral.code, customer.id)
    await start_expiry(client, settings, referral)
    return referral


def terms_of(body: ReferralCreate) -> OfferTerms:
    return OfferTerms(
        offer=body.offer,
        referrer_offer=body.referrer_offer,
        max_uses=body.max_uses,
        expires_in_days=body.expires_in_days,
    )


async def check_review(session: AsyncSession, customer: Customer, review_id: str | None) -> str | None:
    if review_id is None:
        return None
    review = await session.get(Review, review_id)
    if review is None or review.customer_id != customer.id:
        raise InvalidField("review_id", f"{review_id} is not a review of customer {customer.id}")
    return review.id


async def start_expiry(client: Client | None, settings: Settings, referral: Referral) -> None:
    """A durable timer that marks the referral expired at ``expires_at``; best effort when Temporal is away.

    Even without it the code stops working on time: redemption and every view compare ``expires_at`` too.
    """
    if referral.expires_at is None:
        return
    if client is None:
        log.error("Temporal not connected: no expiry timer for referral %s (it still lapses on time)", referral.id)
        return
    try:
        await client.start_workflow(
            ReferralExpiryWorkflow.run,
            ReferralExpiryInput(
                company_id=referral.company_id, referral_id=referral.id, expires_at=referral.expires_at
            ),
            id=referral_expiry_workflow_id(referral.id),
            task_queue=settings.task_queue(QueueKind.MAIN),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"Expire referral {referral.code} at {referral.expires_at:%Y-%m-%d %H:%M} UTC",
        )
    except RPCError as exc:
        log.error("could not start the expiry timer of referral %s: %s", referral.id, exc.message)


async def by_code(session: AsyncSession, company_id: str, code: str) -> Referral:
    referral = await session.scalar(
        select(Referral).where(Referral.company_id == company_id, Referral.code == issuing.normalise_code(code))
    )
    if referral is None:
        raise NotFound("referral_code", code)
    return referral


async def redeem(session: AsyncSession, referral: Referral, lead_id: str | None) -> Redemption:
    """Take one use of the code, atomically; the same lead twice counts once.

    Raises ``Conflict`` for an expired or used-up code, saying which.
    """
    if lead_id is not None:
        lead = await session.scalar(select(Lead.id).where(Lead.id == lead_id, Lead.company_id == referral.company_id))
        if lead is None:
            raise InvalidField("lead_id", f"{lead_id} is not a lead of your company")
        earlier = await _use_of(session, referral.id, lead_id)
        if earlier is not None:
            return Redemption(referral, earlier, counted=False)
    now = utcnow()
    try:
        async with session.begin_nested():
            taken = await session.execute(
                update(Referral)
                .where(
                    Referral.id == referral.id,
                    Referral.status.in_(sorted(REDEEMABLE)),
                    or_(Referral.expires_at.is_(None), Referral.expires_at > now),
                    or_(Referral.max_uses.is_(None), Referral.times_used < Referral.max_uses),
                )
                .values(
                    times_used=Referral.times_used + 1,
                    status=case(
                        (Referral.times_used + 1 >= Referral.max_uses, ReferralStatus.exhausted.value),
                        else_=ReferralStatus.used.value,
                    ),
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 0:  # type: ignore[attr-defined]
                # The same lead, in a concurrent request, may just have taken the last use: it counts once, and
                # this lead is answered as when it comes back later, not refused.
                earlier = await _use_of(session, referral.id, lead_id) if lead_id is not None else None
                if earlier is not None:
                    return Redemption(referral, earlier, counted=False)
                raise Conflict(await _refusal(session, referral))
            use = ReferralUse(id=new_id("refuse"), referral_id=referral.id, lead_id=lead_id, used_at=now)
            session.add(use)
            await session.flush()
    except IntegrityError:
        # The same lead redeemed the code in a concurrent request: the savepoint undid our count, theirs stands.
        earlier = await _use_of(session, referral.id, lead_id or "")
        if earlier is None:
            raise
        return Redemption(referral, earlier, counted=False)
    await session.refresh(referral)
    await events.emit(
        session,
        referral.company_id,
        "referral.used",
        referral.id,
        {"id": referral.id, "code": referral.code, "lead_id": lead_id, "times_used": referral.times_used},
    )
    log.info("referral %s used (%d of %s) by lead %s", referral.id, referral.times_used, referral.max_uses, lead_id)
    return Redemption(referral, use, counted=True)


async def _use_of(session: AsyncSession, referral_id: str, lead_id: str) -> ReferralUse | None:
    return await session.scalar(
        select(ReferralUse).where(ReferralUse.referral_id == referral_id, ReferralUse.lead_id == lead_id)
    )


async def _refusal(session: AsyncSession, referral: Referral) -> str:
    await session.refresh(referral)
    status = referral.current_status
    if status == ReferralStatus.expired:
        return f"Referral code {referral.code} expired on {referral.expires_at:%Y-%m-%d}"
    if status == ReferralStatus.exhausted:
        return f"Referral code {referral.code} has been used {referral.times_used} times, its limit"
    return f"Referral code {referral.code} cannot be used ({status})"


async def mark_converted(session: AsyncSession, lead_id: str) -> Referral | None:
    """The referred lead became a customer or bought: its uses count as converted. Returns the referral it used."""
    now = utcnow()
    await session.execute(
        update(ReferralUse)
        .where(ReferralUse.lead_id == lead_id, ReferralUse.converted.is_(False))
        .values(converted=True, converted_at=now)
        .execution_options(synchronize_session=False)
    )
    referral: Referral | None = await session.scalar(
        select(Referral)
        .join(ReferralUse, ReferralUse.referral_id == Referral.id)
        .where(ReferralUse.lead_id == lead_id)
        .order_by(ReferralUse.used_at)
        .limit(1)
    )
    return referral
