"""``robo status`` (the installation at a glance) and ``robo metrics serve`` (Prometheus).

The figures come from robo/status.py and robo/exporter.py; this module parses,
renders (80 columns at most) and serves.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from typing import TYPE_CHECKING

import click

from robo.cli.common import Context, json_option
from robo.cli.render import note, print_json, to_plain

if TYPE_CHECKING:
    from robo.status import RunProgress, Status

MAX_WIDTH = 80
SHOWN_FIRES = 5


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 05 min``."""
    seconds = round(max(seconds, 0.0))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _clock(iso: str | None) -> str:
    """``2026-03-02T10:15:04+00:00`` -> ``10:15:04``; the date is dropped."""
    if not iso:
        return "-"
    return iso[11:19] if len(iso) >= 19 else iso


def _run_item(run: RunProgress) -> str:
    if run.current is None:
        return run.position
    return f"{run.position}: {run.current.reference} ({duration(run.current.seconds)})"


def _eta(run: RunProgress) -> str:
    if run.eta_seconds is None:
        return "-"
    return f"{duration(run.eta_seconds)} ({_clock(run.eta_at)})"


def render_status(status: Status, width: int = MAX_WIDTH) -> str:
    """The status as text people read, every line at most ``width`` columns."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = io.StringIO()
    console = Console(file=out, width=width, soft_wrap=False, no_color=True, highlight=False)

    def section(title: str, columns: list[str], rows: list[list[str]], right: int = 0) -> None:
        grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title_justify="left",
                     title=Text(title), header_style="bold")  # fmt: skip
        for i, name in enumerate(columns):
            grid.add_column(Text(name), overflow="fold", justify="right" if i < right else "left")
        for row in rows:
            grid.add_row(*(Text(cell) for cell in row))
        console.print(grid)

    s = status.scheduler
    facts = Table.grid(padding=(0, 2))
    facts.add_column(no_wrap=True)
    facts.add_column(overflow="fold")
    facts.add_row("status at", f"{status.at.replace('T', ' ')[:19]} UTC")
    facts.add_row("scheduler", Text(s.text))
    if s.standbys:
        facts.add_row("standby", Text(", ".join(s.standbys)))
    from robo.status import busy_slots

    alive = [w for w in status.workers if w.alive]
    if status.workers:
        busy, slots = busy_slots(status.workers)
        dead = len(status.workers) - len(alive)
        workers = f"{len(alive)} alive, {busy} of {slots} slots busy"
        facts.add_row("workers", workers + (f" ({dead} silent)" if dead else ""))
    else:
        facts.add_row("workers", "none (local executor, or no `robo worker` running)")
    waiting = sum(q.waiting for q in status.queues)
    facts.add_row("queues", f"{waiting} item(s) waiting in {len(status.queues)} queue(s)")
    facts.add_row("worklist", f"{status.worklist} item(s) waiting for an agent")
    alerts = "not configured" if status.alerts_open is None else f"{status.alerts_open} open"
    facts.add_row("alerts", alerts)
    console.print(facts)

    if status.runs:
        section(
            f"runs in progress ({len(status.runs)})",
            ["run", "process", "done", "now", "ETA"],
            [
                [
                    str(r.id),
                    r.process_id,
                    f"{r.done}/{'?' if r.total is None else r.total}",
                    _run_item(r),
                    _eta(r),
                ]
                for r in status.runs
            ],
            right=1,
        )
    else:
        console.print("no run in progress")

    busy_queues = [q for q in status.queues if q.waiting or q.in_progress or q.needs_human]
    if busy_queues:
        section(
            "queues",
            ["waiting", "in progress", "for an agent", "queue"],
            [
                [str(q.waiting), str(q.in_progress), str(q.needs_human), q.queue]
                for q in busy_queues
            ],
            right=3,
        )
    if status.next_fires:
        shown = status.next_fires[:SHOWN_FIRES]
        section(
            "next fires",
            ["local time", "process"],
            [[f.at_local[:16].replace("T", " ") + f" {f.timezone}", f.process_id] for f in shown],
        )
        if len(status.next_fires) > len(shown):
            console.print(f"... {len(status.next_fires) - len(shown)} more (--json lists them)")
    elif not status.scheduler.live:
        console.print("no scheduled fire (`robo scheduler start` fires schedules)")
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())


def _width() -> int:
    return max(40, min(shutil.get_terminal_size((MAX_WIDTH, 24)).columns, MAX_WIDTH))


@click.command()
@click.option(
    "--watch",
    "every",
    type=click.FloatRange(min=0.5),
    is_flag=False,
    flag_value=2.0,
    default=None,
    metavar="[SECONDS]",
    help="Refresh every SECONDS (2 if not given) until Ctrl-C.",
)
@click.option(
    "--fires", default=10, show_default=True, type=click.IntRange(0, 1000),
    help="How many next fires to list (--json); the table shows 5.",
)  # fmt: skip
@json_option
@click.pass_obj
def status(obj: Context, every: float | None, fires: int, as_json: bool) -> None:
    """The installation now: scheduler leader and standbys, workers and slots, runs
    in progress (current item, done/total, ETA), queues, worklist, alerts, next fires.

    The ETA is the mean duration of the items a run recorded so far times the
    items it has left. With --watch --json, one JSON document per line.

    \b
    Examples:
      robo status
      robo status --watch            # every 2 s until Ctrl-C
      robo status --watch 10
      robo status --json | jq '.runs[] | {id, done, total, eta_seconds}'
    """
    from robo.status import status as read_status

    robo = obj.robo
    settings = robo.settings
    configured = settings.alerts_file is not None or settings.effective_alerts_file.exists()

    def read() -> Status:
        return read_status(
            robo.db, robo.registry, robo.queues, heartbeat_seconds=settings.heartbeat_seconds,
            alerts_configured=configured, fires=fires,
        )  # fmt: skip

    if every is None:
        if as_json:
            print_json(read())
        else:
            click.echo(render_status(read(), _width()), nl=False)
        return
    try:
        while True:
            current = read()
            if as_json:
                click.echo(json.dumps(to_plain(current), ensure_ascii=False, default=str))
            else:
                click.clear()
                click.echo(render_status(current, _width()), nl=False)
                click.echo(f"(every {every:g} s; Ctrl-C stops)")
            time.sleep(every)
    except KeyboardInterrupt:
        return


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=9464, show_default=True, type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port, printed).",
)  # fmt: skip
@click.pass_obj
def metrics_serve(obj: Context, host: str, port: int) -> None:
    """Serve Prometheus / OpenMetrics metrics read from the database at each scrape.

    Runs by process, status and purpose; items by outcome; minutes saved
    (production); queue items by status; the worklist; dispatch lag; the
    scheduler leader and standbys; workers and slots; open alerts. Ctrl-C or
    SIGTERM stops it (exit 0). No secret, parameter or URL is ever exposed.

    \b
    Examples:
      robo metrics serve                        # http://127.0.0.1:9464/metrics
      robo metrics serve --host 0.0.0.0 --port 9464
      curl -s http://127.0.0.1:9464/metrics | grep robo_runs_running
    """
    from robo.exporter import MetricsServer, RoboCollector

    robo = obj.robo
    settings = robo.settings
    collector = RoboCollector(
        robo.db, robo.queues, heartbeat_seconds=settings.heartbeat_seconds,
        alerts_configured=settings.alerts_file is not None
        or settings.effective_alerts_file.exists(),
    )  # fmt: skip
    server = MetricsServer(collector, host, port)
    note(f"serving metrics on {server.url} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    note("metrics endpoint stopped")


COMMANDS: list[click.Command] = [status]
# Subcommands of `robo metrics` (robo/cli/replication_cmds.py), attached by robo/cli/main.py.
METRICS_COMMANDS: list[click.Command] = [metrics_serve]
