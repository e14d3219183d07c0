"""Lead creation and listing through the real app, SQLite and PostgreSQL side by side in one run.

Both apps are up at once and the backends take turns batch by batch, so a slow moment of a noisy
machine falls on both: the SQLite/PostgreSQL ratio is the figure to trust, the absolute ones less.
No workflow config exists, so creating a lead starts no workflow; the Temporal client is still real.
"""

from __future__ import annotations

import asyncio
import tempfile
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from bench.harness import (
    Account,
    Samples,
    api_client,
    bench_settings,
    expect,
    ms,
    postgres_database,
    register,
    sqlite_database,
    table,
    temporal_dev,
)


@dataclass(frozen=True)
class Sizes:
    leads: int
    list_rounds: int
    """Each round reads every page of the company's leads once."""


FULL = Sizes(leads=300, list_rounds=10)
QUICK = Sizes(leads=100, list_rounds=3)
BATCH = 50
PER_PAGE = 100
WARM_UP = 5
"""Requests of each kind sent first and not counted: the first calls of a route pay one-off costs."""


@dataclass
class Backend:
    name: str
    client: httpx2.AsyncClient
    account: Account
    create: Samples = field(default_factory=Samples)
    listing: Samples = field(default_factory=Samples)
    created: int = 0

    async def add_lead(self, samples: Samples | None) -> None:
        number = self.created
        self.created += 1
        body = {
            "name": f"Lead {number}",
            "email": f"lead-{number}@example.com",
            "phone": f"+1415555{number:04d}",
            "source": "website_form",
            "tags": ["bench", f"batch-{number // BATCH}"],
            "custom_fields": {"number": number},
        }

        async def post() -> httpx2.Response:
            return await self.client.post("/v1/leads", headers=self.account.headers, json=body)

        response = await (samples.time(post) if samples else post())
        expect(response, 201)

    async def read_all_pages(self, samples: Samples | None) -> int:
        """Every page, newest first; returns how many leads were listed."""
        listed, page, pages = 0, 1, 1
        while page <= pages:
            params = {"per_page": PER_PAGE, "page": page}

            async def get(params: dict[str, int] = params) -> httpx2.Response:
                return await self.client.get("/v1/leads", headers=self.account.headers, params=params)

            response = await (samples.time(get) if samples else get())
            expect(response, 200)
            body = response.json()
            listed += len(body["data"])
            pages = body["meta"]["total_pages"]
            page += 1
        return listed


async def _run(sizes: Sizes) -> list[Backend]:
    async with AsyncExitStack() as stack:
        temporal = await stack.enter_async_context(temporal_dev())
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bas-bench-")))
        backends: list[Backend] = []
        for name, database in (("sqlite", sqlite_database()), ("postgresql", postgres_database())):
            url = stack.enter_context(database)
            client = await stack.enter_async_context(api_client(bench_settings(url, data_dir / name), temporal))
            backends.append(Backend(name, client, await register(client)))

        for backend in backends:
            for _ in range(WARM_UP):
                await backend.add_lead(None)
            await backend.read_all_pages(None)
        for batch in range(sizes.leads // BATCH):
            # Alternate who goes first, so neither backend always follows the other's writes.
            for backend in backends if batch % 2 == 0 else reversed(backends):
                for _ in range(BATCH):
                    await backend.add_lead(backend.create)
        for round_ in range(sizes.list_rounds):
            for backend in backends if round_ % 2 == 0 else reversed(backends):
                listed = await backend.read_all_pages(backend.listing)
                if listed != backend.created:
                    raise RuntimeError(f"{backend.name}: listed {listed} leads of {backend.created}")
        return backends


def _report(backends: list[Backend], sizes: Sizes) -> dict[str, Any]:
    sqlite, postgres = backends
    header = ["", *(b.name for b in backends), "sqlite/postgresql"]
    for title, kind in (
        (f"POST /v1/leads: {sizes.leads} leads, one request at a time", "create"),
        (
            f"GET /v1/leads?per_page={PER_PAGE}: every page of {sqlite.created} leads, "
            f"{sizes.list_rounds} rounds ({len(sqlite.listing.seconds)} requests per backend)",
            "listing",
        ),
    ):
        a: Samples = getattr(sqlite, kind)
        b: Samples = getattr(postgres, kind)
        table(
            title,
            header,
            [
                ["requests/s", f"{a.per_second:.1f}", f"{b.per_second:.1f}", f"{a.per_second / b.per_second:.2f}"],
                [
                    "p50 ms",
                    ms(a.percentile(0.5)),
                    ms(b.percentile(0.5)),
                    f"{a.percentile(0.5) / b.percentile(0.5):.2f}",
                ],
                [
                    "p95 ms",
                    ms(a.percentile(0.95)),
                    ms(b.percentile(0.95)),
                    f"{a.percentile(0.95) / b.percentile(0.95):.2f}",
                ],
            ],
        )
    return {
        "sizes": asdict(sizes),
        **{f"{b.name}_{kind}": getattr(b, kind).summary() for b in backends for kind in ("create", "listing")},
    }


def main(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    return _report(asyncio.run(_run(sizes)), sizes)
