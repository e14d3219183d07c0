"""What a lead-capture API key sees of the lead it wrote: enough to refer to it, nothing personal.

Such a key may create leads but not read them; without this, posting a known email would hand back the
stored lead (name, phone, notes) as the duplicate's answer.
"""

from __future__ import annotations

from typing import Any

from core.request_context import caller
from schemas.api_keys import ApiKeyScope

VISIBLE_TO_LEAD_CAPTURE = ("id", "status", "created_at")


def as_seen_by_caller(public: dict[str, Any]) -> dict[str, Any]:
    if caller().api_key_scope != ApiKeyScope.lead_capture:
        return public
    return {field: public[field] for field in VISIBLE_TO_LEAD_CAPTURE if field in public}
