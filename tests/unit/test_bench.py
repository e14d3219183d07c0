"""The benchmarks are not tests, but they must not rot: the smallest run of one, through ``python -m bench``'s own
runner, prints its table and writes its JSON with the machine it ran on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import harness


@pytest.mark.slow
def test_the_follow_up_benchmark_runs_and_writes_its_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "RESULTS", tmp_path)  # leave the committed figures alone

    result = bench_main.run("follow_up", quick=True)

    written = json.loads((tmp_path / "follow_up.json").read_text())
    assert written["benchmark"] == "follow_up" and written["quick"] is True
    assert written["machine"]["cpus"] >= 1 and written["machine_line"]
    assert written["figures"] == result["figures"]
    assert written["figures"]["concurrent"]["sequences"] == 5
    assert written["figures"]["concurrent"]["simulated_days_per_wall_second"] > 0
    (table,) = written["tables"]
    assert table["title"].startswith("Lead follow-up") and len(table["rows"]) == 5
    assert set(bench_main.BENCHMARKS) >= {"start_throughput", "first_email", "read_paths", "worker_footprint"}
