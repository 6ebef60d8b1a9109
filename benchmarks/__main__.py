"""Run every benchmark and print one table: ``python -m benchmarks [--quick] [--only NAME]``."""

from __future__ import annotations

import argparse
import json
import time

from benchmarks import (
    bot_overhead,
    cli_latency,
    ledger_writes,
    queue_overhead,
    scheduler_scale,
    slots,
)
from benchmarks.common import Figure, machine, render_table

SUITE = {
    "bot_overhead": bot_overhead.run,
    "slots": slots.run,
    "scheduler_scale": scheduler_scale.run,
    "cli_latency": cli_latency.run,
    "ledger_writes": ledger_writes.run,
    "queue_overhead": queue_overhead.run,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--only", action="append", choices=sorted(SUITE), help="repeatable")
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    args = parser.parse_args()
    figures: list[Figure] = []
    started = time.perf_counter()
    for name in args.only or SUITE:
        t0 = time.perf_counter()
        figures += SUITE[name](args.quick)
        print(f"# {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    if args.json:
        print(json.dumps([f.as_dict() for f in figures], indent=2))
        return
    print(f"\nmachine: {machine()}")
    print(
        f"mode: {'quick' if args.quick else 'full'}; total {time.perf_counter() - started:.0f} s\n"
    )
    print(render_table(figures))


if __name__ == "__main__":
    main()
