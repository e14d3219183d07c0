"""Issue 10's scale-out proof: the production topology on one machine, every part a real process or server.

PostgreSQL, Redis (the shared rate limits), the Temporal dev server, ``bas migrate``, two ``bas api`` processes
used in turn (as a round-robin balancer would), three ``bas worker`` processes, SMTP, an OpenAI-compatible model
and a webhook receiver on loopback. Leads, sales and content are created over both APIs in turn, one worker is
SIGKILLed while the sequences are mid-flight, and then everything is counted where it landed: at the SMTP server,
the model, the receiver, in PostgreSQL and in Temporal. Meanwhile a second user spends a small hourly budget over
both APIs: the limit holds across them, because its counts live in Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from db.models import Content, DomainEvent, MessageDelivery, Review, WebhookDelivery, WorkflowRun
from db.session import create_engine, session_factory
from tests.support.openai_server import OpenAIServer
from tests.support.postgres import PostgresServer
from tests.support.processes import free_port
from tests.support.smtp_server import SmtpServer
from tests.support.topology import BasProcesses, RedisServer, RoundRobin, topology_environment, wait_healthy
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.slow

log = logging.getLogger(__name__)

LEADS, SALES, CONTENT = 12, 4, 2
STEPS = 3
STEP_DELAY_HOURS = 0.002  # 7.2 s between messages: the kill lands while the sequences are mid-flight
REVIEW_DELAY_HOURS = 0.002  # the review requests are still asleep when the worker dies
WORKERS = 3
USER_HOURLY_LIMIT = 30
SUBSCRIBED = ["lead.created", "customer.created", "sale.created", "workflow_run.completed"]
WEBHOOK_SECRET = "a scale-out signing secret"
DEADLINE_SECONDS = 150  # everything settled, kill and recovery included


@dataclass
class Topology:
    apis: RoundRobin
    processes: BasProcesses
    db: async_sessionmaker[AsyncSession]
    temporal: Client
    smtp: SmtpServer
    llm: OpenAIServer
    receiver: WebhookReceiver
    redis: RedisServer
    up_in_seconds: float
    """From ``bas migrate`` to both APIs healthy."""


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def llm() -> Iterator[OpenAIServer]:
    article = {"title": "Automation at scale", "body": "Automate the boring parts first. " * 120, "tags": []}
    with OpenAIServer(reply=lambda _request: json.dumps({**article, "sections": []})) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
async def topology(
    tmp_path: Path,
    postgres_server: tuple[PostgresServer, str],
    temporal_dev: WorkflowEnvironment,
    smtp: SmtpServer,
    llm: OpenAIServer,
    receiver: WebhookReceiver,
    redis_server: RedisServer,
) -> AsyncIterator[Topology]:
    server, _template = postgres_server
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=server.url(server.create_database()),  # empty: ``bas migrate`` creates the schema
        task_queue_prefix=f"scale-{uuid.uuid4().hex[:8]}",
        jwt_secret=SecretStr(secrets.token_urlsafe(48)),
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_starttls=False,
        email_from="Acme Inc <hello@acme.example.com>",
        llm_base_url=llm.base_url,
        llm_model="test-model",
        public_base_url="http://testserver",
        rate_limit_storage=redis_server.url,
        rate_limit_per_ip_minute=100_000,  # every call comes from 127.0.0.1; the per-user budget is under test
        rate_limit_per_user_hour=USER_HOURLY_LIMIT,
        webhook_allowed_networks=["127.0.0.0/8"],
        webhook_relay_interval_seconds=0.2,  # both relays pass often: they race for the same events
    )
    temporal_address = temporal_dev.client.service_client.config.target_host
    processes = BasProcesses(topology_environment(settings, temporal_address), tmp_path / "logs")
    ports = [free_port(), free_port()]
    engine = create_engine(settings)
    apis = RoundRobin.over([f"http://127.0.0.1:{port}" for port in ports])
    begun = time.monotonic()
    try:
        # Workers need no schema to start polling, so they come up while ``bas migrate`` runs; the APIs after it.
        for index in range(WORKERS):
            processes.start(f"worker-{index}", "worker")
        await asyncio.to_thread(processes.run, "migrate", "migrate")
        for index, port in enumerate(ports):
            processes.start(f"api-{index}", "api", "--port", str(port))
        await asyncio.gather(
            *(
                asyncio.to_thread(wait_healthy, f"http://127.0.0.1:{port}", processes, f"api-{index}")
                for index, port in enumerate(ports)
            )
        )
        yield Topology(
            apis,
            processes,
            session_factory(engine),
            temporal_dev.client,
            smtp,
            llm,
            receiver,
            redis_server,
            up_in_seconds=time.monotonic() - begun,
        )
    finally:
        await apis.aclose()
        await asyncio.to_thread(processes.stop_all)
        await engine.dispose()


class Caller:
    """One signed-in user calling the APIs in turn (a turn of its own, whatever others do at the same time);
    remembers the remaining budget every answer reported."""

    def __init__(self, apis: RoundRobin, token: str) -> None:
        self._apis = apis.again()
        self._headers = {"Authorization": f"Bearer {token}"}
        self.remaining: list[int] = []

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx2.Response:
        response = await self._apis.next().request(method, path, headers=self._headers, json=body)
        self.remaining.append(int(response.headers["X-RateLimit-Remaining"]))
        return response

    async def create(self, path: str, body: dict[str, Any], expected: tuple[int, ...] = (201,)) -> dict[str, Any]:
        response = await self.call("POST", path, body)
        assert response.status_code in expected, f"{path}: {response.status_code} {response.text}"
        created: dict[str, Any] = response.json()
        return created


async def _register(apis: RoundRobin, company: str) -> tuple[str, str]:
    """A new company and its admin (unauthenticated: only the per-address budget counts it); (company, token)."""
    response = await apis.next().post(
        "/v1/auth/register",
        json={
            "email": f"owner-{uuid.uuid4().hex[:8]}@example.com",
            "password": "correct horse battery",
            "name": "Owner",
            "company_name": company,
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["company_id"]), str(response.json()["token"])


async def _configure(owner: Caller, receiver: WebhookReceiver) -> None:
    await owner.create(
        "/api/webhooks", {"url": f"{receiver.url}/events", "events": SUBSCRIBED, "secret": WEBHOOK_SECRET}
    )
    patched = await owner.call(
        "PATCH", "/v1/companies/current", {"settings": {"review_links": {"google": "https://g.page/r/acme/review"}}}
    )
    assert patched.status_code == 200, patched.text
    await owner.create(
        "/v1/workflow-configs",
        {
            "name": "Three-step follow-up",
            "workflow_type": "lead_nurturing",
            "active": True,
            "triggers": {"lead_source": [], "tags": []},
            "actions": {
                "initial_delay_minutes": 0,
                "message_template": "step1",
                "subject": "Step 1",
                "follow_up": [
                    {"delay_hours": STEP_DELAY_HOURS, "message_template": f"step{n}", "subject": f"Step {n}"}
                    for n in range(2, STEPS + 1)
                ],
            },
            "templates": {f"step{n}": f"Hello {{{{name}}}}, this is step {n}." for n in range(1, STEPS + 1)},
        },
    )
    await owner.create(
        "/v1/workflow-configs",
        {
            "name": "Review request",
            "workflow_type": "review_referral",
            "actions": {
                "delay_hours": REVIEW_DELAY_HOURS,
                "platform": "google",
                "message_template": "ask",
                "subject": "How was it, {{first_name}}?",
            },
            "templates": {"ask": "Hi {{first_name}}, would you review us? {{review_link}}"},
        },
    )


async def _spend_budget_over_both(apis: RoundRobin, limit: int) -> dict[str, Any]:
    """A second user spends its whole hourly budget over both APIs in turn, then asks once more of each."""
    _company, token = await _register(apis, "Budget Co")
    user = Caller(apis, token)
    answers = [await user.call("GET", "/v1/users/me") for _ in range(limit)]
    assert [answer.status_code for answer in answers] == [200] * limit
    # One counter for both processes: the remaining budget falls by one per call, whichever API answered.
    assert user.remaining == list(range(limit - 1, -1, -1))
    refused = [await user.call("GET", "/v1/users/me") for _ in apis.clients]
    for answer in refused:
        assert answer.status_code == 429, answer.text
        assert answer.json()["error"] and int(answer.headers["Retry-After"]) > 0
    return {"served": len(answers), "refused": [answer.status_code for answer in refused]}


async def _eventually(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}")
        await asyncio.sleep(0.25)
    return result


def _sends_cut_short(worker_log: str) -> int:
    """Emails the killed worker had handed to the SMTP server but not recorded as sent: their outcome died with
    it, and whoever settles them sends them again under the same Message-ID. (Not "composed" but "handing": the
    compose and the deliver of one message may run on different workers.)"""
    handed_over = set(re.findall(r"handing email (msg_\w+)", worker_log))
    return len(handed_over - set(re.findall(r"sent email (msg_\w+)", worker_log)))


def _sends_unanswered(worker_log: str) -> int:
    """Emails a live worker gave up waiting for the SMTP server's answer on: the next attempt resends them."""
    return len(re.findall(r"email msg_\w+ to \w+: no answer from the provider", worker_log))


def _copies_by_recipient(smtp: SmtpServer) -> dict[str, Counter[str]]:
    """For each recipient, how many copies of each Message-ID arrived."""
    copies: dict[str, Counter[str]] = {}
    for message in smtp.messages:
        copies.setdefault(parseaddr(str(message["To"]))[1], Counter())[str(message["Message-ID"])] += 1
    return copies


async def test_two_apis_three_workers_handle_everything_once_and_share_one_rate_limit(topology: Topology) -> None:
    started = time.monotonic()
    apis, smtp = topology.apis, topology.smtp
    company_id, token = await _register(apis, "Acme Inc")
    owner = Caller(apis, token)
    budget = await _spend_budget_over_both(apis, USER_HOURLY_LIMIT)

    await _configure(owner, topology.receiver)
    leads = [
        await owner.create(
            "/v1/leads", {"name": f"Lead {n}", "email": f"lead-{n}@example.com", "source": "website_form"}
        )
        for n in range(LEADS)
    ]
    sales = []
    for n in range(SALES):
        customer = await owner.create("/v1/customers", {"name": f"Cust {n}", "email": f"customer-{n}@example.com"})
        sales.append(
            await owner.create("/v1/sales", {"customer_id": customer["id"], "service_name": "Tune-up", "amount": 90.0})
        )
    # The two generations at once, each over its own API; each answers with the draft or with its id to poll.
    content = await asyncio.gather(
        *(
            owner.create("/v1/content/generate", {"type": "blog", "title": f"Scale {n}"}, expected=(201, 202))
            for n in range(CONTENT)
        )
    )
    # Every call of the owner's came out of one shared budget, whichever API answered it.
    assert min(owner.remaining) == USER_HOURLY_LIMIT - len(owner.remaining)

    # Kill one worker once the sequences are mid-flight: every first message out, some second ones.
    def second_messages() -> int:
        return sum(len(smtp.sent_to(f"lead-{n}@example.com")) >= 2 for n in range(LEADS))

    async def mid_flight() -> bool:
        return second_messages() >= LEADS // 3

    await _eventually(mid_flight, 60, "the second follow-up messages")
    in_flight_at_kill = LEADS - second_messages()
    topology.processes.kill("worker-0")
    killed_log = topology.processes.output("worker-0")
    assert "composed email" in killed_log, "the killed worker had taken no work: nothing was proven"
    cut_short = _sends_cut_short(killed_log)
    killed_after = time.monotonic() - started
    topology.processes.assert_alive("worker-1", "worker-2", "api-0", "api-1")

    async def settled() -> list[WorkflowRun] | None:
        async with topology.db() as session:
            runs = list(await session.scalars(select(WorkflowRun).where(WorkflowRun.company_id == company_id)))
        done = len(runs) == LEADS + SALES + CONTENT and all(run.completed_at is not None for run in runs)
        return runs if done else None

    runs: list[WorkflowRun] = await _eventually(settled, DEADLINE_SECONDS, "every run to finish")

    # (1) + (3) Each lead got each step exactly once, each customer one request, and nothing else: counted at the
    # SMTP server by Message-ID. A second copy under the same Message-ID (which the recipient's mail system
    # collapses) is the product's answer to a send whose outcome died with the worker or got no answer, and only
    # to that.
    copies = _copies_by_recipient(smtp)
    for n in range(LEADS):
        mine = copies[f"lead-{n}@example.com"]
        assert len(mine) == STEPS, (n, mine)
        subjects = {str(m["Subject"]) for m in smtp.sent_to(f"lead-{n}@example.com")}
        assert subjects == {f"Step {step}" for step in range(1, STEPS + 1)}
    for n in range(SALES):
        assert len(copies[f"customer-{n}@example.com"]) == 1, (n, copies[f"customer-{n}@example.com"])
    assert set(copies) == {f"lead-{n}@example.com" for n in range(LEADS)} | {
        f"customer-{n}@example.com" for n in range(SALES)
    }
    resent_copies = len(smtp.messages) - sum(len(mine) for mine in copies.values())
    unanswered = sum(_sends_unanswered(topology.processes.output(name)) for name in ("worker-1", "worker-2"))
    assert resent_copies <= cut_short + unanswered, (resent_copies, cut_short, unanswered)

    async with topology.db() as session:
        deliveries = list(
            await session.scalars(select(MessageDelivery).where(MessageDelivery.company_id == company_id))
        )
        reviews = list(await session.scalars(select(Review).where(Review.company_id == company_id)))
        drafts = list(await session.scalars(select(Content).where(Content.company_id == company_id)))
        events = list(
            await session.scalars(
                select(DomainEvent).where(DomainEvent.company_id == company_id, DomainEvent.type.in_(SUBSCRIBED))
            )
        )

    assert Counter(d.status for d in deliveries) == {"sent": LEADS * STEPS + SALES}
    assert Counter(d.lead_id for d in deliveries if d.lead_id) == dict.fromkeys((lead["id"] for lead in leads), STEPS)
    assert len({d.idempotency_key for d in deliveries}) == len(deliveries)
    assert {d.provider_message_id for d in deliveries} == {str(m["Message-ID"]) for m in smtp.messages}
    by_type = Counter((run.workflow_type, run.status) for run in runs)
    assert by_type == {
        ("lead_nurturing", "completed"): LEADS,
        ("review_referral", "completed"): SALES,
        ("content_generation", "completed"): CONTENT,
    }
    for run in runs:
        if run.workflow_type == "lead_nurturing":
            assert (run.results["messages_sent"], run.results["unresolved"]) == (STEPS, 0), run.results
    assert len(reviews) == SALES
    assert {r.sale_id for r in reviews if r.request_sent_at is not None} == {s["id"] for s in sales}
    assert {item.id for item in drafts} == {item["id"] for item in content}
    assert {item.status for item in drafts} == {"draft"}
    assert len(topology.llm.requests) == CONTENT  # each piece written once, by one worker

    # (4) Both API processes relay the same outbox: still one delivery row, one workflow, one POST per event.
    async def all_delivered() -> bool:
        return len(topology.receiver.received) >= len(events)

    await _eventually(all_delivered, 30, "every webhook delivery")
    await asyncio.sleep(1.0)  # a relay that raced the other one would show up now as a second POST
    posted = Counter(json.loads(request.body)["id"] for request in topology.receiver.received)
    assert posted == dict.fromkeys((event.id for event in events), 1)
    assert Counter(event.type for event in events) == {
        "lead.created": LEADS,
        "customer.created": SALES,
        "sale.created": SALES,
        "workflow_run.completed": LEADS + SALES + CONTENT,
    }
    # Read after every POST arrived: the last events' rows may not exist yet when the runs have just finished.
    async with topology.db() as session:
        webhook_deliveries = list(await session.scalars(select(WebhookDelivery)))
    assert Counter(d.event_id for d in webhook_deliveries) == dict.fromkeys((event.id for event in events), 1)
    # Which relay fanned out how many events (a race both may log); for the figures, not asserted.
    relayed = {name: topology.processes.output(name).count("webhook(s)") for name in ("api-0", "api-1")}

    # In Temporal: one execution per business key, every one completed, nothing started twice.
    async def all_closed() -> list[WorkflowExecution] | None:
        listed = [e async for e in topology.temporal.list_workflows(f"CompanyId = '{company_id}'")]
        return listed if all(e.status != WorkflowExecutionStatus.RUNNING for e in listed) else None

    executions: list[WorkflowExecution] = await _eventually(all_closed, 30, "every execution to close")
    assert len({e.id for e in executions}) == len(executions)
    assert {e.status for e in executions} == {WorkflowExecutionStatus.COMPLETED}
    workflows = Counter(e.workflow_type for e in executions)
    assert workflows["LeadFollowUpWorkflow"] == LEADS
    assert workflows["ReviewRequestWorkflow"] == SALES
    assert workflows["GenerateContentWorkflow"] == CONTENT
    assert {e.id for e in executions if e.workflow_type == "LeadFollowUpWorkflow"} == {
        run.temporal_workflow_id for run in runs if run.workflow_type == "lead_nurturing"
    }
    assert workflows["DeliverWebhookWorkflow"] == len(events)

    # (2) The budgets both APIs counted against are Redis keys, not counters in either process.
    assert any(key.startswith("LIMITS:") for key in topology.redis.stored_keys())
    log.info(
        "scale-out: topology up in %.1fs; %d leads x %d steps, %d sales, %d content over 2 APIs and %d workers; "
        "worker-0 SIGKILLed at %.1fs with %d sequences short of step 2 and %d of its sends cut short; %d emails "
        "(%d resent copies); "
        "%d webhook events, one POST each (fan-outs logged per API relay: %s); rate limit %s; settled in %.1fs",
        topology.up_in_seconds,
        LEADS,
        STEPS,
        SALES,
        CONTENT,
        WORKERS,
        killed_after,
        in_flight_at_kill,
        cut_short,
        len(smtp.messages),
        resent_copies,
        len(events),
        relayed,
        budget,
        time.monotonic() - started,
    )
