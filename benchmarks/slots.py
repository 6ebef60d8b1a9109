"""Browser slots: throughput of 1, 2 and 3 concurrent `robo run` bots on this machine.

Each bot is a `robo run residence-permit-entry` subprocess with its own items,
all against the same local portal. Throughput = items done / wall time from the
first launch to the last exit (start-up included, as the scheduler sees it).
Baseline: one bot alone, measured in the same run.
"""

from __future__ import annotations

import os
import subprocess
import time

from benchmarks.bot_overhead import deploy, write_items
from benchmarks.common import Figure, cli, median, portal, robo_cmd, robo_env, temp_home


def throughput(home: object, url: str, bots: int, items: int, tag: str) -> float:
    from pathlib import Path

    assert isinstance(home, Path)
    procs = []
    started = time.perf_counter()
    for bot in range(bots):
        path = write_items(home / f"{tag}-{bot}.csv", f"{tag}B{bot}", items, seed=bot)
        cmd = robo_cmd("run", "residence-permit-entry", "--input", str(path),
                       "--param", f"portal_url={url}")  # fmt: skip
        procs.append(subprocess.Popen(cmd, env=robo_env(home), stdout=subprocess.DEVNULL))
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - started
    if any(codes):
        raise RuntimeError(f"a bot failed: exit codes {codes}")
    return bots * items / elapsed


def run(quick: bool) -> list[Figure]:
    items, repeats, counts = (3, 1, (1, 2)) if quick else (20, 2, (1, 2, 3))
    found: dict[int, list[float]] = {n: [] for n in counts}
    with temp_home() as home, portal() as server:
        deploy(home)
        throughput(home, server.url, 1, 2, "warm")
        for rep in range(repeats):
            for n in counts:
                found[n].append(throughput(home, server.url, n, items, f"r{rep}n{n}"))
    one = median(found[1])
    figures = []
    for n in counts:
        value = median(found[n])
        figures.append(Figure(f"slots: throughput, {n} concurrent bot(s)", "items/s", value, one,
                              "", None, f"{items} items each, {os.cpu_count()} cores, "
                              f"median of {repeats}"))  # fmt: skip
    return figures


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
