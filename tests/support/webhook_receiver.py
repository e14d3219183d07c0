"""A webhook receiver on 127.0.0.1: records every request as it arrived and answers as the test scripts it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tests.support.asgi_server import AsgiServer


def readme_verify(secret: bytes, header: str, body: bytes, now: float) -> bool:
    """The README receiver's check, line for line: HMAC-SHA256 over ``"<t>." + body``, under 5 minutes old."""
    sig = dict(p.partition("=")[::2] for p in header.split(","))
    expected = hmac.new(secret, sig.get("t", "").encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = sig.get("t", "").isdigit() and now - int(sig["t"]) < 300
    return fresh and hmac.compare_digest(expected, sig.get("v1", ""))


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-case names, as HTTP/1.1 allows."""
    body: bytes
    """Exactly the bytes that came over the wire (what the signature covers)."""
    at: float
    """``time.time()`` when it arrived."""


@dataclass
class Script:
    answers: list[int] = field(default_factory=list)
    """Status codes for the next requests, in order; ``default`` once they are used up."""
    default: int = 200


class WebhookReceiver(AsgiServer):
    """Answers any path; ``script.answers = [500, 500, 500]`` fails three times, then ``script.default``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script = Script()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await self._answer(scope, receive, send)

        super().__init__(app)  # a plain function: uvicorn would take a bound method for an ASGI2 app

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        self.received.append(
            Received(
                method=request.method,
                path=request.url.path,
                headers={name.lower(): value for name, value in request.headers.items()},
                body=await request.body(),
                at=time.time(),
            )
        )
        status = self.script.answers.pop(0) if self.script.answers else self.script.default
        await Response(f"answered {status}", status_code=status)(scope, receive, send)

    def matching(self, predicate: Callable[[Received], bool]) -> list[Received]:
        return [request for request in self.received if predicate(request)]

    async def wait_for(self, predicate: Callable[[Received], bool], count: int = 1) -> list[Received]:
        """The first ``count`` requests that match, once that many have arrived; callers bound the wait."""
        while len(self.matching(predicate)) < count:
            await asyncio.sleep(0.05)
        return self.matching(predicate)[:count]
