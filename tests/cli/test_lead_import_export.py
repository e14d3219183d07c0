"""``bas leads import|export`` as real processes on the test's database and Temporal, and ``GET /v1/leads/export``.

The CLI and the app fixture share one database (a SQLite file in tmp_path or a PostgreSQL test database) and
the session's Temporal dev server, so what the CLI writes is read back over HTTP.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from db.models import WorkflowRun
from services import lead_import
from services.errors import InvalidField
from services.lead_follow_up import workflow_id_for
from tests.conftest import Account, register

BAS = Path(sys.executable).parent / "bas"
EXPORT_HEADER = [
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
]
# Line numbers are the file's own: the refused no-name row's note spans lines 5-6, line 7 is blank, and the
# last row is the empty cells a spreadsheet leaves behind (skipped, not refused).
MIXED_CSV = (
    "name,email,phone,tags,budget,notes\n"
    "New Lead,new@example.com,,a;b,5000,\n"
    "Existing Lead,EXISTING@example.com,+1 415 555 0123,,,\n"
    "Bad Email,not-an-email,,,,\n"
    ',noname@example.com,,,,"called twice,\n'
    'asked for a quote"\n'
    "\n"
    "Bad Phone,badphone@example.com,12345,,,\n"
    ",,,,,\n"
)


@dataclass(frozen=True)
class Finished:
    code: int
    stdout: str
    stderr: str

    @property
    def said(self) -> str:
        """stderr without the frame and line wrapping of typer's error panel."""
        return " ".join(self.stderr.replace("│", " ").split())


Bas = Callable[..., Awaitable[Finished]]


@pytest.fixture
def bas(settings: Settings, temporal_dev: WorkflowEnvironment, tmp_path: Path) -> Bas:
    """Run ``bas leads ...`` as its own process, configured only through its environment."""
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
            "leads",
            *args,
            cwd=tmp_path,  # no stray .env file is read
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
        assert process.returncode is not None
        return Finished(process.returncode, stdout.decode(), stderr.decode())

    return run


async def nurture_everyone(client: httpx2.AsyncClient, owner: Account) -> str:
    """An active lead-nurturing config matching every lead; its first message waits ten hours."""
    body = {
        "name": "Everyone",
        "workflow_type": "lead_nurturing",
        "active": True,
        "triggers": {"lead_source": [], "tags": []},
        "actions": {"initial_delay_minutes": 600, "message_template": "hello", "channel": "email"},
        "templates": {"hello": "Hello {{name}}"},
    }
    response = await client.post("/v1/workflow-configs", headers=owner.headers, json=body)
    assert response.status_code == 201, response.text
    config_id: str = response.json()["id"]
    return config_id


async def member(client: httpx2.AsyncClient, admin: Account, role: str) -> tuple[str, dict[str, str]]:
    """A new user of the admin's company: their email and auth headers."""
    email = f"{role}-{admin.user_id[-6:]}@example.com".lower()
    created = await client.post(
        "/api/users", headers=admin.headers, json={"email": email, "password": "password123", "role": role}
    )
    assert created.status_code == 201, created.text
    token = (await client.post("/token", json={"username": email, "password": "password123"})).json()["access_token"]
    return email, {"Authorization": f"Bearer {token}"}


async def add_lead(client: httpx2.AsyncClient, account: Account, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/leads", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    lead: dict[str, Any] = response.json()
    return lead


async def all_leads(client: httpx2.AsyncClient, account: Account) -> dict[str, dict[str, Any]]:
    """The company's leads by email (or id for a lead without one)."""
    response = await client.get("/v1/leads", headers=account.headers, params={"per_page": 100})
    assert response.status_code == 200, response.text
    return {lead["email"] or lead["id"]: lead for lead in response.json()["data"]}


async def runs_per_lead(app: FastAPI) -> dict[str, int]:
    sessions: async_sessionmaker[AsyncSession] = app.state.sessions
    async with sessions() as session:
        rows = await session.execute(select(WorkflowRun.trigger_id, func.count()).group_by(WorkflowRun.trigger_id))
        return {str(lead_id): count for lead_id, count in rows.all()}


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_import_reports_refused_rows_and_never_starts_a_second_sequence(
    bas: Bas,
    client: httpx2.AsyncClient,
    app: FastAPI,
    owner: Account,
    temporal_dev: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    config_id = await nurture_everyone(client, owner)
    existing = await add_lead(
        client, owner, {"name": "Existing Lead", "email": "existing@example.com", "source": "website_form"}
    )
    assert await runs_per_lead(app) == {existing["id"]: 1}
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(MIXED_CSV, encoding="utf-8", newline="")

    result = await bas("import", str(mixed), "--as", owner.email.upper(), "--errors", str(tmp_path / "refused.csv"))

    assert result.code == 1, result
    assert result.stdout.strip() == "1 created, 1 merged into existing leads, 3 refused"
    reported = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("line ")]
    assert [line.split(":")[:2] for line in reported] == [
        ["line 4", " email"],
        ["line 5", " name"],
        ["line 8", " phone"],
    ]
    assert "not a valid email address" in reported[0]
    assert "international" in reported[2]
    with (tmp_path / "refused.csv").open(newline="", encoding="utf-8") as handle:
        refused = list(csv.DictReader(handle))
    assert [(row["line"], row["field"], row["email"]) for row in refused] == [
        ("4", "email", "not-an-email"),
        ("5", "name", "noname@example.com"),
        ("8", "phone", "badphone@example.com"),
    ]
    assert refused[1]["notes"] == "called twice,\nasked for a quote"

    leads = await all_leads(client, owner)
    assert sorted(leads) == ["existing@example.com", "new@example.com"]
    new = leads["new@example.com"]
    assert (new["name"], new["source"], new["tags"], new["custom_fields"]) == (
        "New Lead",
        "import",
        ["a", "b"],
        {"budget": "5000"},
    )
    merged = leads["existing@example.com"]
    assert (merged["id"], merged["phone"], merged["source"]) == (existing["id"], "+14155550123", "website_form")
    assert await runs_per_lead(app) == {existing["id"]: 1, new["id"]: 1}
    started = await temporal_dev.client.get_workflow_handle(workflow_id_for(new["id"], config_id)).describe()
    assert started.status == WorkflowExecutionStatus.RUNNING

    clean = tmp_path / "clean.csv"
    clean.write_text("Name,Email\nClean Lead,clean@example.com\n", encoding="utf-8")
    headless = tmp_path / "headless.csv"
    headless.write_text("Headless Lead,headless@example.com\n", encoding="utf-8")
    user_email, _ = await member(client, owner, "user")
    by_user = tmp_path / "by-user.csv"
    by_user.write_text("name,email\nUser Lead,user-lead@example.com\n", encoding="utf-8")

    clean_run, headless_run, user_run = await asyncio.gather(
        bas("import", str(clean), "--as", owner.email),
        bas("import", str(headless), "--as", owner.email),
        bas("import", str(by_user), "--as", user_email),
    )

    assert clean_run.code == 0, clean_run
    assert clean_run.stdout.strip() == "1 created, 0 merged into existing leads, 0 refused"
    assert headless_run.code == 2, headless_run
    assert "the CSV needs a header row with at least a 'name' column" in headless_run.said
    assert user_run.code == 2, user_run
    assert f"{user_email} is a user; imports need an admin or a manager" in user_run.said
    assert sorted(await all_leads(client, owner)) == ["clean@example.com", "existing@example.com", "new@example.com"]
    assert sum((await runs_per_lead(app)).values()) == 3


async def test_export_then_import_again_changes_nothing(
    bas: Bas, client: httpx2.AsyncClient, app: FastAPI, owner: Account, tmp_path: Path
) -> None:
    await nurture_everyone(client, owner)
    bodies: list[dict[str, Any]] = [
        {
            "name": "Zoë Ünal",
            "email": "zoe@example.com",
            "phone": "+447700900123",
            "source": "referral",
            "notes": 'said "hi", then\nleft',
            "tags": ["vip", "b2b"],
            "custom_fields": {"budget": 5000, "nested": {"rooms": [1, 2]}},
            "timezone": "Europe/London",
            "assigned_to": owner.user_id,
        },
        # Public forms feed leads: a spreadsheet opening the export must not run these as formulas.
        {"name": '=HYPERLINK("http://evil.example","x")', "email": "formula@example.com", "notes": "-5 bags"},
        {"name": "Plain", "email": "plain@example.com", "tags": ["@home"]},
    ]
    ids = [(await add_lead(client, owner, body))["id"] for body in bodies]
    before = await all_leads(client, owner)
    runs_before = await runs_per_lead(app)
    assert sorted(runs_before.values()) == [1, 1, 1]

    exported = await bas("export", "--as", owner.email, str(tmp_path / "out.csv"))

    assert exported.code == 0, exported
    text = (tmp_path / "out.csv").read_bytes().decode("utf-8")
    assert next(csv.reader(io.StringIO(text))) == EXPORT_HEADER
    rows = parse(text)
    assert sorted(row["id"] for row in rows) == sorted(ids)
    by_email = {row["email"]: row for row in rows}
    zoe = by_email["zoe@example.com"]
    assert (zoe["name"], zoe["phone"], zoe["notes"], zoe["tags"]) == (
        "Zoë Ünal",
        "+447700900123",
        'said "hi", then\nleft',
        "vip;b2b",
    )
    assert (zoe["source"], zoe["status"], zoe["timezone"], zoe["assigned_to"]) == (
        "referral",
        "new",
        "Europe/London",
        owner.user_id,
    )
    assert zoe["custom_fields"] == '{"budget": 5000, "nested": {"rooms": [1, 2]}}'
    formula = by_email["formula@example.com"]
    assert (formula["name"], formula["notes"]) == ('\'=HYPERLINK("http://evil.example","x")', "'-5 bags")
    assert by_email["plain@example.com"]["tags"] == "'@home"

    over_http = await client.get("/v1/leads/export", headers=owner.headers)
    assert over_http.status_code == 200, over_http.text
    assert over_http.text == text

    imported = await bas("import", str(tmp_path / "out.csv"), "--as", owner.email)

    assert imported.code == 0, imported
    assert imported.stdout.strip() == "0 created, 3 merged into existing leads, 0 refused"
    assert await all_leads(client, owner) == before
    assert await runs_per_lead(app) == runs_before


async def test_http_export_is_for_admins_and_managers_and_only_their_company(
    client: httpx2.AsyncClient, owner: Account
) -> None:
    mine = await add_lead(client, owner, {"name": "Mine", "email": "mine@example.com"})
    other = await register(client, company="Other Co")
    theirs = await add_lead(client, other, {"name": "Theirs", "email": "theirs@example.com"})
    _, manager = await member(client, owner, "manager")
    _, user = await member(client, owner, "user")

    response = await client.get("/v1/leads/export", headers=manager)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="leads-') and disposition.endswith('.csv"')
    assert [(row["id"], row["name"]) for row in parse(response.text)] == [(mine["id"], "Mine")]
    for_other = await client.get("/v1/leads/export", headers=other.headers)
    assert [row["id"] for row in parse(for_other.text)] == [theirs["id"]]
    refused = await client.get("/v1/leads/export", headers=user)
    assert refused.status_code == 403, refused.text
    assert (await client.get("/v1/leads/export")).status_code == 401
    # The export route does not shadow reading one lead.
    assert (await client.get(f"/v1/leads/{mine['id']}", headers=user)).json()["id"] == mine["id"]


def test_a_file_that_is_not_utf8_is_refused_with_a_clear_reason() -> None:
    latin1 = io.TextIOWrapper(io.BytesIO("name,email\nRenée,renee@example.com\n".encode("latin-1")), "utf-8-sig")

    with pytest.raises(InvalidField) as refused:
        lead_import.read_csv(latin1)

    assert (refused.value.field, refused.value.message) == (
        "file",
        "not UTF-8 text; save it as 'CSV UTF-8' and try again",
    )


def test_a_quote_that_keeps_a_spreadsheet_from_running_a_formula_is_not_imported() -> None:
    lead = lead_import.row_to_lead({"name": "''=1+1", "phone": "'+1 415 555 0123", "notes": "'plain quote"})

    assert (lead.name, lead.phone, lead.notes) == ("'=1+1", "+14155550123", "'plain quote")
