"""Opt-outs and replies that arrive from outside: the unsubscribe link, inbound email and inbound SMS.

None of these callers is signed in: the unsubscribe link carries a signed token and the inbound webhooks a
signed per-company key (``core.security``). Suppressions are per company, channel and address; the send
activity checks them immediately before every message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from core import security
from core.config import Settings
from core.ids import new_id
from db.base import utcnow
from db.contacts import Contact, load_contact
from db.models import Company, Lead, Suppression, User
from schemas.enums import Role
from schemas.lead_follow_up import LeadEvent
from schemas.leads import (
    Channel,
    Direction,
    InboundEmail,
    InboundResult,
    InboundSms,
    InboundStatus,
    InboundWebhooks,
    InteractionCreate,
    InteractionStatus,
    InteractionType,
    normalize_phone,
)
from schemas.review_request import ReviewEvent
from services import events, interactions, leads, review_requests
from services.errors import NotFound
from services.users import require_role

log = logging.getLogger(__name__)

# Carrier-standard keywords (CTIA); the whole trimmed body must be the word.
SMS_STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
SMS_START_WORDS = frozenset({"START", "UNSTOP"})
REPLY_CHANNEL = "reply"

_AUTO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response)|autoreply|auto:)", re.IGNORECASE
)
_AUTO_PRECEDENCE = frozenset({"auto_reply", "bulk", "junk"})


# ---- the unsubscribe link


@dataclass(frozen=True)
class Subscription:
    contact: Contact
    company: Company


async def subscription_for_token(session: AsyncSession, settings: Settings, token: str) -> Subscription | None:
    """The lead or customer an unsubscribe link points at; ``None`` for a forged token or a contact now gone."""
    verified = security.verify_unsubscribe(settings, token)
    if verified is None:
        return None
    company_id, contact_id = verified
    contact = await load_contact(session, company_id, contact_id)
    company = await session.get(Company, company_id) if contact is not None else None
    return Subscription(contact=contact, company=company) if contact is not None and company is not None else None


async def unsubscribe(session: AsyncSession, client: Client | None, contact: Contact) -> None:
    """Stop all marketing email to the contact; clicking twice changes nothing the second time."""
    first_time = contact.unsubscribed_at is None
    if first_time:
        contact.unsubscribed_at = utcnow()
        changes = {"unsubscribed_at": contact.unsubscribed_at.isoformat()}
        if isinstance(contact, Lead):
            await leads.emit_updated(session, contact, {"unsubscribed_at": contact.unsubscribed_at})
        else:
            await events.emit(
                session, contact.company_id, "customer.updated", contact.id, {"id": contact.id, "changes": changes}
            )
    if contact.email:
        await suppress(session, contact.company_id, Channel.email, contact.email, "unsubscribe")
    if not first_time:
        return
    log.info("%s unsubscribed in %s", contact.id, contact.company_id)
    await session.commit()
    if isinstance(contact, Lead):
        await leads.notify_sequences(session, client, contact.id, LeadEvent.unsubscribed)
    else:
        await review_requests.notify_customer(session, client, contact.id, ReviewEvent.unsubscribed)


async def suppress(session: AsyncSession, company_id: str, channel: Channel, address: str, reason: str) -> bool:
    """Add ``address`` to the company's suppression list; False when it was already there."""
    existing = await session.scalar(
        select(Suppression.id).where(
            Suppression.company_id == company_id, Suppression.channel == channel, Suppression.address == address
        )
    )
    if existing is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(
                Suppression(id=new_id("sup"), company_id=company_id, channel=channel, address=address, reason=reason)
            )
            await session.flush()
    except IntegrityError:
        return False  # a concurrent request suppressed it first
    return True


# ---- inbound webhooks


def company_for_inbound_key(settings: Settings, key: str) -> str:
    company_id = security.verify_inbound_key(settings, key)
    if company_id is None:
        raise NotFound("inbound_webhook", "")
    return company_id


def inbound_urls(settings: Settings, actor: User) -> InboundWebhooks:
    """The actor's company's inbound webhook URLs (admins and managers)."""
    require_role(actor, Role.admin, Role.manager)
    key = security.inbound_key(settings, actor.company_id)
    base = f"{settings.public_base_url.rstrip('/')}/api/lead-nurturing/inbound/{key}"
    return InboundWebhooks(email_url=f"{base}/email", sms_url=f"{base}/sms")


def auto_reply_reason(message: InboundEmail) -> str | None:
    """Why ``message`` looks machine-sent (RFC 3834 and the headers and subjects mail systems use), else None."""
    headers = message.headers
    auto_submitted = headers.get("auto-submitted", "").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("x-autoreply", "x-autorespond"):
        if name in headers:
            return f"{name} header"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    if _AUTO_SUBJECT.match(message.subject):
        return "automatic-reply subject"
    return None


async def _record_reply(
    session: AsyncSession,
    client: Client | None,
    lead: Lead,
    kind: InteractionType,
    content: str | None,
    metadata: dict[str, Any],
) -> InboundResult:
    """A lead's own message: an inbound interaction, which engages the lead and stops its sequences."""
    interaction = await interactions.record(
        session,
        client,
        lead,
        InteractionCreate(
            type=kind,
            direction=Direction.inbound,
            content=content,
            channel=REPLY_CHANNEL,
            status=InteractionStatus.received,
            metadata=metadata,
        ),
        created_by=None,
    )
    return InboundResult(status=InboundStatus.recorded, lead_id=lead.id, interaction_id=interaction.id)


async def receive_email(
    session: AsyncSession, client: Client | None, company_id: str, message: InboundEmail
) -> InboundResult:
    """A reply by email: recorded on the sender's lead, which stops its sequences. Auto-replies stop nothing."""
    reason = auto_reply_reason(message)
    if reason is not None:
        log.info("inbound email for %s ignored: %s", company_id, reason)
        return InboundResult(status=InboundStatus.ignored, reason=reason)
    address = parseaddr(message.sender)[1].strip().lower()
    lead = (
        await session.scalar(select(Lead).where(Lead.company_id == company_id, Lead.email == address))
        if "@" in address
        else None
    )
    if lead is None:
        log.info("inbound email for %s from an address no lead has", company_id)
        return InboundResult(status=InboundStatus.unmatched)
    metadata = {"subject": message.subject}
    if message_id := message.headers.get("message-id"):
        metadata["message_id"] = message_id
    return await _record_reply(session, client, lead, InteractionType.email, message.text, metadata)


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's ``X-Twilio-Signature``: HMAC-SHA1 of the URL followed by every name+value, sorted by name."""
    payload = url + "".join(name + value for name, value in sorted(params, key=lambda item: item[0]))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid_twilio_request(
    settings: Settings, urls: Iterable[str], params: list[tuple[str, str]], signature: str | None
) -> bool:
    """True when no auth token is configured, or the signature matches one of the URLs the request may have had."""
    token = settings.sms_auth_token.get_secret_value()
    if not token:
        return True
    if not signature:
        return False
    presented = signature.encode()  # bytes: a header may carry non-ASCII text, which str compare_digest refuses
    return any(hmac.compare_digest(twilio_signature(token, url, params).encode(), presented) for url in urls)


async def receive_sms(
    session: AsyncSession, client: Client | None, company_id: str, message: InboundSms
) -> InboundResult:
    """STOP-type keywords opt the number out of SMS, START opts it back in; anything else is a reply."""
    try:
        phone = normalize_phone(message.sender)
    except ValueError:
        log.info("inbound SMS for %s from a sender that is not a phone number", company_id)
        return InboundResult(status=InboundStatus.unmatched)
    keyword = message.body.strip().upper()
    matched = list(
        await session.scalars(
            select(Lead).where(Lead.company_id == company_id, Lead.phone == phone).order_by(Lead.created_at.desc())
        )
    )
    if keyword in SMS_STOP_WORDS:
        # The number is suppressed even if no lead has it: the person asked not to be texted.
        if await suppress(session, company_id, Channel.sms, phone, "sms_stop"):
            for lead in matched:
                await leads.emit_updated(session, lead, {"sms_opt_out": True})
        await session.commit()
        for lead in matched:
            await leads.notify_sequences(session, client, lead.id, LeadEvent.unsubscribed)
        log.info("SMS opt-out in %s (%d lead(s))", company_id, len(matched))
        return InboundResult(status=InboundStatus.opted_out, lead_id=matched[0].id if matched else None)
    if keyword in SMS_START_WORDS:
        suppression = await session.scalar(
            select(Suppression).where(
                Suppression.company_id == company_id, Suppression.channel == Channel.sms, Suppression.address == phone
            )
        )
        if suppression is not None:
            await session.delete(suppression)
            for lead in matched:
                await leads.emit_updated(session, lead, {"sms_opt_out": False})
        log.info("SMS opt-in again in %s (%d lead(s))", company_id, len(matched))
        return InboundResult(status=InboundStatus.opted_in, lead_id=matched[0].id if matched else None)
    if not matched:
        log.info("inbound SMS for %s from a number no lead has", company_id)
        return InboundResult(status=InboundStatus.unmatched)
    lead = matched[0]  # several leads may share a phone; the reply belongs to the latest enquiry
    metadata = {"message_sid": message.message_sid} if message.message_sid else {}
    return await _record_reply(session, client, lead, InteractionType.sms, message.body, metadata)
