"""Public lead forms: a website posts a form to ``/forms/{prefix}`` of a lead-capture key and a lead is created.

The lead goes through ``services.leads.create`` like any other, as the user who made the key, so matching
follow-up configs start exactly as for a lead typed in by hand. The form id (the key's prefix) is public:
it can create leads through this one door and nothing else, and each address is held to a per-form rate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from core.config import Settings
from core.rate_limit_storage import async_storage
from db.models import ApiKey
from schemas.api_keys import DEFAULT_FORM_SOURCE
from schemas.common import readable_errors
from schemas.lead_forms import (
    HONEYPOT_FIELD,
    KNOWN_FIELDS,
    MAX_CUSTOM_FIELDS,
    MAX_CUSTOM_VALUE,
    MAX_FIELD_NAME,
)
from schemas.leads import LeadCreate
from services import api_keys, leads
from services.errors import DomainError, InvalidField, NotFound

log = logging.getLogger(__name__)

# Lead fields as a form calls them (the form's "message" is the lead's notes).
_FORM_NAMES = {"notes": "message"}


class InvalidSubmission(DomainError):
    """The form's values would not make a valid lead; ``field_errors`` says what to fix, by form field."""

    status_code = 422
    code = "validation_error"

    def __init__(self, field_errors: dict[str, list[str]]) -> None:
        super().__init__("Validation failed")
        self.field_errors = field_errors


class TooManySubmissions(DomainError):
    status_code = 429
    code = "rate_limit_exceeded"

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many submissions of this form from your address; try again shortly")
        self.retry_after = retry_after


@dataclass(frozen=True)
class FormOutcome:
    thank_you_url: str | None
    accepted: bool
    """False when the honeypot was filled: nothing was written, and the sender is told the same as anyone."""


def form_url(settings: Settings, prefix: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/forms/{prefix}"


_limiters: dict[str, MovingWindowRateLimiter] = {}


def _limiter(uri: str) -> MovingWindowRateLimiter:
    # One limiter per storage for the process: counts must outlive the request that made them.
    if uri not in _limiters:
        _limiters[uri] = MovingWindowRateLimiter(async_storage(uri))
    return _limiters[uri]


async def _check_rate(settings: Settings, form_id: str, client_ip: str) -> None:
    limiter = _limiter(settings.rate_limit_storage)
    item = RateLimitItemPerMinute(settings.form_rate_limit_per_minute)
    if not await limiter.hit(item, "form", form_id, client_ip):
        window = await limiter.get_window_stats(item, "form", form_id, client_ip)
        log.warning("form %s: rate limit of %s/minute reached by one address", form_id, item.amount)
        raise TooManySubmissions(max(1, int(window.reset_time - time.time())))


def _collect(fields: Sequence[tuple[str, str]]) -> dict[str, str]:
    """One value per field, blanks dropped; a repeated field (checkboxes) is joined with commas."""
    values: dict[str, list[str]] = {}
    for name, value in fields:
        if value.strip():
            values.setdefault(name.strip(), []).append(value.strip())
    return {name: ", ".join(parts) for name, parts in values.items() if name}


def _custom_fields(values: dict[str, str], errors: dict[str, list[str]]) -> dict[str, Any]:
    extras = {name: value for name, value in values.items() if name not in KNOWN_FIELDS}
    if len(extras) > MAX_CUSTOM_FIELDS:
        errors["custom_fields"] = [f"at most {MAX_CUSTOM_FIELDS} extra fields; this form sent {len(extras)}"]
        return {}
    for name, value in extras.items():
        if len(name) > MAX_FIELD_NAME:
            errors[name[:MAX_FIELD_NAME]] = [f"field names are at most {MAX_FIELD_NAME} characters"]
        elif len(value) > MAX_CUSTOM_VALUE:
            errors[name] = [f"at most {MAX_CUSTOM_VALUE} characters"]
    return extras


def lead_from_form(values: dict[str, str], key: ApiKey) -> LeadCreate:
    """The lead a submission describes, with the key's source and tags; ``InvalidSubmission`` if it is not one."""
    errors: dict[str, list[str]] = {}
    name = values.get("name") or " ".join(filter(None, (values.get("first_name"), values.get("last_name"))))
    if not name:
        errors["name"] = ["please enter your name"]
    custom_fields = _custom_fields(values, errors)
    # Only which form it came from: no referrer, origin or address is kept about the person.
    custom_fields["form_id"] = key.prefix
    body = {
        "name": name,
        "email": values.get("email"),
        "phone": values.get("phone"),
        "notes": values.get("message"),
        "source": key.settings.get("lead_source") or DEFAULT_FORM_SOURCE,
        "tags": key.settings.get("tags") or [],
        "custom_fields": custom_fields,
    }
    try:
        lead = LeadCreate.model_validate(body)
    except ValidationError as exc:
        for field, message in readable_errors(exc.errors()):
            top = field.split(".")[0]
            errors.setdefault(_FORM_NAMES.get(top, top), [message])  # one message per field is enough to fix it
    if errors:
        raise InvalidSubmission(errors)
    return lead


async def submit(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    form_id: str,
    fields: Sequence[tuple[str, str]],
    client_ip: str,
) -> FormOutcome:
    """Create (or merge, for a known email) the lead a form submission describes, as any lead is created."""
    found = await api_keys.form_key(session, form_id)
    if found is None:
        raise NotFound("form", form_id)
    user, key = found
    await _check_rate(settings, form_id, client_ip)
    thank_you_url = key.settings.get("thank_you_url")
    values = _collect(fields)
    if values.get(HONEYPOT_FIELD):
        log.info("form %s of %s: honeypot field filled; submission dropped as spam", form_id, key.company_id)
        return FormOutcome(thank_you_url, accepted=False)
    body = lead_from_form(values, key)
    try:
        created = await leads.create(session, client, settings, user, body)
    except InvalidField as exc:
        raise InvalidSubmission({_FORM_NAMES.get(exc.field, exc.field): [exc.message]}) from exc
    api_keys.touch(key)
    log.info(
        "form %s of %s: lead %s %s",
        form_id,
        key.company_id,
        created.lead.id,
        "merged" if created.duplicate else "created",
    )
    return FormOutcome(thank_you_url, accepted=True)
