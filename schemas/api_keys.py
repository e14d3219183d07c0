from __future__ import annotations

from enum import StrEnum


class ApiKeyScope(StrEnum):
    lead_capture = "lead_capture"
    """Create leads only: server-to-server lead capture, and the public form named by the key's prefix."""
    full = "full"
    """Everything the creating user may do, except managing users, API keys and other admin-only actions."""


SCOPE_CODES = {ApiKeyScope.lead_capture: "lc", ApiKeyScope.full: "full"}
"""The scope as it appears in the key itself (``bas_lc_...``), so a leaked key shows what it can do."""
