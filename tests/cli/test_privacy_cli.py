"""``bas erase`` and ``bas export-person`` as real processes on the test's database (SQLite and PostgreSQL).

The rows are written over HTTP by the app fixture; the commands, configured only through their environment,
act on the same database and the session's Temporal dev server.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from db.models import AuditEntry, Customer, Interaction, Lead, Suppression
from tests.api.lead_support import create_lead
from tests.api.review_support import create_customer
from tests.conftest import Account, register

BAS = Path(sys.executable).parent / "bas"
ANA = "ana.person@example.com"


@dataclass(frozen=True)
class Finished:
    code: int
    stdout: str
    stderr: str


Bas = Callable[..., Awaitable[Finished]]


@pytest.fixture
def bas(settings: Settings, temporal_dev: WorkflowEnvironment, tmp_path: Path) -> Bas:
    env = {name: value for name, value in os.environ.items() if not name.startswith("BAS_")}
    env |= {
        "BAS_DATABASE_URL": settings.database_url,
        "BAS_TEMPORAL_ADDRESS": temporal_dev.client.service_client.config.target_host,
        "BAS_TASK_QUEUE_PREFIX": settings.task_queue_prefix,
        "BAS_ENVIRONMENT": "test",
        "BAS_DATA_DIR": str(tmp_path),
        "COLUMNS": "200",
    }

    async def run(*args: str) -> Finished:
        process = await asyncio.create_subprocess_exec(
            str(BAS),
            *args,
            cwd=tmp_path,  # no stray .env file is read
            env=env,
            stdin=asyncio.subprocess.DEVNULL,  # a confirmation prompt reads end-of-file: "no"
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
        assert process.returncode is not None
        return Finished(process.returncode, stdout.decode(), stderr.decode())

    return run


async def held(db: async_sessionmaker[AsyncSession], company_id: str) -> tuple[int, int, list[tuple[str, str]]]:
    """The company's leads and customers with Ana's address, and its suppression entries."""
    async with db() as session:
        leads = await session.scalar(
            select(func.count()).where(Lead.company_id == company_id, func.lower(Lead.email) == ANA)
        )
        customers = await session.scalar(
            select(func.count()).where(Customer.company_id == company_id, func.lower(Customer.email) == ANA)
        )
        rows = await session.execute(
            select(Suppression.address, Suppression.reason).where(Suppression.company_id == company_id)
        )
        return leads or 0, customers or 0, [(address, reason) for address, reason in rows]


async def test_erase_and_export_from_the_command_line(
    bas: Bas, client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    lead = await create_lead(client, owner, {"name": "Ana Person", "email": ANA})
    noted = await client.post(
        f"/v1/leads/{lead['id']}/interactions",
        headers=owner.headers,
        json={"type": "note", "direction": "outbound", "content": "Asked for a quote"},
    )
    assert noted.status_code == 201, noted.text
    await create_customer(client, owner, {"name": "Ana Person", "email": ANA})
    other: Account = await register(client, "Other Co")
    await create_lead(client, other, {"name": "Ana P.", "email": ANA})
    bystander: Account = await register(client, "Bystander Co")
    await create_lead(client, bystander, {"name": "Someone Else", "email": "else@example.com"})

    # The export: one document per company holding the address.
    out = tmp_path / "ana.json"
    exported = await bas("export-person", "Ana.Person@Example.com", "--output", str(out))
    assert exported.code == 0, exported.stderr
    documents: list[dict[str, Any]] = json.loads(out.read_text())
    assert sorted(d["company_id"] for d in documents) == sorted([owner.company_id, other.company_id])
    mine = next(d for d in documents if d["company_id"] == owner.company_id)
    assert [len(mine["leads"]), len(mine["customers"])] == [1, 1]
    assert [i["content"] for i in mine["leads"][0]["interactions"]] == ["Asked for a quote"]

    # Without --yes it asks, and a "no" (here: no terminal) erases nothing.
    declined = await bas("erase", ANA)
    assert declined.code == 1 and "Aborted" in declined.stderr
    assert await held(db, owner.company_id) == (1, 1, [])

    # --company: only that company.
    first = await bas("erase", ANA, "--company", owner.company_id, "--yes")
    assert first.code == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"{owner.company_id}: erased 1 leads, 1 customers, 1 interactions, 0 deliveries, 0 referral_uses, 0 reviews, "
        f"0 referrals, {len(mine['events'])} events, 0 workflow_actions; 0 sales kept anonymously; address suppressed"
    ]
    assert await held(db, owner.company_id) == (0, 0, [(ANA, "erased")])
    assert await held(db, other.company_id) == (1, 0, [])
    async with db() as session:
        assert await session.scalar(select(func.count()).where(Interaction.lead_id == lead["id"])) == 0
        [entry] = await session.scalars(select(AuditEntry).where(AuditEntry.action == "person.erased"))
        assert (entry.company_id, entry.actor_id, entry.target_id) == (owner.company_id, None, None)

    # Every company holding the address (the first still does, through its suppression entry: nothing new there).
    everywhere = await bas("erase", ANA, "--yes")
    assert everywhere.code == 0, everywhere.stderr
    lines = dict(line.split(": ", 1) for line in everywhere.stdout.splitlines())
    assert set(lines) == {owner.company_id, other.company_id}
    assert lines[owner.company_id].startswith("erased 0 leads, 0 customers,")
    assert lines[other.company_id].startswith("erased 1 leads, 0 customers,")
    for company_id in (owner.company_id, other.company_id):
        assert await held(db, company_id) == (0, 0, [(ANA, "erased")])
    async with db() as session:
        assert await session.scalar(select(func.count()).where(Lead.company_id == bystander.company_id)) == 1
        assert await session.scalar(select(func.count()).where(Suppression.company_id == bystander.company_id)) == 0

    # Afterwards only the suppression entries remain to export.
    after = await bas("export-person", ANA)
    assert after.code == 0, after.stderr
    for document in json.loads(after.stdout):
        assert (document["leads"], document["customers"], document["events"]) == ([], [], [])
        assert [(s["address"], s["reason"]) for s in document["suppressions"]] == [(ANA, "erased")]
