"""Newsletter fan-out: one email content item to 10,000 subscribed leads through a real SMTP server.

A real ``bas worker`` process on PostgreSQL and the Temporal dev server, configured with ``BAS_SMTP_*`` for an
aiosmtpd server on 127.0.0.1. The audience is written in bulk; ``NewsletterWorkflow`` is started on its publication
as ``PublishContentWorkflow`` starts it. The figures: messages per second from the workflow's start to the last
message at the SMTP server, the worker's CPU per message and memory (idle, peak, after), and that every address
got exactly one. ``BAS_NEWSLETTER_CONCURRENCY`` in the environment sets the sends in flight per batch (default 8).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import (
    Mailbox,
    api_client,
    bas_worker,
    bench_settings,
    expect,
    postgres_database,
    profiled,
    register,
    smtp_settings,
    table,
    temporal_dev,
)
from schemas.content_workflows import NewsletterInput, NewsletterProgress
from schemas.temporal import QueueKind
from workflows.newsletter import NewsletterWorkflow, newsletter_workflow_id

CONTENT_ID = "cont_benchnewsletter0"
PUBLICATION_ID = "pub_benchnewsletter00"
RUN_ID = "run_benchnewsletter00"
SEND_LIMIT_SECONDS = 900


@dataclass(frozen=True)
class Sizes:
    recipients: int


FULL = Sizes(recipients=10_000)
QUICK = Sizes(recipients=1_000)


def _seed(url: str, company_id: str, recipients: int) -> None:
    """The newsletter, its publication and run, and ``recipients`` leads with an address, in four statements."""
    values = {"company": company_id, "content": CONTENT_ID, "publication": PUBLICATION_ID, "run": RUN_ID}
    with psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor) as connection:
        connection.execute(
            """
            INSERT INTO content (id, company_id, type, title, body, status, tags, metadata, parameters, created_by,
                                 requires_approval, created_at, updated_at)
            VALUES (%(content)s, %(company)s, 'email', 'Spring news', 'Our spring offers are here: 20%% off.

Read more: https://shop.example.com/spring', 'approved', '[]', '{}', '{}', 'system', false, now(), now())
            """,
            values,
        )
        connection.execute(
            """
            INSERT INTO workflow_runs (id, company_id, workflow_type, temporal_workflow_id, status, trigger_type,
                                       trigger_id, results, started_at)
            VALUES (%(run)s, %(company)s, 'content_publishing', 'content-publish/' || %(content)s, 'running',
                    'manual', %(content)s, '{}', now())
            """,
            values,
        )
        connection.execute(
            """
            INSERT INTO publications (id, company_id, content_id, platform, status, attempts, progress,
                                      workflow_run_id, created_at, updated_at)
            VALUES (%(publication)s, %(company)s, %(content)s, 'newsletter', 'sending', 0, '{}', %(run)s, now(), now())
            """,
            values,
        )
        connection.execute(
            """
            INSERT INTO leads (id, company_id, name, email, source, status, tags, custom_fields, created_at, updated_at)
            SELECT 'lead_news' || lpad(n::text, 8, '0'), %(company)s, 'Reader ' || n, 'reader' || n || '@example.com',
                   'website_form', 'new', '[]', '{}', now() - interval '1 day', now() - interval '1 day'
            FROM generate_series(1, %(recipients)s) AS n
            """,
            {**values, "recipients": recipients},
        )


@dataclass
class Fanout:
    progress: NewsletterProgress
    send_seconds: float
    idle_mib: float
    peak_mib: float
    after_mib: float
    worker_cpu_seconds: float
    concurrency: int


async def _run(sizes: Sizes) -> Fanout:
    async with AsyncExitStack() as stack:
        temporal = await stack.enter_async_context(temporal_dev())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bas-bench-")))
        mailbox = stack.enter_context(Mailbox())
        url = stack.enter_context(postgres_database())
        settings = bench_settings(url, folder, **smtp_settings(mailbox.host, mailbox.port))
        client = await stack.enter_async_context(api_client(settings, temporal))
        account = await register(client)
        patched = await client.patch(
            "/v1/companies/current", headers=account.headers, json={"postal_address": "1 Main Street, Springfield"}
        )
        expect(patched, 200)
        _seed(url, patched.json()["id"], sizes.recipients)

        worker = await stack.enter_async_context(bas_worker(settings, temporal, folder / "worker"))
        await asyncio.sleep(2)  # past the worker's start-up work: its idle memory
        idle, cpu = worker.memory_mib(), worker.cpu_seconds()
        started = time.perf_counter()
        handle = await temporal.start_workflow(
            NewsletterWorkflow.run,
            NewsletterInput(
                company_id=patched.json()["id"], content_id=CONTENT_ID, publication_id=PUBLICATION_ID, run_id=RUN_ID
            ),
            id=newsletter_workflow_id(PUBLICATION_ID),
            task_queue=settings.task_queue(QueueKind.MAIN),
        )
        with profiled(worker, "newsletter.worker-profile.txt"):
            async with asyncio.timeout(SEND_LIMIT_SECONDS):
                progress = await handle.result()
        await mailbox.wait_for(sizes.recipients, 30)
        send_seconds = max(max(times) for times in mailbox.arrivals.values()) - started
        cpu = worker.cpu_seconds() - cpu
        fanout = Fanout(
            progress,
            send_seconds,
            idle,
            worker.memory_mib("VmHWM"),
            worker.memory_mib(),
            cpu,
            settings.newsletter_concurrency,
        )
    duplicated = {address: len(times) for address, times in mailbox.arrivals.items() if len(times) != 1}
    if progress.sent != sizes.recipients or len(mailbox.arrivals) != sizes.recipients or duplicated:
        raise RuntimeError(
            f"sent {progress.sent} of {sizes.recipients}; {len(mailbox.arrivals)} addresses reached; "
            f"not exactly once: {dict(list(duplicated.items())[:5])}"
        )
    return fanout


def _report(fanout: Fanout, sizes: Sizes) -> dict[str, Any]:
    rate = fanout.progress.sent / fanout.send_seconds
    table(
        f"Newsletter to {sizes.recipients:,} subscribed leads, {fanout.concurrency} sends at once per batch: "
        "bas worker, PostgreSQL, SMTP on 127.0.0.1 (each address exactly once)",
        ["", "figure"],
        [
            ["messages/s (start to last message at the SMTP server)", f"{rate:.1f}"],
            ["seconds", f"{fanout.send_seconds:.1f}"],
            ["worker CPU ms per message", f"{fanout.worker_cpu_seconds * 1000 / fanout.progress.sent:.1f}"],
            ["worker RSS idle MiB", f"{fanout.idle_mib:.0f}"],
            ["worker RSS peak MiB (VmHWM)", f"{fanout.peak_mib:.0f}"],
            ["worker RSS after MiB", f"{fanout.after_mib:.0f}"],
        ],
    )
    return {
        "sizes": asdict(sizes),
        "newsletter_concurrency": fanout.concurrency,
        "progress": fanout.progress.model_dump(),
        "messages_per_second": round(rate, 1),
        "send_seconds": round(fanout.send_seconds, 1),
        "worker_cpu_ms_per_message": round(fanout.worker_cpu_seconds * 1000 / fanout.progress.sent, 2),
        "worker_rss_idle_mib": round(fanout.idle_mib, 1),
        "worker_rss_peak_mib": round(fanout.peak_mib, 1),
        "worker_rss_after_mib": round(fanout.after_mib, 1),
    }


def main(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    return _report(asyncio.run(_run(sizes)), sizes)
