"""``bas leads import|export``: bulk lead files, acting as one of the company's users."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import select

from core.config import Settings, get_settings
from core.logging import configure_logging
from core.temporal import connect
from db.models import User
from db.session import create_engine, session_factory
from schemas.enums import Role
from services import lead_import
from services.errors import DomainError

app = typer.Typer(help="Import and export leads as CSV.", no_args_is_help=True)

AsUser = Annotated[str, typer.Option("--as", help="Email of the user (admin or manager) the work is done as.")]


async def _actor(settings: Settings, email: str) -> User:
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            user = await session.scalar(select(User).where(User.email == email.lower()))
    finally:
        await engine.dispose()
    if user is None or not user.is_active:
        raise typer.BadParameter(f"no active user {email}", param_hint="--as")
    if user.role not in (Role.admin, Role.manager):
        raise typer.BadParameter(f"{email} is a {user.role}; imports need an admin or a manager", param_hint="--as")
    return user


@app.command("import")
def import_leads(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV with a header row.")],
    as_user: AsUser,
    errors: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Also write the refused rows, with line, field and reason, to this CSV."),
    ] = None,
) -> None:
    """Create leads from a CSV (name, email, phone, source, notes, tags, timezone, other columns = custom fields).

    A lead whose email the company already has is merged, never given a second sequence. Exits 1 if any row
    was refused; the report lists each one with its line and field.
    """
    settings = get_settings()
    configure_logging("WARNING")
    with file.open(newline="", encoding="utf-8-sig") as handle:
        try:
            header, rows = lead_import.read_csv(handle)
        except DomainError as exc:
            raise typer.BadParameter(exc.message, param_hint="FILE") from exc

    async def run() -> lead_import.ImportReport:
        actor = await _actor(settings, as_user)
        client = await connect(settings)
        engine = create_engine(settings)
        columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        try:
            # On stderr: standard output carries only the summary, for scripts.
            with Progress(*columns, console=Console(stderr=True)) as progress:
                task = progress.add_task("rows", total=len(rows))

                async def advance(_: lead_import.ImportReport) -> None:
                    progress.advance(task)

                return await lead_import.import_rows(
                    session_factory(engine), client, settings, actor, rows, on_row=advance
                )
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    typer.echo(f"{report.created} created, {report.merged} merged into existing leads, {report.failed_rows} refused")
    for error in report.errors:
        typer.echo(f"  line {error.row}: {error.field}: {error.message}", err=True)
    if errors:
        values_at = {row.line: row.values for row in rows}
        with errors.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["line", "field", "message", *header])
            for error in report.errors:
                values = values_at[error.row]
                writer.writerow([error.row, error.field, error.message, *(values.get(c) or "" for c in header)])
    if report.errors:
        raise typer.Exit(1)


@app.command("export")
def export_leads(
    as_user: AsUser,
    file: Annotated[
        Path | None, typer.Argument(dir_okay=False, help="Output file; standard output if omitted.")
    ] = None,
) -> None:
    """Write every lead of the user's company as CSV (the same columns import reads back)."""
    settings = get_settings()
    configure_logging("WARNING")

    async def run() -> None:
        actor = await _actor(settings, as_user)
        engine = create_engine(settings)
        try:
            with file.open("w", newline="", encoding="utf-8") if file else contextlib.nullcontext(sys.stdout) as out:
                async for line in lead_import.export_stream(session_factory(engine), actor):
                    out.write(line)
        finally:
            await engine.dispose()

    asyncio.run(run())
