"""Counts every authenticated API call per company per hour (``services.api_usage``), as plain ASGI middleware.

A call is authenticated when it carries a valid access token or an API key (``bas_...``) and the answer is not
401 (which also leaves out revoked keys, wrong key secrets and deactivated users). The company comes from the
token's claims, which the rate limiter has usually decoded already, or from the key's prefix.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import security
from core.config import Settings
from services.api_usage import ApiUsage

log = logging.getLogger(__name__)

CLAIMS_STATE = "access_claims"
"""Where ``RateLimitMiddleware`` leaves the claims it decoded (``request.state.access_claims``)."""


class ApiUsageMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, usage: ApiUsage) -> None:
        self.app = app
        self.settings = settings
        self.usage = usage

    def _credential(self, request: Request) -> tuple[str | None, str | None]:
        """(company id from a valid access token, API key prefix): at most one of them is set."""
        authorization = request.headers.get("authorization", "")
        bearer = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        presented = bearer or request.headers.get("x-api-key", "")
        if not presented:
            return None, None
        if presented.startswith(security.API_KEY_MARK):
            return None, security.api_key_prefix(presented)
        claims = getattr(request.state, CLAIMS_STATE, None)
        if claims is None:
            try:
                claims = security.decode_token(self.settings, presented, expected="access")
            except security.InvalidToken:
                return None, None
        return claims.company_id, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        company_id, key_prefix = self._credential(Request(scope))
        if not (company_id or key_prefix):
            await self.app(scope, receive, send)
            return
        status = 0

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            if status != 401:
                await self._count(scope, company_id, key_prefix)

    async def _count(self, scope: Scope, company_id: str | None, key_prefix: str | None) -> None:
        sessions = scope["app"].state.sessions
        if company_id is None and key_prefix is not None:
            try:
                company_id = await self.usage.company_of_key(sessions, key_prefix)
            except Exception:  # counting must never break a call that already got its answer
                log.exception("api usage: could not look up the company of key %s", key_prefix)
                return
        if company_id is None:
            return
        self.usage.count(company_id)
        self.usage.flush_soon(sessions)
