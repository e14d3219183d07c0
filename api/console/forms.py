"""Form helpers shared by the console's pages."""

from __future__ import annotations

from collections import defaultdict

from pydantic import ValidationError

from schemas.common import readable_errors


def field_errors(exc: ValidationError) -> dict[str, list[str]]:
    """``{"email": ["value is not a valid email address"]}``: what a form shows next to each input."""
    errors: dict[str, list[str]] = defaultdict(list)
    for field, message in readable_errors(exc.errors()):
        errors[field or "form"].append(message)
    return dict(errors)
