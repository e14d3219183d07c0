"""Who is calling, for the audit log: set once per request by ``api.deps``, read by ``services.audit``.

A context variable rather than a parameter threaded through every service call: the audit trail needs the
caller's address and key, which no use-case otherwise cares about.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class CallerContext:
    ip_address: str | None = None
    api_key_id: str | None = None
    """Set when the caller authenticated with an API key rather than a user's token."""
    api_key_scope: str | None = None


_current: ContextVar[CallerContext | None] = ContextVar("caller", default=None)
_NOBODY = CallerContext()  # the command line and workers: no request behind the change


def set_caller(context: CallerContext) -> None:
    _current.set(context)


def caller() -> CallerContext:
    return _current.get() or _NOBODY
