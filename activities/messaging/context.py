"""The variables a message template sees: the contact's current data, the company's, and the records the
message is about (a sale, a review platform, a referral). The same names ``core.templates`` checks against."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from activities.messaging.llm import first_name
from db.contacts import Contact
from db.content_links import tracked_text
from db.models import Company, Content, Lead, Referral, Sale
from schemas.messaging import MessageContext
from schemas.reviews import review_link, review_platform_label


@dataclass(frozen=True)
class TemplateContext:
    variables: dict[str, Any] = field(default_factory=dict)
    missing: str | None = None
    """Why the message cannot be written (a record it is about is gone, the company has no review link)."""


def contact_variables(contact: Contact, company: Company) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "name": contact.name,
        "first_name": first_name(contact.name),
        "email": contact.email or "",
        "phone": contact.phone or "",
        "tags": list(contact.tags or []),
        "custom_fields": dict(contact.custom_fields or {}),
        "company": {"name": company.name, "website": company.website or ""},
        "company_name": company.name,
    }
    if isinstance(contact, Lead):
        variables.update(source=contact.source, status=contact.status)
    return variables


async def template_context(
    session: AsyncSession, contact: Contact, company: Company, about: MessageContext, public_base_url: str
) -> TemplateContext:
    variables = contact_variables(contact, company)
    if about.sale_id is not None:
        sale = await session.get(Sale, about.sale_id)
        if sale is None or sale.company_id != company.id:
            return TemplateContext(missing=f"sale {about.sale_id} no longer exists")
        variables.update(service_name=sale.service_name or "your purchase", amount=f"{sale.amount:.2f}")
    if about.review_platform is not None:
        link = review_link(company.settings or {}, about.review_platform)
        if link is None:
            return TemplateContext(missing=f"the company has no review link for {about.review_platform}")
        variables.update(platform=review_platform_label(about.review_platform), review_link=link)
    if about.referral_id is not None:
        referral = await session.get(Referral, about.referral_id)
        if referral is None or referral.company_id != company.id:
            return TemplateContext(missing=f"referral {about.referral_id} no longer exists")
        variables.update(
            referral_code=referral.code,
            referral_offer=referral.offer,
            referrer_offer=referral.referrer_offer or "",
            referral_expires_on=referral.expires_at.date().isoformat() if referral.expires_at else "",
        )
    if about.content_id is not None:
        content = await session.get(Content, about.content_id)
        if content is None or content.company_id != company.id:
            return TemplateContext(missing=f"content {about.content_id} no longer exists")
        if not (content.body or "").strip():
            return TemplateContext(missing=f"content {about.content_id} has no text")
        # Values, not template source: whatever braces the text holds are printed as they are. Its links are the
        # click-tracked ones the newsletter made before its first send.
        body = await tracked_text(session, content, public_base_url, create=False)
        variables.update(content_title=(content.title or "").strip(), content_body=body)
    return TemplateContext(variables)
