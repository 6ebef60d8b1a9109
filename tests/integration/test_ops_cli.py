"""Operations commands: doctor, workers, submit, db, scheduler status."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from robo.cli.main import cli
from robo.loader import load_process
from tests.conftest import definition


def invoke(home: Path, url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    base = {"ROBO_CONFIG": os.devnull}  # no robo.toml from the folder the tests run in
    return CliRunner(env={**base, **(env or {})}).invoke(
        cli, ["--home", str(home), "--database-url", url, *args], catch_exceptions=False
    )


@pytest.mark.browser
def test_doctor_passes_on_the_embedded_default(home: Path, sqlite_url: str) -> None:
    invoke(home, sqlite_url, "db", "upgrade")  # doctor itself creates and migrates nothing

    result = invoke(home, sqlite_url, "doctor", "--json")

    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert result.exit_code == 0, result.output
    assert checks["database"]["status"] == "ok"
    assert checks["chromium"]["status"] == "ok"
    assert checks["executor"]["detail"].startswith("local process pool")
    assert checks["scheduler"]["status"] == "warning"  # nothing holds the lease yet


def test_doctor_names_an_unreachable_broker_and_exits_1(home: Path, sqlite_url: str) -> None:
    env = {
        "ROBO_EXECUTOR": "celery",
        "ROBO_BROKER_URL": "redis://127.0.0.1:1/0",
        "ROBO_CHROMIUM": "/bin/true",
    }
    result = invoke(home, sqlite_url, "doctor", env=env)

    assert result.exit_code == 1
    assert "cannot reach redis://127.0.0.1:1/0" in result.output


def test_doctor_refuses_a_visibility_timeout_shorter_than_a_run(
    home: Path, sqlite_url: str, make_process: Any
) -> None:
    invoke(
        home, sqlite_url, "deploy", str(make_process(definition(timeouts={"run_seconds": 7200})))
    )
    env = {"ROBO_EXECUTOR": "celery", "ROBO_BROKER_URL": "redis://127.0.0.1:6379/9",
           "ROBO_BROKER_VISIBILITY_TIMEOUT": "600", "ROBO_CHROMIUM": "/bin/true"}  # fmt: skip
    result = invoke(home, sqlite_url, "doctor", env=env)

    assert result.exit_code == 1
    assert (
        "ROBO_BROKER_VISIBILITY_TIMEOUT (600 s) must exceed the longest run timeout (7200 s"
        in result.output
    )


def test_a_worker_needs_the_celery_executor(home: Path, sqlite_url: str) -> None:
    result = invoke(home, sqlite_url, "worker")

    assert result.exit_code == 1
    assert "ROBO_EXECUTOR=celery" in result.output


def test_workers_lists_nothing_when_none_ever_ran(home: Path, sqlite_url: str) -> None:
    result = invoke(home, sqlite_url, "workers", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_submit_refuses_an_unknown_process_before_queuing_anything(
    home: Path, sqlite_url: str
) -> None:
    result = invoke(home, sqlite_url, "submit", "no-such-process")

    assert result.exit_code == 1
    assert "no process 'no-such-process'" in result.output


def test_db_current_reports_an_up_to_date_schema(home: Path, sqlite_url: str, robo: Any) -> None:
    robo.registry.deploy(load_process_from_definition(home))
    result = invoke(home, sqlite_url, "db", "current", "--json")

    data = json.loads(result.stdout)
    assert result.exit_code == 0
    assert data["up_to_date"] is True and data["current"] == data["head"]


def load_process_from_definition(home: Path) -> Any:
    folder = home.parent / "p"
    (folder / "input").mkdir(parents=True)
    import yaml

    (folder / "process.yaml").write_text(yaml.safe_dump(definition()), encoding="utf-8")
    (folder / "input" / "items.csv").write_text("ref\nA\n", encoding="utf-8")
    return load_process(folder)


def test_scheduler_status_says_when_no_scheduler_is_active(home: Path, sqlite_url: str) -> None:
    result = invoke(home, sqlite_url, "scheduler", "status")

    assert result.exit_code == 0
    assert "no active scheduler" in result.output


def test_a_second_scheduler_without_standby_exits_with_code_3(
    home: Path, sqlite_url: str, robo: Any
) -> None:
    from robo.scheduling.lock import LeaderLock

    assert LeaderLock(robo.db, "other-host:1:abc", lease_seconds=60).try_acquire()
    result = invoke(home, sqlite_url, "scheduler", "start", "--no-standby")

    assert result.exit_code == 3
    assert "other-host:1:abc" in result.output and "--standby" in result.output


def test_schedule_lists_the_next_run_in_the_regions_zone_and_pause_stops_it(
    home: Path, sqlite_url: str, make_process: Any
) -> None:
    spec = definition(schedule={"triggers": [{"cron": "0 7 * * mon-fri"}]})
    invoke(home, sqlite_url, "deploy", str(make_process(spec)))
    guyane = {"ROBO_REGION": "guyane"}

    (active,) = json.loads(invoke(home, sqlite_url, "schedule", "--json", env=guyane).stdout)
    invoke(home, sqlite_url, "pause", "sample-process")
    (paused,) = json.loads(invoke(home, sqlite_url, "schedule", "--json", env=guyane).stdout)

    assert (active["state"], active["timezone"]) == ("active", "America/Cayenne")
    assert active["next_run_local"].endswith("T07:00-03:00")
    assert (paused["state"], paused["next_run_local"]) == ("paused", None)
