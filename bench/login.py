"""What signing in costs, and that it costs the same whether or not the account exists.

``POST /token`` hashes the password with argon2 either way (an unknown account is checked against a
dummy hash), so timing the answer must not tell an attacker which emails have accounts. The two kinds
of request alternate in one run, so a noisy moment falls on both and the ratio stays meaningful.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx2

from bench.harness import (
    Samples,
    api_client,
    bench_settings,
    expect,
    ms,
    register,
    sqlite_database,
    table,
    temporal_dev,
)

ATTEMPTS = 20
QUICK_ATTEMPTS = 6
WARM_UP = 2


async def _attempt(client: httpx2.AsyncClient, username: str, samples: Samples | None) -> None:
    async def post() -> httpx2.Response:
        return await client.post("/token", json={"username": username, "password": "not the password"})

    response = await (samples.time(post) if samples else post())
    expect(response, 401)


async def _run(attempts: int) -> tuple[Samples, Samples]:
    wrong_password, unknown_user = Samples(), Samples()
    async with AsyncExitStack() as stack:
        # Signing in needs no Temporal, but without a client the app keeps dialling the default address.
        temporal = await stack.enter_async_context(temporal_dev())
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bas-bench-")))
        url = stack.enter_context(sqlite_database())
        client = await stack.enter_async_context(api_client(bench_settings(url, data_dir), temporal))
        known = (await register(client)).email
        for _ in range(WARM_UP):
            await _attempt(client, known, None)
            await _attempt(client, f"nobody-{uuid.uuid4().hex[:8]}@example.com", None)
        for attempt in range(attempts):
            unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
            pair = [(known, wrong_password), (unknown, unknown_user)]
            # Alternate who goes first, so neither kind always runs right after the other.
            for username, samples in pair if attempt % 2 == 0 else reversed(pair):
                await _attempt(client, username, samples)
    return wrong_password, unknown_user


def _report(wrong_password: Samples, unknown_user: Samples) -> dict[str, Any]:
    table(
        f"POST /token, {len(wrong_password.seconds)} attempts each, alternating (argon2 either way)",
        ["", "known user, wrong password", "unknown user", "ratio"],
        [
            [
                "median ms",
                ms(wrong_password.median),
                ms(unknown_user.median),
                f"{wrong_password.median / unknown_user.median:.2f}",
            ],
            [
                "p95 ms",
                ms(wrong_password.percentile(0.95)),
                ms(unknown_user.percentile(0.95)),
                f"{wrong_password.percentile(0.95) / unknown_user.percentile(0.95):.2f}",
            ],
        ],
    )
    return {
        "known_user_wrong_password": wrong_password.summary(),
        "unknown_user": unknown_user.summary(),
        "median_ratio": round(wrong_password.median / unknown_user.median, 3),
    }


def main(quick: bool = False) -> dict[str, Any]:
    return _report(*asyncio.run(_run(QUICK_ATTEMPTS if quick else ATTEMPTS)))
