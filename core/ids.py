"""Readable prefixed identifiers (``lead_3k9x...``): the canonical form, stored and used in workflow IDs."""

from __future__ import annotations

import secrets
import string

from schemas.ids import API_NOUNS

_ALPHABET = string.ascii_lowercase + string.digits


def new_id(prefix: str, length: int = 16) -> str:
    if prefix not in API_NOUNS:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(length))}"
