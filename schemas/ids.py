"""How each API surface spells an identifier.

The canonical form (stored, used in workflow IDs, served on ``/v1``) is ``lead_3k9x...``.
The ``/api`` surface documents ``lead-123`` style IDs with longer nouns (``user-``, ``company-``),
so it presents the same value as ``lead-3k9x...`` and accepts either spelling back.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, StringConstraints

# canonical prefix -> the noun the /api surface uses
API_NOUNS: dict[str, str] = {
    "usr": "user",
    "cmp": "company",
    "lead": "lead",
    "int": "interaction",
    "cust": "customer",
    "sale": "sale",
    "rev": "review",
    "ref": "referral",
    "refuse": "referral-use",
    "cont": "content",
    "wf": "workflow",
    "run": "run",
    "act": "action",
    "hook": "webhook",
    "whd": "webhook-delivery",
    "msg": "message",
    "sched": "schedule",
    "pub": "publication",
    "link": "link",
    "bkp": "backup",
    "imp": "import",
    "evt": "event",
    "sup": "suppression",
    "chk": "check",
    "key": "api-key",
    "aud": "audit-entry",
    "rst": "restore",
}
_PREFIX_BY_NOUN = {noun: prefix for prefix, noun in API_NOUNS.items()}


def to_api_id(canonical: str | None) -> str | None:
    """``usr_abc`` -> ``user-abc``; values that are not ours pass through unchanged."""
    if canonical is None:
        return None
    prefix, sep, rest = canonical.partition("_")
    if not sep or prefix not in API_NOUNS:
        return canonical
    return f"{API_NOUNS[prefix]}-{rest}"


def from_api_id(value: str | None) -> str | None:
    """``user-abc`` (or ``usr_abc``) -> ``usr_abc``."""
    if value is None:
        return None
    noun, sep, rest = value.rpartition("-")
    if sep and noun in _PREFIX_BY_NOUN and rest:
        return f"{_PREFIX_BY_NOUN[noun]}_{rest}"
    return value


def _canonical_id(value: object) -> object:
    # Anything but a string (a number, an object) is left for pydantic to refuse as "not a string".
    return from_api_id(value) if isinstance(value, str) else value


MAX_ID_LENGTH = 64
"""Every id issued here is far shorter; a longer value names nothing and is refused before any lookup."""

RecordId = Annotated[str, StringConstraints(max_length=MAX_ID_LENGTH)]
"""An id field on the ``/v1`` surface (``lead_x``)."""

EndpointsId = Annotated[RecordId, BeforeValidator(_canonical_id), PlainSerializer(to_api_id, return_type=str)]
"""An id field on the ``/api`` surface: accepts ``lead-x`` or ``lead_x``, stores ``lead_x``, shows ``lead-x``."""
