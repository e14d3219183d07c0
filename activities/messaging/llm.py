"""Personalising a rendered message: an OpenAI-compatible model when configured, else a deterministic offline writer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import openai

from core.config import Settings
from schemas.leads import Channel

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You rewrite a short follow-up message from a business to a prospective customer so that it reads as "
    "written personally for them. Keep every fact, offer, date, price and link exactly as given and invent "
    "nothing. Keep the language and roughly the length of the original. Reply with the message text only: "
    "no preamble, no subject line, no signature placeholders."
)
SMS_LIMIT = "It is a text message: plain text, at most 300 characters."


@dataclass(frozen=True)
class Recipient:
    """What the writer may know about the lead: enough to address them, nothing it does not need."""

    name: str
    first_name: str
    source: str
    company_name: str
    channel: Channel


class MessageWriter(Protocol):
    name: str

    async def personalise(self, text: str, recipient: Recipient) -> str: ...


def first_name(name: str) -> str:
    parts = name.split()
    return parts[0] if parts else ""


class OfflineWriter:
    """No network, same output for the same input: opens with the lead's first name unless the text already does."""

    name = "offline"

    async def personalise(self, text: str, recipient: Recipient) -> str:
        opening_line = text.strip().splitlines()[0] if text.strip() else ""
        if not recipient.first_name or recipient.first_name.lower() in opening_line.lower():
            return text
        return f"Hi {recipient.first_name},\n\n{text.strip()}"


class OpenAIWriter:
    """Any OpenAI-compatible chat completions endpoint (OpenAI, Ollama, vLLM...)."""

    name = "openai"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def personalise(self, text: str, recipient: Recipient) -> str:
        settings = self._settings
        instructions = SYSTEM_PROMPT + (f" {SMS_LIMIT}" if recipient.channel == Channel.sms else "")
        prompt = (
            f"Lead: {recipient.name} (first name: {recipient.first_name or 'unknown'}), "
            f"came in through {recipient.source}.\nBusiness: {recipient.company_name}.\n"
            f"Channel: {recipient.channel}.\n\nMessage:\n{text}"
        )
        async with llm_client(settings) as client:
            completion = await client.chat.completions.create(
                model=settings.llm_model,
                messages=[{"role": "system", "content": instructions}, {"role": "user", "content": prompt}],
            )
        content = completion.choices[0].message.content if completion.choices else None
        if not content or not content.strip():
            log.warning("model %s returned an empty message; sending the template's text", settings.llm_model)
            return text
        return content.strip()


def llm_client(settings: Settings) -> openai.AsyncOpenAI:
    """A client for the configured OpenAI-compatible endpoint, without retries of its own.

    Local servers (Ollama, vLLM) take no key, but the client insists on one. Retries are Temporal's job: the
    client's own would stack inside one activity attempt and outlast its timeout.
    """
    return openai.AsyncOpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value() or "not-needed",
        timeout=settings.llm_timeout_seconds,
        max_retries=0,
    )


def writer_for(settings: Settings) -> MessageWriter:
    return OpenAIWriter(settings) if settings.llm_base_url else OfflineWriter()
