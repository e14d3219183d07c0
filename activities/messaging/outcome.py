"""What a provider call can end in, shared by every channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SendResult:
    """``sent``: the provider accepted the message. ``failed``: it definitely refused it (retrying cannot help).
    ``unknown``: the request left but no answer came back, so it may or may not have been accepted."""

    status: Literal["sent", "failed", "unknown"]
    provider_message_id: str | None = None
    error: str | None = None


class ProviderUnavailable(Exception):
    """Nothing was accepted (refused connection, temporary 4xx, bad credentials): safe for Temporal to retry."""


class OutcomeUnresolved(Exception):
    """A message may or may not be with the provider, and this attempt could not settle which.

    The delivery stays ``sending``; Temporal's next attempt resolves it (resends an email under the same
    Message-ID, asks the SMS provider before sending again), after a backoff that gives a slow provider time to
    finish what it was doing.
    """
