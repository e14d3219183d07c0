"""How each API surface spells an identifier.

The canonical form (stored, used in workflow IDs, served on ``/v1``) is ``lead_3k9x...``.
The ``/api`` surface documents ``lead-123`` style IDs with longer nouns (``user-``, ``company-``),
so it presents the same value as ``lead-3k9x...`` and accepts either spelling back.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

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


EndpointsId = Annotated[str, BeforeValidator(from_api_id), PlainSerializer(to_api_id, return_type=str)]
"""An id field on the ``/api`` surface: accepts ``lead-x`` or ``lead_x``, stores ``lead_x``, shows ``lead-x``."""
