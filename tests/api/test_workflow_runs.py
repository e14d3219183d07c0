"""``/v1/workflow-runs``: listing, a run's actions and UI link, manual triggers and the live next step on a real
Temporal dev server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.worker import Worker

from core.config import Settings
from core.ids import new_id
from core.temporal import ui_link
from db.models import Lead, WorkflowAction, WorkflowRun
from db.session import transaction
from schemas.lead_follow_up import LeadEvent, LeadEventSignal
from schemas.messaging import FinishRunInput
from schemas.temporal import COMPANY_ID, ENTITY_ID, WORKFLOW_CONFIG_ID, QueueKind
from tests.api.test_workflow_configs import NEW_LEAD_CONFIG, add_member, create_config
from tests.conftest import Account, register
from workflows.lead_follow_up import LeadFollowUpWorkflow

RUN_ITEM = {
    "id",
    "workflow_config_id",
    "workflow_name",
    "status",
    "started_at",
    "completed_at",
    "trigger_type",
    "trigger_id",
    "temporal_ui_url",
}
RUN_DETAIL = RUN_ITEM | {"actions_performed", "results", "error", "next_step", "next_step_error"}
# Long enough that nothing is sent while a test looks at the run: the query answers without any activity.
SLOW_CONFIG = {**NEW_LEAD_CONFIG, "actions": {**NEW_LEAD_CONFIG["actions"], "initial_delay_minutes": 600}}


@pytest.fixture
async def cleanup(temporal_client: Client) -> AsyncIterator[list[str]]:
    """Workflow ids a test started; terminated afterwards so nothing keeps running on the shared dev server."""
    workflow_ids: list[str] = []
    yield workflow_ids
    for workflow_id in workflow_ids:
        with contextlib.suppress(RPCError):  # already closed
            await temporal_client.get_workflow_handle(workflow_id).terminate("test finished")


async def add_lead(db: async_sessionmaker[AsyncSession], company_id: str, **fields: Any) -> str:
    lead_id = new_id("lead")
    async with transaction(db) as session:
        session.add(
            Lead(
                id=lead_id,
                company_id=company_id,
                name=fields.pop("name", "Jane Smith"),
                email=fields.pop("email", f"{lead_id}@example.com"),
                source=fields.pop("source", "website_form"),
                **fields,
            )
        )
    return lead_id


def run_row(company_id: str, config_id: str | None, lead_id: str, status: str, started_at: datetime) -> WorkflowRun:
    return WorkflowRun(
        id=new_id("run"),
        company_id=company_id,
        workflow_config_id=config_id,
        workflow_type="lead_nurturing",
        temporal_workflow_id=f"lead-follow-up/{lead_id}/{config_id}",
        temporal_run_id=f"temporal-{status}",
        status=status,
        trigger_type="new_lead",
        trigger_id=lead_id,
        started_at=started_at,
        completed_at=None if status in ("pending", "running") else started_at + timedelta(minutes=1),
    )


async def test_list_filters_sorts_and_pages(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    first = await create_config(client, owner, NEW_LEAD_CONFIG)
    second = await create_config(client, owner, {**NEW_LEAD_CONFIG, "name": "A Second Sequence"})
    lead = await add_lead(db, owner.company_id)
    base = datetime(2023, 1, 15, 1, tzinfo=UTC)
    rows = [
        run_row(owner.company_id, first["id"], lead, "completed", base),
        run_row(owner.company_id, second["id"], lead, "failed", base + timedelta(hours=1)),
        run_row(owner.company_id, first["id"], lead, "running", base + timedelta(hours=2)),
        run_row(owner.company_id, first["id"], lead, "stopped", base + timedelta(hours=3)),
    ]
    async with transaction(db) as session:
        session.add_all(rows)
    ids = [row.id for row in rows]

    listed = (await client.get("/v1/workflow-runs", headers=owner.headers)).json()
    assert listed["meta"] == {"current_page": 1, "per_page": 20, "total_items": 4, "total_pages": 1}
    assert [r["id"] for r in listed["data"]] == ids[::-1]  # newest first
    item = listed["data"][-1]
    assert set(item) == RUN_ITEM
    assert item == {
        "id": ids[0],
        "workflow_config_id": first["id"],
        "workflow_name": "New Lead Follow-up",
        "status": "completed",
        "started_at": "2023-01-15T01:00:00Z",
        "completed_at": "2023-01-15T01:01:00Z",
        "trigger_type": "new_lead",
        "trigger_id": lead,
        "temporal_ui_url": ui_link(settings, f"lead-follow-up/{lead}/{first['id']}", "temporal-completed"),
    }

    async def ids_for(**params: Any) -> list[str]:
        response = await client.get("/v1/workflow-runs", headers=owner.headers, params=params)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["data"]]

    assert await ids_for(workflow_config_id=first["id"], sort_dir="asc") == [ids[0], ids[2], ids[3]]
    assert await ids_for(status="failed") == [ids[1]]
    assert await ids_for(workflow_config_id=first["id"], status="running") == [ids[2]]
    by_name = await ids_for(sort_by="workflow_name", sort_dir="asc")
    assert by_name[0] == ids[1] and sorted(by_name[1:]) == sorted([ids[0], ids[2], ids[3]])
    assert await ids_for(sort_by="status", sort_dir="asc") == [ids[0], ids[1], ids[2], ids[3]]
    assert await ids_for(per_page=3, page=2) == [ids[0]]
    bad_sort = await client.get("/v1/workflow-runs", headers=owner.headers, params={"sort_by": "nope"})
    assert bad_sort.status_code == 422 and list(bad_sort.json()["details"]) == ["sort_by"]
    bad_status = await client.get("/v1/workflow-runs", headers=owner.headers, params={"status": "exploded"})
    assert bad_status.status_code == 422 and list(bad_status.json()["details"]) == ["status"]

    other = await register(client, company="Globex")
    assert (await client.get("/v1/workflow-runs", headers=other.headers)).json()["data"] == []
    assert (await client.get(f"/v1/workflow-runs/{ids[0]}", headers=other.headers)).status_code == 404


async def test_finished_run_shows_actions_results_and_ui_link(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    config = await create_config(client, owner, NEW_LEAD_CONFIG)
    lead = await add_lead(db, owner.company_id)
    run = run_row(owner.company_id, config["id"], lead, "completed", datetime(2023, 1, 15, 1, tzinfo=UTC))
    run.results = {"message_delivered": True, "follow_up_scheduled": True}
    actions = [
        (
            "send_email",
            30,
            {"recipient": "jane@example.com", "subject": "Thank you for your interest", "status": "sent"},
        ),
        ("generate_message", 10, {"template": "new_lead_template", "generated_content": "Hello Jane, thank you..."}),
        ("schedule_follow_up", 45, {"scheduled_for": "2023-01-16T01:00:00Z", "template": "follow_up_1"}),
    ]
    async with transaction(db) as session:
        session.add(run)
        await session.flush()
        session.add_all(
            WorkflowAction(
                id=new_id("act"),
                run_id=run.id,
                type=kind,
                details=details,
                timestamp=run.started_at + timedelta(seconds=s),
            )
            for kind, s, details in actions
        )

    response = await client.get(f"/v1/workflow-runs/{run.id}", headers=owner.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == RUN_DETAIL
    assert body["workflow_name"] == "New Lead Follow-up" and body["status"] == "completed"
    assert body["actions_performed"] == [
        {"type": "generate_message", "timestamp": "2023-01-15T01:00:10Z", "details": actions[1][2]},
        {"type": "send_email", "timestamp": "2023-01-15T01:00:30Z", "details": actions[0][2]},
        {"type": "schedule_follow_up", "timestamp": "2023-01-15T01:00:45Z", "details": actions[2][2]},
    ]
    assert body["results"] == {"message_delivered": True, "follow_up_scheduled": True}
    assert body["error"] is None
    # Finished: nothing to ask the workflow.
    assert body["next_step"] is None and body["next_step_error"] is None
    assert body["temporal_ui_url"] == (
        f"{settings.temporal_ui_url}/namespaces/default/workflows/"
        f"lead-follow-up%2F{lead}%2F{config['id']}/temporal-completed/history"
    )
    missing = await client.get("/v1/workflow-runs/run_missing", headers=owner.headers)
    assert missing.status_code == 404 and missing.json()["resource_type"] == "workflow_run"


@pytest.mark.usefixtures("worker")
async def test_trigger_starts_the_sequence_and_reports_its_next_step_live(
    client: httpx2.AsyncClient,
    owner: Account,
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    temporal_client: Client,
    cleanup: list[str],
) -> None:
    # Inactive on purpose: a manual trigger runs a config that would not start by itself.
    config = await create_config(client, owner, {**SLOW_CONFIG, "active": False})
    lead = await add_lead(db, owner.company_id, source="crm")  # does not match the triggers either
    workflow_id = f"lead-follow-up/{lead}/{config['id']}"
    cleanup.append(workflow_id)

    before = datetime.now(UTC)
    response = await client.post(
        "/v1/workflow-runs/trigger",
        headers=owner.headers,
        json={"workflow_config_id": config["id"], "trigger_type": "manual", "entity_id": lead},
    )
    assert response.status_code == 201, response.text
    run = response.json()
    assert set(run) == RUN_ITEM
    assert run["id"].startswith("run_")
    assert {k: run[k] for k in ("workflow_config_id", "workflow_name", "status", "trigger_type", "trigger_id")} == {
        "workflow_config_id": config["id"],
        "workflow_name": "New Lead Follow-up",
        "status": "running",
        "trigger_type": "manual",
        "trigger_id": lead,
    }
    assert run["completed_at"] is None

    description = await temporal_client.get_workflow_handle(workflow_id).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert description.workflow_type == "LeadFollowUpWorkflow"
    assert description.typed_search_attributes.get(COMPANY_ID) == owner.company_id
    assert description.typed_search_attributes.get(ENTITY_ID) == lead
    assert description.typed_search_attributes.get(WORKFLOW_CONFIG_ID) == config["id"]
    assert run["temporal_ui_url"] == ui_link(settings, workflow_id, description.run_id)

    detail = (await client.get(f"/v1/workflow-runs/{run['id']}", headers=owner.headers)).json()
    assert detail["status"] == "running" and detail["next_step_error"] is None
    next_step = detail["next_step"]
    assert {k: next_step[k] for k in ("state", "step", "template", "steps_sent", "steps_total", "stopped_by")} == {
        "state": "waiting",
        "step": 0,
        "template": "new_lead_template",
        "steps_sent": 0,
        "steps_total": 3,
        "stopped_by": None,
    }
    due = datetime.fromisoformat(next_step["scheduled_for"])
    assert before + timedelta(minutes=600) <= due <= datetime.now(UTC) + timedelta(minutes=600)

    again = await client.post(
        "/v1/workflow-runs/trigger", headers=owner.headers, json={"workflow_config_id": config["id"], "entity_id": lead}
    )
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    listed = (await client.get("/v1/workflow-runs", headers=owner.headers)).json()
    assert [r["id"] for r in listed["data"]] == [run["id"]]


async def test_trigger_refusals(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    config = await create_config(client, owner, SLOW_CONFIG)
    review = await create_config(
        client,
        owner,
        {
            "name": "Reviews",
            "workflow_type": "review_referral",
            "actions": {"message_template": "ask"},
            "templates": {"ask": "How did we do? {{review_link}}"},
        },
    )
    lead = await add_lead(db, owner.company_id)
    other = await register(client, company="Globex")
    their_config = await create_config(client, other, SLOW_CONFIG)
    their_lead = await add_lead(db, other.company_id)

    async def trigger(config_id: str, entity_id: str, headers: dict[str, str] = owner.headers) -> httpx2.Response:
        return await client.post(
            "/v1/workflow-runs/trigger", headers=headers, json={"workflow_config_id": config_id, "entity_id": entity_id}
        )

    for config_id, entity_id, resource in [
        ("wf_missing", lead, "workflow_config"),
        (their_config["id"], lead, "workflow_config"),
        (config["id"], "lead_missing", "lead"),
        (config["id"], their_lead, "lead"),
    ]:
        response = await trigger(config_id, entity_id)
        assert response.status_code == 404, (config_id, entity_id)
        assert response.json()["resource_type"] == resource
    wrong_type = await trigger(review["id"], lead)
    assert wrong_type.status_code == 422 and list(wrong_type.json()["details"]) == ["workflow_config_id"]
    wrong_trigger = await client.post(
        "/v1/workflow-runs/trigger",
        headers=owner.headers,
        json={"workflow_config_id": config["id"], "trigger_type": "new_lead", "entity_id": lead},
    )
    assert wrong_trigger.status_code == 422 and list(wrong_trigger.json()["details"]) == ["trigger_type"]
    assert (await client.get("/v1/workflow-runs", headers=owner.headers)).json()["data"] == []


async def test_next_step_error_when_no_worker_answers(
    client: httpx2.AsyncClient,
    owner: Account,
    db: async_sessionmaker[AsyncSession],
    cleanup: list[str],
) -> None:
    config = await create_config(client, owner, SLOW_CONFIG)
    lead = await add_lead(db, owner.company_id)
    cleanup.append(f"lead-follow-up/{lead}/{config['id']}")
    # A plain user may trigger a run too.
    user = await add_member(client, owner, "rep@example.com", "user")
    run = await client.post(
        "/v1/workflow-runs/trigger", headers=user, json={"workflow_config_id": config["id"], "entity_id": lead}
    )
    assert run.status_code == 201, run.text

    started = asyncio.get_running_loop().time()
    detail = await client.get(f"/v1/workflow-runs/{run.json()['id']}", headers=owner.headers)
    assert asyncio.get_running_loop().time() - started < 10
    assert detail.status_code == 200
    body = detail.json()
    assert body["status"] == "running" and body["next_step"] is None
    assert "did not answer" in body["next_step_error"]


@activity.defn(name="finish_run")
async def finish_run_that_never_writes(input: FinishRunInput) -> None:
    """Stands in for the real activity: the run row is left exactly as the API sees it."""
    await asyncio.sleep(3600)


async def test_a_run_whose_workflow_finished_is_reported_not_rewritten(
    client: httpx2.AsyncClient,
    owner: Account,
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    temporal_client: Client,
    cleanup: list[str],
) -> None:
    config = await create_config(client, owner, SLOW_CONFIG)
    lead = await add_lead(db, owner.company_id)
    workflow_id = f"lead-follow-up/{lead}/{config['id']}"
    cleanup.append(workflow_id)
    async with Worker(
        temporal_client,
        task_queue=settings.task_queue(QueueKind.MAIN),
        workflows=[LeadFollowUpWorkflow],
        activities=[finish_run_that_never_writes],
    ):
        run = (
            await client.post(
                "/v1/workflow-runs/trigger",
                headers=owner.headers,
                json={"workflow_config_id": config["id"], "entity_id": lead},
            )
        ).json()
        await temporal_client.get_workflow_handle_for(LeadFollowUpWorkflow.run, workflow_id).signal(
            LeadFollowUpWorkflow.lead_event, LeadEventSignal(event=LeadEvent.replied)
        )
        body: dict[str, Any] = {}
        for _ in range(50):
            body = (await client.get(f"/v1/workflow-runs/{run['id']}", headers=owner.headers)).json()
            if body["next_step"] and body["next_step"]["state"] == "stopped":
                break
            await asyncio.sleep(0.2)
        # The workflow says it stopped; the row is the finish_run activity's to write, so it still says running.
        assert body["status"] == "running"
        assert body["next_step"] == {
            "state": "stopped",
            "step": None,
            "template": None,
            "scheduled_for": None,
            "steps_sent": 0,
            "steps_total": 3,
            "stopped_by": "replied",
        }
        assert body["next_step_error"] is None


async def test_a_run_terminated_in_temporal_is_marked_failed_on_its_page(
    client: httpx2.AsyncClient,
    owner: Account,
    db: async_sessionmaker[AsyncSession],
    temporal_client: Client,
    cleanup: list[str],
) -> None:
    """Terminating from the Temporal UI skips finish_run; the run page must not say "running" forever."""
    config = await create_config(client, owner, SLOW_CONFIG)
    lead = await add_lead(db, owner.company_id)
    workflow_id = f"lead-follow-up/{lead}/{config['id']}"
    cleanup.append(workflow_id)
    run = (
        await client.post(
            "/v1/workflow-runs/trigger",
            headers=owner.headers,
            json={"workflow_config_id": config["id"], "entity_id": lead},
        )
    ).json()
    await temporal_client.get_workflow_handle(workflow_id).terminate("operator stopped it")

    body = (await client.get(f"/v1/workflow-runs/{run['id']}", headers=owner.headers)).json()
    assert body["status"] == "failed"
    assert body["error"] == "the workflow was terminated in Temporal before it finished"
    assert body["completed_at"] is not None and body["next_step"] is None
    listed = (await client.get("/v1/workflow-runs", headers=owner.headers, params={"status": "failed"})).json()
    assert [r["id"] for r in listed["data"]] == [run["id"]]
