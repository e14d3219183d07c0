"""Contacts: the leads and customers a company may message, loaded by their canonical id.

Services (unsubscribe links) and activities (compose, deliver) both need this, and activities may not
import services, so it lives beside the models like ``db.events``.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Customer, Lead
from schemas.messaging import ContactKind, contact_kind

Contact = Lead | Customer
"""Both carry name, email, phone, timezone, tags, custom_fields and unsubscribed_at."""


async def load_contact(session: AsyncSession, company_id: str, contact_id: str) -> Contact | None:
    """The company's lead or customer with this id; ``None`` if it is gone (or the id is not a contact's)."""
    try:
        kind = contact_kind(contact_id)
    except ValueError:
        return None
    model: type[Lead] | type[Customer] = Lead if kind == ContactKind.lead else Customer
    contact: Contact | None = await session.scalar(
        select(model).where(model.id == contact_id, model.company_id == company_id)
    )
    return contact
