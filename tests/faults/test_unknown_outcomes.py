"""An outcome nobody could settle is resolved where it can be, and shown and resendable where it cannot.

SMS: after a lost answer the provider's message list (Twilio's ``GET .../Messages.json``) is asked before
anything is sent again. Email: a lost answer is sent again under the same Message-ID; if that answer is lost too
the delivery ends ``unknown``: the run finishes ``completed`` with ``results.unresolved``, the lead's timeline
shows the message ``unknown``, the health report names it, and ``POST /v1/deliveries/{id}/resend`` settles it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.messaging.outcome import OutcomeUnresolved
from activities.outbound import OutboundActivities
from core.config import Settings
from db.models import Interaction, User
from schemas.leads import Channel
from services import leads
from tests.activities.test_outbound_activities import seed, sms_settings, the_delivery
from tests.conftest import Account, register
from tests.faults.sequences import add_lead, finished_runs, lead_sequence
from tests.support.faults import FaultySmtp, eventually
from tests.support.sms_server import SmsServer

pytestmark = pytest.mark.faults

NUMBER = "+15555550100"  # the seeded lead's


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"smtp_timeout_seconds": 1.5})


@pytest.fixture
def sms() -> Iterator[SmsServer]:
    with SmsServer() as server:
        yield server


# ---------------------------------------------------------------- SMS: the provider is asked


async def test_an_sms_whose_answer_was_lost_is_found_at_the_provider_and_not_sent_again(
    settings: Settings, db: async_sessionmaker[AsyncSession], sms: SmsServer
) -> None:
    env = ActivityEnvironment()
    activities = OutboundActivities(db, sms_settings(settings, sms).model_copy(update={"sms_timeout_seconds": 0.3}))
    seeded = await seed(db)
    step = seeded.step(channel=Channel.sms, template="Hi {{first_name}}")
    await env.run(activities.compose_message, step)
    sms.hang_seconds = 1.0  # the message is created, its answer never arrives in time

    with pytest.raises(OutcomeUnresolved):
        await env.run(activities.deliver_message, step)
    assert (await the_delivery(db, step.idempotency_key)).status == "sending"
    outcome = await env.run(activities.deliver_message, step)

    [message] = sms.messages
    delivery = await the_delivery(db, step.idempotency_key)
    assert (outcome.status, delivery.provider_message_id) == ("sent", message["sid"])
    assert (len(sms.requests), sms.lookups) == (1, 1)
    [interaction] = await db_rows(db, Interaction, lead_id=seeded.lead_id)
    assert (interaction.type, interaction.status) == ("sms", "sent")
    assert (await env.run(activities.deliver_message, step)).status == "sent"
    assert (len(sms.requests), sms.lookups) == (1, 1)


async def test_an_sms_the_provider_does_not_have_is_sent_again_once(
    settings: Settings, db: async_sessionmaker[AsyncSession], sms: SmsServer
) -> None:
    env = ActivityEnvironment()
    activities = OutboundActivities(db, sms_settings(settings, sms))
    seeded = await seed(db)
    step = seeded.step(channel=Channel.sms)
    await env.run(activities.compose_message, step)
    sms.status = 500  # a server error that might hide a created message (here it did not create one)

    with pytest.raises(OutcomeUnresolved, match="500"):
        await env.run(activities.deliver_message, step)
    sms.status = 201
    outcome = await env.run(activities.deliver_message, step)

    assert outcome.status == "sent"
    assert (len(sms.requests), len(sms.messages), sms.lookups) == (2, 1, 1)
    assert (await the_delivery(db, step.idempotency_key)).provider_message_id == sms.messages[0]["sid"]


async def test_an_sms_provider_that_cannot_be_asked_keeps_the_message_in_doubt_and_never_resends_it(
    settings: Settings, db: async_sessionmaker[AsyncSession], sms: SmsServer
) -> None:
    env = ActivityEnvironment()
    activities = OutboundActivities(db, sms_settings(settings, sms).model_copy(update={"sms_timeout_seconds": 0.3}))
    seeded = await seed(db)
    step = seeded.step(channel=Channel.sms)
    await env.run(activities.compose_message, step)
    sms.hang_seconds, sms.list_status = 1.0, 500

    for _ in range(2):  # the lost answer, then a list that cannot be read: both leave it for the next attempt
        with pytest.raises(OutcomeUnresolved):
            await env.run(activities.deliver_message, step)
        assert (await the_delivery(db, step.idempotency_key)).status == "sending"
    sms.hang_seconds, sms.list_status = 0.0, 200
    assert (await env.run(activities.deliver_message, step)).status == "sent"

    assert (len(sms.requests), len(sms.messages), sms.lookups) == (1, 1, 2)


async def test_the_provider_list_is_read_page_by_page_newest_first(
    settings: Settings, db: async_sessionmaker[AsyncSession], sms: SmsServer
) -> None:
    """Ours is on the second page; the newer messages to the same number are someone else's business."""
    env = ActivityEnvironment()
    configured = sms_settings(settings, sms).model_copy(update={"sms_timeout_seconds": 0.3})
    activities = OutboundActivities(db, configured)
    seeded = await seed(db)
    step = seeded.step(channel=Channel.sms, template="Ours")
    await env.run(activities.compose_message, step)
    sms.hang_seconds = 1.0
    with pytest.raises(OutcomeUnresolved):
        await env.run(activities.deliver_message, step)
    sms.hang_seconds = 0.0
    async with httpx2.AsyncClient(auth=("AC123", "sms-secret")) as http:
        for index in range(60):
            form = {"To": NUMBER, "From": configured.sms_from, "Body": f"Another message {index}"}
            assert (await http.post(f"{sms.base_url}/Accounts/AC123/Messages.json", data=form)).status_code == 201

    assert (await env.run(activities.deliver_message, step)).status == "sent"
    assert (await the_delivery(db, step.idempotency_key)).provider_message_id == sms.messages[0]["sid"]
    assert sms.lookups == 2 and len(sms.sent_to(NUMBER)) == 61


async def db_rows(db: async_sessionmaker[AsyncSession], model: type[Any], **where: Any) -> list[Any]:
    async with db() as session:
        return list(await session.scalars(select(model).filter_by(**where)))


# ---------------------------------------------------------------- email: unresolved, shown, resent by hand


async def timeline_status(db: async_sessionmaker[AsyncSession], owner: Account, lead_id: str) -> list[str]:
    async with db() as session:
        user = await session.get(User, owner.user_id)
        assert user is not None
        return [entry.status for entry in await leads.timeline(session, user, lead_id) if entry.kind == "message"]


async def health_issues(client: httpx2.AsyncClient, owner: Account) -> list[str]:
    issues: list[str] = (await client.get("/api/system/health", headers=owner.headers)).json()["issues"]
    return issues


@pytest.mark.slow
@pytest.mark.usefixtures("worker")
async def test_an_unknown_email_is_shown_on_run_lead_and_health_until_a_manager_resends_it_once(
    client: httpx2.AsyncClient, owner: Account, smtp: FaultySmtp, db: async_sessionmaker[AsyncSession]
) -> None:
    await lead_sequence(client, owner, steps=1, delay_hours=0)
    address = "doubt@example.com"
    smtp.hold_after_data.add(address)  # the server takes every copy and never answers in time
    lead_id = await add_lead(client, owner, address)

    [run] = await finished_runs(db, owner.company_id, 1, seconds=45)
    assert run.status == "completed" and run.results["messages_sent"] == 0 and run.results["unresolved"] == 1
    shown = (await client.get(f"/v1/workflow-runs/{run.id}", headers=owner.headers)).json()
    assert shown["status"] == "completed" and shown["results"]["unresolved"] == 1
    assert await timeline_status(db, owner, lead_id) == ["unknown"]
    expected_issue = (
        "1 message with an unknown outcome: GET /v1/deliveries?status=unknown lists them, "
        "POST /v1/deliveries/{id}/resend resends one"
    )
    assert expected_issue in await health_issues(client, owner)
    listed = (await client.get("/v1/deliveries", headers=owner.headers, params={"status": "unknown"})).json()
    [delivery] = listed["data"]
    assert listed["meta"]["total_items"] == 1
    assert delivery["recipient"] == address and "no reply" in delivery["error"]
    assert delivery["provider_message_id"] == f"<{delivery['id']}@acme.example.com>"
    assert smtp.message_ids() == {delivery["provider_message_id"]: 2}  # the first try, and its resend
    resend_url = f"/v1/deliveries/{delivery['id']}/resend"

    # Only managers and admins; another company's delivery does not exist for them.
    member_email = f"member-{owner.user_id[-6:]}@example.com"
    member = {"email": member_email, "password": "password123", "role": "user"}
    assert (await client.post("/api/users", headers=owner.headers, json=member)).status_code == 201
    token = (await client.post("/token", json={"username": member_email, "password": "password123"})).json()
    refused = await client.post(resend_url, headers={"Authorization": f"Bearer {token['access_token']}"})
    assert refused.status_code == 403 and refused.json()["error"] == "permission_error"
    other = await register(client, "Other Co")
    assert (await client.post(resend_url, headers=other.headers)).status_code == 404
    assert (await client.get(f"/v1/deliveries/{delivery['id']}", headers=other.headers)).status_code == 404
    assert (await client.post("/v1/deliveries/msg_nope/resend", headers=owner.headers)).status_code == 404
    assert not [issue for issue in await health_issues(client, other) if "unknown outcome" in issue]

    smtp.release()
    accepted = await client.post(resend_url, headers=owner.headers)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "unknown"
    assert accepted.json()["workflow_id"] == f"delivery-resend/{delivery['id']}"

    async def settled() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(f"/v1/deliveries/{delivery['id']}", headers=owner.headers)).json()
        return body if body["status"] not in ("unknown", "sending") else None

    resent = await eventually(settled, 30)
    assert resent["status"] == "sent" and resent["error"] is None and resent["sent_at"] is not None
    assert smtp.message_ids() == {delivery["provider_message_id"]: 3}  # one message to its reader
    again = await client.post(resend_url, headers=owner.headers)
    assert again.status_code == 409 and "only a delivery with an unknown outcome" in again.json()["message"]
    rerun = (await client.get(f"/v1/workflow-runs/{run.id}", headers=owner.headers)).json()
    assert (rerun["status"], rerun["results"]["messages_sent"], rerun["results"]["unresolved"]) == ("completed", 1, 0)
    assert await timeline_status(db, owner, lead_id) == ["sent"]
    assert not [issue for issue in await health_issues(client, owner) if "unknown outcome" in issue]
    [interaction] = await db_rows(db, Interaction, lead_id=lead_id)
    assert interaction.status == "sent" and interaction.meta["delivery_id"] == delivery["id"]
