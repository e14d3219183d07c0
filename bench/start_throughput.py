"""Start throughput: leads created over HTTP (the row, its event, its run row and the workflow start) per second,
against raw ``client.start_workflow`` per second on the same Temporal server, in the same run.

The API is a real ``bas api`` process (uvicorn) on PostgreSQL; a lead-nurturing config matches every lead, so each
``POST /v1/leads`` starts one ``LeadFollowUpWorkflow``. The raw starts carry what the API's starts carry (input,
search attributes, summary, memo) on the same task queue. No worker runs: the figure is the cost of starting.
Both sides keep the same number of requests in flight and take turns round by round, so a noisy moment of the
machine falls on both; the ratio (HTTP / raw) is the figure to read.

``BENCH_PROFILE=1`` also records a py-spy profile of the API process during the HTTP rounds (when py-spy is
installed: ``pip install py-spy``) into ``bench/results/start_throughput.api-profile.txt`` (collapsed stacks).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx2
from temporalio.client import Client

from bench.harness import (
    Samples,
    bas_api,
    bench_settings,
    closed_loop,
    expect,
    follow_up_config,
    http_client,
    lead_body,
    ms,
    postgres_database,
    profiled,
    start_follow_up,
    table,
    temporal_address,
    temporal_dev,
)
from core.ids import new_id
from schemas.temporal import QueueKind

TARGET_RATIO = 0.8
PROFILE = "start_throughput.api-profile.txt"


@dataclass(frozen=True)
class Sizes:
    per_round: int
    """Starts of each kind per round."""
    rounds: int
    in_flight: int
    """Requests (or raw starts) in flight at once."""


FULL = Sizes(per_round=400, rounds=3, in_flight=16)
QUICK = Sizes(per_round=60, rounds=2, in_flight=8)
WARM_UP = 20


@dataclass
class Side:
    name: str
    samples: Samples
    wall_seconds: float = 0.0
    api_cpu_seconds: float = 0.0
    """CPU the ``bas api`` process used during this side's rounds (the relay included)."""
    own_cpu_seconds: float = 0.0
    """CPU this (the client's) process used during them."""

    @property
    def per_second(self) -> float:
        return len(self.samples.seconds) / self.wall_seconds


class HttpStarts:
    def __init__(self, client: httpx2.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers
        self.marker = uuid.uuid4().hex[:8]
        self.created = 0

    async def __call__(self, number: int) -> None:
        self.created += 1
        response = await self.client.post(
            "/v1/leads", headers=self.headers, json=lead_body(self.created, f"http-{self.marker}")
        )
        expect(response, 201)


class RawStarts:
    """What ``services.runs.start_recorded`` hands Temporal for a lead, without the API or the database."""

    def __init__(self, client: Client, queue: str) -> None:
        self.client = client
        self.queue = queue
        self.company_id = new_id("cmp")
        self.config_id = new_id("wf")

    async def __call__(self, number: int) -> None:
        await start_follow_up(
            self.client,
            self.queue,
            company_id=self.company_id,
            lead_id=new_id("lead"),
            config_id=self.config_id,
            run_id=new_id("run"),
        )


async def _run(sizes: Sizes) -> tuple[Side, Side]:
    http, raw = Side("HTTP POST /v1/leads", Samples()), Side("raw client.start_workflow", Samples())
    async with AsyncExitStack() as stack:
        temporal = await stack.enter_async_context(temporal_dev())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bas-bench-")))
        url = stack.enter_context(postgres_database())
        settings = bench_settings(url, folder)
        api = await stack.enter_async_context(bas_api(settings, temporal_address(temporal), folder))
        client = await stack.enter_async_context(http_client(api.base_url, sizes.in_flight * 2))
        registered = await client.post(
            "/v1/auth/register",
            json={"email": "owner@example.com", "password": uuid.uuid4().hex, "name": "O", "company_name": "Bench"},
        )
        expect(registered, 201)
        headers = {"Authorization": f"Bearer {registered.json()['token']}"}
        expect(await client.post("/v1/workflow-configs", headers=headers, json=follow_up_config()), 201)

        http_starts = HttpStarts(client, headers)
        raw_starts = RawStarts(temporal, settings.task_queue(QueueKind.MAIN))
        starts: list[Callable[[int], Awaitable[None]]] = [http_starts, raw_starts]
        for warm_up in starts:
            await closed_loop(WARM_UP, sizes.in_flight, warm_up, Samples())
        with profiled(api, PROFILE):
            for round_ in range(sizes.rounds):
                # Alternate who goes first, so neither side always runs on the other's leftovers.
                order = list(zip((http, raw), starts, strict=True))
                for side, call in order if round_ % 2 == 0 else reversed(order):
                    api_cpu, own_cpu = api.cpu_seconds(), time.process_time()
                    side.wall_seconds += await closed_loop(sizes.per_round, sizes.in_flight, call, side.samples)
                    side.api_cpu_seconds += api.cpu_seconds() - api_cpu
                    side.own_cpu_seconds += time.process_time() - own_cpu
        runs = await client.get("/v1/workflow-runs", headers=headers, params={"per_page": 1})
        expect(runs, 200)
        started = runs.json()["meta"]["total_items"]
        if started != http_starts.created:
            raise RuntimeError(f"{http_starts.created} leads created over HTTP but {started} runs recorded")
    return http, raw


def _report(http: Side, raw: Side, sizes: Sizes) -> dict[str, Any]:
    ratio = http.per_second / raw.per_second
    table(
        f"Starts: {sizes.rounds} rounds of {sizes.per_round} of each, {sizes.in_flight} in flight, PostgreSQL, "
        "bas api (1 uvicorn process), Temporal dev server",
        ["", "starts/s", "p50 ms", "p95 ms", "p99 ms", "API CPU ms/start", "client CPU ms/start"],
        [
            [
                side.name,
                f"{side.per_second:.1f}",
                *(ms(side.samples.percentile(q)) for q in (0.5, 0.95, 0.99)),
                ms(side.api_cpu_seconds / len(side.samples.seconds)),
                ms(side.own_cpu_seconds / len(side.samples.seconds)),
            ]
            for side in (http, raw)
        ]
        + [["HTTP / raw", f"{ratio:.2f}", "", "", "", "", f"target >= {TARGET_RATIO}"]],
    )
    return {
        "sizes": asdict(sizes),
        **{
            key: {
                "starts_per_second": round(side.per_second, 1),
                "api_cpu_ms_per_start": round(side.api_cpu_seconds * 1000 / len(side.samples.seconds), 2),
                "client_cpu_ms_per_start": round(side.own_cpu_seconds * 1000 / len(side.samples.seconds), 2),
                **side.samples.summary(),
            }
            for key, side in (("http", http), ("raw", raw))
        },
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "target_met": ratio >= TARGET_RATIO,
    }


def main(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    return _report(*asyncio.run(_run(sizes)), sizes)
