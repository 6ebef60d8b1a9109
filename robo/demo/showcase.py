"""The demo: sample portal, sample processes, real runs, hours saved, the HTML report.

It never touches stored secrets: the portal password reaches the bots through
the ROBO_SECRET_PORTAL_PASSWORD source of this process only.
"""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from robo.app import Robo
from robo.clock import utcnow
from robo.errors import InputError
from robo.loader import load_many
from robo.registry import DeployResult
from robo.reports.hours import ProcessHours, hours_by_process
from robo.reports.report import Report
from robo.runner.run import Progress, RunRequest, RunResult, run_process


@dataclass(frozen=True)
class DemoResult:
    portal_url: str
    deployed: list[DeployResult]
    runs: list[RunResult]
    hours: list[ProcessHours]
    report: Report
    report_path: Path


def run_demo(
    robo: Robo,
    processes_dir: Path,
    *,
    progress: Callable[[str], Progress | None] = lambda _pid: None,
    announce: Callable[[str], None] = lambda _msg: None,
) -> DemoResult:
    from robo.demo.portal import PortalConfig, PortalServer

    if not processes_dir.is_dir():
        raise InputError(
            f"no sample processes at {processes_dir}; run the demo from a robo checkout "
            "or pass --processes PATH"
        )
    loaded = load_many([processes_dir])
    password = pysecrets.token_urlsafe(12)
    robo.env["ROBO_SECRET_PORTAL_PASSWORD"] = password
    since = utcnow()
    with PortalServer(PortalConfig(password=password)) as portal:
        portal_url = portal.url
        announce(f"sample portal running at {portal_url}")
        deployed = [robo.registry.deploy(process) for process in loaded]
        results = []
        for process in loaded:
            pid = process.definition.id
            params = (
                {"portal_url": portal.url} if "portal_url" in process.definition.parameters else {}
            )
            version = robo.registry.active(pid)
            request = RunRequest(process_id=pid, params=params, trigger="demo")
            results.append(run_process(robo.run_environment(), version, request, progress(pid)))
    report, report_path = write_report(robo)
    return DemoResult(
        portal_url,
        deployed,
        results,
        hours_by_process(robo.db, since=since),
        report,
        report_path,
    )


def write_report(robo: Robo) -> tuple[Report, Path]:
    """The programme's report (whole ledger) as HTML under ROBO_HOME/reports/."""
    from robo.reports.html import SERIES, write_html
    from robo.reports.report import build_report

    report = build_report(
        robo.db, ("process",), fte_hours_per_year=robo.settings.fte_hours_per_year, series=SERIES
    )
    return report, write_html(report, robo.settings.home / "reports" / "demo-report.html")
