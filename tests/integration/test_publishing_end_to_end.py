"""Issue 7's publishing proof through the real parts: API -> Temporal dev server -> ``bas worker`` processes ->
a WordPress-like server, with the worker SIGKILLed while WordPress holds its answer to the post.

The post was created before the worker died; the new worker's retry finds the publication ``sending``, asks
WordPress for the post by the slug that carries the publication id, and records it: exactly one post.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError

from core.config import Settings
from db.models import Publication
from schemas.ids import from_api_id
from tests.conftest import Account
from tests.support.wordpress_server import APP_PASSWORD, USERNAME, WordPressServer

pytestmark = pytest.mark.slow

BAS = Path(sys.executable).parent / "bas"


@pytest.fixture
def wordpress() -> Iterator[WordPressServer]:
    with WordPressServer() as server:
        yield server


class Workers:
    """``bas worker`` processes on the test's database, Temporal and task queues (nothing from the shell's env)."""

    def __init__(self, settings: Settings, temporal_address: str, logs: Path) -> None:
        self._env = {key: value for key, value in os.environ.items() if not key.startswith("BAS_")} | {
            "BAS_ENVIRONMENT": "test",
            "BAS_DATA_DIR": str(settings.data_dir),
            "BAS_DATABASE_URL": settings.sqlalchemy_url,
            "BAS_TEMPORAL_ADDRESS": temporal_address,
            "BAS_TASK_QUEUE_PREFIX": settings.task_queue_prefix,
            "BAS_PUBLIC_BASE_URL": "http://testserver",
            "BAS_PUBLISH_TIMEOUT_SECONDS": "60",  # the held answer must outlast the worker, not time out first
        }
        self._logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self._logs / f"worker-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen([str(BAS), "worker"], env=self._env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def output(self) -> str:
        return "\n".join(path.read_text() for path in sorted(self._logs.glob("worker-*.log")))

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
async def workers(
    settings: Settings, temporal_client: Client, tmp_path: Path, db: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Workers]:
    running = Workers(settings, temporal_client.service_client.config.target_host, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()
        async with db() as session:
            publication_ids = list(await session.scalars(select(Publication.id)))
        for publication_id in publication_ids:
            with contextlib.suppress(RPCError):
                await temporal_client.get_workflow_handle(f"content-publish/{publication_id}").terminate("test over")


async def _poll(client: httpx2.AsyncClient, owner: Account, url: str, status: str, seconds: float) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        while True:
            body: dict[str, Any] = (await client.get(url, headers=owner.headers)).json()
            if body.get("status") == status:
                return body
            await asyncio.sleep(0.2)


async def _publication(db: async_sessionmaker[AsyncSession], publication_id: str) -> Publication:
    async with db() as session:
        publication = await session.get(Publication, publication_id)
    assert publication is not None
    return publication


async def test_a_worker_killed_mid_publish_leaves_exactly_one_post(
    client: httpx2.AsyncClient,
    owner: Account,
    wordpress: WordPressServer,
    workers: Workers,
    db: async_sessionmaker[AsyncSession],
) -> None:
    first = workers.start()
    configured = await client.patch(
        "/v1/companies/current",
        headers=owner.headers,
        json={
            "integrations": {"wordpress": {"url": wordpress.url, "username": USERNAME, "app_password": APP_PASSWORD}}
        },
    )
    assert configured.status_code == 200, configured.text
    generated = await client.post(
        "/v1/content/generate",
        headers=owner.headers,
        json={"type": "blog", "title": "5 Benefits of Business Automation", "keywords": ["automation"]},
    )
    assert generated.status_code == 201, generated.text + workers.output()
    content_id = generated.json()["id"]

    wordpress.hold()
    accepted = await client.post(
        f"/api/content-generation/publish/{content_id}", headers=owner.headers, json={"platform": "wordpress"}
    )
    assert accepted.status_code == 202, accepted.text
    publication_id = from_api_id(accepted.json()["publication_id"])
    assert publication_id is not None
    post = await asyncio.to_thread(wordpress.wait_for_post)
    # The row said "sending" before WordPress was called; the post exists, its answer is held.
    assert (await _publication(db, publication_id)).status == "sending"

    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    wordpress.release()  # answers a connection nobody holds any more
    workers.start()

    published = await _poll(client, owner, f"/v1/content/{content_id}", "published", seconds=60)

    assert len(wordpress.creates) == 1 and wordpress.posts == [post]
    assert [lookup["slug"] for lookup in wordpress.lookups] == [post["slug"]]
    assert (published["url"], published["platform"]) == (post["link"], "WordPress")
    publication = await _publication(db, publication_id)
    assert (publication.status, publication.url, publication.external_id, publication.attempts) == (
        "published",
        post["link"],
        str(post["id"]),
        1,
    )
    run = await _poll(client, owner, f"/v1/workflow-runs/{publication.workflow_run_id}", "completed", seconds=20)
    assert run["results"]["publication_status"] == "published"
