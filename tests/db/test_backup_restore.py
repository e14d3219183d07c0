"""``db.backup`` on SQLite and PostgreSQL: a company (or the platform) backed up, changed or wiped, restored.

Companies are populated through the API (``tests.db.populate``); checksums are recomputed from the database with
the same canonical serialisation the manifest uses. Runs the backup had as live come back marked stopped, so
``workflow_runs`` is compared without its state columns and its state asserted on its own.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from core.config import Settings
from core.ids import new_id
from db import audit as audit_log
from db import backup as engine
from db.base import Base, utcnow
from db.models import AuditEntry, Backup, Company, ContentMetric, Lead, WorkflowRun
from db.session import create_engine, session_factory
from schemas.backups import BackupManifest, BackupResult, RestoreResult, TableDigest
from schemas.workflow_runs import RunStatus
from tests.conftest import Account, register
from tests.db import add_lead, digests, outbox_settled, populate, runs, terminate_company_workflows, without_state
from tests.support.postgres import PostgresServer

STOPPED_BY = "stopped by restore from backup {}"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The API's outbox relay passes often: tests wait for it before taking checksums (``outbox_settled``)."""
    settings.webhook_relay_interval_seconds = 0.05
    return settings


@pytest.fixture
async def seeded(
    client: httpx2.AsyncClient, settings: Settings, db: async_sessionmaker[AsyncSession], temporal_client: Client
) -> AsyncIterator[Any]:
    company = await populate(client, settings, db)
    other = await populate(client, settings, db, "Other Co")
    yield company, other
    for seeded in (company, other):
        await terminate_company_workflows(temporal_client, seeded.account.company_id)


@pytest.fixture
def fresh_database_url(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> str:
    """A second migrated, empty database of the same kind: where a platform backup is restored after a disaster."""
    if database_url.startswith("sqlite"):
        copy = tmp_path / "fresh.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), copy)
        return f"sqlite:///{copy}"
    server: PostgresServer
    server, template = request.getfixturevalue("postgres_server")
    return server.url(server.create_database(template=template))


def manifest_of(settings: Settings, backup_id: str) -> BackupManifest:
    return BackupManifest.model_validate_json((engine.backup_folder(settings, backup_id) / "manifest.json").read_text())


async def live_run_ids(db: async_sessionmaker[AsyncSession], company_id: str) -> set[str]:
    return {run["id"] for run in await runs(db, company_id) if run["status"] in ("pending", "running")}


def test_every_table_is_backed_up_by_company_or_left_out_with_a_reason() -> None:
    for table in engine.backed_up_tables():
        assert engine.in_company(table, "cmp_x") is not None  # raises for a table no company path leads to
    assert set(engine.EXCLUDED_TABLES) <= set(Base.metadata.tables)
    assert all(reason for reason in engine.EXCLUDED_TABLES.values())


async def test_a_company_comes_back_exactly_as_backed_up_after_changes_and_after_a_wipe(
    client: httpx2.AsyncClient, settings: Settings, db: async_sessionmaker[AsyncSession], seeded: Any
) -> None:
    company, other = seeded
    company_id = company.account.company_id
    before, runs_before = await digests(db, company_id), await runs(db, company_id)
    other_before, other_runs = await digests(db, other.account.company_id), await runs(db, other.account.company_id)
    live = await live_run_ids(db, company_id)
    assert len(live) >= 3  # two lead follow-ups and the sale's review request
    for table in ("users", "leads", "interactions", "customers", "sales", "reviews", "referrals", "referral_uses"):
        assert before[table].rows > 0, table
    for table in ("content", "content_metrics", "workflow_configs", "domain_events"):
        assert before[table].rows > 0, table

    result = await engine.create_backup(db, settings, new_id("bkp"), company_id)

    manifest = manifest_of(settings, result.backup_id)
    assert manifest.scope == company_id and manifest.schema_revision == engine.known_revisions()[0]
    assert {name: manifest.tables[name] for name in before} == before
    assert manifest.tables["workflow_runs"].rows == len(runs_before)
    assert result.tables == manifest.row_counts and result.size_bytes > 0
    assert not set(engine.EXCLUDED_TABLES) & set(manifest.tables)
    folder = engine.backup_folder(settings, result.backup_id)
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        ["manifest.json", *(f"{name}.jsonl.gz" for name in manifest.tables)]
    )
    assert [path.name for path in folder.parent.iterdir()] == [result.backup_id]  # no partial folder left

    # After the backup: a new lead, a renamed one, a deleted one (with its interactions and run).
    await add_lead(client, company.account, "Came Later")
    headers = company.account.headers
    renamed = await client.patch(f"/v1/leads/{company.lead_ids[1]}", headers=headers, json={"name": "Renamed"})
    assert renamed.status_code == 200, renamed.text
    deleted = await client.delete(f"/v1/leads/{company.lead_ids[0]}", headers=headers)
    assert deleted.status_code == 204, deleted.text
    assert await digests(db, company_id) != before
    await outbox_settled(db)

    for attempt in ("after changes", "after a wipe"):
        restored = await engine.restore(db, settings, result.backup_id)

        assert await digests(db, company_id) == before, attempt
        after = await runs(db, company_id)
        assert without_state(after) == without_state(runs_before), attempt
        for run in after:
            if run["id"] in live:
                assert run["status"] == RunStatus.stopped, attempt
                assert run["error"] == STOPPED_BY.format(result.backup_id)
                assert run["completed_at"] is not None
        assert restored.runs_stopped == len(live)
        assert restored.tables == manifest.row_counts
        # The other company was not touched.
        assert await digests(db, other.account.company_id) == other_before, attempt
        assert await runs(db, other.account.company_id) == other_runs, attempt
        if attempt == "after changes":
            async with db() as session:  # the wipe: the company row and, by cascade, everything of the company
                await session.execute(delete(Company).where(Company.id == company_id))
                await session.commit()
                assert await session.scalar(select(func.count()).where(Lead.company_id == company_id)) == 0

    async with db() as session:  # the backups row survives the restore and says when it was restored
        row = await session.get(Backup, result.backup_id)
        assert row is not None and row.status == "completed" and row.restored_at is not None


async def test_a_platform_backup_restores_into_a_new_database(
    settings: Settings, db: async_sessionmaker[AsyncSession], seeded: Any, fresh_database_url: str
) -> None:
    before = await digests(db, None)
    assert before["companies"].rows == 2
    result = await engine.create_backup(db, settings, new_id("bkp"), None)
    assert manifest_of(settings, result.backup_id).scope == "platform"

    fresh_settings = settings.model_copy(update={"database_url": fresh_database_url})
    fresh_engine = create_engine(fresh_settings)
    try:
        fresh = session_factory(fresh_engine)
        restored = await engine.restore(fresh, fresh_settings, result.backup_id)  # no backups row there: files only
        assert restored.company_id is None
        assert await digests(fresh, None) == before
        async with fresh() as session:
            stopped = await session.scalars(select(WorkflowRun.status).where(WorkflowRun.status == RunStatus.stopped))
            assert len(list(stopped)) == restored.runs_stopped > 0
            # New rows get new integer ids: the id sequence moved past the restored ones (PostgreSQL's setval).
            content_id = await session.scalar(select(ContentMetric.content_id).limit(1))
            session.add(ContentMetric(content_id=content_id, recorded_on="2030-01-01", views=1))
            await session.commit()
    finally:
        await fresh_engine.dispose()


async def test_a_backup_holds_one_moment_even_while_rows_are_written(
    client: httpx2.AsyncClient, settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    account = await populate_light(client, db)
    suppressions = Base.metadata.tables["suppressions"]
    writer = sqlalchemy.create_engine(settings.sync_database_url)

    class WriteDuringBackup:
        """While the first table is read, another connection commits a row of a table read later."""

        def step(self, label: str, total: int) -> None:
            if label == "companies":
                with writer.begin() as connection:
                    connection.execute(
                        insert(suppressions).values(
                            id=new_id("sup"),
                            company_id=account.company_id,
                            channel="email",
                            address="x@example.com",
                            reason="unsubscribed",
                            created_at=utcnow(),
                        )
                    )

        def advance(self, rows: int) -> None:
            pass

    try:
        result = await engine.create_backup(db, settings, new_id("bkp"), account.company_id, None, WriteDuringBackup())
    finally:
        writer.dispose()
    assert result.tables["suppressions"] == 0
    assert (await digests(db, account.company_id))["suppressions"].rows == 1


async def populate_light(client: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession]) -> Account:
    account = await register(client, "Small Co")
    await add_lead(client, account, "Only Lead")
    await outbox_settled(db)
    return account


async def _backed_up_with_a_later_change(
    client: httpx2.AsyncClient, settings: Settings, db: async_sessionmaker[AsyncSession]
) -> tuple[Account, str, dict[str, TableDigest]]:
    account = await populate_light(client, db)
    result = await engine.create_backup(db, settings, new_id("bkp"), account.company_id)
    await add_lead(client, account, "After The Backup")  # what a restore would remove
    await outbox_settled(db)
    return account, result.backup_id, await digests(db, account.company_id)


def _rewrite(path: Path, change: Any) -> None:
    with gzip.open(path, "rb") as original:
        lines = original.read().splitlines(keepends=True)
    with gzip.open(path, "wb") as rewritten:
        rewritten.write(b"".join(change(lines)))


async def test_a_tampered_or_missing_file_is_refused_and_nothing_changes(
    client: httpx2.AsyncClient, settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    account, backup_id, now = await _backed_up_with_a_later_change(client, settings, db)
    leads_file = engine.backup_folder(settings, backup_id) / "leads.jsonl.gz"
    pristine = leads_file.read_bytes()

    def renamed(lines: list[bytes]) -> list[bytes]:
        row = json.loads(lines[0])
        return [json.dumps({**row, "name": "Mallory"}, sort_keys=True).encode() + b"\n", *lines[1:]]

    _rewrite(leads_file, renamed)
    with pytest.raises(engine.BackupRefused, match=r"leads\.jsonl\.gz of backup .* does not match its manifest"):
        await engine.restore(db, settings, backup_id)
    assert await digests(db, account.company_id) == now

    leads_file.write_bytes(pristine[: len(pristine) // 2])  # cut short: not even valid gzip
    with pytest.raises(engine.BackupRefused, match=r"damaged|does not match"):
        await engine.restore(db, settings, backup_id)
    leads_file.unlink()
    with pytest.raises(engine.BackupRefused, match=r"leads\.jsonl\.gz is missing"):
        await engine.restore(db, settings, backup_id)
    assert await digests(db, account.company_id) == now

    leads_file.write_bytes(pristine)  # intact again: the restore goes ahead
    await engine.restore(db, settings, backup_id)
    assert (await digests(db, account.company_id))["leads"].rows == now["leads"].rows - 1


async def test_a_backup_from_another_schema_revision_is_refused(
    client: httpx2.AsyncClient, settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    account, backup_id, now = await _backed_up_with_a_later_change(client, settings, db)
    manifest_file = engine.backup_folder(settings, backup_id) / "manifest.json"
    manifest = json.loads(manifest_file.read_text())

    manifest_file.write_text(json.dumps({**manifest, "schema_revision": "9999_from_the_future"}))
    with pytest.raises(engine.BackupRefused, match=r"does not know .*newer release"):
        await engine.restore(db, settings, backup_id)

    older = engine.known_revisions()[1]
    manifest_file.write_text(json.dumps({**manifest, "schema_revision": older}))
    with pytest.raises(engine.BackupRefused, match=f"made at schema revision {older} and the database is at"):
        await engine.restore(db, settings, backup_id)
    assert await digests(db, account.company_id) == now


async def test_a_backup_restores_only_into_its_own_scope_and_only_as_recorded(
    client: httpx2.AsyncClient, settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    account, backup_id, now = await _backed_up_with_a_later_change(client, settings, db)
    with pytest.raises(engine.ScopeMismatch, match="can only be restored into that company"):
        await engine.restore(db, settings, backup_id, scope="cmp_someoneelse")
    with pytest.raises(engine.ScopeMismatch):
        await engine.restore(db, settings, backup_id, scope="platform")
    with pytest.raises(engine.BackupNotFound):
        await engine.restore(db, settings, "bkp_doesnotexist")
    with pytest.raises(engine.BackupNotFound):
        await engine.restore(db, settings, "../../etc")

    # A manifest rewritten to match a rewritten file still differs from the one recorded when it was made.
    folder = engine.backup_folder(settings, backup_id)
    _rewrite(folder / "leads.jsonl.gz", lambda lines: lines[:0])
    manifest = manifest_of(settings, backup_id)
    manifest.tables["leads"] = TableDigest(rows=0, sha256=hashlib.sha256(b"").hexdigest())
    (folder / "manifest.json").write_text(manifest.model_dump_json())
    with pytest.raises(engine.BackupRefused, match="differs from the manifest recorded"):
        await engine.restore(db, settings, backup_id)
    assert await digests(db, account.company_id) == now


async def test_an_outcome_recorded_twice_is_in_the_audit_log_once(
    owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    """The workflow's record activities may run again after their commit (a lost answer is retried)."""
    backup = BackupResult(
        backup_id="bkp_once",
        company_id=owner.company_id,
        created_at=utcnow(),
        size_bytes=10,
        schema_revision="x",
        tables={"leads": 2, "interactions": 3},
    )
    restore = RestoreResult(
        restore_id="rst_first",
        backup_id="bkp_once",
        company_id=owner.company_id,
        restored_at=utcnow(),
        tables={"leads": 2},
        runs_stopped=0,
    )
    for _ in range(2):
        async with db() as session:
            await audit_log.record_backup(session, backup, owner.user_id)
            await audit_log.record_restore(session, restore, owner.user_id)
            await session.commit()
    async with db() as session:  # a second restore of the same backup is a second entry
        await audit_log.record_restore(session, restore.model_copy(update={"restore_id": "rst_second"}), None)
        await session.commit()

    async with db() as session:
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.target_id == "bkp_once"))).all()
    assert sorted((entry.action, entry.changes.get("restore_id", [None, None])[1]) for entry in entries) == [
        ("backup.created", None),
        ("backup.restored", "rst_first"),
        ("backup.restored", "rst_second"),
    ]
    [created] = [entry for entry in entries if entry.action == "backup.created"]
    assert created.changes == {"scope": [None, owner.company_id], "size_bytes": [None, 10], "rows": [None, 5]}
