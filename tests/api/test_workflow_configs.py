"""``/v1/workflow-configs``: the spec's bodies, sandboxed templates checked at save time, merge semantics, roles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Lead, WorkflowRun
from db.session import transaction
from tests.conftest import Account, register

VIP_CONFIG: dict[str, Any] = {
    "name": "VIP Lead Follow-up",
    "workflow_type": "lead_nurturing",
    "active": True,
    "triggers": {"lead_source": ["referral", "direct"], "tags": ["vip"]},
    "actions": {
        "initial_delay_minutes": 15,
        "message_template": "vip_lead_template",
        "channel": "email",
        "follow_up": [
            {"delay_hours": 24, "message_template": "vip_follow_up_1"},
            {"delay_hours": 72, "message_template": "vip_follow_up_2"},
        ],
    },
    "templates": {
        "vip_lead_template": "Hello {{name}}, thank you for your interest in our premium services...",
        "vip_follow_up_1": "Hello {{name}}, I wanted to follow up on our previous message...",
        "vip_follow_up_2": "Hello {{name}}, I noticed you haven't had a chance to respond...",
    },
}

# The stored config of the spec's "Get Workflow Config" example, which its "Update" example then changes.
NEW_LEAD_CONFIG: dict[str, Any] = {
    "name": "New Lead Follow-up",
    "workflow_type": "lead_nurturing",
    "active": True,
    "triggers": {"lead_source": ["website_form", "landing_page"], "tags": []},
    "actions": {
        "initial_delay_minutes": 30,
        "message_template": "new_lead_template",
        "channel": "email",
        "follow_up": [
            {"delay_hours": 24, "message_template": "follow_up_1"},
            {"delay_hours": 72, "message_template": "follow_up_2"},
        ],
    },
    "templates": {
        "new_lead_template": "Hello {{name}}, thank you for your interest in our services...",
        "follow_up_1": "Hello {{name}}, I wanted to follow up on our previous message...",
        "follow_up_2": "Hello {{name}}, I noticed you haven't had a chance to respond...",
    },
}

SHORT_FORM = {"id", "name", "workflow_type", "active", "created_at", "updated_at"}
FULL_FORM = SHORT_FORM | {"created_by", "triggers", "actions", "templates"}


async def add_member(client: httpx2.AsyncClient, admin: Account, email: str, role: str) -> dict[str, str]:
    created = await client.post(
        "/api/users", headers=admin.headers, json={"email": email, "password": "password123", "role": role}
    )
    assert created.status_code == 201, created.text
    token = (await client.post("/token", json={"username": email, "password": "password123"})).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def create_config(client: httpx2.AsyncClient, account: Account, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/workflow-configs", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    config: dict[str, Any] = response.json()
    return config


def with_changes(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


async def test_create_with_the_spec_body(client: httpx2.AsyncClient, owner: Account) -> None:
    config = await create_config(client, owner, VIP_CONFIG)
    assert set(config) == FULL_FORM
    assert config["id"].startswith("wf_")
    assert config["created_by"] == owner.user_id
    assert config["created_at"] == config["updated_at"]
    for key in ("name", "workflow_type", "active", "triggers", "actions", "templates"):
        assert config[key] == VIP_CONFIG[key], key


async def test_read_one_with_stats_and_list_short_form(client: httpx2.AsyncClient, owner: Account) -> None:
    config = await create_config(client, owner, NEW_LEAD_CONFIG)
    read = await client.get(f"/v1/workflow-configs/{config['id']}", headers=owner.headers)
    assert read.status_code == 200
    body = read.json()
    assert set(body) == FULL_FORM | {"stats"}
    assert {k: body[k] for k in FULL_FORM} == config
    assert body["stats"] == {"runs_total": 0, "runs_successful": 0, "runs_failed": 0, "conversion_rate": 0.0}

    listed = (await client.get("/v1/workflow-configs", headers=owner.headers)).json()
    assert listed["meta"] == {"current_page": 1, "per_page": 20, "total_items": 1, "total_pages": 1}
    assert listed["data"] == [{k: config[k] for k in SHORT_FORM}]


async def test_stats_count_runs_and_converted_leads(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    config = await create_config(client, owner, NEW_LEAD_CONFIG)
    other_config = await create_config(client, owner, with_changes(VIP_CONFIG, name="Other"))
    now = datetime.now(UTC)

    def lead(lead_id: str, status: str) -> Lead:
        return Lead(
            id=lead_id, company_id=owner.company_id, name=lead_id, email=f"{lead_id}@example.com", status=status
        )

    def run(run_id: str, config_id: str, lead_id: str, status: str) -> WorkflowRun:
        return WorkflowRun(
            id=run_id,
            company_id=owner.company_id,
            workflow_config_id=config_id,
            workflow_type="lead_nurturing",
            temporal_workflow_id=f"lead-follow-up/{lead_id}/{config_id}",
            status=status,
            trigger_type="new_lead",
            trigger_id=lead_id,
            started_at=now,
        )

    async with transaction(db) as session:
        session.add_all([lead("lead_a", "converted"), lead("lead_b", "new"), lead("lead_c", "converted")])
        await session.flush()
        session.add_all(
            [
                run("run_1", config["id"], "lead_a", "completed"),
                run("run_2", config["id"], "lead_a", "stopped"),  # the same lead again: counted once for conversion
                run("run_3", config["id"], "lead_b", "failed"),
                run("run_4", config["id"], "lead_c", "running"),
                run("run_5", other_config["id"], "lead_b", "completed"),
            ]
        )
    stats = (await client.get(f"/v1/workflow-configs/{config['id']}", headers=owner.headers)).json()["stats"]
    # Runs: 4 (2 successful, 1 failed, 1 running); distinct leads a, b, c of which a and c are converted.
    assert stats == {"runs_total": 4, "runs_successful": 2, "runs_failed": 1, "conversion_rate": 0.6667}


async def test_update_with_the_spec_body_merges(client: httpx2.AsyncClient, owner: Account) -> None:
    config = await create_config(client, owner, NEW_LEAD_CONFIG)
    response = await client.patch(
        f"/v1/workflow-configs/{config['id']}",
        headers=owner.headers,
        json={
            "name": "New Lead Follow-up (Updated)",
            "active": True,
            "actions": {
                "initial_delay_minutes": 15,
                "follow_up": [
                    {"delay_hours": 24, "message_template": "follow_up_1"},
                    {"delay_hours": 48, "message_template": "follow_up_2"},
                    {"delay_hours": 96, "message_template": "follow_up_3"},
                ],
            },
            "templates": {"follow_up_3": "Hello {{name}}, this is our final follow-up regarding your interest..."},
        },
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert set(updated) == FULL_FORM
    assert updated["name"] == "New Lead Follow-up (Updated)"
    assert updated["created_at"] == config["created_at"] and updated["updated_at"] > config["updated_at"]
    assert updated["triggers"] == {"lead_source": ["website_form", "landing_page"], "tags": []}
    assert updated["actions"] == {
        "initial_delay_minutes": 15,
        "message_template": "new_lead_template",
        "channel": "email",
        "follow_up": [
            {"delay_hours": 24, "message_template": "follow_up_1"},
            {"delay_hours": 48, "message_template": "follow_up_2"},
            {"delay_hours": 96, "message_template": "follow_up_3"},
        ],
    }
    assert updated["templates"] == {
        "new_lead_template": "Hello {{name}}, thank you for your interest in our services...",
        "follow_up_1": "Hello {{name}}, I wanted to follow up on our previous message...",
        "follow_up_2": "Hello {{name}}, I noticed you haven't had a chance to respond...",
        "follow_up_3": "Hello {{name}}, this is our final follow-up regarding your interest...",
    }
    # What was answered is what is stored.
    read = (await client.get(f"/v1/workflow-configs/{config['id']}", headers=owner.headers)).json()
    assert {k: read[k] for k in FULL_FORM} == updated


async def test_update_replaces_triggers_and_removes_with_null(client: httpx2.AsyncClient, owner: Account) -> None:
    config = await create_config(client, owner, NEW_LEAD_CONFIG)
    url = f"/v1/workflow-configs/{config['id']}"
    replaced = await client.patch(
        url, headers=owner.headers, json={"triggers": {"tags": ["vip"]}, "actions": {"subject": "Hi {{first_name}}"}}
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["triggers"] == {"lead_source": [], "tags": ["vip"]}
    assert replaced.json()["actions"]["subject"] == "Hi {{first_name}}"
    assert replaced.json()["actions"]["follow_up"] == NEW_LEAD_CONFIG["actions"]["follow_up"]

    # Removing a template still referenced by a step is refused, naming the reference.
    dangling = await client.patch(url, headers=owner.headers, json={"templates": {"follow_up_2": None}})
    assert dangling.status_code == 422
    assert dangling.json()["details"] == {
        "actions.follow_up.1.message_template": ["template 'follow_up_2' is not defined in templates"]
    }
    # Removing the step and its template together works; a null action key removes it.
    trimmed = await client.patch(
        url,
        headers=owner.headers,
        json={
            "actions": {"follow_up": [{"delay_hours": 24, "message_template": "follow_up_1"}], "subject": None},
            "templates": {"follow_up_2": None},
        },
    )
    assert trimmed.status_code == 200, trimmed.text
    assert set(trimmed.json()["templates"]) == {"new_lead_template", "follow_up_1"}
    assert "subject" not in trimmed.json()["actions"]


@pytest.mark.parametrize(
    ("change", "field", "message_part"),
    [
        pytest.param(
            {
                "actions": {
                    **NEW_LEAD_CONFIG["actions"],
                    "follow_up": [
                        *NEW_LEAD_CONFIG["actions"]["follow_up"],
                        {"delay_hours": 96, "message_template": "follow_up_3"},
                    ],
                }
            },
            "actions.follow_up.2.message_template",
            "'follow_up_3' is not defined",
            id="missing-template",
        ),
        pytest.param(
            {"templates": {**NEW_LEAD_CONFIG["templates"], "follow_up_1": "Hi {{ name.__class__ }}"}},
            "templates.follow_up_1",
            "may not",
            id="sandbox-escape",
        ),
        pytest.param(
            {
                "templates": {
                    **NEW_LEAD_CONFIG["templates"],
                    "follow_up_2": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
                }
            },
            "templates.follow_up_2",
            "may not",
            id="sandbox-escape-subclasses",
        ),
        pytest.param(
            {"templates": {**NEW_LEAD_CONFIG["templates"], "new_lead_template": "Hello {{ nmae }}"}},
            "templates.new_lead_template",
            "nmae",
            id="unknown-variable",
        ),
        pytest.param(
            {"templates": {**NEW_LEAD_CONFIG["templates"], "new_lead_template": "Hello {{ name"}},
            "templates.new_lead_template",
            "cannot be rendered",
            id="syntax-error",
        ),
        pytest.param(
            {"actions": {**NEW_LEAD_CONFIG["actions"], "follow_up": [{"delay_hours": -1, "message_template": "x"}]}},
            "actions.follow_up.0.delay_hours",
            "greater than or equal to 0",
            id="negative-delay",
        ),
        pytest.param(
            {"actions": {**NEW_LEAD_CONFIG["actions"], "channel": "fax"}},
            "actions.channel",
            "email",
            id="unknown-channel",
        ),
        pytest.param(
            {"actions": {**NEW_LEAD_CONFIG["actions"], "subject": "About {{ company.__init__ }}"}},
            "actions.subject",
            "may not",
            id="subject-escape",
        ),
        pytest.param(
            {"actions": {k: v for k, v in NEW_LEAD_CONFIG["actions"].items() if k != "message_template"}},
            "actions.message_template",
            "required",
            id="no-first-message",
        ),
        pytest.param(
            {"triggers": {"lead_source": ["website_form", "carrier_pigeon"]}},
            "triggers.lead_source.1",
            "carrier_pigeon",
            id="unknown-source",
        ),
        pytest.param(
            {"triggers": {"lead_sources": ["website_form"]}}, "triggers.lead_sources", "unknown", id="unknown-trigger"
        ),
        pytest.param(
            {"actions": {**NEW_LEAD_CONFIG["actions"], "send_window": {"start": "17:00", "end": "09:00"}}},
            "actions.send_window.end",
            "close after",
            id="inverted-window",
        ),
    ],
)
async def test_invalid_configs_are_422_naming_the_field(
    client: httpx2.AsyncClient, owner: Account, change: dict[str, Any], field: str, message_part: str
) -> None:
    response = await client.post("/v1/workflow-configs", headers=owner.headers, json={**NEW_LEAD_CONFIG, **change})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    assert list(body["details"]) == [field]
    assert message_part in body["details"][field][0]
    assert (await client.get("/v1/workflow-configs", headers=owner.headers)).json()["meta"]["total_items"] == 0


async def test_sandbox_escape_in_a_patch_is_refused_and_nothing_changes(
    client: httpx2.AsyncClient, owner: Account
) -> None:
    config = await create_config(client, owner, NEW_LEAD_CONFIG)
    url = f"/v1/workflow-configs/{config['id']}"
    response = await client.patch(
        url,
        headers=owner.headers,
        json={"name": "Hacked", "templates": {"follow_up_1": "{{ name.__class__.__base__.__subclasses__() }}"}},
    )
    assert response.status_code == 422
    assert list(response.json()["details"]) == ["templates.follow_up_1"]
    read = (await client.get(url, headers=owner.headers)).json()
    assert read["name"] == "New Lead Follow-up" and read["templates"] == NEW_LEAD_CONFIG["templates"]


async def test_fractional_delays_and_every_documented_action(client: httpx2.AsyncClient, owner: Account) -> None:
    body = with_changes(
        NEW_LEAD_CONFIG,
        triggers={"lead_source": ["manual_entry", "ad_campaign", "referral"], "tags": ["vip"]},
        actions={
            "initial_delay_minutes": 0.5,
            "message_template": "new_lead_template",
            "channel": "sms",
            "subject": "For {{ first_name }} from {{ company.name }}",
            "personalize": True,
            "send_window": {"start": "09:00", "end": "17:30", "days": [0, 1, 2, 3, 4]},
            "follow_up": [
                {"delay_hours": 0.001, "message_template": "follow_up_1"},
                {"delay_hours": 0, "message_template": "follow_up_2", "channel": "email", "subject": "Still there?"},
            ],
        },
    )
    config = await create_config(client, owner, body)
    assert config["actions"] == body["actions"]
    assert config["actions"]["follow_up"][0]["delay_hours"] == 0.001
    # The /api words for sources are stored as the canonical ones, so triggers match stored leads.
    assert config["triggers"] == {"lead_source": ["manual", "ad", "referral"], "tags": ["vip"]}


async def test_content_configs_store_their_objects(client: httpx2.AsyncClient, owner: Account) -> None:
    # A content_generation config is a schedule (tests/api/test_content_schedules.py covers its Temporal side).
    actions = {
        "content_type": "blog_post",
        "frequency": "weekly",
        "day_of_week": "Monday",
        "time_of_day": "09:00",
        "topics": ["automation", "growth"],
        "publish_to": "wordpress",
    }
    body = {
        "name": "Weekly Blog Post",
        "workflow_type": "content_generation",
        "actions": actions,
        "templates": {"blog": "A post about {{topic}}"},
    }
    config = await create_config(client, owner, body)
    url = f"/v1/workflow-configs/{config['id']}"
    try:
        assert config["workflow_type"] == "content_generation" and config["active"] is True
        stored_actions = {**actions, "content_type": "blog"}  # the canonical word is stored
        assert (config["triggers"], config["actions"], config["templates"]) == ({}, stored_actions, body["templates"])
        patched = await client.patch(url, headers=owner.headers, json={"actions": {"time_of_day": "10:30"}})
        assert patched.json()["actions"] == {**stored_actions, "time_of_day": "10:30"}
        bad_type = await client.post("/v1/workflow-configs", headers=owner.headers, json={**body, "workflow_type": "x"})
        assert bad_type.status_code == 422 and list(bad_type.json()["details"]) == ["workflow_type"]
        unknown = await client.patch(url, headers=owner.headers, json={"workflow_type": "lead_nurturing"})
        assert unknown.status_code == 422 and list(unknown.json()["details"]) == ["workflow_type"]
    finally:
        # Deleting the config deletes its Temporal Schedule: the dev server is shared by the session.
        assert (await client.delete(url, headers=owner.headers)).status_code == 204
    assert (await client.get(url, headers=owner.headers)).status_code == 404


async def test_list_filters_and_pages(client: httpx2.AsyncClient, owner: Account) -> None:
    created = [
        await create_config(client, owner, with_changes(NEW_LEAD_CONFIG, name=f"Lead {index}", active=index != 2))
        for index in range(4)
    ]
    review = await create_config(
        client,
        owner,
        {
            "name": "Review",
            "workflow_type": "review_referral",
            "actions": {"message_template": "ask"},
            "templates": {"ask": "How did we do, {{first_name}}? {{review_link}}"},
        },
    )
    listed = (await client.get("/v1/workflow-configs", headers=owner.headers)).json()
    # Newest first by default.
    assert [c["id"] for c in listed["data"]] == [review["id"]] + [c["id"] for c in reversed(created)]

    page = (
        await client.get(
            "/v1/workflow-configs",
            headers=owner.headers,
            params={"workflow_type": "lead_nurturing", "active": "true", "per_page": 2, "page": 2},
        )
    ).json()
    assert page["meta"] == {"current_page": 2, "per_page": 2, "total_items": 3, "total_pages": 2}
    assert [c["name"] for c in page["data"]] == ["Lead 0"]
    inactive = (await client.get("/v1/workflow-configs", headers=owner.headers, params={"active": "false"})).json()
    assert [c["name"] for c in inactive["data"]] == ["Lead 2"]
    by_name = (
        await client.get("/v1/workflow-configs", headers=owner.headers, params={"sort_by": "name", "sort_dir": "asc"})
    ).json()
    assert [c["name"] for c in by_name["data"]] == ["Lead 0", "Lead 1", "Lead 2", "Lead 3", "Review"]
    bad = await client.get("/v1/workflow-configs", headers=owner.headers, params={"workflow_type": "nope"})
    assert bad.status_code == 422 and list(bad.json()["details"]) == ["workflow_type"]


async def test_managers_and_admins_write_users_read(client: httpx2.AsyncClient, owner: Account) -> None:
    manager = await add_member(client, owner, "manager@example.com", "manager")
    user = await add_member(client, owner, "user@example.com", "user")
    made_by_manager = await client.post("/v1/workflow-configs", headers=manager, json=VIP_CONFIG)
    assert made_by_manager.status_code == 201
    config_id = made_by_manager.json()["id"]
    assert (await client.patch(f"/v1/workflow-configs/{config_id}", headers=manager, json={"active": False})).json()[
        "active"
    ] is False

    denied = await client.post("/v1/workflow-configs", headers=user, json=VIP_CONFIG)
    assert denied.status_code == 403 and denied.json()["error"] == "permission_error"
    patch_denied = await client.patch(f"/v1/workflow-configs/{config_id}", headers=user, json={"active": True})
    assert patch_denied.status_code == 403
    assert (await client.get(f"/v1/workflow-configs/{config_id}", headers=user)).json()["active"] is False
    assert (await client.get("/v1/workflow-configs", headers=user)).json()["meta"]["total_items"] == 1
    assert (await client.get("/v1/workflow-configs")).status_code == 401


async def test_other_companies_configs_are_not_found(client: httpx2.AsyncClient, owner: Account) -> None:
    config = await create_config(client, owner, VIP_CONFIG)
    other = await register(client, company="Globex")
    url = f"/v1/workflow-configs/{config['id']}"
    missing = await client.get(url, headers=other.headers)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "message": "Workflow config not found",
        "resource_type": "workflow_config",
        "resource_id": config["id"],
    }
    assert (await client.patch(url, headers=other.headers, json={"active": False})).status_code == 404
    assert (await client.get("/v1/workflow-configs", headers=other.headers)).json()["data"] == []
    assert (await client.get(url, headers=owner.headers)).json()["active"] is True


async def test_openapi_says_what_happens_to_runs_in_flight(client: httpx2.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    description = schema["paths"]["/v1/workflow-configs/{workflow_id}"]["patch"]["description"]
    assert "in flight" in description and "snapshot" in description and "new" in description
