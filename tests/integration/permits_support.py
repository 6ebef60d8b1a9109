"""The residence-permit sample against the sample portal, driven as an operator would.

Shared by the exactly-once and fault tests: the files they enter, the portal's test
API (its own record of every update), and `robo` run as a subprocess.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import PORTAL_PASSWORD

REPO = Path(__file__).resolve().parents[2]
PROCESSES = REPO / "processes"
PERMITS = "residence-permit-entry"
DISPATCHER = "invoice-inbox-dispatch"
PERFORMER = "invoice-commitment-check"
SHARED_QUEUE = "invoices-to-check"
# Four new, valid files: each must be recorded exactly once. The third is interrupted.
ROWS = [
    ("2026-75-10001", "MARTIN", "Louise", "01/02/1990", "DZ", "salarie"),
    ("2026-75-10002", "DIALLO", "Awa", "12/11/1985", "SN", "famille"),
    ("2026-75-10003", "NGUYEN", "Bao", "23/07/1979", "VN", "etudiant"),
    ("2026-75-10004", "SILVA", "Ana", "30/04/2001", "BR", "visiteur"),
]
REFERENCES = [row[0] for row in ROWS]
INTERRUPTED = REFERENCES[2]
MINUTES_PER_PERMIT = 25  # residence-permit-entry: 30 by hand, 5 left

# Bounds: generous for a slow machine, finite everywhere.
RUN_TIMEOUT = 300.0  # one `robo run` in Chromium
COMMAND_TIMEOUT = 120.0  # any other `robo` command
HOLD_SECONDS = 240.0  # the portal holds the interrupted request at most this long
REACH_TIMEOUT = 180.0  # for the bot to reach the held request
EXIT_TIMEOUT = 30.0  # for a killed process (and its browser) to be gone


# --- helpers --------------------------------------------------------------------------


def portal_api(portal: Any, path: str, payload: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        portal.url + path,
        data=None if payload is None else json.dumps(payload).encode(),
        method="GET" if payload is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def updates_of(portal: Any, reference: str) -> dict[str, Any]:
    """``{"updates": {kind: n}, "attempts": {kind: n}}`` for one reference."""
    found: dict[str, Any] = portal_api(portal, f"/api/updates/{reference}")
    return found


@dataclass(frozen=True)
class Robo:
    """`python -m robo --home HOME --database-url URL ...` in a subprocess."""

    home: Path
    url: str
    extra_env: tuple[tuple[str, str], ...] = ()

    def with_env(self, **variables: str) -> Robo:
        """The same installation, its commands run with these variables set as well."""
        return dataclasses.replace(self, extra_env=self.extra_env + tuple(variables.items()))

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "robo", "--home", str(self.home),
                "--database-url", self.url, *args]  # fmt: skip

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROBO_")}
        env["ROBO_SECRET_PORTAL_PASSWORD"] = PORTAL_PASSWORD
        env["ROBO_LOCALE"] = "en"
        return env | dict(self.extra_env)

    def __call__(
        self, *args: str, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip

    def ok(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        done = self(*args, timeout=timeout)
        assert done.returncode == 0, f"robo {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def json(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> Any:
        return json.loads(self.ok(*args, "--json", timeout=timeout))

    def run(self, process_id: str, portal: Any, *args: str) -> dict[str, Any]:
        """`robo run PROCESS --json` to its end; the RunResult as a dict."""
        found: dict[str, Any] = self.json(
            "run", process_id, "--param", f"portal_url={portal.url}", "--no-progress", *args,
            timeout=RUN_TIMEOUT,
        )  # fmt: skip
        return found

    @property
    def log(self) -> Path:
        return self.home / "background-run.log"

    def start_run(self, process_id: str, portal: Any, *args: str) -> subprocess.Popen[bytes]:
        """`robo run` in the background, its output appended to ``log``."""
        with self.log.open("ab") as log:
            return subprocess.Popen(
                self.command("run", process_id, "--param", f"portal_url={portal.url}",
                             "--no-progress", *args),
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip


def assert_no_run_running(cli: Robo) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = cli.json("runs")
    assert [r["id"] for r in runs if r["status"] == "running"] == []
    return runs


def wait_until_held(portal: Any, reference: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the portal holds ``reference``'s request (the bot is waiting on it), while
    ``proc`` (a background `robo run`) is still alive; bounded by REACH_TIMEOUT."""
    deadline = time.monotonic() + REACH_TIMEOUT
    while reference not in portal_api(portal, "/api/faults")["holding"]:
        assert proc.poll() is None, log.read_text(encoding="utf-8", errors="replace")
        assert time.monotonic() < deadline, f"the bot never reached {reference}"
        time.sleep(0.05)
