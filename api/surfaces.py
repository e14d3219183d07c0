"""The two API surfaces share one app; each path belongs to exactly one of them."""

from __future__ import annotations

from enum import StrEnum


class Surface(StrEnum):
    RESOURCES = "resources"
    """``/v1/...`` (spec/api-v1-resources.md): ``{"error", "message"}`` errors, ``data/meta`` lists."""
    ENDPOINTS = "endpoints"
    """``/token`` and ``/api/...`` (spec/api-v1-workflow-endpoints.md): ``{"detail"}`` errors, ``items`` lists."""
    CONSOLE = "console"
    """``/app/...``: the web console; errors are HTML pages (or a sign-in redirect), never JSON."""


def surface_of(path: str) -> Surface:
    if path == "/v1" or path.startswith("/v1/"):
        return Surface.RESOURCES
    if path == "/app" or path.startswith("/app/"):
        return Surface.CONSOLE
    return Surface.ENDPOINTS
