"""The demo: sample portal, sample processes, real runs, hours saved, the HTML report.

Each sample drains its work queue; a dispatcher (a process that adds items to
another's queue) runs before the performers (``items.source: queue``) that drain
it. It never touches stored secrets: the portal password is made up for this demo
and reaches its bots only (and the redactor), never the secret store.
"""

from __future__ import annotations

import dataclasses
import secrets as pysecrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from robo.clock import utcnow
from robo.errors import InputError
from robo.loader import LoadedProcess, load_many
from robo.registry import DeployResult, Registry
from robo.reports.hours import ProcessHours, hours_by_process
from robo.reports.queries import Scope
from robo.reports.report import Report
from robo.runner.run import Progress, RunEnvironment, RunRequest, RunResult, run_process
from robo.settings import Settings
from robo.storage.database import Database

PORTAL_SECRET = "portal_password"
DEMO = ("demo",)  # the purpose the demo's runs record, and the only one its report shows


@dataclass(frozen=True)
class DemoResult:
    portal_url: str
    deployed: list[DeployResult]
    runs: list[RunResult]
    hours: list[ProcessHours]
    report: Report
    report_path: Path
    order: list[str] = dataclasses.field(default_factory=list)  # process of each run


#: Samples that show a feature rather than a programme's work, left out of the demo's runs
#: and hours: lab-case-review (the steps language on /lab) takes some 15 s for 4 items.
NOT_IN_DEMO = frozenset({"lab-case-review"})


def run_order(processes: list[LoadedProcess]) -> list[LoadedProcess]:
    """Performers (``items.source: queue``) last: the processes that feed their queues
    (dispatchers) run first, so the performers find their items waiting."""
    return sorted(processes, key=lambda p: p.definition.items.source == "queue")


def run_demo(
    settings: Settings,
    db: Database,
    registry: Registry,
    environment: RunEnvironment,
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
    loaded = [p for p in load_many([processes_dir]) if p.definition.id not in NOT_IN_DEMO]
    password = pysecrets.token_urlsafe(12)

    def secret(name: str) -> str:
        if name != PORTAL_SECRET:
            return environment.secret(name)
        environment.redactor.add(password)
        return password

    run_environment = dataclasses.replace(environment, secret=secret)
    since = utcnow()
    with PortalServer(PortalConfig(password=password)) as portal:
        portal_url = portal.url
        announce(f"sample portal running at {portal_url}")
        deployed = [registry.deploy(process) for process in loaded]
        results = []
        order = run_order(loaded)
        for process in order:
            pid = process.definition.id
            params = (
                {"portal_url": portal.url} if "portal_url" in process.definition.parameters else {}
            )
            version = registry.active(pid)
            request = RunRequest(process_id=pid, params=params, trigger="demo", purpose="demo")
            results.append(run_process(run_environment, version, request, progress(pid)))
    report, report_path = write_report(settings, db)
    return DemoResult(
        portal_url,
        deployed,
        results,
        hours_by_process(db, since=since, purposes=DEMO),
        report,
        report_path,
        [p.definition.id for p in order],
    )


def write_report(settings: Settings, db: Database) -> tuple[Report, Path]:
    """The report of every demo run (never production: they stay out of the programme's
    figures) as HTML under ROBO_HOME/reports/."""
    from robo.reports.drilldown_html import write_report_html
    from robo.reports.html import SERIES
    from robo.reports.report import build_report

    report = build_report(
        db, ("process",), scope=Scope(purposes=DEMO),
        fte_hours_per_year=settings.fte_hours_per_year, series=SERIES,
    )  # fmt: skip
    path = settings.home / "reports" / "demo-report.html"
    return report, write_report_html(db, report, path)  # its figures open down to the items
