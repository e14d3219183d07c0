"""What the benchmarks share: the real app on a real database, a Temporal dev server, the product's own
processes (``bas api``, ``bas worker``), timing, memory, tables and the JSON each run leaves behind."""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue as TaskQueueRef
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from api.main import create_app
from core.config import Settings
from db.migrate import upgrade_to_head
from tests.support.postgres import PostgresServer
from tests.support.processes import free_port
from tests.support.temporal_servers import start_dev_server

BIN = Path(sys.executable).parent
RESULTS = Path(__file__).parent / "results"
# One client on loopback sends every request: the per-address and per-user limits would otherwise
# turn most of a benchmark into 429s.
UNLIMITED = 10_000_000


@asynccontextmanager
async def temporal_dev() -> AsyncIterator[Client]:
    """A real Temporal dev server on a free loopback port (the venv's ``temporal`` binary), UI off.

    ``temporal_address(client)`` is where a ``bas`` process started beside it finds it.
    """
    env = await start_dev_server()
    try:
        yield env.client
    finally:
        await env.shutdown()


def temporal_address(client: Client) -> str:
    return client.service_client.config.target_host


@contextmanager
def sqlite_database() -> Iterator[str]:
    """A migrated SQLite file in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bas-bench-") as folder:
        upgrade_to_head(Settings(environment="test", data_dir=Path(folder)))
        yield f"sqlite:///{Path(folder) / 'bas.db'}"


@contextmanager
def postgres_database(*, migrate: bool = True) -> Iterator[str]:
    """A throwaway PostgreSQL server (the tests' own) with one database, migrated unless told not to."""
    server = PostgresServer()
    server.start()
    try:
        url = server.url(server.create_database())
        if migrate:
            upgrade_to_head(Settings(environment="test", database_url=url))
        yield url
    finally:
        server.stop()


def bench_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    return Settings(
        environment="test",
        data_dir=data_dir,
        database_url=database_url,
        task_queue_prefix=f"bench-{uuid.uuid4().hex[:10]}",
        rate_limit_per_ip_minute=UNLIMITED,
        rate_limit_per_user_hour=UNLIMITED,
        log_level="WARNING",
        **overrides,
    )


def smtp_settings(host: str, port: int) -> dict[str, Any]:
    """What points the product at a loopback SMTP server (plain text: no STARTTLS on 127.0.0.1)."""
    return {"smtp_host": host, "smtp_port": port, "smtp_starttls": False, "email_from": "Bench <bench@example.com>"}


@asynccontextmanager
async def api_client(settings: Settings, temporal: Client) -> AsyncIterator[httpx2.AsyncClient]:
    """The real FastAPI app, lifespan included, called in-process (no sockets, no scheduler jitter)."""
    app = create_app(settings, temporal_client=temporal)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://bench") as client,
    ):
        yield client


@dataclass(frozen=True)
class Account:
    email: str
    headers: dict[str, str]


async def register(client: httpx2.AsyncClient) -> Account:
    """A new company and its admin, signed in."""
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": uuid.uuid4().hex, "name": "Owner", "company_name": "Bench Inc"}
    response = await client.post("/v1/auth/register", json=body)
    expect(response, 201)
    return Account(email, {"Authorization": f"Bearer {response.json()['token']}"})


def expect(response: httpx2.Response, status: int) -> None:
    """A benchmark of failing requests measures nothing: stop at the first unexpected answer."""
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: expected {status}, "
            f"got {response.status_code}: {response.text[:300]}"
        )


@dataclass
class Samples:
    """Latencies in seconds of one kind of request, taken one after another."""

    seconds: list[float] = field(default_factory=list)

    async def time(self, call: Callable[[], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        result = await call()
        self.seconds.append(time.perf_counter() - started)
        return result

    def percentile(self, share: float) -> float:
        """Nearest-rank percentile: an observed latency, never an interpolation between two."""
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def per_second(self) -> float:
        """Requests per second of a client that sends the next request when the last one answered."""
        return len(self.seconds) / sum(self.seconds)

    def summary(self) -> dict[str, float]:
        """The figures the JSON result keeps: count, one-at-a-time rate and latency percentiles in ms."""
        return {
            "count": len(self.seconds),
            "per_second": round(self.per_second, 2),
            **{f"p{round(share * 100)}_ms": round(self.percentile(share) * 1000, 2) for share in (0.5, 0.95, 0.99)},
            "max_ms": round(max(self.seconds) * 1000, 2),
        }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


_TABLES: list[dict[str, Any]] = []
"""Every table printed since the last ``take_tables()``: the JSON result carries them as printed."""


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a plain-text table: the first column left-aligned, the figures right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join([first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))])

    print(f"\n{title}")
    print(line(header))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(line(row))
    _TABLES.append({"title": title, "header": list(header), "rows": [list(row) for row in rows]})


def take_tables() -> list[dict[str, Any]]:
    tables = list(_TABLES)
    _TABLES.clear()
    return tables


# ---- the machine and the JSON results


def _first_line(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else None


def machine() -> dict[str, Any]:
    """What the figures were measured on; the README's machine line is made from it."""
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown",
    )
    memory_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    pg_ctl = shutil.which("pg_ctl") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))), None)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(memory_kib / 1024**2, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": _first_line([str(pg_ctl), "--version"]) if pg_ctl else None,
        "temporal": _first_line([str(BIN / "temporal"), "--version"]),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
    }


def machine_line(facts: dict[str, Any]) -> str:
    return (
        f"{facts['cpus']} x {facts['cpu_model']}, {facts['memory_gib']} GiB RAM, Linux {facts['kernel']}, "
        f"Python {facts['python']}, {facts['postgresql']}, {facts['temporal']}"
    )


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """``bench/results/<name>.json``: the latest run's figures, overwritten by the next run."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---- load


async def closed_loop(total: int, concurrency: int, call: Callable[[int], Awaitable[Any]], samples: Samples) -> float:
    """``total`` calls numbered from 0, at most ``concurrency`` in flight, each lane sending its next call when
    the last one answered; each call's latency goes to ``samples``. Returns the wall seconds of the whole run."""
    numbers = iter(range(total))

    async def lane() -> None:
        for number in numbers:
            await samples.time(lambda number=number: call(number))  # type: ignore[misc]

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(min(concurrency, total))))
    return time.perf_counter() - started


# ---- the product's own processes


def bas_environment(settings: Settings, temporal: str) -> dict[str, str]:
    """``settings`` as the ``BAS_*`` variables a ``bas`` process reads, pointed at ``temporal`` (host:port)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BAS_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | dict):
            text = json.dumps(value)
        else:
            text = str(value)
        env[f"BAS_{name.upper()}"] = text
    env["BAS_TEMPORAL_ADDRESS"] = temporal
    return env


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process so far, from ``/proc/<pid>/stat`` (fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class BasProcess:
    """A ``bas`` command running as its own process, its output in ``log``."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    base_url: str = ""
    """Where it answers HTTP (``bas api``)."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log_tail()}")

    def log_tail(self, characters: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-characters:] if self.log.exists() else ""

    def memory_mib(self, field_name: str = "VmRSS") -> float:
        """Resident memory now (``VmRSS``) or its peak so far (``VmHWM``), in MiB, from ``/proc``."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"{self.name}: no {field_name} in /proc/{self.pid}/status")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far (``/proc/<pid>/stat``)."""
        return cpu_seconds(self.pid)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (the product's graceful stop), then SIGKILL if it is still there after ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextmanager
def bas_process(name: str, arguments: Sequence[str], env: dict[str, str], folder: Path) -> Iterator[BasProcess]:
    """``bas <arguments>`` in ``folder`` with ``env``, stopped (SIGTERM) when the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 (our own command line)
            [str(BIN / "bas"), *arguments], env=env, cwd=folder, stdout=output, stderr=subprocess.STDOUT
        )
    running = BasProcess(name, process, log)
    try:
        yield running
    finally:
        running.stop()


def http_client(base_url: str, connections: int = 100) -> httpx2.AsyncClient:
    """A client for a ``bas api`` process. Idle connections are dropped after 2 s, before uvicorn's 5 s keep-alive
    ends them from its side: reusing one the server is closing at that moment fails the request (``ReadError``)."""
    limits = httpx2.Limits(max_connections=connections, keepalive_expiry=2.0)
    return httpx2.AsyncClient(base_url=base_url, timeout=60, limits=limits)


@contextmanager
def profiled(process: BasProcess, name: str) -> Iterator[None]:
    """With ``BENCH_PROFILE=1`` and py-spy installed (``pip install py-spy``; not a dependency), sample ``process``
    while the block runs into ``bench/results/<name>``: collapsed stacks, one line per stack with its count."""
    py_spy = shutil.which("py-spy") or (str(BIN / "py-spy") if (BIN / "py-spy").exists() else None)
    if not os.environ.get("BENCH_PROFILE") or py_spy is None:
        yield
        return
    RESULTS.mkdir(exist_ok=True)
    command = [py_spy, "record", "--pid", str(process.pid), "--format", "raw", "--output", str(RESULTS / name)]
    profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        yield
    finally:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        profiler.wait(timeout=60)


@asynccontextmanager
async def bas_api(settings: Settings, temporal: str, folder: Path, *, workers: int = 1) -> AsyncIterator[BasProcess]:
    """``bas api`` (uvicorn) on a free loopback port; yields it once it answers at its ``base_url``."""
    port = free_port()
    arguments = ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with bas_process("api", arguments, bas_environment(settings, temporal), folder) as api:
        api.base_url = f"http://127.0.0.1:{port}"
        async with httpx2.AsyncClient(base_url=api.base_url, timeout=5) as probe:
            deadline = time.monotonic() + 60
            while True:
                api.check_alive()
                try:
                    await probe.get("/api/system/health")
                    break
                except httpx2.TransportError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"bas api did not answer within 60 s: {api.log_tail()}") from None
                    await asyncio.sleep(0.2)
        yield api


async def pollers(client: Client, queue: str) -> int:
    """How many workers poll ``queue`` for workflow tasks and for activity tasks (the fewer of the two)."""
    counts = []
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace, task_queue=TaskQueueRef(name=queue), task_queue_type=kind
            )
        )
        counts.append(len(response.pollers))
    return min(counts)


@asynccontextmanager
async def bas_worker(settings: Settings, client: Client, folder: Path) -> AsyncIterator[BasProcess]:
    """``bas worker`` as its own process; yields it once it polls the main task queue."""
    from schemas.temporal import QueueKind

    with bas_process("worker", ["worker"], bas_environment(settings, temporal_address(client)), folder) as worker:
        deadline = time.monotonic() + 60
        while await pollers(client, settings.task_queue(QueueKind.MAIN)) == 0:
            worker.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"bas worker did not poll within 60 s: {worker.log_tail()}")
            await asyncio.sleep(0.2)
        yield worker


def follow_up_config(*, follow_up_delay_hours: float = 24.0, initial_delay_minutes: float = 0) -> dict[str, Any]:
    """A lead-nurturing workflow config for ``POST /v1/workflow-configs``: an email at once, one follow-up later."""
    return {
        "name": "Bench follow-up",
        "workflow_type": "lead_nurturing",
        "active": True,
        "triggers": {"lead_source": ["website_form"], "tags": []},
        "actions": {
            "initial_delay_minutes": initial_delay_minutes,
            "message_template": "welcome",
            "channel": "email",
            "subject": "Thanks for your interest, {{first_name}}",
            "follow_up": [{"delay_hours": follow_up_delay_hours, "message_template": "follow_up"}],
        },
        "templates": {
            "welcome": "Hello {{name}}, thank you for your interest in {{company_name}}.",
            "follow_up": "Hello {{name}}, I wanted to follow up on our previous message.",
        },
    }


def lead_body(number: int, marker: str = "bench") -> dict[str, Any]:
    """A website lead with a unique address, as a form would post it."""
    return {
        "name": f"Lead {number}",
        "email": f"{marker}-{number}@example.com",
        "source": "website_form",
        "tags": [marker],
    }


class Mailbox:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that notes when each message arrived and for whom.

    It keeps no message text, so ten thousand messages cost it little; times are ``time.perf_counter()`` of this
    process, comparable with the benchmark's own clock.
    """

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.arrivals: defaultdict[str, list[float]] = defaultdict(list)
        self.received = 0
        self._controller = Controller(self, hostname=self.host, port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd)
        arrived = time.perf_counter()
        for recipient in envelope.rcpt_tos:
            self.arrivals[recipient.lower()].append(arrived)
        self.received += 1
        return "250 Message accepted for delivery"

    async def wait_for(self, count: int, seconds: float) -> None:
        """Until ``count`` messages have arrived; ``TimeoutError`` after ``seconds``."""
        async with asyncio.timeout(seconds):
            # The server runs on its own thread's event loop: an asyncio.Event of ours could not be set from there.
            while self.received < count:  # noqa: ASYNC110
                await asyncio.sleep(0.05)

    def __enter__(self) -> Mailbox:
        self._controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._controller.stop()


async def start_follow_up(
    client: Client,
    queue: str,
    *,
    company_id: str,
    lead_id: str,
    config_id: str,
    run_id: str,
    delays_hours: Sequence[float] = (0, 24),
) -> None:
    """Start a ``LeadFollowUpWorkflow`` as ``services.runs.start_recorded`` does (input, search attributes, summary,
    memo), straight on Temporal: for starts without the API, or to compare with it."""
    from schemas.lead_follow_up import FollowUpStep, LeadFollowUpInput
    from schemas.leads import Channel
    from schemas.temporal import run_attributes
    from workflows.lead_follow_up import LeadFollowUpWorkflow

    steps = [
        FollowUpStep(delay_hours=delay, template_key=f"step-{index}", template="Hello {{name}}", channel=Channel.email)
        for index, delay in enumerate(delays_hours)
    ]
    await client.start_workflow(
        LeadFollowUpWorkflow.run,
        LeadFollowUpInput(company_id=company_id, lead_id=lead_id, config_id=config_id, run_id=run_id, steps=steps),
        id=f"lead-follow-up/{lead_id}/{config_id}",
        task_queue=queue,
        search_attributes=run_attributes(company_id, lead_id, config_id),
        static_summary=f"Follow-up of {lead_id} by 'Bench follow-up' ({len(steps)} steps)",
        memo={"run_id": run_id, "trigger_type": "new_lead"},
    )
