"""Backups and restores of one company's data, or of the whole platform: the engine (no Temporal here).

A backup is one consistent snapshot: every table is read in a single read transaction (PostgreSQL: repeatable
read, read only; SQLite: one transaction holding its read snapshot), so rows written meanwhile are either all in
or all out. It is written to ``{data_dir}/backups/.{backup_id}.partial/`` and renamed to
``{data_dir}/backups/{backup_id}/`` once complete::

    manifest.json          backup_id, created_at, scope (company id or "platform"), schema_revision,
                           format_version, tables: {name: {rows, sha256 of the uncompressed lines}}
    {table}.jsonl.gz       one row per line, canonical: sorted keys, ISO-8601 UTC datetimes, decimals as
                           strings, JSON columns as JSON; rows in primary-key order

The tables are ``Base.metadata.sorted_tables`` minus ``EXCLUDED_TABLES``, so a new table is backed up without
anyone remembering to add it. A company's rows are those with its ``company_id``; a table without that column
is scoped through its required foreign key to a scoped parent (``interactions -> leads``, ``workflow_actions ->
workflow_runs``, ``webhook_deliveries -> domain_events``...).

A restore checks before it changes anything (the files against the manifest, the schema revision, the scope),
then in one transaction deletes the scope's rows (children first), inserts the backup's (parents first), reads
them back with the same serialisation and compares with the manifest; any difference rolls everything back.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
import re
import shutil
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import (
    Column,
    DateTime,
    Numeric,
    Select,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.types import TypeDecorator

from core.config import Settings
from db import models
from db.base import Base, utcnow
from db.migrate import MIGRATIONS_DIR
from db.session import transaction
from schemas.backups import FORMAT_VERSION, PLATFORM_SCOPE, BackupManifest, BackupResult, TableDigest
from schemas.workflow_runs import RunStatus

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
TABLE_FILE_SUFFIX = ".jsonl.gz"
BATCH = 1000
"""Rows per read, write and insert round trip (and per progress report)."""

COMPANIES = "companies"
EXCLUDED_TABLES: dict[str, str] = {
    # Operational state that must not travel back in time with the data:
    "backups": "the index of backups itself: a restore must not forget the backups made after the one restored",
    "idempotency_records": "stored answers to retried requests; replayed after a restore they would describe "
    "records the restore replaced",
    "system_checks": "heartbeat proofs of the running system, not anyone's data",
    "audit_log": "the audit trail must survive a restore (the restore appends its own entry to it)",
    "api_call_counts": "API usage that already happened; going back in time would undercount it",
    "lead_imports": "the progress of console CSV uploads, not data: the leads they imported are backed up",
    "refresh_tokens": "sessions are not restored: replacing the users deletes their refresh tokens (cascade), so "
    "after a restore everyone signs in again",
}
STOPPED_RUN_STATES = (RunStatus.pending, RunStatus.running)
_BACKUP_ID = re.compile(r"bkp_[a-z0-9]{1,40}")


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


class BackupNotFound(BackupError):
    def __init__(self, backup_id: str) -> None:
        super().__init__(f"no backup {backup_id}")
        self.backup_id = backup_id


class CompanyNotFound(BackupError):
    def __init__(self, company_id: str) -> None:
        super().__init__(f"no company {company_id}")
        self.company_id = company_id


class BackupRefused(BackupError):
    """The backup exists but must not be restored (damaged, another schema revision, unfinished...)."""


class ScopeMismatch(BackupError):
    """A company's backup restores only that company; a platform backup only the whole platform."""


class Progress(Protocol):
    """Told what the engine is doing, for a progress bar or a Temporal heartbeat."""

    def step(self, label: str, total: int) -> None:
        """A step of ``total`` rows begins (``leads``, ``verify``, ``restore leads``, ``check``)."""

    def advance(self, rows: int) -> None:
        """``rows`` more rows of the current step are done."""


class _Silent:
    def step(self, label: str, total: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass


SILENT: Progress = _Silent()


@dataclass(frozen=True)
class Restored:
    backup_id: str
    company_id: str | None
    restored_at: datetime
    tables: dict[str, int]
    runs_stopped: int


# ---------------------------------------------------------------- what is backed up, and whose it is


def backed_up_tables() -> list[Table]:
    """Every table but the excluded ones, parents before children."""
    return [table for table in Base.metadata.sorted_tables if table.name not in EXCLUDED_TABLES]


def in_company(table: Table, company_id: str) -> ColumnElement[bool]:
    """The rows of ``table`` that are the company's; raises ``BackupError`` for a table no path leads to."""
    if table.name == COMPANIES:
        return table.c.id == company_id
    if "company_id" in table.c:
        return table.c.company_id == company_id
    # Follow a required foreign key (by column name, so the choice is stable) to a parent that is scoped.
    for key in sorted(table.foreign_keys, key=lambda fk: fk.parent.name):
        parent = key.column.table
        if not key.parent.nullable and isinstance(parent, Table) and parent.name not in EXCLUDED_TABLES:
            return key.parent.in_(select(key.column).where(in_company(parent, company_id)))
    raise BackupError(
        f"table {table.name} has neither company_id nor a required foreign key to a company's table: give it one, "
        "or leave it out of backups in db.backup.EXCLUDED_TABLES and say why"
    )


def _scoped(statement: Any, table: Table, company_id: str | None) -> Any:
    return statement if company_id is None else statement.where(in_company(table, company_id))


def _rows_of(table: Table, company_id: str | None, dialect: str) -> Select[Any]:
    # Byte order on both databases (PostgreSQL would otherwise sort text by its locale), so a checksum does
    # not depend on where the rows were read.
    order = [
        column.collate("C") if dialect == "postgresql" and isinstance(column.type, String) else column
        for column in table.primary_key.columns
    ]
    statement: Select[Any] = _scoped(select(table), table, company_id)
    return statement.order_by(*order)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def canonical_line(row: Mapping[str, Any]) -> bytes:
    """One row as its backup line; the same row always gives the same bytes, whichever database it came from."""
    plain = {name: _plain(value) for name, value in row.items()}
    return (json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


async def _lines(connection: AsyncConnection, table: Table, company_id: str | None) -> AsyncIterator[list[bytes]]:
    statement = _rows_of(table, company_id, connection.dialect.name).execution_options(yield_per=BATCH)
    result = await connection.stream(statement)
    async for partition in result.mappings().partitions(BATCH):
        yield [canonical_line(row) for row in partition]


async def _digest(
    connection: AsyncConnection, table: Table, company_id: str | None, progress: Progress = SILENT
) -> TableDigest:
    sha = hashlib.sha256()
    rows = 0
    async for lines in _lines(connection, table, company_id):
        for line in lines:
            sha.update(line)
        rows += len(lines)
        progress.advance(len(lines))
    return TableDigest(rows=rows, sha256=sha.hexdigest())


async def scope_digests(sessions: async_sessionmaker[AsyncSession], company_id: str | None) -> dict[str, TableDigest]:
    """Rows and checksum of every backed-up table, for a company or the platform, as they are now."""
    async with sessions() as session:
        connection = await session.connection()
        return {table.name: await _digest(connection, table, company_id) for table in backed_up_tables()}


# ---------------------------------------------------------------- where backups live


def backups_dir(settings: Settings) -> Path:
    return settings.data_dir / "backups"


def backup_folder(settings: Settings, backup_id: str) -> Path:
    # Only our own ids: a backup id typed at the command line must never name a path outside the folder.
    if not _BACKUP_ID.fullmatch(backup_id):
        raise BackupNotFound(backup_id)
    return backups_dir(settings) / backup_id


def _table_file(folder: Path, table_name: str) -> Path:
    return folder / f"{table_name}{TABLE_FILE_SUFFIX}"


# ---------------------------------------------------------------- backup


async def _database_revision(connection: AsyncConnection) -> str:
    revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    if revision is None:
        raise BackupError("the database has no schema revision: run `bas migrate` first")
    return str(revision)


async def _begin_snapshot(connection: AsyncConnection) -> None:
    if connection.dialect.name == "postgresql":
        await connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    elif connection.dialect.name == "sqlite":
        # The sqlite3 module opens no transaction for reads: without this, each SELECT would see the latest
        # commit. Inside BEGIN, the first read fixes the snapshot every later read sees (WAL lets writers on).
        await connection.exec_driver_sql("BEGIN")


async def _write_table(
    connection: AsyncConnection, table: Table, company_id: str | None, path: Path, progress: Progress
) -> TableDigest:
    sha = hashlib.sha256()
    rows = 0
    # mtime=0: the same rows give the same file, byte for byte.
    with gzip.GzipFile(path, "wb", compresslevel=6, mtime=0) as out:
        async for lines in _lines(connection, table, company_id):
            for line in lines:
                sha.update(line)
            out.write(b"".join(lines))
            rows += len(lines)
            progress.advance(len(lines))
    return TableDigest(rows=rows, sha256=sha.hexdigest())


async def _snapshot(
    sessions: async_sessionmaker[AsyncSession], backup_id: str, company_id: str | None, folder: Path, progress: Progress
) -> BackupManifest:
    tables: dict[str, TableDigest] = {}
    async with sessions() as session:
        connection = await session.connection()
        await _begin_snapshot(connection)
        created_at = utcnow()
        revision = await _database_revision(connection)
        for table in backed_up_tables():
            total = await connection.scalar(_scoped(select(func.count()).select_from(table), table, company_id))
            progress.step(table.name, int(total or 0))
            tables[table.name] = await _write_table(
                connection, table, company_id, _table_file(folder, table.name), progress
            )
        await session.rollback()  # read only: ends the snapshot
    return BackupManifest(
        format_version=FORMAT_VERSION,
        backup_id=backup_id,
        created_at=created_at,
        scope=company_id or PLATFORM_SCOPE,
        schema_revision=revision,
        tables=tables,
    )


def _result(manifest: BackupManifest, size_bytes: int) -> BackupResult:
    return BackupResult(
        backup_id=manifest.backup_id,
        company_id=manifest.company_id,
        created_at=manifest.created_at,
        size_bytes=size_bytes,
        schema_revision=manifest.schema_revision,
        tables=manifest.row_counts,
    )


async def _mark_failed(sessions: async_sessionmaker[AsyncSession], backup_id: str, error: BaseException) -> None:
    reason = str(error) or type(error).__name__
    async with transaction(sessions) as session:
        row = await session.get(models.Backup, backup_id)
        if row is not None:
            row.status = "failed"
            row.error = reason
    log.error("backup %s failed: %s", backup_id, reason)


async def create_backup(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    backup_id: str,
    company_id: str | None,
    created_by: str | None = None,
    progress: Progress = SILENT,
) -> BackupResult:
    """Back up one company (or, with ``company_id=None``, every company); the ``backups`` row tracks it.

    Safe to run again with the same id (a retried activity): a completed backup is returned as it is, an
    unfinished one starts over.
    """
    folder = backup_folder(settings, backup_id)
    async with transaction(sessions) as session:
        if company_id is not None and await session.get(models.Company, company_id) is None:
            raise CompanyNotFound(company_id)
        row = await session.get(models.Backup, backup_id)
        if row is not None and row.status == "completed":
            return _result(BackupManifest.model_validate(row.manifest), row.size_bytes)
        if row is None:
            row = models.Backup(id=backup_id)
            session.add(row)
        row.company_id = company_id
        row.location = str(folder.resolve())
        row.status = "running"
        row.error = None
        row.created_by = created_by
    log.info("backup %s of %s started", backup_id, company_id or PLATFORM_SCOPE)
    partial = folder.with_name(f".{backup_id}.partial")
    try:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        manifest = await _snapshot(sessions, backup_id, company_id, partial, progress)
        (partial / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)  # an earlier attempt that got this far but was not recorded
        partial.rename(folder)
    except BaseException as exc:  # cancelled too: no half backup stays behind, and the row says why
        shutil.rmtree(partial, ignore_errors=True)
        await _mark_failed(sessions, backup_id, exc)
        raise
    size = sum(path.stat().st_size for path in folder.iterdir())
    async with transaction(sessions) as session:
        row = await session.get(models.Backup, backup_id)
        assert row is not None
        row.status = "completed"
        row.size_bytes = size
        row.schema_revision = manifest.schema_revision
        row.manifest = manifest.model_dump(mode="json")
    log.info(
        "backup %s of %s completed: %d rows in %d tables, %d bytes at %s",
        backup_id,
        manifest.scope,
        sum(manifest.row_counts.values()),
        len(manifest.tables),
        size,
        folder,
    )
    return _result(manifest, size)


# ---------------------------------------------------------------- checks before a restore


def known_revisions() -> list[str]:
    """Every schema revision this code has a migration for, newest first."""
    return [script.revision for script in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()]


def _read_manifest(folder: Path, backup_id: str) -> BackupManifest:
    if not folder.is_dir():
        raise BackupNotFound(backup_id)
    try:
        manifest = BackupManifest.model_validate_json((folder / MANIFEST).read_bytes())
    except FileNotFoundError as exc:
        raise BackupRefused(f"backup {backup_id} has no {MANIFEST}: it is incomplete") from exc
    except ValidationError as exc:
        problems = exc.error_count()
        raise BackupRefused(f"{MANIFEST} of backup {backup_id} is not a backup manifest ({problems} errors)") from exc
    if manifest.backup_id != backup_id:
        raise BackupRefused(f"{MANIFEST} in folder {backup_id} belongs to backup {manifest.backup_id}")
    if manifest.format_version != FORMAT_VERSION:
        raise BackupRefused(
            f"backup {backup_id} has format version {manifest.format_version}; this code reads {FORMAT_VERSION}"
        )
    return manifest


def _check_revision(manifest: BackupManifest, database_revision: str) -> None:
    revision = manifest.schema_revision
    if revision not in known_revisions():
        raise BackupRefused(
            f"backup {manifest.backup_id} was made at schema revision {revision}, which this version of the code "
            "does not know (made by a newer release?): restore it with that release"
        )
    if revision != database_revision:
        raise BackupRefused(
            f"backup {manifest.backup_id} was made at schema revision {revision} and the database is at "
            f"{database_revision}: a restore needs both at the same revision (rows are not converted between them)"
        )


def _check_scope(manifest: BackupManifest, scope: str | None) -> None:
    if scope is None or manifest.scope == scope:
        return
    if manifest.scope == PLATFORM_SCOPE:
        raise ScopeMismatch(f"backup {manifest.backup_id} is of the whole platform, not of company {scope}")
    raise ScopeMismatch(
        f"backup {manifest.backup_id} is of company {manifest.scope}; it can only be restored into that company"
    )


async def _check_record(sessions: async_sessionmaker[AsyncSession], manifest: BackupManifest) -> None:
    """The ``backups`` row, when there is one (a new database restoring a platform backup has none), agrees."""
    async with sessions() as session:
        row = await session.get(models.Backup, manifest.backup_id)
    if row is None:
        return
    if row.status != "completed":
        raise BackupRefused(f"backup {manifest.backup_id} is {row.status}, not completed")
    if row.manifest != manifest.model_dump(mode="json"):
        raise BackupRefused(
            f"{MANIFEST} of backup {manifest.backup_id} differs from the manifest recorded when it was made"
        )


def _check_tables(manifest: BackupManifest) -> None:
    expected = {table.name for table in backed_up_tables()}
    missing, unexpected = sorted(expected - set(manifest.tables)), sorted(set(manifest.tables) - expected)
    if missing or unexpected:
        raise BackupRefused(
            f"backup {manifest.backup_id} does not hold this schema's tables (missing: {', '.join(missing) or '-'}; "
            f"unknown: {', '.join(unexpected) or '-'})"
        )


async def _gzip_lines(path: Path) -> AsyncIterator[list[bytes]]:
    """The file's lines in batches; a missing or damaged file is a refusal, never a half-read restore."""
    try:
        with gzip.open(path, "rb") as lines:
            batch: list[bytes] = []
            for line in lines:
                batch.append(line)
                if len(batch) == BATCH:
                    yield batch
                    batch = []
                    await asyncio.sleep(0)  # let heartbeats and cancellation through on a long file
            if batch:
                yield batch
    except FileNotFoundError as exc:
        raise BackupRefused(f"{path.name} is missing from backup {path.parent.name}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise BackupRefused(f"{path.name} of backup {path.parent.name} is damaged: {exc}") from exc


async def _file_digest(path: Path, progress: Progress) -> TableDigest:
    sha = hashlib.sha256()
    rows = 0
    async for batch in _gzip_lines(path):
        for line in batch:
            sha.update(line)
        rows += len(batch)
        progress.advance(len(batch))
    return TableDigest(rows=rows, sha256=sha.hexdigest())


async def verify(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    backup_id: str,
    scope: str | None = None,
    progress: Progress = SILENT,
) -> BackupManifest:
    """Everything a restore checks before it changes anything; raises ``BackupError`` with the reason.

    ``scope``: the company id (or ``platform``) the caller means to restore; None accepts the backup's own.
    """
    folder = backup_folder(settings, backup_id)
    manifest = _read_manifest(folder, backup_id)
    async with sessions() as session:
        _check_revision(manifest, await _database_revision(await session.connection()))
    _check_scope(manifest, scope)
    await _check_record(sessions, manifest)
    _check_tables(manifest)
    progress.step("verify", sum(manifest.row_counts.values()))
    for name, expected in manifest.tables.items():
        found = await _file_digest(_table_file(folder, name), progress)
        if found != expected:
            raise BackupRefused(
                f"{name}{TABLE_FILE_SUFFIX} of backup {backup_id} does not match its manifest "
                f"({found.rows} rows, sha256 {found.sha256[:12]}... where the manifest has {expected.rows} rows, "
                f"sha256 {expected.sha256[:12]}...)"
            )
    return manifest


# ---------------------------------------------------------------- restore


def _decoder(column: Column[Any]) -> Callable[[Any], Any]:
    """The inverse of ``_plain`` for the column's type: ISO strings back to datetimes, strings to decimals."""
    kind = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
    if isinstance(kind, DateTime):
        return lambda value: None if value is None else datetime.fromisoformat(value)
    if isinstance(kind, Numeric) and kind.asdecimal:
        return lambda value: None if value is None else Decimal(value)
    return lambda value: value


async def _file_rows(path: Path, table: Table) -> AsyncIterator[list[dict[str, Any]]]:
    decoders = {column.name: _decoder(column) for column in table.columns}
    async for batch in _gzip_lines(path):
        rows = []
        for line in batch:
            row = json.loads(line)
            if not isinstance(row, dict) or row.keys() != decoders.keys():
                raise BackupRefused(f"a row in {path.name} does not have the columns of table {table.name}")
            rows.append({name: decode(row[name]) for name, decode in decoders.items()})
        yield rows


def _stamped(table: Table) -> list[str]:
    """Columns an UPDATE would otherwise set on its own (``onupdate``, like ``updated_at``)."""
    return [column.name for column in table.columns if column.onupdate is not None]


def _single_key(table: Table) -> Column[Any]:
    [key] = table.primary_key.columns
    return key


async def _lock_scope(connection: AsyncConnection, company_id: str | None) -> None:
    if connection.dialect.name == "sqlite":
        # Take the write lock now rather than at the first DELETE: no writer slips in between our statements.
        await connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    # One restore at a time; and while a company is restored, locking its row holds back every insert that
    # names it (a foreign-key check needs a share lock on the row) until the restore commits or rolls back.
    await connection.execute(select(func.pg_advisory_xact_lock(0x62617365)))
    if company_id is not None:
        companies = Base.metadata.tables[COMPANIES]
        await connection.execute(select(companies.c.id).where(companies.c.id == company_id).with_for_update())


async def _company_ids_in(folder: Path) -> set[str]:
    companies = Base.metadata.tables[COMPANIES]
    return {row["id"] async for batch in _file_rows(_table_file(folder, COMPANIES), companies) for row in batch}


async def _delete_scope(connection: AsyncConnection, tables: list[Table], company_id: str | None, folder: Path) -> None:
    for table in reversed(tables):
        if table.name != COMPANIES:
            await connection.execute(_scoped(delete(table), table, company_id))
        elif company_id is None:
            # Companies the backup has are updated in place, not deleted: deleting one would cascade into the
            # rows that must survive a restore (its audit log, usage counts). Those it lacks go, with everything.
            kept = sorted(await _company_ids_in(folder))
            await connection.execute(delete(table).where(table.c.id.not_in(kept)))


async def _upsert_companies(connection: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    existing = set(await connection.scalars(select(table.c.id).where(table.c.id.in_([row["id"] for row in rows]))))
    new = [row for row in rows if row["id"] not in existing]
    if new:
        await connection.execute(insert(table), new)
    for row in rows:
        if row["id"] in existing:
            values = {name: value for name, value in row.items() if name != "id"}
            await connection.execute(update(table).where(table.c.id == row["id"]).values(values))


async def _insert_scope(
    connection: AsyncConnection, tables: list[Table], folder: Path, manifest: BackupManifest, progress: Progress
) -> None:
    position = {table.name: index for index, table in enumerate(tables)}
    later_links: list[tuple[Table, str, list[dict[str, Any]]]] = []
    for table in tables:
        # A foreign key to a table inserted later (the sales -> referrals -> reviews -> sales cycle) is written
        # as NULL first and set once every row is in.
        forward = sorted(
            key.parent.name
            for key in table.foreign_keys
            if position.get(key.column.table.name, -1) >= position[table.name]
        )
        links: dict[str, list[dict[str, Any]]] = {name: [] for name in forward}
        progress.step(f"restore {table.name}", manifest.tables[table.name].rows)
        async for rows in _file_rows(_table_file(folder, table.name), table):
            for row in rows:
                for name in forward:
                    if row[name] is not None:
                        links[name].append(
                            {"restored_key": row[_single_key(table).name], "restored_value": row[name]}
                            | {f"restored_{column}": row[column] for column in _stamped(table)}
                        )
                        row[name] = None
            if table.name == COMPANIES:
                await _upsert_companies(connection, table, rows)
            else:
                await connection.execute(insert(table), rows)
            progress.advance(len(rows))
        later_links += [(table, name, values) for name, values in links.items() if values]
    for table, name, values in later_links:
        # The row's own ``updated_at`` is written back too, or the update would stamp it with now.
        restored: dict[str, BindParameter[Any]] = {name: bindparam("restored_value")}
        restored |= {column: bindparam(f"restored_{column}") for column in _stamped(table)}
        statement = update(table).where(_single_key(table) == bindparam("restored_key")).values(restored)
        await connection.execute(statement, values)


async def _reset_sequences(connection: AsyncConnection, tables: list[Table]) -> None:
    """Rows went in with their own integer ids: move each id sequence past them (PostgreSQL)."""
    if connection.dialect.name != "postgresql":
        return  # SQLite's next rowid is always past the largest
    for table in tables:
        column = table.autoincrement_column
        if column is not None:
            sequence = func.pg_get_serial_sequence(table.name, column.name)
            await connection.execute(select(func.setval(sequence, func.coalesce(func.max(column), 0) + 1, False)))


async def _check_restored(
    connection: AsyncConnection, tables: list[Table], manifest: BackupManifest, progress: Progress
) -> None:
    progress.step("check", sum(manifest.row_counts.values()))
    for table in tables:
        found = await _digest(connection, table, manifest.company_id, progress)
        expected = manifest.tables[table.name]
        if found != expected:
            raise BackupRefused(
                f"table {table.name} reads back as {found.rows} rows (sha256 {found.sha256[:12]}...) after the "
                f"restore, where backup {manifest.backup_id} has {expected.rows} (sha256 {expected.sha256[:12]}...): "
                "rolled back, nothing changed"
            )


async def _revoked_keys(connection: AsyncConnection, company_id: str | None) -> dict[str, datetime]:
    keys = Base.metadata.tables["api_keys"]
    statement = _scoped(select(keys.c.id, keys.c.revoked_at).where(keys.c.revoked_at.is_not(None)), keys, company_id)
    return {key_id: revoked_at for key_id, revoked_at in (await connection.execute(statement)).all()}


async def _keep_revoked(connection: AsyncConnection, revoked: dict[str, datetime]) -> int:
    """A key revoked since the backup stays revoked: a restore must never bring a withdrawn credential back."""
    keys = Base.metadata.tables["api_keys"]
    kept = 0
    for key_id, revoked_at in revoked.items():
        result = await connection.execute(
            update(keys).where(keys.c.id == key_id, keys.c.revoked_at.is_(None)).values(revoked_at=revoked_at)
        )
        kept += result.rowcount
    return kept


async def _stop_restored_runs(
    connection: AsyncConnection, company_id: str | None, backup_id: str, restored_at: datetime
) -> int:
    """Runs the backup had as live are stopped: their workflows were stopped before the restore (or are gone)."""
    runs = Base.metadata.tables["workflow_runs"]
    statement = _scoped(update(runs).where(runs.c.status.in_(STOPPED_RUN_STATES)), runs, company_id).values(
        status=RunStatus.stopped, error=f"stopped by restore from backup {backup_id}", completed_at=restored_at
    )
    result = await connection.execute(statement)
    return int(result.rowcount)


async def restore(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    backup_id: str,
    scope: str | None = None,
    progress: Progress = SILENT,
) -> Restored:
    """Replace the scope's data with the backup's, in one transaction, after ``verify``; all or nothing.

    Runs the backup had as pending/running are marked stopped, and API keys revoked since the backup stay
    revoked; both after the read-back check, which compares exactly what the backup holds.
    """
    manifest = await verify(sessions, settings, backup_id, scope, progress)
    folder = backup_folder(settings, backup_id)
    tables = backed_up_tables()
    restored_at = utcnow()
    log.info("restore of %s from backup %s started", manifest.scope, backup_id)
    async with sessions() as session:
        connection = await session.connection()
        await _lock_scope(connection, manifest.company_id)
        revoked = await _revoked_keys(connection, manifest.company_id)
        await _delete_scope(connection, tables, manifest.company_id, folder)
        await _insert_scope(connection, tables, folder, manifest, progress)
        await _reset_sequences(connection, tables)
        await _check_restored(connection, tables, manifest, progress)
        runs_stopped = await _stop_restored_runs(connection, manifest.company_id, backup_id, restored_at)
        kept_revoked = await _keep_revoked(connection, revoked)
        # The row may have lost its company (set null) if the company was deleted and is now restored.
        await connection.execute(
            update(models.Backup)
            .where(models.Backup.id == backup_id)
            .values(restored_at=restored_at, company_id=manifest.company_id)
        )
        await session.commit()
    log.info(
        "restore of %s from backup %s committed: %d rows in %d tables, %d runs stopped, %d revoked keys kept revoked",
        manifest.scope,
        backup_id,
        sum(manifest.row_counts.values()),
        len(tables),
        runs_stopped,
        kept_revoked,
    )
    return Restored(
        backup_id=backup_id,
        company_id=manifest.company_id,
        restored_at=restored_at,
        tables=manifest.row_counts,
        runs_stopped=runs_stopped,
    )
