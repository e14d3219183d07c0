"""``bas backup`` and ``bas restore``: the platform operator's backups, run in this process (no worker needed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from temporalio.client import Client

from activities.backup import stop_running_workflows
from core.config import Settings, get_settings
from core.logging import configure_logging
from core.temporal import connect
from db import backup as engine
from db.session import create_engine, session_factory
from schemas.backups import (
    DEFAULT_STOP_GRACE_SECONDS,
    PLATFORM_SCOPE,
    BackupManifest,
    BackupResult,
    RestoreResult,
    StoppedWorkflows,
    human_size,
)
from schemas.ids import from_api_id
from schemas.temporal import QueueKind
from services import backups

CONNECT_TIMEOUT_SECONDS = 10.0

CompanyOption = Annotated[
    str | None, typer.Option("--company", help="A company id (cmp_... or company-...); default: every company.")
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Like BAS_DATA_DIR: holds backups/ (and the database, when it is the default SQLite file)."
    ),
]


class _Bars:
    """``db.backup`` progress as one rich bar per step (per table), on stderr: stdout carries the summary."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def step(self, label: str, total: int) -> None:
        self._task = self._progress.add_task(label, total=total)

    def advance(self, rows: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, rows)


@contextlib.contextmanager
def _bars() -> Iterator[_Bars]:
    columns = (TextColumn("{task.description:<32}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        yield _Bars(progress)


def _settings(data_dir: Path | None) -> Settings:
    settings = get_settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    configure_logging("WARNING")
    return settings


def _refuse(message: str) -> typer.Exit:
    typer.secho(f"refused: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(1)


def _echo_tables(tables: dict[str, int]) -> None:
    for name, rows in tables.items():
        typer.echo(f"  {name:<28}{rows:>10}")
    typer.echo(f"  {'total':<28}{sum(tables.values()):>10}")


def backup(company: CompanyOption = None, data_dir: DataDirOption = None) -> None:
    """Back up one company, or every company: one consistent snapshot in DATA_DIR/backups/{backup_id}/."""
    settings = _settings(data_dir)
    company_id = from_api_id(company)

    async def run() -> tuple[Path, BackupResult]:
        db_engine = create_engine(settings)
        try:
            with _bars() as bars:
                result = await backups.back_up_here(session_factory(db_engine), settings, company_id, bars)
        finally:
            await db_engine.dispose()
        return engine.backup_folder(settings, result.backup_id), result

    try:
        folder, result = asyncio.run(run())
    except engine.BackupError as exc:
        raise _refuse(str(exc)) from exc
    typer.echo(f"backup {result.backup_id} of {result.company_id or PLATFORM_SCOPE} completed")
    typer.echo(f"  size      {human_size(result.size_bytes)} ({result.size_bytes} bytes)")
    typer.echo(f"  folder    {folder}")
    typer.echo(f"  schema    {result.schema_revision}")
    typer.echo("  rows per table:")
    _echo_tables(result.tables)


async def _temporal_or_refuse(settings: Settings) -> Client:
    try:
        return await asyncio.wait_for(connect(settings), CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:  # whatever the reason (refused, TLS, timeout), the answer is the same
        raise _refuse(
            f"Temporal at {settings.temporal_address} is not reachable ({exc or type(exc).__name__}), so workflows "
            "in flight cannot be stopped before their data is replaced. Start Temporal, or pass --no-temporal to "
            "restore anyway (those workflows then keep running against the restored data)"
        ) from exc


def _describe(manifest: BackupManifest) -> str:
    whose = "every company's data" if manifest.company_id is None else f"all data of company {manifest.company_id}"
    return (
        f"Backup {manifest.backup_id} ({manifest.scope}, made {manifest.created_at:%Y-%m-%d %H:%M:%S} UTC, schema "
        f"{manifest.schema_revision}): {sum(manifest.row_counts.values())} rows in {len(manifest.tables)} tables.\n"
        f"Restoring replaces {whose} with the backup's; its running workflows are stopped first."
    )


def restore(
    backup_id: Annotated[str, typer.Argument(help="The backup's id (bkp_... or backup-...).")],
    company: Annotated[
        str | None, typer.Option("--company", help="Refuse unless the backup is of this company.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    no_temporal: Annotated[
        bool, typer.Option("--no-temporal", help="Restore even though Temporal is unreachable (workflows not stopped).")
    ] = False,
    stop_grace: Annotated[
        float,
        typer.Option(
            "--stop-grace", min=0, help="Seconds cancelled workflows get to finish before they are terminated."
        ),
    ] = DEFAULT_STOP_GRACE_SECONDS,
    data_dir: DataDirOption = None,
) -> None:
    """Replace a company's data (or the whole platform's) with a backup's, after checking it against its manifest."""
    settings = _settings(data_dir)
    canonical_id = from_api_id(backup_id) or backup_id
    scope = from_api_id(company)

    async def run() -> RestoreResult | None:
        client = None if no_temporal else await _temporal_or_refuse(settings)
        db_engine = create_engine(settings)
        sessions = session_factory(db_engine)
        try:
            with _bars() as bars:
                manifest = await engine.verify(sessions, settings, canonical_id, scope, bars)
            typer.echo(_describe(manifest))
            if not yes and not typer.confirm("Restore it now?"):
                return None
            stopped: StoppedWorkflows | None = None
            if client is not None:
                stopped = await stop_running_workflows(
                    client,
                    settings.task_queue(QueueKind.MAIN),
                    manifest.company_id,
                    canonical_id,
                    stop_grace,
                )
            with _bars() as bars:
                return await backups.restore_here(sessions, settings, canonical_id, manifest.scope, stopped, bars)
        finally:
            await db_engine.dispose()

    try:
        result = asyncio.run(run())
    except engine.BackupError as exc:
        raise _refuse(str(exc)) from exc
    if result is None:
        typer.echo("not restored: nothing changed")
        raise typer.Exit(1)
    typer.echo(f"restored {result.company_id or PLATFORM_SCOPE} from backup {result.backup_id}")
    typer.echo(f"  at        {result.restored_at.isoformat()}")
    if result.workflows is None:
        typer.echo("  workflows not stopped (--no-temporal): any still running act on the restored data")
    else:
        typer.echo(
            f"  workflows {result.workflows.cancelled} cancelled ({result.workflows.terminated} terminated after "
            f"{stop_grace:.0f}s)"
        )
    typer.echo(f"  runs      {result.runs_stopped} pending/running runs of the backup marked stopped")
    typer.echo("  rows per table:")
    _echo_tables(result.tables)


def register(app: typer.Typer) -> None:
    """``bas backup`` and ``bas restore`` as top-level commands."""
    app.command("backup")(backup)
    app.command("restore")(restore)
