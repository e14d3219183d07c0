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


def errors_by_input(exc: ValidationError) -> dict[str, list[str]]:
    """The same errors keyed by the input they belong to: ``tags.2`` is shown next to the ``tags`` input."""
    merged: dict[str, list[str]] = {}
    for name, messages in field_errors(exc).items():
        merged.setdefault(name.split(".")[0], []).extend(messages)
    return merged
