"""The browser dies under a run: Playwright's driver killed mid-item, Chromium dying at launch.

`robo run` of residence-permit-entry against the sample portal; each file's updates
are read from the portal's own record. Every wait is bounded here.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.permits_support import (
    EXIT_TIMEOUT,
    PERMITS,
    PROCESSES,
    REFERENCES,
    Robo,
    assert_no_run_running,
    portal_api,
    updates_of,
    wait_until_held,
)

pytestmark = pytest.mark.browser

HELD = REFERENCES[1]


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def assert_recorded_once(app: Any, references: list[str]) -> None:
    for reference in references:
        counts = updates_of(app, reference)
        assert counts["updates"] == {"permit_recorded": 1}, reference
        assert counts["attempts"] == {"permit_recorded": 1}, f"{reference} was submitted twice"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the browser, not storage
def test_a_killed_playwright_driver_fails_the_item_in_flight_and_the_run_carries_on(
    cli: Robo, app: Any, permits_csv: Path, database_url: str
) -> None:
    cli.ok("deploy", str(PROCESSES / PERMITS))
    hold = {"reference": HELD, "seconds": 120, "phase": "before"}
    portal_api(app, "/api/faults", {"hold": hold})
    run = cli.start_run(PERMITS, app, "--input", str(permits_csv), "--json")
    try:
        wait_until_held(app, HELD, run, cli.log)
        (driver,) = [p for p in descendants(run.pid) if p.name().startswith("node")]
        first_browsers = [p for p in descendants(run.pid) if "chrom" in p.name().lower()]
        driver.kill()  # the Playwright driver, as the OOM killer would
        portal_api(app, "/api/faults", {"release": True})  # the held request changes nothing
        assert run.wait(timeout=300) in (0, 1), cli.log.read_text()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    _, alive = psutil.wait_procs(first_browsers, timeout=EXIT_TIMEOUT)
    assert not alive, f"the first session's Chromium outlived the run: {alive}"
    runs = assert_no_run_running(cli)
    assert runs[0]["status"] == "completed", runs[0]
    detail = cli.json("run-show", str(runs[0]["id"]))
    outcomes = {item["reference"]: item for item in detail["items"]}
    assert outcomes[HELD]["status"] == "application_exception"
    assert outcomes[HELD]["attempts"] == 1  # never retried blind: the app may have taken it
    assert "browser" in (outcomes[HELD]["error"] or "").lower()
    others = [r for r in REFERENCES if r != HELD]
    assert [outcomes[r]["status"] for r in others] == ["success"] * 3
    assert_recorded_once(app, others)
    assert updates_of(app, HELD)["updates"] == {}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the browser, not storage
def test_a_chromium_that_dies_at_launch_is_launched_again(
    cli: Robo, app: Any, permits_csv: Path, tmp_path: Path, database_url: str
) -> None:
    counter = tmp_path / "launches"
    wrapper = tmp_path / "chromium-dies-first"
    # The first launch dies at once (kill -9 of itself), as a Chromium short of memory does.
    wrapper.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{counter}" 2>/dev/null || echo 0)\n'
        f'echo $((n + 1)) > "{counter}"\n'
        'if [ "$n" -lt 1 ]; then kill -9 $$; fi\n'
        'exec /usr/bin/chromium "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    cli.ok("deploy", str(PROCESSES / PERMITS))
    done = cli.with_env(ROBO_CHROMIUM=str(wrapper)).run(PERMITS, app, "--input", str(permits_csv))
    assert done["status"] == "completed", done
    assert done["succeeded"] == len(REFERENCES)
    assert int(counter.read_text()) == 2  # died once, launched again once
    assert_recorded_once(app, REFERENCES)
    assert_no_run_running(cli)
    # No Chromium of this installation outlives the run (its profile is under ROBO_HOME).
    left = [
        p for p in psutil.process_iter(["name", "cmdline", "status"])
        if "chrom" in (p.info["name"] or "").lower()
        and any(str(cli.home) in part for part in p.info["cmdline"] or [])
        and p.info["status"] != psutil.STATUS_ZOMBIE
    ]  # fmt: skip
    assert not left, f"Chromium left by the run: {left}"
