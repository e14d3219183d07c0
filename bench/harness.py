"""What the benchmarks share: the real app on a real database, a Temporal dev server, timing and tables."""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from db.migrate import upgrade_to_head
from schemas.temporal import SEARCH_ATTRIBUTES
from tests.support.postgres import PostgresServer

BIN = Path(sys.executable).parent
# One client on loopback sends every request: the per-address and per-user limits would otherwise
# turn most of a benchmark into 429s.
UNLIMITED = 10_000_000


@asynccontextmanager
async def temporal_dev() -> AsyncIterator[Client]:
    """A real Temporal dev server on a free loopback port (the venv's ``temporal`` binary), UI off."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=["--ui-disable-news-fetch"],
    )
    try:
        yield env.client
    finally:
        await env.shutdown()


@contextmanager
def sqlite_database() -> Iterator[str]:
    """A migrated SQLite file in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bas-bench-") as folder:
        upgrade_to_head(Settings(environment="test", data_dir=Path(folder)))
        yield f"sqlite:///{Path(folder) / 'bas.db'}"


@contextmanager
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL server (the tests' own) with one migrated database, stopped afterwards."""
    server = PostgresServer()
    server.start()
    try:
        url = server.url(server.create_database())
        upgrade_to_head(Settings(environment="test", database_url=url))
        yield url
    finally:
        server.stop()


def bench_settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=data_dir,
        database_url=database_url,
        task_queue_prefix=f"bench-{uuid.uuid4().hex[:10]}",
        rate_limit_per_ip_minute=UNLIMITED,
        rate_limit_per_user_hour=UNLIMITED,
    )


@asynccontextmanager
async def api_client(settings: Settings, temporal: Client) -> AsyncIterator[httpx2.AsyncClient]:
    """The real FastAPI app, lifespan included, called in-process (no sockets, no scheduler jitter)."""
    app = create_app(settings, temporal_client=temporal)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://bench") as client,
    ):
        yield client


@dataclass(frozen=True)
class Account:
    email: str
    headers: dict[str, str]


async def register(client: httpx2.AsyncClient) -> Account:
    """A new company and its admin, signed in."""
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": uuid.uuid4().hex, "name": "Owner", "company_name": "Bench Inc"}
    response = await client.post("/v1/auth/register", json=body)
    expect(response, 201)
    return Account(email, {"Authorization": f"Bearer {response.json()['token']}"})


def expect(response: httpx2.Response, status: int) -> None:
    """A benchmark of failing requests measures nothing: stop at the first unexpected answer."""
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: expected {status}, "
            f"got {response.status_code}: {response.text[:300]}"
        )


@dataclass
class Samples:
    """Latencies in seconds of one kind of request, taken one after another."""

    seconds: list[float] = field(default_factory=list)

    async def time(self, call: Callable[[], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        result = await call()
        self.seconds.append(time.perf_counter() - started)
        return result

    def percentile(self, share: float) -> float:
        """Nearest-rank percentile: an observed latency, never an interpolation between two."""
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def per_second(self) -> float:
        """Requests per second of a client that sends the next request when the last one answered."""
        return len(self.seconds) / sum(self.seconds)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a plain-text table: the first column left-aligned, the figures right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join([first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))])

    print(f"\n{title}")
    print(line(header))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(line(row))
