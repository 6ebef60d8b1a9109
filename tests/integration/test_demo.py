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
    # A newcomer in a French region reads the demo in French, with French numbers.
    assert "Heures de travail d'agent économisées par cette démonstration" in out
    for process_id in PROCESS_IDS:
        assert process_id in out
    ran = re.findall(r"^exécution +\d+ +terminée +([a-z-]+) ", out, flags=re.MULTILINE)
    assert sorted(ran) == PROCESS_IDS
    # The dispatcher fills the queue the performer drains: it runs first.
    assert ran.index("invoice-inbox-dispatch") < ran.index("invoice-commitment-check")
    assert re.search(
        r"invoice-commitment-check +12 éléments : 8 réussis, 0 sans objet, 4 exceptions métier", out
    )
    summary = re.search(
        r"^6 processus, ([\d\u202f,]+) heures de travail d'agent économisées\.$", out, re.MULTILINE
    )
    assert summary, out
    total = float(summary.group(1).replace("\u202f", "").replace(",", "."))
    assert total > 0
    assert (home / "robo.db").is_file()  # SQLite in ROBO_HOME, not in the working directory
    headline = re.search(
        r"^6 processus exécutés par la démonstration \(hors production\), [\d\u202f,]+ heures "
        r"économisées depuis la mise en service \(\d{1,2} \w+ \d{4}\), dans 1 région\.$",
        out,
        re.MULTILINE,
    )
    assert headline, out
    html = home / "reports" / "demo-report.html"
    assert f"Rapport HTML (graphiques, lisible hors ligne) : {html}" in out
    page = html.read_text(encoding="utf-8")
    assert headline.group(0) in page and '<html lang="fr">' in page

    # Demo runs are never production: the programme's report leaves them out unless asked.
    production = robo(home, tmp_path, "report", "--json")
    assert production.returncode == 0, production.stderr
    assert json.loads(production.stdout) == []
    headline = robo(home, tmp_path, "report", "--headline")
    assert "Aucune exécution en production" in headline.stdout, headline.stdout + headline.stderr
    english = robo(home, tmp_path, "report", "--headline", "--include-test", "--locale", "en")
    assert english.stdout.startswith("6 processes run (production, test and demo runs together), ")
    report = robo(home, tmp_path, "report", "--include-test", "--json")
    assert report.returncode == 0, report.stderr
    rows = json.loads(report.stdout)
    assert sorted(r["process_id"] for r in rows) == PROCESS_IDS
    assert all(r["runs"] == 1 for r in rows)
    assert sum(r["hours_saved"] for r in rows) == pytest.approx(total, abs=0.05)

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
