"""``bas erase`` and ``bas export-person``: privacy requests by email, run by an operator on the server.

Without ``--company`` they act in every company that holds the address (a lead, customer, message or
suppression entry with it); the audit entries have no actor (the command line).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from core.config import Settings, get_settings
from core.logging import configure_logging
from core.temporal import connect
from db.models import Company
from db.session import create_engine, session_factory, transaction
from schemas.leads import LeadEmail
from schemas.privacy import CompanyErasure, ErasedCounts, PersonExport
from services import privacy

log = logging.getLogger("bas.privacy")

TEMPORAL_CONNECT_SECONDS = 10
_ADDRESS: TypeAdapter[str] = TypeAdapter(LeadEmail)
_EXPORTS: TypeAdapter[list[PersonExport]] = TypeAdapter(list[PersonExport])

Email = Annotated[str, typer.Argument(help="The person's email address (matched case-insensitively).")]
CompanyOption = Annotated[
    str | None, typer.Option("--company", help="Only this company id; default: every company holding the address.")
]
Result = TypeVar("Result")


def _address(email: str) -> str:
    try:
        return _ADDRESS.validate_python(email.strip())
    except ValidationError as exc:
        raise typer.BadParameter(f"{email!r} is not an email address", param_hint="EMAIL") from exc


async def _companies(sessions: async_sessionmaker[AsyncSession], email: str, company: str | None) -> list[str]:
    async with sessions() as session:
        if company is None:
            return await privacy.companies_holding(session, email)
        if await session.get(Company, company) is None:
            raise typer.BadParameter(f"no company {company}", param_hint="--company")
        return [company]


def _on_database(settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[Result]]) -> Result:
    async def run() -> Result:
        engine = create_engine(settings)
        try:
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def _temporal(settings: Settings) -> Client | None:
    """The client, or None: the erasure goes on without it (the send path refuses the suppressed address)."""
    try:
        async with asyncio.timeout(TEMPORAL_CONNECT_SECONDS):
            return await connect(settings)
    except (RuntimeError, TimeoutError) as exc:
        log.error("Temporal at %s not reachable (%s): running automations are not told", settings.temporal_address, exc)
        return None


def _summary(counts: ErasedCounts) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in counts.model_dump().items())


def erase(
    email: Email,
    company: CompanyOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase everything held about a person and put the address on the suppression list (cannot be undone).

    Sales are kept as business records on an anonymous "Erased customer". Prints the counts per company.
    """
    address = _address(email)
    settings = get_settings()
    configure_logging("WARNING")
    companies = _on_database(settings, lambda sessions: _companies(sessions, address, company))
    if not companies:
        typer.echo("no company holds this address; nothing erased (pass --company ID to suppress it anyway)")
        return
    if not yes:
        typer.confirm(
            f"Erase everything held about {address} in {len(companies)} company(ies)? This cannot be undone",
            abort=True,
        )

    async def run(sessions: async_sessionmaker[AsyncSession]) -> list[CompanyErasure]:
        client = await _temporal(settings)
        results = []
        for company_id in companies:
            # One transaction per company: each company's erasure happens entirely or not at all.
            async with transaction(sessions) as session:
                result = await privacy.erase(session, client, company_id, address, None)
            results.append(CompanyErasure(company_id=company_id, result=result))
        return results

    for erasure in _on_database(settings, run):
        result = erasure.result
        typer.echo(
            f"{erasure.company_id}: erased {_summary(result.erased)}; {result.sales_kept} sales kept anonymously; "
            "address suppressed"
        )


def export_person(
    email: Email,
    company: CompanyOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", dir_okay=False, help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Write everything held about a person as JSON: an array with one document per company."""
    address = _address(email)
    settings = get_settings()
    configure_logging("WARNING")

    async def run(sessions: async_sessionmaker[AsyncSession]) -> list[PersonExport]:
        documents = []
        for company_id in await _companies(sessions, address, company):
            async with transaction(sessions) as session:  # the export is audited
                documents.append(await privacy.export(session, company_id, address, None))
        return documents

    text = _EXPORTS.dump_json(_on_database(settings, run), indent=2).decode() + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)
