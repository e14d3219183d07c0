"""CSV import and export of leads. Each imported row is its own transaction: a bad row is reported, not fatal."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any, TextIO

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from core.config import Settings
from core.ids import new_id
from db.base import utcnow
from db.models import Lead, LeadImport, User
from db.session import transaction
from schemas.common import readable_errors
from schemas.leads import LeadCreate, LeadSource
from services import leads
from services.errors import Conflict, DomainError, InvalidField, NotFound

log = logging.getLogger(__name__)

LEAD_COLUMNS = ("name", "email", "phone", "source", "notes", "tags", "timezone", "assigned_to")
EXPORT_COLUMNS = (
    "id",
    "name",
    "email",
    "phone",
    "source",
    "status",
    "notes",
    "tags",
    "timezone",
    "assigned_to",
    "custom_fields",
    "created_at",
    "updated_at",
    "converted_at",
    "unsubscribed_at",
)
IMPORT_ERRORS_KEPT = 1000
"""An import's report keeps its first errors: enough to correct a file, bounded for a file of bad rows."""
FINISHED_IMPORTS_KEPT = 5
"""Per user: the reports of this many recent imports stay readable."""
IMPORT_PROGRESS_SECONDS = 0.5
IMPORT_STALLED_AFTER = timedelta(seconds=60)
"""An unfinished import whose progress has not moved for this long lost its API process."""
TAG_SEPARATORS = (";", "|")
EXPORT_BATCH = 500
# A spreadsheet runs a cell starting with one of these as a formula; lead names and notes come from public forms.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class CsvRow:
    line: int
    """1-based line where the record starts in the file, counting the header as line 1."""
    values: dict[str, str | None]


@dataclass(frozen=True)
class RowError:
    row: int
    """1-based line number in the file, counting the header as line 1."""
    field: str
    message: str


@dataclass
class ImportReport:
    created: int = 0
    merged: int = 0
    errors: list[RowError] = field(default_factory=list)
    refused: int | None = None
    """Rows refused, when read back from a job whose stored errors may be only the first ones."""

    @property
    def failed_rows(self) -> int:
        return self.refused if self.refused is not None else len({error.row for error in self.errors})


def _defuse(text: str) -> str:
    """Quote a would-be formula for spreadsheets (``=SUM(A1)`` -> ``'=SUM(A1)``); ``_undo_defuse`` reverses it."""
    return f"'{text}" if text.lstrip("'").startswith(FORMULA_START) else text


def _undo_defuse(text: str) -> str:
    return text[1:] if text.startswith("'") and text.lstrip("'").startswith(FORMULA_START) else text


def _split_tags(raw: str) -> list[str]:
    for separator in TAG_SEPARATORS:
        if separator in raw:
            return [tag.strip() for tag in raw.split(separator) if tag.strip()]
    return [tag.strip() for tag in raw.split(",") if tag.strip()]


def row_to_lead(row: dict[str, str | None]) -> LeadCreate:
    """Known columns map to lead fields; a ``custom_fields`` column may hold a JSON object; other columns are
    custom fields. Without a ``source`` column the lead's source is ``import``."""
    values: dict[str, Any] = {"source": LeadSource.csv_import}
    custom: dict[str, Any] = {}
    for column, raw in row.items():
        if column is None or raw is None:
            continue
        key, text = column.strip().lower(), _undo_defuse(raw.strip())
        if not text:
            continue
        if key == "tags":
            values["tags"] = _split_tags(text)
        elif key == "custom_fields":
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidField("custom_fields", f"not a JSON object: {exc.msg}") from exc
            if not isinstance(parsed, dict):
                raise InvalidField("custom_fields", "not a JSON object")
            custom.update(parsed)
        elif key in LEAD_COLUMNS:
            values[key] = text
        elif key not in EXPORT_COLUMNS:  # exported bookkeeping columns (id, status...) are not imported
            custom[column.strip()] = text
    values["custom_fields"] = custom
    return LeadCreate.model_validate(values)


async def import_rows(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    settings: Settings,
    actor: User,
    rows: Iterable[CsvRow],
    on_row: Callable[[ImportReport], Awaitable[None]] | None = None,
) -> ImportReport:
    """Create or merge one lead per row through ``services.leads.create``: an existing email is merged and
    never gets a second sequence; a new lead starts its matching sequences like any other."""
    report = ImportReport()
    for row in rows:
        try:
            body = row_to_lead(row.values)
            async with sessions() as session:
                created = await leads.create(session, client, settings, actor, body)
                await session.commit()
        except ValidationError as exc:
            for field, message in readable_errors(exc.errors()):
                report.errors.append(RowError(row.line, field or "row", message))
        except InvalidField as exc:
            report.errors.append(RowError(row.line, exc.field, exc.message))
        except DomainError as exc:
            report.errors.append(RowError(row.line, "row", exc.message))
        else:
            if created.duplicate:
                report.merged += 1
            else:
                report.created += 1
        if on_row is not None:
            await on_row(report)
    log.info(
        "import by %s into %s: %d created, %d merged, %d rows refused",
        actor.id,
        actor.company_id,
        report.created,
        report.merged,
        report.failed_rows,
    )
    return report


@dataclass(frozen=True)
class ImportJob:
    """What an import's page shows: how far it got, then its report."""

    id: str
    filename: str
    total: int
    done: int
    finished: bool
    failure: str | None
    report: ImportReport | None
    """Once finished (or stopped): the counts and the first ``IMPORT_ERRORS_KEPT`` errors."""


async def start_job(session: AsyncSession, actor: User, filename: str, total: int) -> LeadImport:
    """Record a new import of ``total`` rows for ``actor`` (one running import per user), forgetting all but the
    last ``FINISHED_IMPORTS_KEPT`` finished ones."""
    mine = (LeadImport.user_id == actor.id) & (LeadImport.company_id == actor.company_id)
    running = await session.scalar(
        select(LeadImport.id).where(
            mine, LeadImport.finished_at.is_(None), LeadImport.progressed_at > utcnow() - IMPORT_STALLED_AFTER
        )
    )
    if running is not None:
        raise Conflict("One of your imports is still running; wait for its report before starting another")
    kept = select(LeadImport.id).where(mine).order_by(LeadImport.started_at.desc()).limit(FINISHED_IMPORTS_KEPT - 1)
    await session.execute(delete(LeadImport).where(mine, LeadImport.id.not_in(kept)))
    job = LeadImport(id=new_id("imp"), company_id=actor.company_id, user_id=actor.id, filename=filename, total=total)
    session.add(job)
    await session.flush()
    return job


def _write_report(job: LeadImport, report: ImportReport, done: int) -> None:
    job.done, job.created, job.merged, job.refused = done, report.created, report.merged, report.failed_rows
    job.errors = [asdict(error) for error in report.errors[:IMPORT_ERRORS_KEPT]]
    job.progressed_at = utcnow()


async def run_job(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    settings: Settings,
    actor: User,
    job_id: str,
    rows: list[CsvRow],
) -> None:
    """Import ``rows`` for the job ``start_job`` recorded, writing its progress at most every
    ``IMPORT_PROGRESS_SECONDS`` and its report at the end (run in the background of the request that uploaded)."""
    done = 0
    last_written = time.monotonic()

    async def progress(report: ImportReport) -> None:
        nonlocal done, last_written
        done += 1
        if time.monotonic() - last_written >= IMPORT_PROGRESS_SECONDS:
            last_written = time.monotonic()
            async with transaction(sessions) as session:
                job = await session.get_one(LeadImport, job_id)
                _write_report(job, report, done)

    report, failure = ImportReport(), None
    try:
        report = await import_rows(sessions, client, settings, actor, rows, on_row=progress)
    except Exception:
        # Rows are committed one by one: those before the failure stay imported.
        log.exception("import %s by %s stopped after %d of %d rows", job_id, actor.id, done, len(rows))
        failure = f"The import stopped after {done} of {len(rows)} rows; those rows were saved."
    async with transaction(sessions) as session:
        job = await session.get_one(LeadImport, job_id)
        _write_report(job, report, done)
        job.failure, job.finished_at = failure, utcnow()


async def job_status(session: AsyncSession, actor: User, job_id: str) -> ImportJob:
    """The actor's own import (another user's, or a forgotten one, is a 404)."""
    job = await session.scalar(
        select(LeadImport).where(
            LeadImport.id == job_id, LeadImport.user_id == actor.id, LeadImport.company_id == actor.company_id
        )
    )
    if job is None:
        raise NotFound("import", job_id)
    stopped = job.finished_at is None and job.progressed_at <= utcnow() - IMPORT_STALLED_AFTER
    failure = job.failure
    if stopped:
        # Its process ended (a restart, a crash) mid-file; what it had committed is kept.
        failure = f"The import stopped after about {job.done} of {job.total} rows; those rows were saved."
    finished = job.finished_at is not None or stopped
    report = None
    if finished:
        errors = [RowError(**error) for error in job.errors]
        report = ImportReport(created=job.created, merged=job.merged, errors=errors, refused=job.refused)
    return ImportJob(job.id, job.filename, job.total, job.done, finished, failure, report)


def read_csv(handle: TextIO) -> tuple[list[str], list[CsvRow]]:
    """The header and the records, each with the line it starts on. Blank lines and rows of empty cells (which
    spreadsheets leave behind) are skipped; a quoted value may span lines."""
    reader = csv.reader(handle)
    rows: list[CsvRow] = []
    try:
        header = next(reader, [])
        if "name" not in [column.strip().lower() for column in header]:
            raise InvalidField("name", "the CSV needs a header row with at least a 'name' column")
        while True:
            start = reader.line_num + 1
            record = next(reader, None)
            if record is None:
                return header, rows
            if any(cell.strip() for cell in record):
                values: dict[str, str | None] = dict(zip(header, record, strict=False))
                rows.append(CsvRow(start, values))
    except UnicodeDecodeError as exc:
        raise InvalidField("file", "not UTF-8 text; save it as 'CSV UTF-8' and try again") from exc
    except csv.Error as exc:
        raise InvalidField("file", f"not a readable CSV at line {reader.line_num}: {exc}") from exc


def _export_row(lead: Lead) -> list[str]:
    def text(value: Any) -> str:
        if value is None:
            return ""
        if hasattr(value, "isoformat"):
            return str(value.isoformat())
        return str(value)

    return [
        lead.id,
        _defuse(lead.name),
        _defuse(text(lead.email)),
        text(lead.phone),
        lead.source,
        lead.status,
        _defuse(text(lead.notes)),
        _defuse(";".join(lead.tags or [])),
        text(lead.timezone),
        text(lead.assigned_to),
        json.dumps(lead.custom_fields or {}, ensure_ascii=False),
        text(lead.created_at),
        text(lead.updated_at),
        text(lead.converted_at),
        text(lead.unsubscribed_at),
    ]


async def export_lines(session: AsyncSession, actor: User) -> AsyncIterator[str]:
    """The company's leads as CSV text, a batch at a time (memory stays flat for large companies)."""

    def line(values: Iterable[str]) -> str:
        sink = io.StringIO()
        csv.writer(sink).writerow(values)
        return sink.getvalue()

    yield line(EXPORT_COLUMNS)
    last_id = ""
    while True:
        batch = list(
            await session.scalars(
                select(Lead)
                .where(Lead.company_id == actor.company_id, Lead.id > last_id)
                .order_by(Lead.id)
                .limit(EXPORT_BATCH)
            )
        )
        if not batch:
            return
        for lead in batch:
            yield line(_export_row(lead))
        last_id = batch[-1].id


async def export_stream(sessions: async_sessionmaker[AsyncSession], actor: User) -> AsyncIterator[str]:
    """``export_lines`` in a session of its own: a streamed response outlives the request's session."""
    async with sessions() as session:
        async for line in export_lines(session, actor):
            yield line
