"""``bas backup`` and ``bas restore`` as real processes on a temporary SQLite database and the test's Temporal.

The app fixture populates the same SQLite file the processes read (through ``BAS_DATABASE_URL``); no worker
runs: the commands do the work themselves.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from db.models import AuditEntry
from tests.db import add_lead, digests, outbox_settled, populate, runs, terminate_company_workflows

BAS = Path(sys.executable).parent / "bas"
UNREACHABLE_TEMPORAL = "127.0.0.1:1"

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass(frozen=True)
class Finished:
    code: int
    stdout: str
    stderr: str

    @property
    def said(self) -> str:
        """stderr without line wrapping."""
        return " ".join(self.stderr.split())


Bas = Callable[..., Awaitable[Finished]]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.webhook_relay_interval_seconds = 0.05  # tests wait for the outbox relay before taking checksums
    return settings


@pytest.fixture
def bas(settings: Settings, temporal_dev: WorkflowEnvironment, tmp_path: Path) -> Bas:
    """Run ``bas ...`` as its own process, configured only through its environment."""
    base = {name: value for name, value in os.environ.items() if not name.startswith("BAS_")}
    base |= {
        "BAS_DATABASE_URL": settings.database_url,
        "BAS_TEMPORAL_ADDRESS": temporal_dev.client.service_client.config.target_host,
        "BAS_TASK_QUEUE_PREFIX": settings.task_queue_prefix,
        "BAS_ENVIRONMENT": "test",
        "BAS_DATA_DIR": str(tmp_path),
        "COLUMNS": "200",
    }

    async def run(*args: str, answer: str = "", temporal: str | None = None) -> Finished:
        env = base | ({"BAS_TEMPORAL_ADDRESS": temporal} if temporal else {})
        process = await asyncio.create_subprocess_exec(
            str(BAS),
            *args,
            cwd=tmp_path,  # no stray .env file is read
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(answer.encode()), timeout=120)
        assert process.returncode is not None
        return Finished(process.returncode, stdout.decode(), stderr.decode())

    return run


def backup_id_in(finished: Finished, scope: str) -> str:
    assert finished.code == 0, finished.stderr
    found = re.search(rf"^backup (bkp_[a-z0-9]+) of {scope} completed$", finished.stdout, re.MULTILINE)
    assert found, finished.stdout
    assert re.search(r"^  size      \d+(\.\d)? (B|KB|MB) \(\d+ bytes\)$", finished.stdout, re.MULTILINE)
    return found.group(1)


async def test_bas_backup_and_bas_restore(
    client: httpx2.AsyncClient,
    settings: Settings,
    db: async_sessionmaker[AsyncSession],
    bas: Bas,
    temporal_dev: WorkflowEnvironment,
) -> None:
    seeded = await populate(client, settings, db)
    company_id = seeded.account.company_id
    before = await digests(db, company_id)
    try:
        backup_id = backup_id_in(await bas("backup", "--company", company_id), company_id)

        await add_lead(client, seeded.account, "After The Backup")
        await outbox_settled(db)
        changed = await digests(db, company_id)

        declined = await bas("restore", backup_id, answer="n\n")
        assert declined.code == 1 and "not restored: nothing changed" in declined.stdout, declined.stderr
        assert f"Backup {backup_id} ({company_id}" in declined.stdout
        no_temporal = await bas("restore", backup_id, "--yes", temporal=UNREACHABLE_TEMPORAL)
        assert no_temporal.code == 1 and "is not reachable" in no_temporal.said and "--no-temporal" in no_temporal.said
        wrong = await bas("restore", backup_id, "--company", "company-someoneelse", "--yes")
        assert wrong.code == 1 and "can only be restored into that company" in wrong.said
        assert await digests(db, company_id) == changed

        # No worker runs here: the cancelled workflows cannot finish, so they are terminated after the grace.
        restored = await bas("restore", f"backup-{backup_id.removeprefix('bkp_')}", "--yes", "--stop-grace", "0.5")

        assert restored.code == 0, restored.stderr
        assert f"restored {company_id} from backup {backup_id}" in restored.stdout
        stopped = re.search(r"workflows (\d+) cancelled \((\d+) terminated", restored.stdout)
        assert stopped and int(stopped.group(1)) >= 4, restored.stdout  # follow-ups, review request, content...
        assert stopped.group(2) == stopped.group(1)
        assert re.search(rf"^  leads\s+{before['leads'].rows}$", restored.stdout, re.MULTILINE), restored.stdout
        assert await digests(db, company_id) == before
        assert all(run["status"] not in ("pending", "running") for run in await runs(db, company_id))
        async with db() as session:
            entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "backup.restored"))
            assert entry is not None and entry.company_id == company_id and entry.actor_id is None

        platform_id = backup_id_in(await bas("backup"), "platform")
        everything = await bas("restore", platform_id, "--yes", "--no-temporal", temporal=UNREACHABLE_TEMPORAL)
        assert everything.code == 0, everything.stderr
        assert "restored platform from backup" in everything.stdout and "workflows not stopped" in everything.stdout
        assert await digests(db, company_id) == before
    finally:
        await terminate_company_workflows(temporal_dev.client, company_id)
