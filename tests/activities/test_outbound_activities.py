"""The follow-up activities against real parts: a database (SQLite and PostgreSQL), an SMTP server (aiosmtpd),
an OpenAI-compatible server through the real ``openai`` client and a Twilio-like SMS API, all on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.messaging import sms as sms_channel
from activities.messaging.llm import OfflineWriter, Recipient
from activities.messaging.outcome import OutcomeUnresolved, ProviderUnavailable
from activities.outbound import OutboundActivities
from core.config import Settings
from core.ids import new_id
from core.security import verify_unsubscribe
from db.models import (
    Company,
    DomainEvent,
    Interaction,
    Lead,
    MessageDelivery,
    Suppression,
    WorkflowAction,
    WorkflowConfig,
    WorkflowRun,
)
from db.session import transaction
from schemas.lead_follow_up import FollowUpStep, LeadEvent
from schemas.leads import Channel
from schemas.messaging import FinishRunInput, PlanSendInput, SendWindow, StepInput
from tests.support.openai_server import OpenAIServer
from tests.support.processes import free_port
from tests.support.sms_server import SmsServer
from tests.support.smtp_server import SmtpServer

TEMPLATE = "Hi {{first_name}}, thanks for your interest in {{company.name}}. Your enquiry came from {{source}}."
POSTAL_ADDRESS = "12 Harbour Road, Springfield 4021"


@dataclass
class Seeded:
    company_id: str
    lead_id: str
    config_id: str
    run_id: str

    def step(
        self,
        *,
        channel: Channel = Channel.email,
        template: str = TEMPLATE,
        subject: str | None = None,
        personalise: bool = False,
        step: int = 0,
    ) -> StepInput:
        return StepInput(
            idempotency_key=f"lead-follow-up/{self.lead_id}/{self.config_id}/{step}",
            company_id=self.company_id,
            contact_id=self.lead_id,
            config_id=self.config_id,
            run_id=self.run_id,
            step=step,
            step_spec=FollowUpStep(
                delay_hours=0, template_key=f"step_{step}", template=template, channel=channel, subject=subject
            ),
            personalise=personalise,
        )


@pytest.fixture
def sessions(db: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    return db


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def env() -> ActivityEnvironment:
    return ActivityEnvironment()


async def seed(
    sessions: async_sessionmaker[AsyncSession],
    *,
    name: str = "Jane Smith",
    email: str | None = "jane@example.com",
    phone: str | None = "+15555550100",
    lead_timezone: str | None = None,
    company_timezone: str = "UTC",
    postal_address: str | None = POSTAL_ADDRESS,
) -> Seeded:
    company = Company(id=new_id("cmp"), name="Acme Inc", postal_address=postal_address, timezone=company_timezone)
    lead = Lead(
        id=new_id("lead"),
        company_id=company.id,
        name=name,
        email=email,
        phone=phone,
        source="website_form",
        status="new",
        timezone=lead_timezone,
    )
    config = WorkflowConfig(
        id=new_id("wf"),
        company_id=company.id,
        name="New lead follow-up",
        workflow_type="lead_nurturing",
        actions={"message_template": "step_0"},
        templates={"step_0": TEMPLATE},
    )
    run = WorkflowRun(
        id=new_id("run"),
        company_id=company.id,
        workflow_config_id=config.id,
        workflow_type="lead_nurturing",
        temporal_workflow_id=f"lead-follow-up/{lead.id}/{config.id}",
        status="running",
        trigger_type="lead_created",
        trigger_id=lead.id,
    )
    async with transaction(sessions) as session:
        session.add(company)
        await session.flush()
        session.add_all([lead, config])
        await session.flush()
        session.add(run)
    return Seeded(company.id, lead.id, config.id, run.id)


def smtp_settings(settings: Settings, smtp: SmtpServer, **extra: Any) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_starttls": False,
            "smtp_timeout_seconds": 5.0,
            "email_from": "Acme Inc <hello@acme.example.com>",
            "public_base_url": "https://bas.example.com/",
            **extra,
        }
    )


def sms_settings(settings: Settings, server: SmsServer) -> Settings:
    return settings.model_copy(
        update={
            "sms_api_url": server.base_url,
            "sms_account_sid": "AC123",
            "sms_auth_token": SecretStr("sms-secret"),
            "sms_from": "+15555550199",
        }
    )


async def load(sessions: async_sessionmaker[AsyncSession], model: type[Any], **where: Any) -> list[Any]:
    async with sessions() as session:
        query = select(model).filter_by(**where)
        return list(await session.scalars(query))


async def the_delivery(sessions: async_sessionmaker[AsyncSession], key: str) -> MessageDelivery:
    async with sessions() as session:
        return (await session.scalars(select(MessageDelivery).filter_by(idempotency_key=key))).one()


# ---------------------------------------------------------------- email


async def test_email_goes_out_over_smtp_with_one_click_unsubscribe_and_postal_address(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    configured = smtp_settings(settings, smtp)
    activities = OutboundActivities(sessions, configured)
    seeded = await seed(sessions)
    step = seeded.step()

    composed = await env.run(activities.compose_message, step)
    assert composed.skipped_reason is None
    outcome = await env.run(activities.deliver_message, step)

    assert outcome.status == "sent"
    [message] = smtp.messages
    assert smtp.envelopes == [("hello@acme.example.com", ["jane@example.com"])]
    assert message["To"] == "Jane Smith <jane@example.com>"
    assert message["Subject"] == "A message from Acme Inc"
    body = message.get_content()
    assert "Hi Jane, thanks for your interest in Acme Inc. Your enquiry came from website_form." in body
    assert POSTAL_ADDRESS in body
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://bas.example.com/api/lead-nurturing/unsubscribe/")
    assert verify_unsubscribe(configured, link.rsplit("/", 1)[1]) == (seeded.company_id, seeded.lead_id)
    assert f"Unsubscribe: {link}" in body
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    delivery = await the_delivery(sessions, step.idempotency_key)
    assert (delivery.id, delivery.status, delivery.provider) == (composed.delivery_id, "sent", "smtp")
    assert delivery.provider_message_id == message["Message-ID"]
    assert delivery.sent_at is not None
    [interaction] = await load(sessions, Interaction, lead_id=seeded.lead_id)
    assert (interaction.type, interaction.direction, interaction.channel, interaction.status) == (
        "email",
        "outbound",
        "automated_workflow",
        "sent",
    )
    assert interaction.meta["template_id"] == "step_0"
    assert interaction.meta["delivery_id"] == delivery.id
    assert interaction.meta["workflow_run_id"] == seeded.run_id
    [lead] = await load(sessions, Lead, id=seeded.lead_id)
    assert lead.status == "contacted"
    assert lead.status_changed_at is not None
    actions = await load(sessions, WorkflowAction, run_id=seeded.run_id)
    assert sorted(action.type for action in actions) == ["generate_message", "send_email"]
    send_action = next(action for action in actions if action.type == "send_email")
    assert send_action.details["recipient"] == "jane@example.com"
    assert send_action.details["status"] == "sent"
    events = await load(sessions, DomainEvent, company_id=seeded.company_id)
    assert sorted(e.type for e in events) == ["interaction.created", "lead.status_changed"]
    created = next(e for e in events if e.type == "interaction.created")
    assert (created.entity_id, created.payload["lead_id"]) == (interaction.id, seeded.lead_id)
    changed = next(e for e in events if e.type == "lead.status_changed")
    assert changed.payload == {"id": seeded.lead_id, "from": "new", "to": "contacted"}

    # Retried activities (Temporal retries after a lost result) change nothing and send nothing.
    assert (await env.run(activities.compose_message, step)).delivery_id == composed.delivery_id
    assert (await env.run(activities.deliver_message, step)).status == "sent"
    assert len(smtp.messages) == 1
    assert len(await load(sessions, Interaction, lead_id=seeded.lead_id)) == 1


async def test_a_step_key_that_belongs_to_another_run_is_refused(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    activities = OutboundActivities(sessions, settings)
    seeded = await seed(sessions)
    await env.run(activities.compose_message, seeded.step())
    rerun = WorkflowRun(
        id=new_id("run"),
        company_id=seeded.company_id,
        workflow_config_id=seeded.config_id,
        workflow_type="lead_nurturing",
        temporal_workflow_id=f"lead-follow-up/{seeded.lead_id}/{seeded.config_id}",
        trigger_type="manual",
    )
    async with transaction(sessions) as session:
        session.add(rerun)
    second = seeded.step().model_copy(update={"run_id": rerun.id})

    with pytest.raises(ApplicationError) as raised:
        await env.run(activities.compose_message, second)
    assert raised.value.type == "IdempotencyKeyReused"
    assert raised.value.non_retryable


async def test_smtp_login_and_a_custom_subject_and_footer_without_postal_address(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    with SmtpServer(credentials=("mailer", "s3cret")) as smtp:
        configured = smtp_settings(settings, smtp, smtp_username="mailer", smtp_password=SecretStr("s3cret"))
        activities = OutboundActivities(sessions, configured)
        seeded = await seed(sessions, name="Ana María López", postal_address=None)
        step = seeded.step(subject="{{first_name}}, your {{company_name}} quote")
        await env.run(activities.compose_message, step)
        assert (await env.run(activities.deliver_message, step)).status == "sent"
    [message] = smtp.messages
    assert message["Subject"] == "Ana, your Acme Inc quote"
    assert message["To"] == "Ana María López <jane@example.com>"
    assert smtp.logins == ["mailer"]
    # Without a postal address the footer still says who sent it.
    footer = message.get_content().replace("\r\n", "\n").split("\n--\n", 1)[1]
    assert footer.startswith("Acme Inc\nAcme Inc\nUnsubscribe: ")


async def test_a_refused_recipient_fails_without_retry(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    smtp.refuse.add("jane@example.com")
    activities = OutboundActivities(sessions, smtp_settings(settings, smtp))
    seeded = await seed(sessions)
    step = seeded.step()
    await env.run(activities.compose_message, step)

    outcome = await env.run(activities.deliver_message, step)

    assert outcome.status == "failed"
    delivery = await the_delivery(sessions, step.idempotency_key)
    assert delivery.error is not None and "550" in delivery.error
    assert smtp.messages == []
    assert await load(sessions, Interaction, lead_id=seeded.lead_id) == []
    [lead] = await load(sessions, Lead, id=seeded.lead_id)
    assert lead.status == "new"


async def test_a_refused_connection_is_retried_and_the_retry_sends(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    seeded = await seed(sessions)
    step = seeded.step()
    nobody_listening = smtp_settings(settings, smtp, smtp_port=free_port())
    await env.run(OutboundActivities(sessions, nobody_listening).compose_message, step)

    with pytest.raises(ProviderUnavailable):
        await env.run(OutboundActivities(sessions, nobody_listening).deliver_message, step)
    # Nothing left, so the row is ready for Temporal's next attempt...
    assert (await the_delivery(sessions, step.idempotency_key)).status == "pending"

    # ...which, once the relay is reachable, sends.
    outcome = await env.run(OutboundActivities(sessions, smtp_settings(settings, smtp)).deliver_message, step)
    assert outcome.status == "sent"
    assert len(smtp.messages) == 1


async def test_no_answer_after_the_message_left_is_resent_once_under_its_message_id_then_unknown(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    smtp.reply_delay = 2.0
    activities = OutboundActivities(sessions, smtp_settings(settings, smtp, smtp_timeout_seconds=0.5))
    seeded = await seed(sessions)
    step = seeded.step()
    await env.run(activities.compose_message, step)

    # No answer: the attempt fails (Temporal retries it), the row stays "sending" for the retry to resolve...
    with pytest.raises(OutcomeUnresolved, match="no reply"):
        await env.run(activities.deliver_message, step)
    assert (await the_delivery(sessions, step.idempotency_key)).status == "sending"
    # ...which sends it again under the same Message-ID; no answer to that either: unknown, and left alone.
    outcome = await env.run(activities.deliver_message, step)

    assert outcome.status == "unknown"
    delivery = await the_delivery(sessions, step.idempotency_key)
    assert delivery.error is not None and "no reply" in delivery.error
    assert delivery.provider_message_id == f"<{delivery.id}@acme.example.com>"  # traceable in the relay's logs
    assert [message["Message-ID"] for message in smtp.messages] == [delivery.provider_message_id] * 2
    assert (await env.run(activities.deliver_message, step)).status == "unknown"
    assert len(smtp.messages) == 2
    assert await load(sessions, Interaction, lead_id=seeded.lead_id) == []


async def test_a_retried_send_after_the_provider_accepted_is_resent_under_the_same_message_id(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp: SmtpServer,
    env: ActivityEnvironment,
) -> None:
    """The provider took the message, then recording it failed (the worker died, the database blipped).

    Temporal retries the activity. The retry finds the row still ``sending``: it cannot tell "the provider
    accepted" from "the call hung", so it sends the message again under the same Message-ID, a copy the
    recipient's mail system collapses into the first, and records it sent: once, with one interaction.
    """
    activities = OutboundActivities(sessions, smtp_settings(settings, smtp))
    seeded = await seed(sessions)
    step = seeded.step()
    await env.run(activities.compose_message, step)
    failures = ["pending"]
    engine: AsyncEngine = sessions.kw["bind"]

    def fail_once_after_send(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if failures and statement.lstrip().upper().startswith("INSERT INTO INTERACTIONS"):
            failures.clear()
            raise RuntimeError("database went away after the provider accepted")

    event.listen(engine.sync_engine, "before_cursor_execute", fail_once_after_send)
    try:
        with pytest.raises(RuntimeError, match="database went away"):
            await env.run(activities.deliver_message, step)
        assert len(smtp.messages) == 1
        assert (await the_delivery(sessions, step.idempotency_key)).status == "sending"

        retried = await env.run(activities.deliver_message, step)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", fail_once_after_send)

    assert failures == []
    assert retried.status == "sent"
    delivery = await the_delivery(sessions, step.idempotency_key)
    assert [message["Message-ID"] for message in smtp.messages] == [delivery.provider_message_id] * 2
    assert (await env.run(activities.deliver_message, step)).status == "sent"
    assert len(smtp.messages) == 2
    actions = await load(sessions, WorkflowAction, run_id=seeded.run_id, type="send_email")
    assert [action.details["status"] for action in actions] == ["sent"]
    assert len(await load(sessions, Interaction, lead_id=seeded.lead_id)) == 1


# ---------------------------------------------------------------- suppression, skipping, recording


async def test_suppression_is_checked_right_before_sending(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    activities = OutboundActivities(sessions, smtp_settings(settings, smtp))
    seeded = await seed(sessions)
    step = seeded.step()
    await env.run(activities.compose_message, step)
    # The address is suppressed after the message was written and before it goes out.
    async with transaction(sessions) as session:
        session.add(
            Suppression(
                id=new_id("sup"),
                company_id=seeded.company_id,
                channel="email",
                address="Jane@Example.com",
                reason="unsubscribed",
            )
        )

    outcome = await env.run(activities.deliver_message, step)

    assert outcome.status == "suppressed"
    assert smtp.messages == []
    assert await load(sessions, Interaction, lead_id=seeded.lead_id) == []
    assert "suppression list" in ((await the_delivery(sessions, step.idempotency_key)).error or "")


async def test_an_unsubscribed_lead_gets_no_email(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    activities = OutboundActivities(sessions, smtp_settings(settings, smtp))
    seeded = await seed(sessions)
    step = seeded.step()
    await env.run(activities.compose_message, step)
    async with transaction(sessions) as session:
        lead = await session.get(Lead, seeded.lead_id)
        assert lead is not None
        lead.unsubscribed_at = datetime.now(UTC)

    assert (await env.run(activities.deliver_message, step)).status == "suppressed"
    assert smtp.messages == []


async def test_another_companys_suppression_does_not_apply(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    activities = OutboundActivities(sessions, smtp_settings(settings, smtp))
    seeded = await seed(sessions)
    other = await seed(sessions, email="someone@example.com")
    async with transaction(sessions) as session:
        session.add(
            Suppression(
                id=new_id("sup"), company_id=other.company_id, channel="email", address="jane@example.com", reason="x"
            )
        )
    step = seeded.step()
    await env.run(activities.compose_message, step)
    assert (await env.run(activities.deliver_message, step)).status == "sent"


async def test_a_lead_without_an_address_for_the_channel_is_skipped(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, env: ActivityEnvironment
) -> None:
    activities = OutboundActivities(sessions, smtp_settings(settings, smtp))
    seeded = await seed(sessions, email=None)
    step = seeded.step()

    composed = await env.run(activities.compose_message, step)

    assert composed.skipped_reason == "the lead has no email address"
    delivery = await the_delivery(sessions, step.idempotency_key)
    assert (delivery.status, delivery.recipient, delivery.body) == ("skipped", "", "")
    assert (await env.run(activities.deliver_message, step)).status == "skipped"
    assert smtp.messages == []


async def test_a_deleted_lead_is_skipped(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    activities = OutboundActivities(sessions, settings)
    seeded = await seed(sessions)
    async with transaction(sessions) as session:
        await session.delete(await session.get(Lead, seeded.lead_id))

    composed = await env.run(activities.compose_message, seeded.step())

    assert composed.skipped_reason == "the lead no longer exists"
    assert (await env.run(activities.deliver_message, seeded.step())).status == "skipped"


async def test_without_providers_messages_are_recorded_and_logged(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    env: ActivityEnvironment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    activities = OutboundActivities(sessions, settings)
    seeded = await seed(sessions)
    email_step, sms_step = seeded.step(), seeded.step(channel=Channel.sms, step=1)

    with caplog.at_level(logging.INFO, logger="activities.outbound"):
        for step in (email_step, sms_step):
            await env.run(activities.compose_message, step)
            assert (await env.run(activities.deliver_message, step)).status == "recorded"

    for step in (email_step, sms_step):
        delivery = await the_delivery(sessions, step.idempotency_key)
        assert (delivery.status, delivery.provider) == ("recorded", "recorded")
        assert f"{delivery.id} for {seeded.lead_id} recorded, not sent" in caplog.text
    assert "jane@example.com" not in caplog.text
    interactions = await load(sessions, Interaction, lead_id=seeded.lead_id)
    assert sorted((i.type, i.status) for i in interactions) == [("email", "recorded"), ("sms", "recorded")]
    [lead] = await load(sessions, Lead, id=seeded.lead_id)
    assert lead.status == "contacted"


async def test_an_unrenderable_template_skips_the_step_instead_of_failing_forever(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    activities = OutboundActivities(sessions, settings)
    seeded = await seed(sessions)
    step = seeded.step(template="Hello {{custom_fields.budget}}")  # this lead has no such custom field

    composed = await env.run(activities.compose_message, step)

    assert composed.skipped_reason is not None and "cannot be rendered" in composed.skipped_reason


# ---------------------------------------------------------------- personalisation


async def test_a_personalised_message_is_written_by_the_openai_compatible_server(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    with OpenAIServer() as llm:
        configured = settings.model_copy(
            update={"llm_base_url": llm.base_url, "llm_api_key": SecretStr("test-key"), "llm_model": "test-model"}
        )
        activities = OutboundActivities(sessions, configured)
        seeded = await seed(sessions, name="Priya Raman")
        step = seeded.step(personalise=True)

        await env.run(activities.compose_message, step)

    [request] = llm.requests
    assert request["body"]["model"] == "test-model"
    assert request["headers"]["authorization"] == "Bearer test-key"
    prompt = request["body"]["messages"][-1]["content"]
    assert "Priya Raman" in prompt
    assert "Hi Priya, thanks for your interest in Acme Inc." in prompt
    delivery = await the_delivery(sessions, step.idempotency_key)
    assert delivery.body == f"Personalised: {prompt}"
    [action] = await load(sessions, WorkflowAction, run_id=seeded.run_id, type="generate_message")
    assert action.details == {"template": "step_0", "step": 0, "writer": "openai"}


async def test_personalising_without_a_model_uses_the_offline_writer(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    activities = OutboundActivities(sessions, settings)
    seeded = await seed(sessions, name="Priya Raman")
    step = seeded.step(template="Thanks for getting in touch with {{company_name}}.", personalise=True)

    await env.run(activities.compose_message, step)

    delivery = await the_delivery(sessions, step.idempotency_key)
    assert delivery.body == "Hi Priya,\n\nThanks for getting in touch with Acme Inc."


async def test_the_offline_writer_is_deterministic_and_does_not_greet_twice() -> None:
    writer = OfflineWriter()
    priya = Recipient(name="Priya Raman", first_name="Priya", source="ad", company_name="Acme", channel=Channel.email)
    greeted = "Hello Priya, welcome!\nMore text."
    assert await writer.personalise(greeted, priya) == greeted
    assert await writer.personalise("Welcome!", priya) == await writer.personalise("Welcome!", priya)
    nameless = Recipient(name="", first_name="", source="ad", company_name="Acme", channel=Channel.sms)
    assert await writer.personalise("Welcome!", nameless) == "Welcome!"


# ---------------------------------------------------------------- SMS


async def test_sms_goes_through_the_twilio_compatible_api(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    with SmsServer() as server:
        activities = OutboundActivities(sessions, sms_settings(settings, server))
        seeded = await seed(sessions)
        step = seeded.step(channel=Channel.sms, template="Hi {{first_name}}, {{company_name}} here.")
        await env.run(activities.compose_message, step)

        outcome = await env.run(activities.deliver_message, step)
        again = await env.run(activities.deliver_message, step)

    assert (outcome.status, again.status) == ("sent", "sent")
    [request] = server.requests
    assert request["account"] == "AC123"
    assert request["auth"] == ("AC123", "sms-secret")
    assert request["form"] == {
        "To": "+15555550100",
        "From": "+15555550199",
        "Body": "Hi Jane, Acme Inc here.\n\nReply STOP to opt out.",
    }
    delivery = await the_delivery(sessions, step.idempotency_key)
    assert delivery.provider == "twilio"
    assert delivery.provider_message_id is not None and delivery.provider_message_id.startswith("SM")
    assert delivery.subject is None
    [interaction] = await load(sessions, Interaction, lead_id=seeded.lead_id)
    assert (interaction.type, interaction.status) == ("sms", "sent")
    [action] = await load(sessions, WorkflowAction, run_id=seeded.run_id, type="send_sms")
    assert action.details["recipient"] == "+15555550100"


async def test_an_sms_the_api_rejects_fails_and_is_not_resent(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    with SmsServer() as server:
        server.status = 400
        activities = OutboundActivities(sessions, sms_settings(settings, server))
        seeded = await seed(sessions)
        step = seeded.step(channel=Channel.sms)
        await env.run(activities.compose_message, step)

        assert (await env.run(activities.deliver_message, step)).status == "failed"
        assert (await env.run(activities.deliver_message, step)).status == "failed"

    assert len(server.requests) == 1
    delivery = await the_delivery(sessions, step.idempotency_key)
    assert delivery.error is not None and "400" in delivery.error and "not valid" in delivery.error
    assert await load(sessions, Interaction, lead_id=seeded.lead_id) == []


async def test_an_sms_api_that_does_not_answer_is_unknown() -> None:
    with SmsServer() as server:
        server.hang_seconds = 1.0
        configured = sms_settings(Settings(environment="test"), server)
        result = await sms_channel.send(
            configured.model_copy(update={"sms_timeout_seconds": 0.3}), "+15555550100", "Hello"
        )
    assert result.status == "unknown"
    assert len(server.requests) == 1  # the request did arrive: resending could double it


async def test_an_unreachable_sms_api_is_retryable() -> None:
    unreachable = Settings(environment="test", sms_api_url=f"http://127.0.0.1:{free_port()}/2010-04-01")
    with pytest.raises(ProviderUnavailable):
        await sms_channel.send(unreachable, "+15555550100", "Hello")


# ---------------------------------------------------------------- timing and finishing


async def test_plan_send_time_uses_the_leads_zone_then_the_companys(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    activities = OutboundActivities(sessions, settings)
    in_new_york = await seed(sessions, lead_timezone="America/New_York", company_timezone="Europe/Berlin")
    company_zone = await seed(sessions, lead_timezone="Not/AZone", company_timezone="Europe/Berlin")
    saturday_noon_utc = datetime(2025, 6, 7, 12, 0, tzinfo=UTC)
    window = SendWindow(start="09:00", end="17:00", days=[0, 1, 2, 3, 4])

    def plan(seeded: Seeded, channel: Channel, window: SendWindow | None, moment: datetime) -> PlanSendInput:
        return PlanSendInput(
            company_id=seeded.company_id,
            contact_id=seeded.lead_id,
            channel=channel,
            not_before=moment,
            send_window=window,
        )

    monday_9_new_york = datetime(2025, 6, 9, 13, 0, tzinfo=UTC)
    assert await env.run(activities.plan_send_time, plan(in_new_york, Channel.email, window, saturday_noon_utc)) == (
        monday_9_new_york
    )
    monday_9_berlin = datetime(2025, 6, 9, 7, 0, tzinfo=UTC)
    assert await env.run(activities.plan_send_time, plan(company_zone, Channel.email, window, saturday_noon_utc)) == (
        monday_9_berlin
    )
    # SMS at 22:30 Berlin time waits for 08:00 even without a window; email goes at once.
    late = datetime(2025, 6, 7, 20, 30, tzinfo=UTC)
    assert await env.run(activities.plan_send_time, plan(company_zone, Channel.sms, None, late)) == datetime(
        2025, 6, 8, 6, 0, tzinfo=UTC
    )
    assert await env.run(activities.plan_send_time, plan(company_zone, Channel.email, None, late)) == late


async def test_plan_send_time_refuses_a_window_that_never_opens(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    activities = OutboundActivities(sessions, settings)
    seeded = await seed(sessions)
    never = PlanSendInput(
        company_id=seeded.company_id,
        contact_id=seeded.lead_id,
        channel=Channel.sms,
        not_before=datetime(2025, 6, 7, tzinfo=UTC),
        send_window=SendWindow(start="22:00", end="06:00"),  # SMS may never go out in it
    )
    with pytest.raises(ApplicationError) as raised:
        await env.run(activities.plan_send_time, never)
    assert raised.value.non_retryable


async def test_finish_run_writes_status_results_and_an_action_once(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: ActivityEnvironment
) -> None:
    activities = OutboundActivities(sessions, settings)
    seeded = await seed(sessions, phone=None)
    sent, skipped = seeded.step(step=0), seeded.step(channel=Channel.sms, step=1)
    for step in (sent, skipped):
        await env.run(activities.compose_message, step)
        await env.run(activities.deliver_message, step)
    finish = FinishRunInput(run_id=seeded.run_id, status="stopped", steps_sent=2, stopped_by=LeadEvent.replied)

    await env.run(activities.finish_run, finish)
    await env.run(activities.finish_run, finish)  # a retry after a lost result

    [run] = await load(sessions, WorkflowRun, id=seeded.run_id)
    assert run.status == "stopped"
    assert run.completed_at is not None
    assert run.results == {"messages_sent": 1, "unresolved": 0, "stopped_by": "replied"}
    [action] = await load(sessions, WorkflowAction, run_id=seeded.run_id, type="finish")
    assert action.details["status"] == "stopped"
