"""CSV import and export of leads. Each imported row is its own transaction: a bad row is reported, not fatal."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from core.config import Settings
from db.models import Lead, User
from schemas.common import readable_errors
from schemas.leads import LeadCreate, LeadSource
from services import leads
from services.errors import DomainError, InvalidField

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

    @property
    def failed_rows(self) -> int:
        return len({error.row for error in self.errors})


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
    on_row: Callable[[], None] = lambda: None,
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
        on_row()
    log.info(
        "import by %s into %s: %d created, %d merged, %d rows refused",
        actor.id,
        actor.company_id,
        report.created,
        report.merged,
        report.failed_rows,
    )
    return report


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
