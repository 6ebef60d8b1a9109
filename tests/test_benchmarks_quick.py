"""The benchmark scripts in quick mode: small sizes, no timing assertions, so they cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark(module: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", "--quick", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=240, env=os.environ.copy(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures: list[dict[str, object]] = json.loads(done.stdout)
    for figure in figures:
        assert isinstance(figure["robo"], float | int) and figure["robo"] >= 0, figure
    return figures


def names(figures: list[dict[str, object]]) -> list[str]:
    return [str(f["name"]) for f in figures]


@pytest.mark.browser
def test_bot_overhead_reports_per_item_and_start_up() -> None:
    figures = run_benchmark("bot_overhead")
    assert names(figures) == [
        "bot: seconds per item, sample portal, steps form",
        "bot: seconds per item, sample portal, Python form",
        "bot: seconds per item, changing form (new field ids every round)",
        "bot: whole command (launch → exit), sample portal",
        "bot: start-up (command → first item)",
        "bot: whole-run CPU (user + system, all processes)",
        "bot: seconds per item, 20 items vs 5 (robo, steps form)",
    ]
    assert all(f["baseline"] for f in figures)


@pytest.mark.browser
def test_slots_reports_throughput_per_bot_count() -> None:
    figures = run_benchmark("slots")
    assert names(figures) == [
        "slots: throughput, 1 concurrent bot(s)",
        "slots: throughput, 2 concurrent bot(s)",
    ]


def test_scheduler_scale_compares_with_bare_apscheduler() -> None:
    figures = run_benchmark("scheduler_scale")
    assert names(figures) == [
        "scheduler: start-up, cold (100 jobs)",
        "scheduler: start-up, warm (100 jobs)",
        "scheduler: memory (RSS after start)",
        "scheduler: dispatch lag p50 (burst of 10)",
        "scheduler: dispatch lag p99 (burst of 10)",
    ]
    assert all(f["baseline"] is not None for f in figures)


def test_cli_latency_times_three_commands() -> None:
    figures = run_benchmark("cli_latency")
    assert names(figures) == [
        "cli: robo --help",
        "cli: robo processes",
        "cli: robo runs --json (200 runs)",
    ]


@pytest.mark.browser
def test_ledger_writes_reports_per_item_cost() -> None:
    figures = run_benchmark("ledger_writes")
    assert names(figures) == ["ledger: per-item bookkeeping (no page work)"]


def test_run_all_prints_one_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "cli_latency"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| figure" in done.stdout and "machine:" in done.stdout


@pytest.mark.redis
@pytest.mark.browser
def test_worker_throughput_compares_two_workers_with_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import POSTGRES_URL, REDIS_URL

    monkeypatch.setenv("ROBO_BENCH_POSTGRES_URL", POSTGRES_URL)
    monkeypatch.setenv("ROBO_BENCH_REDIS_URL", REDIS_URL)
    figures = run_benchmark("worker_throughput")
    assert names(figures) == ["worker throughput, 2 workers vs 1"]
    assert all(f["baseline"] for f in figures)


@pytest.mark.postgres
def test_queue_overhead_compares_queue_items_with_plain_records_and_drains_with_two_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.conftest import POSTGRES_URL

    monkeypatch.setenv("ROBO_BENCH_POSTGRES_URL", POSTGRES_URL)
    figures = run_benchmark("queue_overhead")
    assert names(figures) == [
        "queue: take + record per item, SQLite",
        "queue: take + record per item, PostgreSQL",
        "queue: take + record per item, PostgreSQL without the take index (before 0006)",
        "queue: 2 workers on a 300-item queue, PostgreSQL without the take index (before 0006), "
        "first 100 items",
        "queue: 300 items drained by 2 workers, PostgreSQL",
    ]
    assert all(f["baseline"] for f in figures)
    assert "each taken once" in str(figures[-1]["note"])
