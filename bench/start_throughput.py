"""Start throughput: leads created over HTTP (the row, its event, its run row and the workflow start) per second,
against raw ``client.start_workflow`` per second on the same Temporal server, in the same run.

The API is a real ``bas api`` process (uvicorn) on PostgreSQL; a lead-nurturing config matches every lead, so each
``POST /v1/leads`` starts one ``LeadFollowUpWorkflow``. The raw starts carry what the API's starts carry (input,
search attributes, summary, memo) on the same task queue. No worker runs: the figure is the cost of starting.
A second ``bas api --workers 2`` on the same database and Temporal server gives the figure with two API processes.
The sides keep the same number of requests in flight and take turns round by round, so a noisy moment of the
machine falls on all of them; the ratio (HTTP / raw) is the figure to read. The CPU columns say where each start's
work went: the API process(es), PostgreSQL (all its processes) and the Temporal dev server.

``BENCH_PROFILE=1`` also records a py-spy profile of the API process during the HTTP rounds (when py-spy is
installed: ``pip install py-spy``) into ``bench/results/start_throughput.api-profile.txt`` (collapsed stacks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx2
import psycopg
from temporalio.client import Client

from bench.harness import (
    Samples,
    bas_api,
    bench_settings,
    closed_loop,
    cpu_seconds,
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
SCALED_WORKERS = 2
"""Uvicorn worker processes of the second API."""


def _children(pid: int) -> list[int]:
    """Every thread's children: the Temporal SDK starts the dev server from a thread of its own."""
    return [
        int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()
    ]


def _tree_cpu_seconds(pid: int) -> float:
    """CPU of a process, its live descendants and the children it has reaped (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime
    total = cpu_seconds(pid) + reaped
    for child in _children(pid):
        # One that ended between the listing and the read is left out (its figures reach the parent once reaped).
        with contextlib.suppress(FileNotFoundError):
            total += _tree_cpu_seconds(child)
    return total


def _postmaster_pid(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SHOW data_directory").fetchone()
    assert row is not None
    return int((Path(row[0]) / "postmaster.pid").read_text().split()[0])


def _temporal_pid() -> int:
    """The dev server ``WorkflowEnvironment.start_local`` started: a child process of this one."""
    for child in _children(os.getpid()):
        if Path(f"/proc/{child}/comm").read_text().strip() == "temporal":
            return child
    raise RuntimeError("no Temporal dev server among this process's children")


@dataclass(frozen=True)
class Meters:
    """The processes whose CPU each side is charged with."""

    api: int | None
    postgres: int
    temporal: int

    def read(self) -> tuple[float, float, float]:
        return (
            _tree_cpu_seconds(self.api) if self.api else 0.0,
            _tree_cpu_seconds(self.postgres),
            _tree_cpu_seconds(self.temporal),
        )


@dataclass
class Side:
    name: str
    samples: Samples
    meters: Meters
    wall_seconds: float = 0.0
    api_cpu_seconds: float = 0.0
    """CPU the ``bas api`` process(es) used during this side's rounds (the relay included)."""
    postgres_cpu_seconds: float = 0.0
    temporal_cpu_seconds: float = 0.0
    own_cpu_seconds: float = 0.0
    """CPU this (the client's) process used during them."""

    @property
    def per_second(self) -> float:
        return len(self.samples.seconds) / self.wall_seconds

    def per_start_ms(self, seconds: float) -> float:
        return seconds * 1000 / len(self.samples.seconds)

    async def round(self, size: Sizes, call: Callable[[int], Awaitable[None]]) -> None:
        before, own = self.meters.read(), time.process_time()
        self.wall_seconds += await closed_loop(size.per_round, size.in_flight, call, self.samples)
        api, postgres, temporal = (after - start for after, start in zip(self.meters.read(), before, strict=True))
        self.api_cpu_seconds += api
        self.postgres_cpu_seconds += postgres
        self.temporal_cpu_seconds += temporal
        self.own_cpu_seconds += time.process_time() - own


class HttpStarts:
    def __init__(self, client: httpx2.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers
        self.marker = uuid.uuid4().hex[:8]
        self.created = 0
        """Leads this side created, warm-up included."""

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


async def _run(sizes: Sizes) -> list[Side]:
    async with AsyncExitStack() as stack:
        temporal = await stack.enter_async_context(temporal_dev())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bas-bench-")))
        url = stack.enter_context(postgres_database())
        settings = bench_settings(url, folder)
        api = await stack.enter_async_context(bas_api(settings, temporal_address(temporal), folder))
        scaled_api = await stack.enter_async_context(
            bas_api(settings, temporal_address(temporal), folder / "scaled", workers=SCALED_WORKERS)
        )
        client = await stack.enter_async_context(http_client(api.base_url, sizes.in_flight * 2))
        scaled_client = await stack.enter_async_context(http_client(scaled_api.base_url, sizes.in_flight * 2))
        registered = await client.post(
            "/v1/auth/register",
            json={"email": "owner@example.com", "password": uuid.uuid4().hex, "name": "O", "company_name": "Bench"},
        )
        expect(registered, 201)
        headers = {"Authorization": f"Bearer {registered.json()['token']}"}
        expect(await client.post("/v1/workflow-configs", headers=headers, json=follow_up_config()), 201)

        postgres, temporal_server = _postmaster_pid(url), _temporal_pid()
        http_starts, scaled_starts = HttpStarts(client, headers), HttpStarts(scaled_client, headers)
        sides: list[tuple[Side, Callable[[int], Awaitable[None]]]] = [
            (Side("HTTP POST /v1/leads", Samples(), Meters(api.pid, postgres, temporal_server)), http_starts),
            (
                Side(
                    f"HTTP, bas api --workers {SCALED_WORKERS}",
                    Samples(),
                    Meters(scaled_api.pid, postgres, temporal_server),
                ),
                scaled_starts,
            ),
            (
                Side("raw client.start_workflow", Samples(), Meters(None, postgres, temporal_server)),
                RawStarts(temporal, settings.task_queue(QueueKind.MAIN)),
            ),
        ]
        for _, warm_up in sides:
            await closed_loop(WARM_UP, sizes.in_flight, warm_up, Samples())
        with profiled(api, PROFILE):
            for round_ in range(sizes.rounds):
                # Rotate who goes first, so no side always runs on another's leftovers.
                for side, call in sides[round_ % len(sides) :] + sides[: round_ % len(sides)]:
                    await side.round(sizes, call)
        runs = await client.get("/v1/workflow-runs", headers=headers, params={"per_page": 1})
        expect(runs, 200)
        started, created = runs.json()["meta"]["total_items"], http_starts.created + scaled_starts.created
        if started != created:
            raise RuntimeError(f"{created} leads created over HTTP but {started} runs recorded")
    return [side for side, _ in sides]


def _report(sides: list[Side], sizes: Sizes) -> dict[str, Any]:
    http, scaled, raw = sides
    ratio, scaled_ratio = http.per_second / raw.per_second, scaled.per_second / raw.per_second
    table(
        f"Starts: {sizes.rounds} rounds of {sizes.per_round} of each, {sizes.in_flight} in flight, PostgreSQL, "
        "bas api (1 uvicorn process unless said), Temporal dev server; CPU in ms per start",
        ["", "starts/s", "p50 ms", "p95 ms", "p99 ms", "API CPU", "PostgreSQL CPU", "Temporal CPU", "client CPU"],
        [
            [
                side.name,
                f"{side.per_second:.1f}",
                *(ms(side.samples.percentile(q)) for q in (0.5, 0.95, 0.99)),
                *(
                    f"{side.per_start_ms(seconds):.1f}"
                    for seconds in (
                        side.api_cpu_seconds,
                        side.postgres_cpu_seconds,
                        side.temporal_cpu_seconds,
                        side.own_cpu_seconds,
                    )
                ),
            ]
            for side in sides
        ]
        + [
            ["HTTP / raw", f"{ratio:.2f}", "", "", "", "", "", "", f"target >= {TARGET_RATIO}"],
            [f"HTTP (--workers {SCALED_WORKERS}) / raw", f"{scaled_ratio:.2f}", "", "", "", "", "", "", ""],
        ],
    )
    return {
        "sizes": asdict(sizes),
        **{
            key: {
                "starts_per_second": round(side.per_second, 1),
                **{
                    f"{part}_cpu_ms_per_start": round(side.per_start_ms(seconds), 2)
                    for part, seconds in (
                        ("api", side.api_cpu_seconds),
                        ("postgres", side.postgres_cpu_seconds),
                        ("temporal", side.temporal_cpu_seconds),
                        ("client", side.own_cpu_seconds),
                    )
                },
                **side.samples.summary(),
            }
            for key, side in (("http", http), (f"http_workers_{SCALED_WORKERS}", scaled), ("raw", raw))
        },
        "ratio": round(ratio, 3),
        f"ratio_workers_{SCALED_WORKERS}": round(scaled_ratio, 3),
        "target_ratio": TARGET_RATIO,
        "target_met": ratio >= TARGET_RATIO,
    }


def main(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    return _report(asyncio.run(_run(sizes)), sizes)
