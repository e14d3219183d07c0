"""The worker process: polls every task queue in ``worker.registry`` until told to stop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from core.config import Settings
from core.temporal import connect
from db.session import create_engine, session_factory
from worker.registry import wiring
from worker.schedules import keep_housekeeping_scheduled

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN = timedelta(seconds=20)
"""How long running activities get to finish after SIGTERM before they are cancelled."""


def build_workers(client: Client, settings: Settings, sessions, identity: str) -> list[Worker]:  # type: ignore[no-untyped-def]
    return [
        Worker(
            client,
            task_queue=settings.task_queue(queue.kind),
            workflows=list(queue.workflows),
            activities=list(queue.activities),
            max_concurrent_activities=queue.max_concurrent_activities,
            max_cached_workflows=settings.worker_max_cached_workflows,
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
            identity=identity,
        )
        for queue in wiring(settings, sessions, identity)
        if queue.workflows or queue.activities
    ]


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM, or until ``stop`` is set by whoever owns the signals (``bas dev``)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    identity = f"{os.getpid()}@{socket.gethostname()}"
    client = await connect(settings)
    engine = create_engine(settings)
    workers = build_workers(client, settings, session_factory(engine), identity)
    log.info(
        "worker %s polling %s on %s (namespace %s)",
        identity,
        ", ".join(w.task_queue for w in workers),
        settings.temporal_address,
        settings.temporal_namespace,
    )
    try:
        async with asyncio.TaskGroup() as group:
            for worker in workers:
                group.create_task(worker.run())
            # In the background: a worker that starts while Temporal is briefly away still comes up.
            housekeeping = group.create_task(keep_housekeeping_scheduled(client, settings))
            await stop.wait()
            housekeeping.cancel()
            log.info("worker %s shutting down: finishing running activities", identity)
            await asyncio.gather(*(worker.shutdown() for worker in workers))
    finally:
        await engine.dispose()
        log.info("worker %s stopped", identity)
