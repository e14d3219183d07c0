"""Message templates: jinja2 in a sandbox, so a template can use ``{{name}}`` but never reach Python internals."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OPERAND = 1_000_000
"""The largest number ``*`` and ``**`` take in a template: plenty for a message, and no ``10**10**9``."""
MAX_EXPONENT = 100
"""The largest exponent: ``MAX_OPERAND ** MAX_EXPONENT`` is still computed in microseconds."""
MAX_REPEAT = 100_000
"""The longest text or list ``*`` may build (``'a' * 10**9`` would take a gigabyte of the API's memory)."""


def _too_large(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_OPERAND


class _MessageSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with the arithmetic that could exhaust memory or CPU bounded (checked at save time too)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if _too_large(left) or _too_large(right):
            raise SecurityError(f"numbers above {MAX_OPERAND} cannot be used with {operator!r}")
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponents above {MAX_EXPONENT} are not allowed")
        for sequence, count in ((left, right), (right, left)):
            if (
                operator == "*"
                and isinstance(sequence, str | list | tuple)
                and isinstance(count, int)
                and len(sequence) * count > MAX_REPEAT
            ):
                raise SecurityError(f"'*' may not build more than {MAX_REPEAT} characters or items")
        return super().call_binop(context, operator, left, right)


_environment = _MessageSandbox(undefined=StrictUndefined, autoescape=False)

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


@lru_cache(maxsize=256)
def _compiled(template: str) -> Template:
    # A sequence renders the same few templates for every message: parse and compile them once per process,
    # not once per send (compiling cost three times what rendering does). A template that does not compile
    # raises, and lru_cache never caches an exception.
    return _environment.from_string(template)


def render(template: str, context: dict[str, Any]) -> str:
    try:
        return _compiled(template).render(context)
    except SecurityError as exc:
        raise TemplateRejected(f"template tries to access something it may not: {exc}") from exc
    except TemplateError as exc:
        raise TemplateRejected(f"template cannot be rendered: {exc}") from exc
    except Exception as exc:
        # Whatever else a template can provoke ({{ 1/0 }}, a range past the sandbox's limit, an {% include %}
        # with no loader, runaway recursion) is the template's fault: a 422 at save time, never a 500.
        raise TemplateRejected(f"template cannot be rendered: {type(exc).__name__}: {exc}") from exc


def check(template: str, sample: dict[str, Any] = LEAD_SAMPLE) -> None:
    """Raise ``TemplateRejected`` unless the template renders against ``sample`` (the variables it may use)."""
    render(template, sample)
