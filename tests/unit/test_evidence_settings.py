"""The evidence block's trace policy, its legacy fields, ROBO_TRACE, and exited processes."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest
from pydantic import ValidationError

from robo.definition import Evidence
from robo.runner.browser import exited, kill_processes
from robo.settings import Settings


@pytest.mark.parametrize(
    ("block", "policy"),
    [
        ({}, None),  # the installation's
        ({"trace": "always"}, "always"),
        ({"trace": "off"}, "off"),
        ({"trace_on_failure": True}, None),  # the old default: leaves the choice to `trace`
        ({"trace_on_failure": True, "trace": "retain-on-failure"}, "retain-on-failure"),
        ({"trace_on_failure": False}, "off"),
        ({"trace_on_failure": False, "trace": "off"}, "off"),
    ],
)
def test_the_trace_policy_of_an_evidence_block(block: dict[str, object], policy: str) -> None:
    assert Evidence.model_validate(block).trace_policy == policy


def test_trace_on_failure_false_with_another_policy_is_refused() -> None:
    with pytest.raises(ValidationError, match="trace_on_failure is false"):
        Evidence.model_validate({"trace_on_failure": False, "trace": "always"})


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValidationError):
        Evidence.model_validate({"trace": "sometimes"})


def test_robo_trace_sets_the_installation_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().trace == "on-first-retry"
    monkeypatch.setenv("ROBO_TRACE", "retain-on-failure")
    assert Settings().trace == "retain-on-failure"


def test_a_zombie_counts_as_exited_and_is_not_waited_for() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    proc = psutil.Process(child.pid)
    deadline = time.monotonic() + 30
    while proc.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.is_running()  # what psutil says of a zombie
    assert exited(proc)

    kill_processes([proc], timeout=30)  # reaps it: our child

    assert not psutil.pid_exists(child.pid) or psutil.Process(child.pid) != proc
    child.returncode = 0  # reaped here, not by Popen


def test_a_running_process_is_killed_and_waited_for() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proc = psutil.Process(child.pid)

    kill_processes([proc], timeout=30)

    assert exited(proc)
    child.wait(timeout=30)
