"""The FastAPI application: both API surfaces, one set of middleware, one Temporal client."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from temporalio.client import Client

from api.console.router import root_router as console_root_router
from api.console.router import router as console_router
from api.console.router import static_files as console_static
from api.console.session import CONSOLE_PATH
from api.endpoints.router import router as endpoints_router
from api.endpoints.router import token_router
from api.errors import ENDPOINTS_ERROR_RESPONSES, install_error_handlers
from api.forms import router as forms_router
from api.limits import BodyLimitMiddleware
from api.links import router as links_router
from api.middleware import RateLimitMiddleware, RequestIdMiddleware
from api.resources.router import router as resources_router
from api.usage import ApiUsageMiddleware
from core.config import Settings, get_settings
from core.logging import configure_logging
from core.temporal import connect
from db.session import create_engine, session_factory
from services.api_usage import ApiUsage
from services.health import VERSION
from services.webhook_dispatch import run_relay

log = logging.getLogger(__name__)

TEMPORAL_RETRY_SECONDS = 5.0


async def _connect_until_up(app: FastAPI, settings: Settings) -> None:
    """Keep trying: the API serves (and health says "degraded") while Temporal is still starting."""
    while app.state.temporal is None:
        try:
            app.state.temporal = await connect(settings)
            log.info(
                "connected to Temporal at %s (namespace %s)", settings.temporal_address, settings.temporal_namespace
            )
        except Exception as exc:  # connection errors come in many types; all mean "retry later"
            log.warning(
                "Temporal at %s not reachable (%s); retrying in %.0fs",
                settings.temporal_address,
                exc,
                TEMPORAL_RETRY_SECONDS,
            )
            await asyncio.sleep(TEMPORAL_RETRY_SECONDS)


def create_app(settings: Settings | None = None, temporal_client: Client | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.settings = settings
        app.state.sessions = session_factory(engine)
        app.state.temporal = temporal_client
        connector = None if temporal_client else asyncio.create_task(_connect_until_up(app, settings))
        # Waits quietly while Temporal is not connected yet; events stay in the outbox until it is.
        relay = asyncio.create_task(run_relay(app.state.sessions, lambda: app.state.temporal, settings))
        # Everything built so far (modules, classes, routes, the ORM's and pydantic's machinery: some 360,000
        # objects) lives as long as the process. Left in the collector's oldest generation, each full collection
        # walks all of them, and the request it lands in waits 100-250 ms (bench/read_paths measured it).
        # Frozen, they are skipped. Unfrozen at shutdown, so a process that builds many apps (the tests) can
        # still collect the ones it is done with.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
            if connector:
                connector.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await connector
            await app.state.api_usage.close(app.state.sessions)  # the calls counted since the last flush
            await engine.dispose()

    app = FastAPI(
        title="Business Automation System",
        version=VERSION,
        description=(
            "Lead follow-up, review & referral and content automations as durable Temporal workflows.\n\n"
            "Two surfaces share one JWT: `/v1/...` (resources) and `/token` + `/api/...` (workflow endpoints)."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.api_usage = ApiUsage()
    install_error_handlers(app)
    app.include_router(resources_router)
    app.include_router(token_router, responses=ENDPOINTS_ERROR_RESPONSES)
    app.include_router(endpoints_router)
    app.include_router(links_router, responses=ENDPOINTS_ERROR_RESPONSES)  # /c/{link_id}: click-tracked links, public
    app.include_router(forms_router)  # /forms/{form_id}: public lead forms
    app.include_router(console_router)  # /app: the web console
    app.include_router(console_root_router)  # / leads to the console
    app.mount(f"{CONSOLE_PATH}/static", console_static, name="console-static")
    # Inside the rate limiter: a call refused with 429 is not counted, and the token it decoded is reused.
    app.add_middleware(ApiUsageMiddleware, settings=settings, usage=app.state.api_usage)
    # Inside the rate limiter (a flood of oversized bodies is still throttled), outside every route.
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    # Added last = runs first: every response, including 429s and CORS preflights, gets a request id.
    app.add_middleware(RateLimitMiddleware, settings=settings)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials="*" not in settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=[
            "X-Duplicate-Of",
            "Idempotent-Replayed",
            "X-Request-ID",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "Retry-After",
        ],
    )
    app.add_middleware(RequestIdMiddleware)
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory api.main:app_factory``."""
    settings = get_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
