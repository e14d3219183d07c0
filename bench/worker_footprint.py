"""Worker footprint: 10,000 leads asleep in their follow-up sequences cost the worker (almost) nothing.

A real ``bas worker`` process on PostgreSQL and the Temporal dev server. Its resident memory (``VmRSS``) is read
idle, then with the sequences in flight:

- ``asleep`` sequences wait a day for their first message (their leads and run rows are written in bulk, their
  workflows started straight on Temporal as the API starts them: starting 10,000 through the API is the start
  benchmark's business, not this one's);
- ``after first email`` sequences are leads created through the API whose first email went out at once (recorded:
  no SMTP server here) and whose follow-up waits a day.

A sleeping workflow is a timer on the Temporal server; the worker keeps at most ``BAS_WORKER_MAX_CACHED_WORKFLOWS``
of them in its sticky cache and forgets the rest until their timer fires. The CPU the worker spends while they
sleep, and its memory against idle, are the figures.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import (
    BasProcess,
    Samples,
    api_client,
    bas_worker,
    bench_settings,
    closed_loop,
    expect,
    follow_up_config,
    lead_body,
    postgres_database,
    register,
    start_follow_up,
    table,
    temporal_dev,
)
from schemas.temporal import QueueKind

CONFIG_ID = "wf_benchfootprint000"
QUIET_CPU_SECONDS = 0.1
"""A worker that used less CPU than this over ``QUIET_WINDOW`` seconds has nothing left to do."""
QUIET_WINDOW = 3.0
SLEEPING_WINDOW = 10.0
"""How long the worker's CPU is watched while every sequence sleeps."""
SETTLE_LIMIT_SECONDS = 600


@dataclass(frozen=True)
class Sizes:
    asleep: int
    after_first_email: int
    in_flight: int
    """Starts in flight at once."""


FULL = Sizes(asleep=10_000, after_first_email=200, in_flight=32)
QUICK = Sizes(asleep=1_000, after_first_email=50, in_flight=32)


def _bulk_leads(url: str, company_id: str, count: int) -> None:
    """The asleep sequences' leads and run rows, written by PostgreSQL in two statements."""
    with psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor) as connection:
        connection.execute(
            """
            INSERT INTO workflow_configs (id, company_id, name, workflow_type, active, triggers, actions, templates,
                                          created_at, updated_at)
            VALUES (%(config)s, %(company)s, 'Bench sleepers', 'lead_nurturing', false, '{}', '{}', '{}', now(), now())
            """,
            {"config": CONFIG_ID, "company": company_id},
        )
        connection.execute(
            """
            INSERT INTO leads (id, company_id, name, email, source, status, tags, custom_fields, created_at, updated_at)
            SELECT 'lead_sleep' || lpad(n::text, 8, '0'), %(company)s, 'Sleeper ' || n,
                   'sleeper' || n || '@example.com', 'website_form', 'new', '[]', '{}', now(), now()
            FROM generate_series(1, %(count)s) AS n
            """,
            {"company": company_id, "count": count},
        )
        connection.execute(
            """
            INSERT INTO workflow_runs (id, company_id, workflow_config_id, workflow_type, temporal_workflow_id, status,
                                       trigger_type, trigger_id, results, started_at)
            SELECT 'run_sleep' || lpad(n::text, 8, '0'), %(company)s, %(config)s, 'lead_nurturing',
                   'lead-follow-up/lead_sleep' || lpad(n::text, 8, '0') || '/' || %(config)s, 'running', 'new_lead',
                   'lead_sleep' || lpad(n::text, 8, '0'), '{}', now()
            FROM generate_series(1, %(count)s) AS n
            """,
            {"company": company_id, "config": CONFIG_ID, "count": count},
        )


async def _quiet(worker: BasProcess) -> float:
    """Wait until the worker has nothing left to do; returns how long that took."""
    started = time.monotonic()
    while True:
        worker.check_alive()
        before = worker.cpu_seconds()
        await asyncio.sleep(QUIET_WINDOW)
        if worker.cpu_seconds() - before < QUIET_CPU_SECONDS:
            return time.monotonic() - started
        if time.monotonic() - started > SETTLE_LIMIT_SECONDS:
            raise RuntimeError(f"the worker was still busy after {SETTLE_LIMIT_SECONDS} s")


def _recorded(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM message_deliveries WHERE status = 'recorded'").fetchone()
        return int(row[0]) if row else 0


@dataclass
class Footprint:
    max_cached_workflows: int
    idle_mib: float
    asleep_mib: float
    after_email_mib: float
    peak_mib: float
    start_seconds: float
    settle_seconds: float
    sleeping_cpu_seconds: float
    """Worker CPU over ``SLEEPING_WINDOW`` seconds with every sequence asleep."""
    running: int


async def _run(sizes: Sizes) -> Footprint:
    async with AsyncExitStack() as stack:
        temporal = await stack.enter_async_context(temporal_dev())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bas-bench-")))
        url = stack.enter_context(postgres_database())
        settings = bench_settings(url, folder)
        client = await stack.enter_async_context(api_client(settings, temporal))
        account = await register(client)
        company_id = (await client.get("/v1/companies/current", headers=account.headers)).json()["id"]
        _bulk_leads(url, company_id, sizes.asleep)

        worker = await stack.enter_async_context(bas_worker(settings, temporal, folder / "worker"))
        await _quiet(worker)
        idle = worker.memory_mib()

        queue = settings.task_queue(QueueKind.MAIN)

        async def sleeper(number: int) -> None:
            suffix = f"{number + 1:08d}"
            await start_follow_up(
                temporal,
                queue,
                company_id=company_id,
                lead_id=f"lead_sleep{suffix}",
                config_id=CONFIG_ID,
                run_id=f"run_sleep{suffix}",
                delays_hours=(24, 24),
            )

        start_seconds = await closed_loop(sizes.asleep, sizes.in_flight, sleeper, Samples())
        settle_seconds = await _quiet(worker)
        asleep = worker.memory_mib()

        expect(await client.post("/v1/workflow-configs", headers=account.headers, json=follow_up_config()), 201)
        for number in range(sizes.after_first_email):
            response = await client.post("/v1/leads", headers=account.headers, json=lead_body(number, "awake"))
            expect(response, 201)
        deadline = time.monotonic() + SETTLE_LIMIT_SECONDS
        while _recorded(url) < sizes.after_first_email:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {_recorded(url)} of {sizes.after_first_email} first emails were recorded")
            await asyncio.sleep(0.5)
        await _quiet(worker)
        after_email = worker.memory_mib()

        before = worker.cpu_seconds()
        await asyncio.sleep(SLEEPING_WINDOW)
        sleeping_cpu = worker.cpu_seconds() - before
        running = await temporal.count_workflows('WorkflowType="LeadFollowUpWorkflow" AND ExecutionStatus="Running"')
        expected = sizes.asleep + sizes.after_first_email
        if running.count != expected:
            raise RuntimeError(f"{running.count} sequences running, expected {expected}")
        return Footprint(
            max_cached_workflows=settings.worker_max_cached_workflows,
            idle_mib=idle,
            asleep_mib=asleep,
            after_email_mib=after_email,
            peak_mib=worker.memory_mib("VmHWM"),
            start_seconds=start_seconds,
            settle_seconds=settle_seconds,
            sleeping_cpu_seconds=sleeping_cpu,
            running=running.count,
        )


def _report(footprint: Footprint, sizes: Sizes) -> dict[str, Any]:
    grown = footprint.after_email_mib - footprint.idle_mib
    table(
        f"Worker footprint: {sizes.asleep:,} sequences asleep before their first email + {sizes.after_first_email} "
        f"asleep after it (max_cached_workflows={footprint.max_cached_workflows})",
        ["", "RSS MiB", "vs idle MiB"],
        [
            ["worker idle (polling, nothing in flight)", f"{footprint.idle_mib:.0f}", ""],
            [
                f"{sizes.asleep:,} asleep",
                f"{footprint.asleep_mib:.0f}",
                f"{footprint.asleep_mib - footprint.idle_mib:+.0f}",
            ],
            [
                f"+ {sizes.after_first_email} after their first email",
                f"{footprint.after_email_mib:.0f}",
                f"{grown:+.0f}",
            ],
            [
                "peak while starting them (VmHWM)",
                f"{footprint.peak_mib:.0f}",
                f"{footprint.peak_mib - footprint.idle_mib:+.0f}",
            ],
            [
                f"worker CPU while {footprint.running:,} sleep",
                f"{footprint.sleeping_cpu_seconds / SLEEPING_WINDOW * 100:.1f}% of a core",
                "",
            ],
        ],
    )
    return {
        "sizes": asdict(sizes),
        **{key: round(value, 1) if isinstance(value, float) else value for key, value in asdict(footprint).items()},
        "grown_mib": round(grown, 1),
        "kib_per_sleeping_sequence": round(grown * 1024 / footprint.running, 1),
        "sleeping_cpu_share_of_a_core": round(footprint.sleeping_cpu_seconds / SLEEPING_WINDOW, 4),
    }


def main(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    return _report(asyncio.run(_run(sizes)), sizes)
