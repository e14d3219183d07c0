"""Integration tests run the real worker against real providers on loopback: SMTP and an OpenAI-compatible LLM."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.config import Settings
from tests.support.openai_server import OpenAIServer
from tests.support.smtp_server import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def llm() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer, llm: OpenAIServer) -> Settings:
    """The suite's settings, with real providers: SMTP and an OpenAI-compatible LLM on loopback."""
    return settings.model_copy(
        update={
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_starttls": False,
            "email_from": "Acme Inc <hello@acme.example.com>",
            "llm_base_url": llm.base_url,
            "llm_model": "test-model",
            "public_base_url": "http://testserver",
        }
    )
