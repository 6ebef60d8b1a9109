"""The runner, in real headless Chromium against the sample portal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import psutil
import pytest

from robo.app import Robo
from robo.errors import InputError, RegistryError
from robo.loader import load_process
from robo.runner.browser import chromium_descendants
from robo.runner.run import RunRequest, RunResult, run_process
from tests.conftest import PORTAL_PASSWORD, definition

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
LOGIN = [
    {"goto": "{{ params.portal_url }}/login"},
    {"fill": {"selector": "#username", "value": "agent"}},
    {"fill": {"selector": "#password", "secret": "portal_password"}},
    {"click": "button[type=submit]"},
    {"wait_for": {"selector": "#logout"}},
]


def set_faults(portal: Any, **faults: Any) -> None:
    request = urllib.request.Request(
        f"{portal.url}/api/faults",
        data=json.dumps(faults).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request).close()


def deploy_and_run(robo: Robo, folder: Path, portal: Any, **request: Any) -> RunResult:
    loaded = load_process(folder)
    robo.registry.deploy(loaded)
    version = robo.registry.active(loaded.definition.id)
    params = {"portal_url": portal.url, **request.pop("params", {})}
    return run_process(
        robo.run_environment(), version, RunRequest(loaded.definition.id, params=params, **request)
    )


def items_of(robo: Robo, run_id: int) -> dict[str, Any]:
    return {item.reference: item for item in robo.ledger.run_detail(run_id).items}


# (process, succeeded, business exceptions): the sample inputs are built to give these.
SAMPLES = [
    ("residence-permit-entry", 7, 3),
    ("invoice-inbox-dispatch", 12, 0),  # the dispatcher: every pending invoice into a queue
    ("outstanding-reminders", 20, 3),
    ("hr-claims-entry", 4, 4),
    ("new-files-export", 4, 2),
]


@pytest.mark.parametrize(("process_id", "succeeded", "business"), SAMPLES)
def test_each_sample_process_runs_to_completion_with_its_expected_outcomes(
    robo: Robo, fresh_portal: Any, process_id: str, succeeded: int, business: int
) -> None:
    result = deploy_and_run(robo, REPO / "processes" / process_id, fresh_portal)

    assert result.status == "completed", result.error
    assert (result.succeeded, result.business_exceptions, result.application_exceptions) == (
        succeeded,
        business,
        0,
    )
    baseline = load_process(REPO / "processes" / process_id).definition.baseline
    expected = succeeded * baseline.minutes_saved_per_item + baseline.manual_minutes_per_run
    assert result.minutes_saved == pytest.approx(expected)
    assert chromium_descendants() == []


def test_the_performer_checks_what_the_dispatcher_queued(robo: Robo, fresh_portal: Any) -> None:
    assert (
        deploy_and_run(
            robo, REPO / "processes" / "invoice-commitment-check", fresh_portal
        ).items_total
        == 0
    )  # nothing queued yet: a performer only takes what it is given
    dispatched = deploy_and_run(robo, REPO / "processes" / "invoice-inbox-dispatch", fresh_portal)

    result = deploy_and_run(robo, REPO / "processes" / "invoice-commitment-check", fresh_portal)

    assert dispatched.succeeded == 12
    assert robo.queues.summary("invoices-to-check").counts == {
        "successful": 8,
        "business_exception": 4,
    }
    assert (result.succeeded, result.business_exceptions, result.application_exceptions) == (
        8,
        4,
        0,
    )
    assert chromium_descendants() == []


def test_residence_permits_really_reach_the_application(robo: Robo, fresh_portal: Any) -> None:
    result = deploy_and_run(robo, REPO / "processes" / "residence-permit-entry", fresh_portal)

    recorded = {p["file_number"] for p in fresh_portal.state()["permits"]}
    succeeded = {
        ref for ref, item in items_of(robo, result.run_id).items() if item.status == "success"
    }
    assert succeeded <= recorded
    assert all(
        item.output["receipt"].startswith("RCP-")
        for item in items_of(robo, result.run_id).values()
        if item.status == "success"
    )


def test_an_application_error_is_retried_with_a_fresh_page_and_then_succeeds(
    robo: Robo, fresh_portal: Any, tmp_path: Path
) -> None:
    one_row = tmp_path / "one.csv"
    one_row.write_text(
        "file_number,last_name,first_name,birth_date,nationality,permit_type\n"
        "2026-31-00001,MARTIN,Louise,01/02/1990,DZ,salarie\n",
        encoding="utf-8",
    )
    set_faults(fresh_portal, fail_next=1)

    result = deploy_and_run(
        robo, REPO / "processes" / "residence-permit-entry", fresh_portal, input_path=one_row
    )

    item = items_of(robo, result.run_id)["2026-31-00001"]
    assert (item.status, item.attempts) == ("success", 2)
    assert any(path.endswith("attempt1.png") for path in item.evidence)
    # The default trace policy (on-first-retry) traces the retry; it succeeded: nothing kept.
    assert not any(path.endswith(".trace.zip") for path in item.evidence)
    assert item.minutes_saved == 25


def test_a_business_exception_is_not_retried_and_saves_nothing(
    robo: Robo, fresh_portal: Any
) -> None:
    result = deploy_and_run(robo, REPO / "processes" / "residence-permit-entry", fresh_portal)

    duplicate = items_of(robo, result.run_id)["2024-75-00117"]
    assert (duplicate.status, duplicate.attempts, duplicate.minutes_saved) == (
        "business_exception",
        1,
        0,
    )
    assert "déjà enregistré" in (duplicate.error or "")


def test_application_exceptions_exhaust_the_retry_policy(
    robo: Robo, fresh_portal: Any, make_process: Any
) -> None:
    steps = [
        {"goto": "{{ params.portal_url }}/no-such-page-{{ item.ref }}"},
        {"wait_for": {"selector": "#never"}},
    ]
    folder = make_process(
        definition(bot={"setup": LOGIN, "steps": steps}, timeouts={"step_seconds": 0.5})
    )

    result = deploy_and_run(robo, folder, fresh_portal)

    assert result.status == "completed"
    assert result.application_exceptions == 2
    for item in items_of(robo, result.run_id).values():
        assert (item.status, item.attempts, item.minutes_saved) == ("application_exception", 2, 0)


def test_an_item_over_its_time_limit_ends_as_an_application_exception_and_the_run_goes_on(
    robo: Robo, fresh_portal: Any, make_process: Any
) -> None:
    steps = [{"goto": "{{ params.portal_url }}/slow?seconds={{ item.seconds }}"}]
    spec = definition(
        bot={"steps": steps},
        secrets=[],
        retry={"max_attempts": 1, "backoff_seconds": 0},
        timeouts={"item_seconds": 2, "run_seconds": 120, "step_seconds": 60},
    )
    folder = make_process(spec, files={"input/items.csv": "ref,seconds\nSLOW,30\nFAST,0\n"})

    started = time.monotonic()
    result = deploy_and_run(robo, folder, fresh_portal)

    assert time.monotonic() - started < 25
    items = items_of(robo, result.run_id)
    assert items["SLOW"].status == "application_exception"
    assert items["SLOW"].error_type == "ItemTimeout"
    assert items["FAST"].status == "success"
    assert result.status == "completed"
    assert chromium_descendants() == []


def test_a_bot_stuck_in_python_code_is_stopped_at_its_time_limit(
    robo: Robo, fresh_portal: Any, make_process: Any
) -> None:
    bot = "import time\n\ndef process(ctx):\n    if ctx.item['ref'] == 'A1':\n        time.sleep(120)\n"
    spec = definition(
        bot={"entrypoint": "bot:process"},
        secrets=[],
        retry={"max_attempts": 1, "backoff_seconds": 0},
        timeouts={"item_seconds": 1, "run_seconds": 60, "step_seconds": 5},
    )
    folder = make_process(spec, files={"bot.py": bot})

    started = time.monotonic()
    result = deploy_and_run(robo, folder, fresh_portal)

    assert time.monotonic() - started < 20
    items = items_of(robo, result.run_id)
    assert (items["A1"].status, items["A1"].error_type) == ("application_exception", "ItemTimeout")
    assert items["A2"].status == "success"


def test_the_run_time_limit_stops_the_run_and_leaves_the_rest_unprocessed(
    robo: Robo, fresh_portal: Any, make_process: Any
) -> None:
    steps = [{"goto": "{{ params.portal_url }}/slow?seconds=1"}]
    rows = "ref\n" + "\n".join(f"R{i}" for i in range(20)) + "\n"
    # 8 s leave room for Chromium to start on a loaded machine; 20 items need 20 s.
    spec = definition(
        bot={"steps": steps},
        secrets=[],
        timeouts={"item_seconds": 10, "run_seconds": 8, "step_seconds": 5},
    )
    folder = make_process(spec, files={"input/items.csv": rows})

    result = deploy_and_run(robo, folder, fresh_portal)

    detail = robo.ledger.run_detail(result.run_id)
    assert result.status == "timed_out"
    assert detail.run.items_total == 20
    assert 0 < len(detail.items) < 20
    assert "not processed" in (result.error or "")


def test_bad_input_is_refused_before_any_run_is_recorded(
    robo: Robo, fresh_portal: Any, make_process: Any, tmp_path: Path
) -> None:
    folder = make_process(definition())
    robo.registry.deploy(load_process(folder))
    bad = tmp_path / "bad.csv"
    bad.write_text("ref,name\nX,1\nX,2\n", encoding="utf-8")

    with pytest.raises(InputError, match="already used at row 2"):
        run_process(
            robo.run_environment(),
            robo.registry.active("sample-process"),
            RunRequest("sample-process", input_path=bad),
        )

    assert robo.ledger.runs() == []


def test_a_disabled_process_does_not_run(robo: Robo, make_process: Any) -> None:
    robo.registry.deploy(load_process(make_process(definition())))
    robo.registry.set_enabled("sample-process", False)

    with pytest.raises(RegistryError, match="robo enable sample-process"):
        run_process(
            robo.run_environment(),
            robo.registry.active("sample-process"),
            RunRequest("sample-process"),
        )


def test_an_unknown_parameter_is_refused(robo: Robo, make_process: Any) -> None:
    robo.registry.deploy(load_process(make_process(definition())))

    with pytest.raises(InputError, match=r"unknown parameter.*portal_ulr.*known: portal_url"):
        run_process(
            robo.run_environment(),
            robo.registry.active("sample-process"),
            RunRequest("sample-process", params={"portal_ulr": "x"}),
        )


# --- Real processes: `robo run` as an operator starts it --------------------------------


def robo_cli(home: Path, database_url: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "ROBO_HOME": str(home),
        "ROBO_DATABASE_URL": database_url,
        "ROBO_SECRET_PORTAL_PASSWORD": PORTAL_PASSWORD,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "robo", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def robo_ok(home: Path, database_url: str, *args: str) -> str:
    proc = robo_cli(home, database_url, *args)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    return stdout


CRASH_BOT = """
import pathlib, time

def setup(ctx):
    ctx.page.goto(ctx.params["portal_url"] + "/login")
    ctx.page.fill("#username", "agent")
    ctx.page.fill("#password", ctx.secret("portal_password"))
    ctx.page.click("button[type=submit]")

def process(ctx):
    ctx.page.goto(ctx.params["portal_url"] + "/")
    if ctx.item["ref"] == "A3":
        pathlib.Path(ctx.params["marker"]).write_text("in flight")
        ctx.page.wait_for_timeout(15000)
    ctx.output["title"] = ctx.page.title()
"""


def test_a_browser_killed_mid_run_ends_that_item_restarts_and_leaves_no_chromium(
    home: Path, sqlite_url: str, fresh_portal: Any, make_process: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    rows = "ref\n" + "\n".join(f"A{i}" for i in range(1, 7)) + "\n"
    spec = definition(
        bot={"entrypoint": "bot:process"},
        parameters={"portal_url": fresh_portal.url, "marker": str(marker)},
        retry={"max_attempts": 3, "backoff_seconds": 0},
    )
    folder = make_process(spec, files={"bot.py": CRASH_BOT, "input/items.csv": rows})
    robo_ok(home, sqlite_url, "deploy", str(folder))

    proc = robo_cli(home, sqlite_url, "run", "sample-process")
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the bot never reached item A3"
        time.sleep(0.1)
    parent = psutil.Process(proc.pid)
    browsers = [p for p in parent.children(recursive=True) if "chrom" in p.name().lower()]
    assert browsers, "no Chromium under the robo process"
    for browser in browsers:
        browser.kill()
    _stdout, stderr = proc.communicate(timeout=120)

    assert proc.returncode == 0, stderr
    assert not [p for p in browsers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    detail = json.loads(robo_ok(home, sqlite_url, "run-show", "1", "--json"))
    items = {item["reference"]: item for item in detail["items"]}
    assert sorted(items) == [f"A{i}" for i in range(1, 7)]  # each item exactly once
    assert (items["A3"]["status"], items["A3"]["attempts"], items["A3"]["error_type"]) == (
        "application_exception",
        1,
        "BrowserCrashed",
    )
    assert [items[f"A{i}"]["status"] for i in (1, 2, 4, 5, 6)] == ["success"] * 5
    assert detail["run"]["minutes_saved"] == 5 * 8


LEAKY_BOT = """
def setup(ctx):
    ctx.page.goto(ctx.params["portal_url"] + "/login")
    ctx.page.fill("#username", "agent")
    ctx.page.fill("#password", ctx.secret("portal_password"))
    ctx.page.click("button[type=submit]")

def process(ctx):
    secret = ctx.secret("portal_password")
    ctx.log.info("bot.careless", typed=secret)
    ctx.page.goto(ctx.params["portal_url"] + "/permits/new")
    ctx.page.fill("#last_name", secret)  # a visible text field, not a password field
    ctx.output["echo"] = "value was " + secret
    if ctx.item["ref"] == "A2":
        ctx.business_error("rejected with password " + secret)
"""


def test_a_secret_typed_by_a_bot_stays_out_of_logs_database_and_evidence(
    home: Path, sqlite_url: str, fresh_portal: Any, make_process: Any
) -> None:
    spec = definition(
        bot={"entrypoint": "bot:process"},
        parameters={"portal_url": fresh_portal.url},
        evidence={"trace": "retain-on-failure"},  # a business exception is traced too
    )
    folder = make_process(spec, files={"bot.py": LEAKY_BOT})
    robo_ok(home, sqlite_url, "deploy", str(folder))

    proc = robo_cli(home, sqlite_url, "--log-level", "debug", "run", "sample-process")
    stdout, stderr = proc.communicate(timeout=120)
    shown = robo_ok(home, sqlite_url, "run-show", "1", "--json")

    assert proc.returncode == 0, stderr
    assert "bot.careless" in stderr and "[secret]" in stderr
    assert '"status": "business_exception"' in shown and "[secret]" in shown
    for text in (stdout, stderr, shown):
        assert PORTAL_PASSWORD not in text
    needle = PORTAL_PASSWORD.encode()
    stored = [p for p in home.parent.rglob("*") if p.is_file()]
    assert any(p.suffix == ".zip" for p in stored), "a failed item keeps a trace"
    for path in stored:
        assert needle not in path.read_bytes(), path
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    assert needle not in archive.read(name), f"{path}!{name}"
