"""Message templates: jinja2 in a sandbox, so a template can use ``{{name}}`` but never reach Python internals."""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_environment = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

# What a template may use. Checked at config time against these samples so a typo is a 422 when the config
# is saved, not a failed send days later. A lead's message knows the lead; a customer's message (review
# request, reminder, referral offer) knows the customer, the sale, the review link and the referral.
_CONTACT_SAMPLE: dict[str, Any] = {
    "name": "Jane Smith",
    "first_name": "Jane",
    "email": "jane@example.com",
    "phone": "+15550100",
    "tags": ["vip"],
    "custom_fields": {},
    "company": {"name": "Acme Inc", "website": "https://acme.example.com"},
    "company_name": "Acme Inc",
}
LEAD_SAMPLE: dict[str, Any] = {**_CONTACT_SAMPLE, "source": "website_form", "status": "new"}
CUSTOMER_SAMPLE: dict[str, Any] = {
    **_CONTACT_SAMPLE,
    "service_name": "Premium Package",
    "amount": "1000.00",
    "platform": "Google",
    "review_link": "https://g.page/r/acme/review",
    "referral_code": "JANE-7KQ4M9XP",
    "referral_offer": "20% off your first purchase",
    "referrer_offer": "10% off your next purchase",
    "referral_expires_on": "2026-06-30",
}


class TemplateRejected(ValueError):
    """The template does not parse, uses an unknown variable, or tries to escape the sandbox."""


def render(template: str, context: dict[str, Any]) -> str:
    try:
        return _environment.from_string(template).render(context)
    except SecurityError as exc:
        raise TemplateRejected(f"template tries to access something it may not: {exc}") from exc
    except TemplateError as exc:
        raise TemplateRejected(f"template cannot be rendered: {exc}") from exc


def check(template: str, sample: dict[str, Any] = LEAD_SAMPLE) -> None:
    """Raise ``TemplateRejected`` unless the template renders against ``sample`` (the variables it may use)."""
    render(template, sample)
