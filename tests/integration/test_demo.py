"""`robo demo`, as a newcomer types it: portal, sample processes, real runs, hours saved."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROCESS_IDS = [
    "hr-claims-entry",
    "invoice-commitment-check",
    "invoice-inbox-dispatch",
    "new-files-export",
    "outstanding-reminders",
    "residence-permit-entry",
]


def robo(
    home: Path, cwd: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`robo ARGS...` with ROBO_HOME only: SQLite in the home, no secret in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBO_")}
    env["ROBO_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "robo", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.browser
def test_the_demo_runs_every_sample_and_reports_the_hours_it_saved(tmp_path: Path) -> None:
    home = tmp_path / "home"

    demo = robo(home, tmp_path, "demo", "--processes", str(REPO / "processes"), timeout=240)

    assert demo.returncode == 0, demo.stdout + demo.stderr
    out = demo.stdout
    assert "Hours of agent work saved" in out
    for process_id in PROCESS_IDS:
        assert process_id in out
    ran = re.findall(r"^run +\d+ +completed +([a-z-]+) ", out, flags=re.MULTILINE)
    assert sorted(ran) == PROCESS_IDS
    # The dispatcher fills the queue the performer drains: it runs first.
    assert ran.index("invoice-inbox-dispatch") < ran.index("invoice-commitment-check")
    assert re.search(r"invoice-commitment-check +12 items: 8 ok, 0 skipped, 4 business", out)
    summary = re.search(r"^6 processes, ([\d,.]+) hours of agent work saved\.$", out, re.MULTILINE)
    assert summary, out
    total = float(summary.group(1).replace(",", ""))
    assert total > 0
    assert (home / "robo.db").is_file()  # SQLite in ROBO_HOME, not in the working directory
    headline = re.search(
        r"^6 processes run by the demo \(not production\), [\d,.]+ hours saved since go-live "
        r"\(\d{4}-\d{2}-\d{2}\), "
        r"across 1 region\.$",
        out,
        re.MULTILINE,
    )
    assert headline, out
    html = home / "reports" / "demo-report.html"
    assert f"HTML report (charts, opens offline): {html}" in out
    assert headline.group(0) in html.read_text(encoding="utf-8")

    # Demo runs are never production: the programme's report leaves them out unless asked.
    production = robo(home, tmp_path, "report", "--json")
    assert production.returncode == 0, production.stderr
    assert json.loads(production.stdout) == []
    headline = robo(home, tmp_path, "report", "--headline")
    assert "No production runs yet" in headline.stdout, headline.stdout + headline.stderr
    report = robo(home, tmp_path, "report", "--include-test", "--json")
    assert report.returncode == 0, report.stderr
    rows = json.loads(report.stdout)
    assert sorted(r["process_id"] for r in rows) == PROCESS_IDS
    assert all(r["runs"] == 1 for r in rows)
    assert f"{sum(r['hours_saved'] for r in rows):,.1f}" == summary.group(1)

    runs = robo(home, tmp_path, "runs", "--json")
    assert runs.returncode == 0, runs.stderr
    assert {(r["trigger"], r["purpose"]) for r in json.loads(runs.stdout)} == {("demo", "demo")}

    secrets = robo(home, tmp_path, "secret", "list", "--json")
    assert secrets.returncode == 0, secrets.stderr
    assert json.loads(secrets.stdout) == []


def test_the_demo_without_sample_processes_says_what_to_do(tmp_path: Path) -> None:
    home = tmp_path / "home"

    result = robo(home, tmp_path, "demo", "--processes", "/nonexistent")

    assert result.returncode == 1
    assert "no sample processes at /nonexistent" in result.stderr
    assert "--processes PATH" in result.stderr
    assert "Traceback" not in result.stderr
