"""Issuing a referral: a readable, hard-to-guess code, unique in the company, and its ``referral.created`` event.

Used by the referral service (a user creates one) and by the review workflow's activity (the offer after a
sale), which may not import services.
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from db import events as db_events
from db.base import utcnow
from db.models import Customer, Referral
from schemas.reviews import ReferralStatus

# No 0/O, 1/I/L: a code is read aloud and typed from paper. 31 symbols ** 8 = 8.5e11 codes per prefix.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_RANDOM_LENGTH = 8
CODE_PREFIX_LENGTH = 6
_ATTEMPTS = 5


def referral_code(name: str) -> str:
    """``JANE-7KQ4M9XP``: the first name (ASCII letters, for the customer to recognise) and 8 random symbols."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    first = next((part for part in ascii_name.split() if any(c.isalpha() for c in part)), "")
    prefix = "".join(c for c in first.upper() if "A" <= c <= "Z")[:CODE_PREFIX_LENGTH] or "REF"
    return f"{prefix}-{''.join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_RANDOM_LENGTH))}"


def normalise_code(code: str) -> str:
    """Codes are matched as typed by a person: case and surrounding spaces do not matter."""
    return code.strip().upper()


async def issue(
    session: AsyncSession,
    customer: Customer,
    *,
    offer: str,
    referrer_offer: str | None,
    max_uses: int | None,
    expires_in_days: int | None,
    review_id: str | None = None,
    issue_key: str | None = None,
    now: datetime | None = None,
) -> Referral:
    """Add a new referral for ``customer`` with a fresh code (flushed, with its event, in the caller's transaction)."""
    created = now or utcnow()
    expires_at = created + timedelta(days=expires_in_days) if expires_in_days else None
    for attempt in range(_ATTEMPTS):
        referral = Referral(
            id=new_id("ref"),
            company_id=customer.company_id,
            customer_id=customer.id,
            # Set too, so presenting the new row's customer name never needs a lazy load.
            customer=customer,
            review_id=review_id,
            code=referral_code(customer.name),
            issue_key=issue_key,
            offer=offer,
            referrer_offer=referrer_offer,
            status=ReferralStatus.created,
            max_uses=max_uses,
            times_used=0,
            expires_at=expires_at,
            created_at=created,
            updated_at=created,
        )
        try:
            async with session.begin_nested():
                session.add(referral)
                await session.flush()
        except IntegrityError:
            # A code collision is a one-in-a-billion event; a retried workflow activity hits issue_key instead.
            if issue_key is not None or attempt == _ATTEMPTS - 1:
                raise
            continue
        db_events.record(
            session,
            customer.company_id,
            "referral.created",
            referral.id,
            {"id": referral.id, "customer_id": customer.id, "code": referral.code, "review_id": review_id},
        )
        return referral
    raise AssertionError("unreachable: the last attempt raises")
