"""Content schedules on both surfaces (``/api/content-generation/schedule(s)`` and ``content_generation``
workflow configs on ``/v1``), on SQLite and PostgreSQL, each checked against its Temporal Schedule on the real
dev server; runs fired with ``handle.trigger()`` (or by the clock) are written by the real worker.

Every Temporal schedule a test makes is deleted when it ends: the dev server is shared by the whole session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    ScheduleRange,
)
from temporalio.service import RPCError, RPCStatusCode

from core.config import Settings
from db.models import Content, ContentSchedule, WorkflowRun
from schemas.ids import from_api_id
from schemas.temporal import COMPANY_ID, ENTITY_ID, WORKFLOW_CONFIG_ID, QueueKind
from tests.api.test_workflow_configs import add_member
from tests.conftest import Account, register
from workflows.content_schedule import content_schedule_id

SPEC_BODY: dict[str, Any] = {
    "content_type": "blog_post",
    "frequency": "weekly",
    "day_of_week": "Monday",
    "time_of_day": "09:00",
    "topics": ["software development", "business growth", "technology trends"],
    "parameters": {"word_count": 800, "call_to_action": "Contact us for a free consultation"},
    "active": True,
}
CONTENT_CONFIG: dict[str, Any] = {
    "name": "Weekly Blog Post",
    "workflow_type": "content_generation",
    "active": True,
    "actions": {
        "content_type": "blog_post",
        "frequency": "weekly",
        "day_of_week": "Monday",
        "time_of_day": "09:00",
        "timezone": "Europe/Paris",
        "topics": ["software development", "business growth"],
        "parameters": {"word_count": 600, "keywords": "automation, growth"},
        "require_approval": True,
    },
}
PARIS = ZoneInfo("Europe/Paris")
SCHEDULES = "/api/content-generation/schedules"
T = TypeVar("T")


@pytest.fixture(autouse=True)
async def no_schedule_left_behind(db: async_sessionmaker[AsyncSession], temporal_client: Client) -> AsyncIterator[None]:
    yield
    async with db() as session:
        left = list(await session.scalars(select(ContentSchedule.id)))
    for schedule_id in left:
        with contextlib.suppress(RPCError):
            await temporal_client.get_schedule_handle(content_schedule_id(schedule_id)).delete()


async def eventually(probe: Callable[[], Awaitable[T | None]], seconds: float = 30) -> T:
    async with asyncio.timeout(seconds):
        while True:
            if (value := await probe()) is not None:
                return value
            await asyncio.sleep(0.1)


async def create(client: httpx2.AsyncClient, account: Account, body: dict[str, Any]) -> str:
    response = await client.post("/api/content-generation/schedule", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    schedule_id: str = response.json()["schedule_id"]
    return schedule_id


async def describe(temporal: Client, api_id: str) -> ScheduleDescription:
    return await temporal.get_schedule_handle(content_schedule_id(str(from_api_id(api_id)))).describe()


async def settled(temporal: Client, api_id: str, shows: Callable[[ScheduleDescription], bool]) -> ScheduleDescription:
    """The schedule once Temporal shows a change: it applies pauses and updates asynchronously, so a describe
    right after one may still answer the old state (10 s at most)."""
    async with asyncio.timeout(10):
        while not shows(description := await describe(temporal, api_id)):
            await asyncio.sleep(0.05)
    return description


def is_paused(description: ScheduleDescription) -> bool:
    return description.schedule.state.paused


def is_running(description: ScheduleDescription) -> bool:
    return not description.schedule.state.paused


async def listed(client: httpx2.AsyncClient, account: Account) -> list[dict[str, Any]]:
    response = await client.get(SCHEDULES, headers=account.headers)
    assert response.status_code == 200, response.text
    schedules: list[dict[str, Any]] = response.json()["schedules"]
    return schedules


def moments(item: dict[str, Any]) -> list[datetime]:
    return [datetime.fromisoformat(text.replace("Z", "+00:00")) for text in item["next_run_times"]]


def calendar_of(
    description: ScheduleDescription,
) -> tuple[int, int, tuple[ScheduleRange, ...], tuple[ScheduleRange, ...]]:
    [calendar] = description.schedule.spec.calendars
    return (
        calendar.hour[0].start,
        calendar.minute[0].start,
        tuple(calendar.day_of_week),
        tuple(calendar.day_of_month),
    )


MONDAY = (ScheduleRange(1),)
EVERY_WEEKDAY = (ScheduleRange(0, 6),)
EVERY_MONTHDAY = (ScheduleRange(1, 31),)


# ---------------------------------------------------------------- /api: create, list, read


async def test_schedule_with_the_spec_body(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client, settings: Settings
) -> None:
    response = await client.post("/api/content-generation/schedule", headers=owner.headers, json=SPEC_BODY)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"success", "message", "schedule_id"}
    assert body["success"] is True and body["message"] == "Content generation schedule created successfully"
    assert body["schedule_id"].startswith("schedule-")

    description = await describe(temporal_client, body["schedule_id"])
    assert calendar_of(description) == (9, 0, MONDAY, EVERY_MONTHDAY)
    assert description.schedule.spec.time_zone_name == "UTC"  # the company's time zone, UTC by default
    assert description.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert description.schedule.state.paused is False
    action = description.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    canonical = from_api_id(body["schedule_id"])
    assert (action.workflow, action.id, action.task_queue) == (
        "ScheduledGenerationWorkflow",
        f"content-schedule/{canonical}",
        settings.task_queue(QueueKind.MAIN),
    )
    for attributes in (action.typed_search_attributes, description.typed_search_attributes):
        assert (attributes.get(COMPANY_ID), attributes.get(ENTITY_ID)) == (owner.company_id, canonical)

    schedules = (await client.get(SCHEDULES, headers=owner.headers)).json()
    assert schedules["message"] == "Content generation schedules retrieved successfully"
    [item] = schedules["schedules"]
    spec_shape = {"id", "content_type", "frequency", "day_of_week", "time_of_day", "active"}
    assert {key: item[key] for key in spec_shape} == {
        "id": body["schedule_id"],
        "content_type": "blog_post",
        "frequency": "weekly",
        "day_of_week": "Monday",
        "time_of_day": "09:00",
        "active": True,
    }
    assert (item["timezone"], item["topics"], item["parameters"]) == (
        "UTC",
        SPEC_BODY["topics"],
        SPEC_BODY["parameters"],
    )
    assert (item["publish_to"], item["require_approval"], item["runs_started"], item["workflow_config_id"]) == (
        None,
        True,
        0,
        None,
    )
    assert moments(item) == list(description.info.next_action_times)
    assert len(moments(item)) == 10
    assert all((t.strftime("%A"), t.hour, t.minute) == ("Monday", 9, 0) for t in moments(item))

    one = (await client.get(f"{SCHEDULES}/{body['schedule_id']}", headers=owner.headers)).json()
    assert one["message"] == f"Content generation schedule {body['schedule_id']} retrieved successfully"
    assert one["schedule"] == item


async def test_next_run_times_are_mondays_0900_in_the_company_time_zone(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client
) -> None:
    changed = await client.patch("/v1/companies/current", headers=owner.headers, json={"timezone": "Europe/Paris"})
    assert changed.status_code == 200, changed.text
    schedule_id = await create(client, owner, SPEC_BODY)
    [item] = await listed(client, owner)
    assert item["timezone"] == "Europe/Paris"
    assert (await describe(temporal_client, schedule_id)).schedule.spec.time_zone_name == "Europe/Paris"
    local = [moment.astimezone(PARIS) for moment in moments(item)]
    assert len(local) == 10
    assert all((t.strftime("%A"), t.hour, t.minute) == ("Monday", 9, 0) for t in local)
    # A time zone given on the schedule wins over the company's.
    tokyo = await create(client, owner, {**SPEC_BODY, "timezone": "Asia/Tokyo", "time_of_day": "8:05"})
    item = next(s for s in await listed(client, owner) if s["id"] == tokyo)
    assert (item["timezone"], item["time_of_day"]) == ("Asia/Tokyo", "08:05")
    assert {(t.astimezone(ZoneInfo("Asia/Tokyo")).hour, t.minute) for t in moments(item)} == {(8, 5)}


# ---------------------------------------------------------------- /api: edit in place, pause, delete


async def test_an_edit_updates_the_schedule_in_place(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client
) -> None:
    schedule_id = await create(client, owner, SPEC_BODY)
    created_at = (await describe(temporal_client, schedule_id)).info.created_at

    again = await client.post(
        "/api/content-generation/schedule",
        headers=owner.headers,
        json={**SPEC_BODY, "id": schedule_id, "time_of_day": "14:30", "day_of_week": "friday"},
    )
    assert again.status_code == 200, again.text
    assert again.json() == {
        "success": True,
        "message": "Content generation schedule updated successfully",
        "schedule_id": schedule_id,
    }
    friday = (14, 30, (ScheduleRange(5),), EVERY_MONTHDAY)
    description = await settled(temporal_client, schedule_id, lambda d: calendar_of(d) == friday)
    assert description.info.created_at == created_at  # the same Temporal Schedule, changed
    [item] = await listed(client, owner)
    assert (item["id"], item["time_of_day"], item["day_of_week"]) == (schedule_id, "14:30", "Friday")
    assert all((t.strftime("%A"), t.hour, t.minute) == ("Friday", 14, 30) for t in moments(item))

    # PUT changes the fields sent; leaving weekly drops the stored day.
    daily = await client.put(
        f"{SCHEDULES}/{schedule_id}", headers=owner.headers, json={"frequency": "daily", "time_of_day": "07:15"}
    )
    assert daily.status_code == 200, daily.text
    updated = daily.json()["schedule"]
    assert daily.json()["message"] == f"Content generation schedule {schedule_id} updated successfully"
    assert (updated["frequency"], updated["day_of_week"], updated["time_of_day"]) == ("daily", None, "07:15")
    assert updated["topics"] == SPEC_BODY["topics"] and updated["parameters"] == SPEC_BODY["parameters"]
    every_day = (7, 15, EVERY_WEEKDAY, EVERY_MONTHDAY)
    description = await settled(temporal_client, schedule_id, lambda d: calendar_of(d) == every_day)
    assert description.info.created_at == created_at
    [updated] = await listed(client, owner)  # the run times Temporal reports now the change is applied
    assert [b - a for a, b in zip(moments(updated), moments(updated)[1:], strict=False)] == [timedelta(days=1)] * 9

    monthly = await client.put(
        f"{SCHEDULES}/{schedule_id}",
        headers=owner.headers,
        json={"frequency": "monthly", "parameters": {"day_of_month": 15, "word_count": 900}},
    )
    assert monthly.status_code == 200, monthly.text
    on_the_15th = (7, 15, EVERY_WEEKDAY, (ScheduleRange(15),))
    await settled(temporal_client, schedule_id, lambda d: calendar_of(d) == on_the_15th)
    [item] = await listed(client, owner)
    assert {t.day for t in moments(item)} == {15}


async def test_active_false_pauses_and_true_resumes(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client
) -> None:
    schedule_id = await create(client, owner, SPEC_BODY)
    paused = await client.put(f"{SCHEDULES}/{schedule_id}", headers=owner.headers, json={"active": False})
    assert paused.status_code == 200, paused.text
    assert paused.json()["schedule"]["active"] is False
    assert paused.json()["schedule"]["next_run_times"] == []  # paused: none of Temporal's times will happen
    state = (await settled(temporal_client, schedule_id, is_paused)).schedule.state
    assert state.note == "paused: active is false"

    resumed = await client.post(
        "/api/content-generation/schedule", headers=owner.headers, json={**SPEC_BODY, "id": schedule_id}
    )
    assert resumed.status_code == 200, resumed.text
    await settled(temporal_client, schedule_id, is_running)
    [item] = await listed(client, owner)
    assert item["active"] is True and len(item["next_run_times"]) == 10

    # Created inactive: paused in Temporal from the start.
    inactive = await create(client, owner, {**SPEC_BODY, "active": False})
    await settled(temporal_client, inactive, is_paused)


async def test_delete_removes_the_schedule(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    schedule_id = await create(client, owner, SPEC_BODY)
    deleted = await client.delete(f"{SCHEDULES}/{schedule_id}", headers=owner.headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {
        "success": True,
        "message": f"Content generation schedule {schedule_id} deleted successfully",
    }
    with pytest.raises(RPCError) as gone:
        await describe(temporal_client, schedule_id)
    assert gone.value.status == RPCStatusCode.NOT_FOUND
    missing = await client.get(f"{SCHEDULES}/{schedule_id}", headers=owner.headers)
    assert missing.status_code == 404 and missing.json() == {"detail": "Content schedule not found"}
    assert await listed(client, owner) == []
    async with db() as session:
        assert list(await session.scalars(select(ContentSchedule.id))) == []
    assert (await client.delete(f"{SCHEDULES}/{schedule_id}", headers=owner.headers)).status_code == 404


# ---------------------------------------------------------------- /api: validation


@pytest.mark.parametrize(
    ("change", "field", "message_part"),
    [
        pytest.param({"content_type": "podcast"}, "content_type", "blog_post, social_media", id="content-type"),
        pytest.param({"frequency": "hourly"}, "frequency", "daily", id="frequency"),
        pytest.param({"day_of_week": "Funday"}, "day_of_week", "Monday", id="day"),
        pytest.param({"day_of_week": None}, "day_of_week", "needs its day_of_week", id="weekly-without-day"),
        pytest.param({"frequency": "daily"}, "day_of_week", "only weekly", id="day-on-a-daily"),
        pytest.param({"time_of_day": "25:00"}, "time_of_day", "00-23", id="hour"),
        pytest.param({"time_of_day": "9am"}, "time_of_day", "HH:MM", id="time-format"),
        pytest.param({"timezone": "Mars/Olympus_Mons"}, "timezone", "IANA", id="time-zone"),
        pytest.param({"topics": []}, "topics", "at least 1", id="no-topics"),
        pytest.param({"publish_to": "myspace"}, "publish_to", "wordpress", id="publisher"),
        pytest.param(
            {"frequency": "monthly", "day_of_week": None, "parameters": {"day_of_month": 31}},
            "parameters.day_of_month",
            "28",
            id="day-of-month",
        ),
        pytest.param({"parameters": {"day_of_month": 3}}, "parameters", "only monthly", id="day-of-month-weekly"),
        pytest.param({"parameters": {"colour": "blue"}}, "parameters.colour", "not permitted", id="unknown-parameter"),
    ],
)
async def test_invalid_schedules_are_422_naming_the_field(
    client: httpx2.AsyncClient,
    owner: Account,
    db: async_sessionmaker[AsyncSession],
    change: dict[str, Any],
    field: str,
    message_part: str,
) -> None:
    response = await client.post(
        "/api/content-generation/schedule", headers=owner.headers, json={**SPEC_BODY, **change}
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [error["field"] for error in detail] == [field], detail
    assert message_part in detail[0]["msg"]
    async with db() as session:
        assert list(await session.scalars(select(ContentSchedule.id))) == []


async def test_a_rejected_request_creates_nothing_in_temporal_or_the_database(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    for change in ({"timezone": "Nowhere/Special"}, {"time_of_day": "24:00"}, {"content_type": "video"}):
        rejected = await client.post(
            "/api/content-generation/schedule", headers=owner.headers, json={**SPEC_BODY, **change}
        )
        assert rejected.status_code == 422, rejected.text
    schedule_id = await create(client, owner, SPEC_BODY)

    async def company_schedules() -> list[str] | None:
        query = f"{COMPANY_ID.name} = '{owner.company_id}'"
        found = [listing.id async for listing in await temporal_client.list_schedules(query=query)]
        return found or None

    # Once Temporal's list shows the valid schedule, it shows every schedule of the company: only that one.
    assert await eventually(company_schedules) == [content_schedule_id(str(from_api_id(schedule_id)))]
    bad_edit = await client.put(f"{SCHEDULES}/{schedule_id}", headers=owner.headers, json={"time_of_day": "noon"})
    assert bad_edit.status_code == 422 and bad_edit.json()["detail"][0]["field"] == "time_of_day"
    assert calendar_of(await describe(temporal_client, schedule_id))[:2] == (9, 0)
    async with db() as session:
        [stored] = list(await session.scalars(select(ContentSchedule)))
        assert stored.time_of_day == "09:00"


# ---------------------------------------------------------------- runs


async def finished_contents(
    temporal: Client, db: async_sessionmaker[AsyncSession], api_id: str, count: int
) -> list[Content]:
    """The schedule's contents once ``count`` of them are written and no run of the schedule is still going."""
    schedule_id = from_api_id(api_id)

    async def written() -> list[Content] | None:
        async with db() as session:
            contents = list(
                await session.scalars(
                    select(Content).where(Content.schedule_id == schedule_id).order_by(Content.created_at, Content.id)
                )
            )
        if len(contents) < count or any(c.status == "generating" for c in contents):
            return None
        if (await describe(temporal, api_id)).info.running_actions:
            return None
        return contents

    return await eventually(written)


@pytest.mark.usefixtures("worker")
async def test_triggered_runs_write_the_topics_in_turn(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    schedule_id = await create(client, owner, SPEC_BODY)
    handle = temporal_client.get_schedule_handle(content_schedule_id(str(from_api_id(schedule_id))))
    for run in range(1, 4):
        await handle.trigger()
        contents = await finished_contents(temporal_client, db, schedule_id, run)
    assert [c.parameters["topic"] for c in contents] == SPEC_BODY["topics"]
    for content in contents:
        assert (content.type, content.status, content.requires_approval) == ("blog", "draft", True)
        assert content.created_by == from_api_id(schedule_id) and content.body
        assert content.parameters["word_count"] == 800
        assert content.parameters["call_to_action"] == "Contact us for a free consultation"
        shown = await client.get(f"/api/content-generation/content/{content.id}", headers=owner.headers)
        assert shown.json()["content"]["status"] == "draft" and shown.json()["content"]["type"] == "blog_post"
    async with db() as session:
        runs = list(await session.scalars(select(WorkflowRun).where(WorkflowRun.trigger_type == "schedule")))
    assert sorted((run.trigger_id, run.status) for run in runs) == sorted((c.id, "completed") for c in contents)
    assert {run.temporal_workflow_id for run in runs} == {f"content-generate/{c.id}" for c in contents}
    [item] = await listed(client, owner)
    assert item["runs_started"] == 3
    # A fourth run starts the list again.
    await handle.trigger()
    fourth = (await finished_contents(temporal_client, db, schedule_id, 4))[-1]
    assert fourth.parameters["topic"] == SPEC_BODY["topics"][0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # wall-clock time; the DBs are covered above
@pytest.mark.usefixtures("worker")
async def test_a_paused_schedule_takes_no_action_when_its_time_comes(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    now = datetime.now(UTC)
    due = (now + timedelta(seconds=70)).replace(second=0, microsecond=0)  # the next minute at least 10 s away
    body = {**SPEC_BODY, "frequency": "daily", "day_of_week": None, "timezone": "UTC", "time_of_day": f"{due:%H:%M}"}
    paused = await create(client, owner, {**body, "active": False})
    running = await create(client, owner, body)  # the same time, active: proves the time did come
    await settled(temporal_client, paused, is_paused)
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
    [written] = await finished_contents(temporal_client, db, running, 1)
    assert written.parameters["topic"] == SPEC_BODY["topics"][0]
    fired = (await describe(temporal_client, running)).info
    assert fired.num_actions == 1 and fired.recent_actions[0].scheduled_at == due
    info = (await describe(temporal_client, paused)).info
    assert (info.num_actions, info.recent_actions, info.running_actions) == (0, [], [])
    async with db() as session:
        of_paused = await session.scalars(select(Content.id).where(Content.schedule_id == from_api_id(paused)))
        assert list(of_paused) == []


# ---------------------------------------------------------------- tenancy and roles


async def test_another_companys_schedule_is_a_404(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client
) -> None:
    schedule_id = await create(client, owner, SPEC_BODY)
    other = await register(client, company="Globex")
    url = f"{SCHEDULES}/{schedule_id}"
    for response in (
        await client.get(url, headers=other.headers),
        await client.put(url, headers=other.headers, json={"active": False}),
        await client.delete(url, headers=other.headers),
        await client.post(
            "/api/content-generation/schedule", headers=other.headers, json={**SPEC_BODY, "id": schedule_id}
        ),
    ):
        assert response.status_code == 404 and response.json() == {"detail": "Content schedule not found"}
    assert await listed(client, other) == []
    assert (await describe(temporal_client, schedule_id)).schedule.state.paused is False
    [item] = await listed(client, owner)
    assert item["active"] is True


async def test_only_managers_and_admins_change_schedules(client: httpx2.AsyncClient, owner: Account) -> None:
    user = await add_member(client, owner, "writer@example.com", "user")
    manager = await add_member(client, owner, "manager@example.com", "manager")
    denied = await client.post("/api/content-generation/schedule", headers=user, json=SPEC_BODY)
    assert denied.status_code == 403
    made = await client.post("/api/content-generation/schedule", headers=manager, json=SPEC_BODY)
    assert made.status_code == 201, made.text
    url = f"{SCHEDULES}/{made.json()['schedule_id']}"
    assert (await client.put(url, headers=user, json={"active": False})).status_code == 403
    assert (await client.delete(url, headers=user)).status_code == 403
    read = await client.get(SCHEDULES, headers=user)
    assert [s["id"] for s in read.json()["schedules"]] == [made.json()["schedule_id"]]
    assert (await client.get(SCHEDULES)).status_code == 401


# ---------------------------------------------------------------- /v1 workflow configs


async def test_content_configs_run_on_their_own_schedule(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    response = await client.post("/v1/workflow-configs", headers=owner.headers, json=CONTENT_CONFIG)
    assert response.status_code == 201, response.text
    config = response.json()
    # Stored in canonical words, as given otherwise.
    assert config["actions"] == {
        **CONTENT_CONFIG["actions"],
        "content_type": "blog",
        "parameters": {"word_count": 600, "keywords": ["automation", "growth"]},
    }
    assert config["triggers"] == {}
    async with db() as session:
        [schedule] = list(await session.scalars(select(ContentSchedule)))
    assert schedule.workflow_config_id == config["id"] and schedule.company_id == owner.company_id
    handle = temporal_client.get_schedule_handle(content_schedule_id(schedule.id))
    description = await handle.describe()
    assert calendar_of(description) == (9, 0, MONDAY, EVERY_MONTHDAY)
    assert description.schedule.spec.time_zone_name == "Europe/Paris"
    action = description.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.typed_search_attributes.get(WORKFLOW_CONFIG_ID) == config["id"]
    # The /api list shows it too, owned by the config.
    [item] = await listed(client, owner)
    assert item["workflow_config_id"] == config["id"].replace("wf_", "workflow-")
    assert item["timezone"] == "Europe/Paris" and item["require_approval"] is True
    assert all(t.astimezone(PARIS).hour == 9 for t in moments(item))

    url = f"/v1/workflow-configs/{config['id']}"
    edited = await client.patch(url, headers=owner.headers, json={"actions": {"time_of_day": "10:00"}})
    assert edited.status_code == 200, edited.text
    assert edited.json()["actions"]["time_of_day"] == "10:00"
    edited_description = await settled(temporal_client, item["id"], lambda d: calendar_of(d)[:2] == (10, 0))
    assert edited_description.info.created_at == description.info.created_at  # updated in place

    off = await client.patch(url, headers=owner.headers, json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    await settled(temporal_client, item["id"], is_paused)
    on = await client.patch(url, headers=owner.headers, json={"active": True})
    assert on.status_code == 200
    await settled(temporal_client, item["id"], is_running)

    # The config owns it: /api may read it, not change it.
    api_url = f"{SCHEDULES}/{item['id']}"
    for refused in (
        await client.put(api_url, headers=owner.headers, json={"active": False}),
        await client.delete(api_url, headers=owner.headers),
    ):
        assert refused.status_code == 409 and "PATCH /v1/workflow-configs/" in refused.json()["detail"]

    deleted = await client.delete(url, headers=owner.headers)
    assert deleted.status_code == 204, deleted.text
    with pytest.raises(RPCError) as gone:
        await handle.describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND
    assert (await client.get(url, headers=owner.headers)).status_code == 404
    assert await listed(client, owner) == []


@pytest.mark.usefixtures("worker")
async def test_a_content_configs_runs_count_in_its_stats(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    config = (await client.post("/v1/workflow-configs", headers=owner.headers, json=CONTENT_CONFIG)).json()
    async with db() as session:
        [schedule] = list(await session.scalars(select(ContentSchedule)))
    await temporal_client.get_schedule_handle(content_schedule_id(schedule.id)).trigger()
    api_id = f"schedule-{schedule.id.removeprefix('sched_')}"
    [content] = await finished_contents(temporal_client, db, api_id, 1)
    assert content.parameters["topic"] == "software development" and content.parameters["keywords"] == [
        "automation",
        "growth",
    ]
    stats = (await client.get(f"/v1/workflow-configs/{config['id']}", headers=owner.headers)).json()["stats"]
    assert (stats["runs_total"], stats["runs_successful"], stats["runs_failed"]) == (1, 1, 0)


@pytest.mark.parametrize(
    ("actions", "field"),
    [
        pytest.param({"frequency": "fortnightly"}, "actions.frequency", id="frequency"),
        pytest.param({"time_of_day": "9.30"}, "actions.time_of_day", id="time"),
        pytest.param({"timezone": "Paris"}, "actions.timezone", id="time-zone"),
        pytest.param({"day_of_week": "Someday"}, "actions.day_of_week", id="day"),
        pytest.param({"content_type": "video"}, "actions.content_type", id="content-type"),
        pytest.param({"topics": "just one"}, "actions.topics", id="topics"),
        pytest.param({"delay_days": 2}, "actions.delay_days", id="unknown-action"),
    ],
)
async def test_invalid_content_configs_are_422_and_create_nothing(
    client: httpx2.AsyncClient,
    owner: Account,
    db: async_sessionmaker[AsyncSession],
    actions: dict[str, Any],
    field: str,
) -> None:
    body = {**CONTENT_CONFIG, "actions": {**CONTENT_CONFIG["actions"], **actions}}
    response = await client.post("/v1/workflow-configs", headers=owner.headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error" and list(response.json()["details"]) == [field]
    assert (await client.get("/v1/workflow-configs", headers=owner.headers)).json()["meta"]["total_items"] == 0
    async with db() as session:
        assert list(await session.scalars(select(ContentSchedule.id))) == []


async def test_content_configs_take_no_triggers(client: httpx2.AsyncClient, owner: Account) -> None:
    response = await client.post(
        "/v1/workflow-configs", headers=owner.headers, json={**CONTENT_CONFIG, "triggers": {"schedule": "weekly"}}
    )
    assert response.status_code == 422 and list(response.json()["details"]) == ["triggers.schedule"]
