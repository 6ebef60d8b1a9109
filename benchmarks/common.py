"""Shared helpers: figures, medians, a temporary installation, the sample portal, tables."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PORTAL_PASSWORD = "bench-Portal-pw!"


@dataclass
class Figure:
    """One measured figure next to its baseline, measured in the same run."""

    name: str
    unit: str
    robo: float
    baseline: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        assert self.baseline is not None
        return self.robo / self.baseline

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "s" and value < 0.001:
        return f"{value * 1e6:.0f} µs"
    if unit == "s" and value < 1:
        return f"{value * 1000:.1f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if unit in ("items/s",):
        return f"{value:.2f} {unit}"
    return f"{value:.3g} {unit}".strip()


def render_table(figures: Sequence[Figure]) -> str:
    rows = [("figure", "robo", "baseline", "ratio", "target", "met")]
    for f in figures:
        met = "-" if f.met is None else ("yes" if f.met else "NO")
        ratio = f"{f.ratio:.2f}×" if f.ratio is not None else "-"
        rows.append((f.name, fmt(f.robo, f.unit), fmt(f.baseline, f.unit), ratio, f.target, met))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    import psutil

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def cli(description: str, run: Callable[[bool], list[Figure]]) -> None:
    """The command line of one benchmark: ``python -m benchmarks.NAME [--quick] [--json]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    args = parser.parse_args()
    figures = run(args.quick)
    if args.json:
        print(json.dumps([f.as_dict() for f in figures], indent=2))
    else:
        print(render_table(figures))


@contextlib.contextmanager
def temp_home(prefix: str = "robo-bench-") -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        yield Path(folder)


def robo_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBO_") or k == "ROBO_CHROMIUM"}
    env.update(
        ROBO_HOME=str(home),
        ROBO_DATABASE_URL=f"sqlite:///{home / 'robo.db'}",
        ROBO_SECRET_PORTAL_PASSWORD=PORTAL_PASSWORD,
        ROBO_LOG_LEVEL="warning",
        ROBO_CONFIG=os.devnull,  # an empty robo.toml
    )
    env.update(extra)
    return env


def open_robo(home: Path) -> Any:
    from robo.app import Robo
    from robo.settings import Settings

    settings = Settings(
        home=home, database_url=f"sqlite:///{home / 'robo.db'}", region="ile-de-france"
    )
    return Robo(settings, env={"ROBO_SECRET_PORTAL_PASSWORD": PORTAL_PASSWORD})


@contextlib.contextmanager
def portal() -> Iterator[Any]:
    from robo.demo.portal import PortalConfig, PortalServer

    with PortalServer(PortalConfig(password=PORTAL_PASSWORD)) as server:
        yield server


def robo_cmd(*args: str) -> list[str]:
    return [str(Path(PYTHON).with_name("robo")), *args]


def timed_run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start
