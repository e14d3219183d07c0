"""Lead to first email: from ``POST /v1/leads`` to the message at a real SMTP server, with no initial delay.

The whole product path as deployed: a ``bas api`` process and a ``bas worker`` process (both on PostgreSQL and the
Temporal dev server), configured with ``BAS_SMTP_*`` for an aiosmtpd server on 127.0.0.1. A lead-nurturing config
sends its first email at once. Leads arrive at a steady rate (an open loop: the next lead does not wait for the
last one's email), each from its own address; the latency of a lead is from just before its POST to the moment
the SMTP server has its message. ``BENCH_PROFILE=1`` records py-spy profiles of both processes (see ``harness``).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx2

from bench.harness import (
    Mailbox,
    Samples,
    bas_api,
    bas_worker,
    bench_settings,
    expect,
    follow_up_config,
    http_client,
    lead_body,
    ms,
    postgres_database,
    profiled,
    smtp_settings,
    table,
    temporal_address,
    temporal_dev,
)

TARGET_P50_SECONDS = 1.0
TARGET_P99_SECONDS = 3.0
DRAIN_SECONDS = 120
"""How long the last emails may take after the last lead was posted before the run counts as failed."""


@dataclass(frozen=True)
class Sizes:
    leads: int
    per_second: float
    """The rate at which leads are posted."""


FULL = Sizes(leads=300, per_second=5)
QUICK = Sizes(leads=40, per_second=5)
WARM_UP = 5


@dataclass
class Measured:
    post: Samples
    """How long ``POST /v1/leads`` took to answer."""
    to_email: Samples
    """From just before the POST to the message at the SMTP server."""
    wall_seconds: float
    api_cpu_seconds: float
    worker_cpu_seconds: float


async def _post_leads(
    client: httpx2.AsyncClient, headers: dict[str, str], marker: str, sizes: Sizes, post: Samples
) -> dict[str, float]:
    """Post the leads at ``sizes.per_second``; returns each lead's address and when its POST was sent."""
    sent_at: dict[str, float] = {}

    async def one(number: int) -> None:
        body = lead_body(number, marker)
        sent_at[body["email"]] = time.perf_counter()
        response = await post.time(lambda: client.post("/v1/leads", headers=headers, json=body))
        expect(response, 201)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for number in range(sizes.leads):
            # On schedule, whatever the answers: a slow moment must not thin out the load behind it.
            await asyncio.sleep(max(0.0, started + number / sizes.per_second - time.perf_counter()))
            group.create_task(one(number))
    return sent_at


async def _run(sizes: Sizes) -> Measured:
    async with AsyncExitStack() as stack:
        temporal = await stack.enter_async_context(temporal_dev())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bas-bench-")))
        mailbox = stack.enter_context(Mailbox())
        url = stack.enter_context(postgres_database())
        settings = bench_settings(url, folder, **smtp_settings(mailbox.host, mailbox.port))
        worker = await stack.enter_async_context(bas_worker(settings, temporal, folder / "worker"))
        api = await stack.enter_async_context(bas_api(settings, temporal_address(temporal), folder / "api"))
        client = await stack.enter_async_context(http_client(api.base_url))
        registered = await client.post(
            "/v1/auth/register",
            json={"email": "owner@example.com", "password": uuid.uuid4().hex, "name": "O", "company_name": "Bench"},
        )
        expect(registered, 201)
        headers = {"Authorization": f"Bearer {registered.json()['token']}"}
        expect(await client.post("/v1/workflow-configs", headers=headers, json=follow_up_config()), 201)

        # The first leads pay one-off costs (the worker's sandbox imports, prepared statements): not counted.
        await _post_leads(client, headers, "warm-up", Sizes(WARM_UP, sizes.per_second), Samples())
        await mailbox.wait_for(WARM_UP, DRAIN_SECONDS)

        post = Samples()
        started, api_cpu, worker_cpu = time.perf_counter(), api.cpu_seconds(), worker.cpu_seconds()
        with profiled(worker, "first_email.worker-profile.txt"), profiled(api, "first_email.api-profile.txt"):
            sent_at = await _post_leads(client, headers, f"lead-{uuid.uuid4().hex[:6]}", sizes, post)
            await mailbox.wait_for(WARM_UP + sizes.leads, DRAIN_SECONDS)
        wall = time.perf_counter() - started
        api_cpu, worker_cpu = api.cpu_seconds() - api_cpu, worker.cpu_seconds() - worker_cpu
    to_email = Samples()
    for address, posted in sent_at.items():
        arrivals = mailbox.arrivals[address]
        if len(arrivals) != 1:
            raise RuntimeError(f"{address} got {len(arrivals)} first emails, not 1")
        to_email.seconds.append(arrivals[0] - posted)
    return Measured(post, to_email, wall, api_cpu, worker_cpu)


def _report(measured: Measured, sizes: Sizes) -> dict[str, Any]:
    to_email = measured.to_email
    p50, p99 = to_email.percentile(0.5), to_email.percentile(0.99)
    met = p50 <= TARGET_P50_SECONDS and p99 <= TARGET_P99_SECONDS
    cpu = (
        f"; CPU per lead: API {measured.api_cpu_seconds * 1000 / sizes.leads:.1f} ms, "
        f"worker {measured.worker_cpu_seconds * 1000 / sizes.leads:.1f} ms"
    )
    table(
        f"Lead to first email: {sizes.leads} leads at {sizes.per_second:g}/s, bas api + bas worker, PostgreSQL, "
        f"SMTP on 127.0.0.1{cpu}",
        ["", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        [
            [
                "POST /v1/leads answered",
                *(ms(measured.post.percentile(q)) for q in (0.5, 0.95, 0.99)),
                ms(max(measured.post.seconds)),
            ],
            [
                "POST to email at the SMTP server",
                *(ms(to_email.percentile(q)) for q in (0.5, 0.95, 0.99)),
                ms(max(to_email.seconds)),
            ],
            [
                "target",
                f"<= {TARGET_P50_SECONDS * 1000:.0f}",
                "",
                f"<= {TARGET_P99_SECONDS * 1000:.0f}",
                "met" if met else "NOT met",
            ],
        ],
    )
    return {
        "sizes": asdict(sizes),
        "post": measured.post.summary(),
        "post_to_email": to_email.summary(),
        "wall_seconds": round(measured.wall_seconds, 1),
        "api_cpu_ms_per_lead": round(measured.api_cpu_seconds * 1000 / sizes.leads, 1),
        "worker_cpu_ms_per_lead": round(measured.worker_cpu_seconds * 1000 / sizes.leads, 1),
        "targets": {"p50_ms": TARGET_P50_SECONDS * 1000, "p99_ms": TARGET_P99_SECONDS * 1000},
        "target_met": met,
    }


def main(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    return _report(asyncio.run(_run(sizes)), sizes)
