from __future__ import annotations

from typing import Any

from schemas.common import bounded_json
from services.errors import InvalidField


def deep_merge(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Merge ``patch`` into a copy of ``stored``: nested objects merge, a ``None`` value deletes the key."""
    merged = dict(stored)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def merge_bounded(stored: dict[str, Any], patch: dict[str, Any], field: str) -> dict[str, Any]:
    """``deep_merge``, with the result held to the free-form limits: each patch fits, but many could add up."""
    merged = deep_merge(stored, patch)
    try:
        return bounded_json(merged)
    except ValueError as exc:
        raise InvalidField(field, f"with this change, {field} would be {exc}") from exc
