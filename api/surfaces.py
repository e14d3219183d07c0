"""The two API surfaces share one app; each path belongs to exactly one of them."""

from __future__ import annotations

from enum import StrEnum


class Surface(StrEnum):
    RESOURCES = "resources"
    """``/v1/...`` (spec/api-v1-resources.md): ``{"error", "message"}`` errors, ``data/meta`` lists."""
    ENDPOINTS = "endpoints"
    """``/token`` and ``/api/...`` (spec/api-v1-workflow-endpoints.md): ``{"detail"}`` errors, ``items`` lists."""


def surface_of(path: str) -> Surface:
    return Surface.RESOURCES if path == "/v1" or path.startswith("/v1/") else Surface.ENDPOINTS
