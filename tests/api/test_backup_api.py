"""``POST /api/system/backup`` and ``/restore`` (spec: Backup System, Restore System) through the real worker, and
``GET /api/system/backups``; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import gzip
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus

from core.config import Settings
from db.backup import backup_folder
from db.models import AuditEntry, WorkflowRun
from schemas.ids import from_api_id
from services import backups
from services.lead_follow_up import workflow_id_for
from tests.api.review_support import created
from tests.conftest import Account, register
from tests.db import LEAD_CONFIG, add_lead, outbox_settled, terminate_company_workflows
from worker.main import build_workers
from workflows.backup import BackupWorkflow

CREATED_KEYS = {"success", "message", "backup_id", "created_at", "size"}
RESTORED_KEYS = {"success", "message", "backup_id", "restored_at"}
SIZE = re.compile(r"^\d+(\.\d)? (B|KB|MB|GB)$")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.webhook_relay_interval_seconds = 0.05  # tests wait for the outbox relay before each backup
    return settings


@pytest.fixture(autouse=True)
async def _stop_leftovers(owner: Account, temporal_client: Client) -> AsyncIterator[None]:
    yield
    await terminate_company_workflows(temporal_client, owner.company_id)


async def backed_up(client: httpx2.AsyncClient, account: Account) -> dict[str, Any]:
    response = await client.post("/api/system/backup", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_backup_and_a_restore_through_the_worker(
    client: httpx2.AsyncClient,
    owner: Account,
    db: async_sessionmaker[AsyncSession],
    worker: None,
    temporal_client: Client,
) -> None:
    config = await created(await client.post("/v1/workflow-configs", headers=owner.headers, json=LEAD_CONFIG))
    kept = await add_lead(client, owner, "Before The Backup")  # its follow-up waits ten hours on the worker
    await outbox_settled(db)

    body = await backed_up(client, owner)

    assert body.keys() == CREATED_KEYS
    assert body["success"] is True and body["message"] == "Backup created successfully"
    assert body["backup_id"].startswith("backup-") and SIZE.match(body["size"]), body
    backup_id = from_api_id(body["backup_id"])
    assert backup_id is not None
    listed = (await client.get("/api/system/backups", headers=owner.headers)).json()
    assert listed.keys() == {"items", "total", "page", "limit"} and listed["total"] == 1
    [item] = listed["items"]
    assert item["id"] == body["backup_id"] and item["status"] == "completed" and item["created_by"]
    assert item["tables"]["leads"] == 1 and item["tables"]["workflow_runs"] == 1 and item["restored_at"] is None
    assert "audit_log" not in item["tables"] and "refresh_tokens" not in item["tables"]

    gone = await add_lead(client, owner, "After The Backup")
    await outbox_settled(db)
    handles = [temporal_client.get_workflow_handle(workflow_id_for(lead, config["id"])) for lead in (kept, gone)]
    for handle in handles:
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    response = await client.post("/api/system/restore", headers=owner.headers, json={"backup_id": body["backup_id"]})

    assert response.status_code == 200, response.text
    restored = response.json()
    assert restored.keys() == RESTORED_KEYS
    assert restored["success"] is True and restored["message"] == "System restored successfully"
    assert restored["backup_id"] == body["backup_id"]
    assert (await client.get(f"/v1/leads/{kept}", headers=owner.headers)).status_code == 200
    assert (await client.get(f"/v1/leads/{gone}", headers=owner.headers)).status_code == 404
    # Both sequences were stopped in Temporal; the one the backup had as running is marked stopped.
    for handle in handles:
        assert (await handle.describe()).status in (
            WorkflowExecutionStatus.CANCELED,
            WorkflowExecutionStatus.TERMINATED,
        )
    async with db() as session:
        [run] = (await session.scalars(select(WorkflowRun).where(WorkflowRun.company_id == owner.company_id))).all()
        assert run.trigger_id == kept and run.status == "stopped"
        assert run.error == f"stopped by restore from backup {backup_id}"
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.company_id == owner.company_id))).all()
        audited = {entry.action: entry for entry in entries}
    assert audited["backup.created"].target_id == backup_id and audited["backup.created"].actor_id == owner.user_id
    assert audited["backup.restored"].target_id == backup_id
    assert audited["backup.restored"].changes["workflows_cancelled"] == [None, 2]
    assert audited["backup.restore_requested"].actor_id == owner.user_id
    assert audited["backup.restore_requested"].changes["restore_id"] == [
        None,
        audited["backup.restored"].changes["restore_id"][1],
    ]
    one = (await client.get(f"/api/system/backups/{body['backup_id']}", headers=owner.headers)).json()
    assert one["restored_at"] is not None


async def test_refusals_answer_in_the_surface_format_and_change_nothing(
    client: httpx2.AsyncClient,
    owner: Account,
    settings: Settings,
    db: async_sessionmaker[AsyncSession],
    worker: None,
    temporal_client: Client,
) -> None:
    config = await created(await client.post("/v1/workflow-configs", headers=owner.headers, json=LEAD_CONFIG))
    await outbox_settled(db)
    body = await backed_up(client, owner)
    lead_id = await add_lead(client, owner, "After The Backup")

    # Only admins; a member is refused before anything starts.
    email = f"member-{owner.user_id[-6:]}@example.com"
    member = {"email": email, "password": "password123", "role": "user"}
    assert (await client.post("/api/users", headers=owner.headers, json=member)).status_code == 201
    token = (await client.post("/token", json={"username": email, "password": "password123"})).json()["access_token"]
    for path, payload in (("/api/system/backup", None), ("/api/system/restore", {"backup_id": body["backup_id"]})):
        refused = await client.post(path, headers={"Authorization": f"Bearer {token}"}, json=payload)
        assert refused.status_code == 403 and refused.json().keys() == {"detail"}, refused.text
    assert (await client.post("/api/system/backup")).status_code == 401

    # Unknown, another company's, or no id at all.
    assert (await client.post("/api/system/restore", headers=owner.headers, json={})).status_code == 422
    unknown = await client.post("/api/system/restore", headers=owner.headers, json={"backup_id": "backup-nope"})
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Backup not found"}
    other = await register(client, "Other Co")
    theirs = await backed_up(client, other)
    assert (await client.get(f"/api/system/backups/{theirs['backup_id']}", headers=owner.headers)).status_code == 404
    assert [
        item["id"] for item in (await client.get("/api/system/backups", headers=owner.headers)).json()["items"]
    ] == [body["backup_id"]]
    response = await client.post("/api/system/restore", headers=owner.headers, json={"backup_id": theirs["backup_id"]})
    assert response.status_code == 404, response.text

    # A damaged file: 409 naming it, checked before any workflow is stopped.
    backup_id = from_api_id(body["backup_id"])
    assert backup_id is not None
    with gzip.open(backup_folder(settings, backup_id) / "users.jsonl.gz", "wb") as damaged:
        damaged.write(b'{"id": "usr_mallory"}\n')
    response = await client.post("/api/system/restore", headers=owner.headers, json={"backup_id": body["backup_id"]})
    assert response.status_code == 409, response.text
    assert "users.jsonl.gz of backup" in response.json()["detail"] and "does not match" in response.json()["detail"]
    assert (await client.get(f"/v1/leads/{lead_id}", headers=owner.headers)).status_code == 200
    handle = temporal_client.get_workflow_handle(workflow_id_for(lead_id, config["id"]))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_without_a_worker_the_call_answers_503_within_its_wait_and_the_outcome_is_audited_later(
    client: httpx2.AsyncClient,
    owner: Account,
    monkeypatch: pytest.MonkeyPatch,
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    temporal_client: Client,
) -> None:
    monkeypatch.setattr(backups, "WAIT_SECONDS", 1.0)
    response = await client.post("/api/system/backup", headers=owner.headers)
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert "has not finished within 1s" in detail and "workflow backup/bkp_" in detail
    assert "is a worker running?" in detail
    # The backup goes on without the caller: who asked for it is on record although the answer was a 503.
    async with db() as session:
        [entry] = await session.scalars(
            select(AuditEntry).where(AuditEntry.company_id == owner.company_id, AuditEntry.target_type == "backup")
        )
    assert (entry.action, entry.actor_id, entry.target_type) == ("backup.requested", owner.user_id, "backup")

    # A worker comes up after the caller has gone: the backup finishes and records its own outcome.
    workflow_id = re.search(r"workflow (backup/bkp_\w+)", detail)
    assert workflow_id is not None
    workers = build_workers(temporal_client, settings, db, "late-worker")
    running = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        result = await temporal_client.get_workflow_handle_for(BackupWorkflow.run, workflow_id[1]).result()
    finally:
        await asyncio.gather(*(worker.shutdown() for worker in workers))
        await asyncio.gather(*running, return_exceptions=True)
    async with db() as session:
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.company_id == owner.company_id))).all()
    created_entries = [entry for entry in entries if entry.action == "backup.created"]
    assert [(e.target_id, e.actor_id) for e in created_entries] == [(entry.target_id, owner.user_id)]
    assert created_entries[0].changes["rows"] == [None, sum(result.tables.values())]
