"""The README's first command, for real: ``bas dev`` starts Temporal + UI, worker, API and SQLite; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from tests.support.processes import free_port

pytestmark = pytest.mark.slow


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        assert process.poll() is None, "bas dev exited early"
        try:
            report = httpx2.get(url, timeout=2).json()
            if report["status"] == "healthy":
                return dict(report)
            last = report
        except httpx2.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"not healthy after {timeout}s: {last}")


def _run_once(data_dir: Path, api: int, grpc: int, ui: int) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAS_")}
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "bas"),
            "dev",
            "--data-dir",
            str(data_dir),
            "--api-port",
            str(api),
            "--temporal-port",
            str(grpc),
            "--ui-port",
            str(ui),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{api}/api/system/health", process)
        base = f"http://127.0.0.1:{api}"
        registered = httpx2.post(
            f"{base}/v1/auth/register",
            json={"email": f"e2e-{api}@example.com", "password": "password123", "name": "E", "company_name": "E2E"},
        )
        token = (
            registered.json()["token"]
            if registered.status_code == 201
            else httpx2.post(
                f"{base}/token", json={"username": f"e2e-{api}@example.com", "password": "password123"}
            ).json()["access_token"]
        )
        check = httpx2.post(f"{base}/api/system/check", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert check.status_code == 200, check.text
        assert httpx2.get(f"{base}/docs").status_code == 200
        # The console's address opens the sign-in page (no session yet), and `/` leads there too.
        console = httpx2.get(f"{base}/", follow_redirects=True)
        assert console.status_code == 200 and str(console.url).startswith(f"{base}/app/login"), console.url
        assert httpx2.get(f"http://127.0.0.1:{ui}/", timeout=10).status_code == 200
        workflow_id = str(check.json()["workflow_id"])
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    text = output.decode()
    assert process.returncode == 0, text
    assert "stopped: API, worker and Temporal dev server" in text
    assert f"http://localhost:{ui}" in text and f"http://localhost:{api}/docs" in text
    # The console's address is the first one printed: it is what a person opens.
    banner = text[text.index("Business Automation System is running") :].splitlines()
    assert banner[1].split() == ["Console", f"http://localhost:{api}/app/", "(open", "this", "in", "a", "browser)"]
    return workflow_id


def test_bas_dev_runs_everything_and_keeps_state_across_restarts(tmp_path: Path) -> None:
    api, grpc, ui = free_port(), free_port(), free_port()
    first = _run_once(tmp_path, api, grpc, ui)
    assert (tmp_path / "bas.db").exists() and (tmp_path / "temporal.db").exists()
    _run_once(tmp_path, api, grpc, ui)
    # Nothing is left listening once Ctrl-C returned.
    with pytest.raises(httpx2.HTTPError):
        httpx2.get(f"http://127.0.0.1:{api}/api/system/health", timeout=1)
    # Temporal kept the first run's history in its file: restart the server alone and ask for it.
    from cli.devserver import start_dev_server, stop_dev_server

    server = start_dev_server(tmp_path, grpc, ui, tmp_path / "temporal.log")
    try:
        described = subprocess.run(
            [
                str(Path(sys.executable).parent / "temporal"),
                "workflow",
                "describe",
                "--address",
                f"127.0.0.1:{grpc}",
                "-w",
                first,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        stop_dev_server(server)
    assert described.returncode == 0 and "COMPLETED" in described.stdout, described.stdout + described.stderr
