"""Request ids and rate limits, as plain ASGI middleware so they wrap every route of both surfaces."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.console.session import ACCESS_COOKIE as CONSOLE_ACCESS_COOKIE
from api.errors import error_response
from core import security
from core.config import Settings
from core.rate_limit_storage import async_storage

log = logging.getLogger("api.access")

# Load balancers and the docs must work even when a client has used up its budget; inbound provider
# webhooks (authenticated by the secret key in their path) arrive in bursts from a few provider addresses.
STORAGE_WARNING_INTERVAL_SECONDS = 60.0
RATE_LIMIT_EXEMPT = ("/api/system/health", "/docs", "/redoc", "/openapi.json", "/api/lead-nurturing/inbound/")


class RequestIdMiddleware:
    """Gives every request an id (or keeps the caller's ``X-Request-ID``) and logs one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Request(scope).headers.get("x-request-id", "")
        request_id = incoming if 0 < len(incoming) <= 64 else f"req_{uuid.uuid4().hex[:16]}"
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s -> %s in %.1f ms [%s]",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )


@dataclass(frozen=True)
class _Budget:
    item: RateLimitItem
    key: str


class RateLimitMiddleware:
    """100 requests/minute per client IP and 1000/hour per signed-in user (both configurable).

    The storage is ``limits``' URI: in memory for one process, Redis for several API replicas.
    Headers report whichever budget is closest to running out.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limiter = MovingWindowRateLimiter(async_storage(settings.rate_limit_storage))
        self.per_ip = RateLimitItemPerMinute(settings.rate_limit_per_ip_minute)
        self.per_user = RateLimitItemPerHour(settings.rate_limit_per_user_hour)
        self._storage_warned_at = -STORAGE_WARNING_INTERVAL_SECONDS

    def _storage_down(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._storage_warned_at >= STORAGE_WARNING_INTERVAL_SECONDS:  # one line a minute, not per request
            self._storage_warned_at = now
            log.error(
                "rate limits are OFF: storage %s unreachable (%s); requests pass unlimited until it is back",
                self.settings.rate_limit_storage.split("@")[-1],
                exc,
            )

    def _budgets(self, request: Request) -> list[_Budget]:
        client = request.client.host if request.client else "unknown"
        budgets = [_Budget(self.per_ip, f"ip:{client}")]
        authorization = request.headers.get("authorization", "")
        # The console carries the same access token in its session cookie: the same per-user budget applies.
        token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
        token = token or request.cookies.get(CONSOLE_ACCESS_COOKIE)
        if token:
            try:
                claims = security.decode_token(self.settings, token, expected="access")
            except security.InvalidToken:
                pass  # the route will answer 401; the IP budget still counts the attempt
            else:
                budgets.append(_Budget(self.per_user, f"user:{claims.user_id}"))
                request.state.access_claims = claims  # api.usage counts the call by them: decoded once
        return budgets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(RATE_LIMIT_EXEMPT):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        budgets = self._budgets(request)
        try:
            allowed = True
            for budget in budgets:
                allowed = await self.limiter.hit(budget.item, budget.key) and allowed
            stats = [(budget, await self.limiter.get_window_stats(budget.item, budget.key)) for budget in budgets]
        except Exception as exc:  # the storage (Redis) is down: any of its client's errors
            # Fail open: the limits protect the service, so losing them for a while must not take it down.
            self._storage_down(exc)
            await self.app(scope, receive, send)
            return
        tightest, window = min(stats, key=lambda pair: pair[1].remaining)
        headers = {
            "X-RateLimit-Limit": str(tightest.item.amount),
            "X-RateLimit-Remaining": str(max(window.remaining, 0)),
            "X-RateLimit-Reset": str(int(window.reset_time)),
        }
        if not allowed:
            retry_after = max(1, int(window.reset_time - time.time()))
            log.warning("rate limit exceeded for %s on %s", tightest.key, scope["path"])
            response = error_response(
                request,
                429,
                "Too many requests; retry after the time in the Retry-After header",
                headers={**headers, "Retry-After": str(retry_after)},
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in headers.items():
                    response_headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
