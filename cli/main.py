"""``bas``: run, migrate and operate the Business Automation System."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from cli import backup as backup_commands
from cli.leads import app as leads_app
from cli.privacy import erase, export_person
from core.config import Settings, get_settings
from core.logging import configure_logging

app = typer.Typer(
    help="Business Automation System: lead follow-up, reviews & referrals and content on Temporal.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(leads_app, name="leads")
backup_commands.register(app)
app.command("erase")(erase)
app.command("export-person")(export_person)
log = logging.getLogger("bas")


def _settings(**overrides: object) -> Settings:
    settings = get_settings()
    if overrides:
        settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level)
    return settings


@app.command()
def migrate() -> None:
    """Bring the database schema to the latest version (safe to run repeatedly)."""
    from db.migrate import upgrade_to_head

    settings = _settings()
    upgrade_to_head(settings)
    log.info("database at %s is up to date", settings.sqlalchemy_url.split("@")[-1])


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Uvicorn worker processes.")] = 1,
) -> None:
    """Serve the HTTP API (both surfaces) with uvicorn."""
    settings = _settings()
    # loop and http stay "auto": uvicorn then takes uvloop and httptools (dependencies), which cost the API about a
    # fifth less CPU per request than asyncio's own loop and h11 (docs/performance.md).
    uvicorn.run(
        "api.main:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        log_level=settings.log_level.lower(),
    )


@app.command()
def worker() -> None:
    """Run a Temporal worker for every task queue; SIGTERM finishes running activities first."""
    from worker.main import run_worker

    asyncio.run(run_worker(_settings()))


class _SignalFreeServer(uvicorn.Server):
    """Uvicorn without its own signal handling: ``bas dev`` stops the API and the worker together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@app.command()
def dev(
    api_port: Annotated[int, typer.Option(help="Port for the API.")] = 8000,
    temporal_port: Annotated[int, typer.Option(help="Port for the Temporal frontend (gRPC).")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Port for the Temporal Web UI.")] = 8233,
    data_dir: Annotated[Path | None, typer.Option(help="Where SQLite and Temporal keep state.")] = None,
) -> None:
    """Everything on one machine: Temporal dev server + UI, migrations, worker and API. Ctrl-C stops it all."""
    from api.main import create_app
    from cli.devserver import start_dev_server, stop_dev_server
    from db.migrate import upgrade_to_head
    from worker.main import run_worker

    settings = _settings(
        data_dir=data_dir,
        temporal_address=f"127.0.0.1:{temporal_port}",
        temporal_ui_url=f"http://localhost:{ui_port}",
        public_base_url=f"http://localhost:{api_port}",
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(settings)
    temporal = start_dev_server(settings.data_dir, temporal_port, ui_port, settings.data_dir / "temporal.log")

    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=api_port, log_config=None)

    async def serve() -> None:
        stop_worker = asyncio.Event()
        server = _SignalFreeServer(config)

        def stop_everything() -> None:
            server.should_exit = True
            stop_worker.set()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_everything)
        worker_task = asyncio.create_task(run_worker(settings, stop=stop_worker))
        typer.secho(
            "\nBusiness Automation System is running\n"
            f"  Console        http://localhost:{api_port}/app/   (open this in a browser)\n"
            f"  API            http://localhost:{api_port}   (docs: http://localhost:{api_port}/docs)\n"
            f"  Temporal UI    http://localhost:{ui_port}\n"
            f"  Temporal gRPC  127.0.0.1:{temporal_port}\n"
            f"  Database       {settings.sqlalchemy_url}\n"
            f"  Data folder    {settings.data_dir.resolve()}  (Temporal log: temporal.log)\n"
            "  Press Ctrl-C to stop.\n",
            fg=typer.colors.GREEN,
        )
        try:
            await server.serve()  # returns once stop_everything() has run
        finally:
            stop_worker.set()
            with contextlib.suppress(asyncio.CancelledError):
                await worker_task

    try:
        # The event loop uvicorn would pick for itself (uvloop when installed), for the worker beside it too.
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(serve())
    finally:
        stop_dev_server(temporal)
        typer.echo("stopped: API, worker and Temporal dev server")


if __name__ == "__main__":
    app()
