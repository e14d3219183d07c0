"""schemathesis over both surfaces' OpenAPI, with a signed-in admin: no 5xx, and every answer as declared.

Every operation of ``/openapi.json`` (``/v1``, ``/token``, ``/api``, the public form and link routes) is
called with generated data: as the schema allows (positive) and as it does not (negative, which must be a
declared 4xx), with path ids left to the generator (mostly 404s), and positive once more with the ids of
real records of the signed-in company (so generated bodies reach stored rows). Checks: no server error,
the status code, content type, headers and body all as the operation declares.

Bounded for CI: a fixed seed, a few examples per operation and pass, no shrinking, and a time budget.
SQLite only: the same routes on PostgreSQL double the time and the DB-specific risks (NUL in text, JSON
types) have their own tests in test_hostile_input.py, which run on both.

The app runs on uvicorn in the test's own event loop (its lifespan, Temporal client and worker live there)
and schemathesis calls it over 127.0.0.1 from a thread. ``schemathesis.openapi.from_asgi`` would run the
app on schemathesis's own event-loop thread, where the database engine and the Temporal client that the
worker fixture shares cannot be used.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.config import Settings
from tests.hostile.seed import Tenant, seed_tenant
from tests.support.processes import free_port

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

SEED = 20_261_201
EXAMPLES_PER_PASS = 5
TIME_BUDGET_SECONDS = 240.0
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

EXCLUDED: dict[tuple[str, str], str] = {
    ("POST", "/api/system/restore"): "with a real backup id it replaces the company's data under the other calls",
    ("POST", "/api/system/check"): "waits up to its timeout for a probe workflow; tests/api covers it",
}
"""Operations not fuzzed, and why; everything else in the document is."""


@dataclass
class Report:
    operations: int = 0
    calls: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    out_of_time: list[str] = field(default_factory=list)
    nothing_to_break: list[str] = field(default_factory=list)


def _fuzz(spec: dict[str, Any], base_url: str, tenant: Tenant) -> Report:
    """Runs in a thread: schemathesis and hypothesis are synchronous."""
    schema = schemathesis.openapi.from_dict(spec)
    session = requests.Session()
    headers = {"Authorization": f"Bearer {tenant.account.token}"}
    report = Report()
    started = time.monotonic()

    def run(label: str, strategy: Any) -> None:
        @hypothesis.seed(SEED)
        @hypothesis.settings(
            max_examples=EXAMPLES_PER_PASS,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as generated
            suppress_health_check=list(HealthCheck),
            verbosity=hypothesis.Verbosity.quiet,
        )
        @hypothesis.given(strategy)
        def call(case: Any) -> None:
            response = case.call(base_url=base_url, session=session, timeout=60)
            report.calls += 1
            report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
            case.validate_response(response, checks=CHECKS)

        try:
            call()
        except hypothesis.errors.Unsatisfiable:
            report.nothing_to_break.append(label)  # negative mode: no parameter or body to make invalid
        except (Exception, BaseExceptionGroup) as exc:  # failed checks (a group), with the request that failed
            report.failures.append(f"{label}: {exc}"[:3000])

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # an operation schemathesis cannot read is a failure of the document
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in EXCLUDED:
            continue
        report.operations += 1
        if time.monotonic() - started > TIME_BUDGET_SECONDS:
            report.out_of_time.append(f"{key[0]} {key[1]}")
            continue
        names = [parameter.name for parameter in operation.path_parameters]
        real = {name: tenant.ids[name] for name in names if name in tenant.ids}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{key[0]} {key[1]} [{mode.value}]"
            run(label, operation.as_strategy(generation_mode=mode, headers=headers))
            # Invalid data is refused before any lookup, so real ids add nothing to a negative pass.
            if mode is GenerationMode.POSITIVE and real and len(real) == len(names):
                run(
                    f"{label} [real ids]",
                    operation.as_strategy(generation_mode=mode, headers=headers, path_parameters=real),
                )
    return report


@contextlib.asynccontextmanager
async def _served(app: FastAPI) -> AsyncIterator[str]:
    """The app (already started by its fixture) on uvicorn in this event loop, on a free loopback port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.mark.usefixtures("worker")
async def test_both_surfaces_hold_to_their_openapi(
    app: FastAPI, client: httpx2.AsyncClient, settings: Settings
) -> None:
    # Routes that wait for a worker's result answer 202 at once instead; the fuzz is about shapes, not waits.
    settings.content_generation_wait_seconds = 0.2
    settings.content_publish_wait_seconds = 0.2
    tenant = await seed_tenant(client, "Fuzzed Inc")
    spec = app.openapi()
    async with _served(app) as base_url:
        report = await asyncio.to_thread(_fuzz, spec, base_url, tenant)
    summary = (
        f"{report.operations} operations, {report.calls} calls, statuses {sorted(report.statuses.items())}, "
        f"{len(report.nothing_to_break)} negative passes with nothing to make invalid"
    )
    print(summary)
    assert not report.out_of_time, f"time budget spent before {report.out_of_time}"
    assert not report.failures, summary + "\n\n" + "\n\n".join(report.failures)
    assert report.operations >= 100 and report.calls >= report.operations * 2 * EXAMPLES_PER_PASS * 0.5, summary
