"""Hostile-input tests: the app as every API test gets it, with webhooks allowed to a loopback receiver."""

from __future__ import annotations

import pytest

from core.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The seeded company registers a webhook to 127.0.0.1 (nothing listens: deliveries just fail and retry).
    return settings.model_copy(update={"webhook_allowed_networks": ["127.0.0.0/8"]})
