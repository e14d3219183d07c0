"""Message templates: jinja2 in a sandbox, so a template can use ``{{name}}`` but never reach Python internals."""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_environment = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

# What a template may use: the lead's own fields and the company's public ones. Checked at config time
# against this sample so a typo is a 422 when the config is saved, not a failed send days later.
SAMPLE_CONTEXT: dict[str, Any] = {
    "name": "Jane Smith",
    "first_name": "Jane",
    "email": "jane@example.com",
    "phone": "+15550100",
    "source": "website_form",
    "status": "new",
    "tags": ["vip"],
    "custom_fields": {},
    "company": {"name": "Acme Inc", "website": "https://acme.example.com"},
    "company_name": "Acme Inc",
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


def check(template: str) -> None:
    """Raise ``TemplateRejected`` unless the template renders against ``SAMPLE_CONTEXT``."""
    render(template, SAMPLE_CONTEXT)
