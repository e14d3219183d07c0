"""``python -m bench`` runs every benchmark; ``python -m bench NAME [NAME...]`` only those named."""

from __future__ import annotations

import argparse
import importlib
import logging
import time

BENCHMARKS = {"leads": "bench.api_leads", "follow_up": "bench.follow_up", "login": "bench.login"}
ALIASES = {"api_leads": "leads", "follow-up": "follow_up"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    # Checked by hand: argparse on Python 3.11 rejects an empty list (run them all) against ``choices``.
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    names = [ALIASES.get(name, name) for name in parser.parse_args().names] or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    # The figures go to stdout; only problems from the app, Temporal or the servers belong beside them.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in names:
        started = time.perf_counter()
        print(f"\n=== {name}")
        importlib.import_module(BENCHMARKS[name]).main()
        print(f"({name} took {time.perf_counter() - started:.1f}s)")


if __name__ == "__main__":
    main()
