"""`robo status` and `robo metrics serve` while a real run is going: the residence-permit
sample enters four files in the sample portal (real Chromium), and the portal holds the
third file's request, so the run is caught at a known point: two files recorded, the
third in progress, the fourth waiting. The endpoint runs as its own process on a free
port and is scraped over HTTP, its text parsed by prometheus_client. Every wait is
bounded here.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.permits_support import (
    HOLD_SECONDS,
    MINUTES_PER_PERMIT,
    PERMITS,
    PROCESSES,
    REFERENCES,
    RUN_TIMEOUT,
    Robo,
    portal_api,
    wait_until_held,
)

pytestmark = pytest.mark.browser

HELD = REFERENCES[2]  # the third file: two are recorded before it, one waits after it
SERVE_TIMEOUT = 60.0  # for the endpoint to answer its first scrape
STOP_TIMEOUT = 30.0  # for the endpoint to stop after SIGTERM

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def cli(tmp_path: Path) -> Robo:
    home = tmp_path / "home"
    home.mkdir()
    return Robo(home, f"sqlite:///{tmp_path / 'robo.db'}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = condition()
        except OSError:  # the endpoint is not listening yet
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def endpoint(cli: Robo) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`robo metrics serve` on a free port, as its own process; stopped afterwards."""
    port = free_port()
    log = cli.home / "metrics-serve.log"
    with log.open("ab") as out:
        server = subprocess.Popen(
            cli.command("metrics", "serve", "--port", str(port)),
            env=cli.env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: scrape(port), SERVE_TIMEOUT, f"the endpoint on port {port}")
        yield port, server
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(STOP_TIMEOUT)


def test_status_and_metrics_follow_a_run_in_progress(
    cli: Robo, app: Any, permits_csv: Path, endpoint: tuple[int, subprocess.Popen[bytes]]
) -> None:
    port, server = endpoint
    cli.ok("deploy", str(PROCESSES / PERMITS))
    hold = {"reference": HELD, "seconds": HOLD_SECONDS, "phase": "after"}
    portal_api(app, "/api/faults", {"hold": hold, "latency_ms": 30})
    run = cli.start_run(PERMITS, app, "--input", str(permits_csv))
    try:
        wait_until_held(app, HELD, run, cli.log)

        # robo status --json: the run, its progress, the file in progress, an ETA.
        found = cli.json("status")
        [progress] = found["runs"]
        assert progress["process_id"] == PERMITS
        assert (progress["done"], progress["total"], progress["succeeded"]) == (2, 4, 2)
        assert progress["current"]["reference"] == HELD
        assert progress["mean_item_seconds"] > 0
        assert progress["eta_seconds"] is not None and progress["eta_seconds"] >= 0
        [queue] = [q for q in found["queues"] if q["queue"] == PERMITS]
        assert (queue["waiting"], queue["in_progress"], queue["counts"]["successful"]) == (1, 1, 2)
        assert found["scheduler"]["leader"] is None  # no `robo scheduler start` here
        text = cli.ok("status")
        assert "item 3 of 4:" in text and HELD in text, text  # the cell may fold
        assert max(len(line) for line in text.splitlines()) <= 80, text

        # The endpoint, scraped meanwhile.
        samples = scrape(port)
        assert value(samples, "robo_database_up") == 1
        assert value(samples, "robo_runs_running", process=PERMITS, purpose="production") == 1
        assert (
            value(samples, "robo_items_total", process=PERMITS, outcome="success",
                  purpose="production") == 2
        )  # fmt: skip
        depth = {
            dict(labels)["status"]: v
            for (name, labels), v in samples.items()
            if name == "robo_queue_items" and dict(labels)["queue"] == PERMITS
        }
        assert (depth["new"], depth["in_progress"], depth["successful"]) == (1, 1, 2)
        assert value(samples, "robo_worklist_items", queue=PERMITS) == 0

        portal_api(app, "/api/faults", {"hold": None, "release": True})
        assert run.wait(RUN_TIMEOUT) == 0, cli.log.read_text(errors="replace")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(RUN_TIMEOUT)

    # Once it has ended: counted among the finished runs, its four files credited.
    after = scrape(port)
    assert value(after, "robo_runs_running", process=PERMITS, purpose="production") is None
    assert (
        value(after, "robo_runs_finished_total", process=PERMITS, status="completed",
              purpose="production") == 1
    )  # fmt: skip
    assert (
        value(after, "robo_items_total", process=PERMITS, outcome="success",
              purpose="production") == 4
    )  # fmt: skip
    assert value(after, "robo_queue_items", queue=PERMITS, status="successful") == 4
    # The files' minutes and the run's own (manual_minutes_per_run: 5), as `robo report` sums.
    saved = value(after, "robo_minutes_saved_total", process=PERMITS)
    assert saved == pytest.approx(4 * MINUTES_PER_PERMIT + 5)
    [row] = [r for r in cli.json("report") if r["process_id"] == PERMITS]
    assert saved == pytest.approx(row["minutes_saved"])
    assert cli.json("status")["runs"] == []

    server.send_signal(signal.SIGTERM)
    assert server.wait(STOP_TIMEOUT) == 0
