"""``python -m bench`` runs every benchmark; ``python -m bench NAME [NAME...]`` only those named.

``--quick`` runs each at its smaller sizes (a minute or two each instead of several). Every benchmark prints its
tables and writes them, with its figures and the machine, to ``bench/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import time
from typing import Any

from bench.harness import machine, machine_line, now_iso, take_tables, write_results

BENCHMARKS = {
    "leads": "bench.api_leads",
    "follow_up": "bench.follow_up",
    "login": "bench.login",
    "start_throughput": "bench.start_throughput",
    "first_email": "bench.first_email",
    "read_paths": "bench.read_paths",
    "worker_footprint": "bench.worker_footprint",
    "newsletter": "bench.newsletter",
}
ALIASES = {
    "api_leads": "leads",
    "follow-up": "follow_up",
    "start": "start_throughput",
    "start-throughput": "start_throughput",
    "first-email": "first_email",
    "read-paths": "read_paths",
    "footprint": "worker_footprint",
    "worker-footprint": "worker_footprint",
    "fan_out": "newsletter",
}


def run(name: str, *, quick: bool) -> dict[str, Any]:
    """One benchmark: its tables on stdout, and what it measured as the JSON it writes (returned too)."""
    take_tables()  # nothing printed before belongs to this one
    facts = machine()
    started_at, started = now_iso(), time.perf_counter()
    print(f"\n=== {name}{' (quick)' if quick else ''}")
    figures = importlib.import_module(BENCHMARKS[name]).main(quick=quick)
    seconds = time.perf_counter() - started
    result = {
        "benchmark": name,
        "quick": quick,
        "started_at": started_at,
        "seconds": round(seconds, 1),
        "machine": facts,
        "machine_line": machine_line(facts),
        "figures": figures,
        "tables": take_tables(),
    }
    path = write_results(name, result)
    print(f"({name} took {seconds:.1f}s; figures in {path})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    # Checked by hand: argparse on Python 3.11 rejects an empty list (run them all) against ``choices``.
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run, not the README's figures")
    arguments = parser.parse_args()
    names = [ALIASES.get(name, name) for name in arguments.names] or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    # The figures go to stdout; only problems from the app, Temporal or the servers belong beside them.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(machine_line(machine()))
    for name in names:
        run(name, quick=arguments.quick)


if __name__ == "__main__":
    main()
