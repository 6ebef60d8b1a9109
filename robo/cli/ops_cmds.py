"""Operations: workers (scale-out), submitting runs to them, and the doctor."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from robo.cli.common import Context, json_option
from robo.cli.completion import process_ids as complete_process_ids
from robo.cli.render import note, print_json, table


@click.command()
@click.option(
    "--slots",
    type=click.IntRange(1, 64),
    help="Bots at once on this machine (default ROBO_BOT_SLOTS).",
)
@click.option("--name", help="Worker name (default HOST:PID).")
@click.pass_obj
def worker(obj: Context, slots: int | None, name: str | None) -> None:
    """Execute runs from the broker (executor 'celery'), with SLOTS bots at once.

    Start one per bot machine; all share the database (PostgreSQL) and the
    broker (Redis or RabbitMQ). SIGTERM or Ctrl-C waits for running bots to
    finish, then exits 0 (a second Ctrl-C interrupts them).

    \b
    Example:
      ROBO_EXECUTOR=celery ROBO_BROKER_URL=redis://broker:6379/0 \\
      ROBO_DATABASE_URL=postgresql+psycopg://robo@db/robo robo worker --slots 2
    """
    from robo.errors import ConfigurationError
    from robo.scheduling.executors.celery import run_worker

    robo = obj.robo
    if robo.settings.executor != "celery":
        raise ConfigurationError("`robo worker` needs ROBO_EXECUTOR=celery and ROBO_BROKER_URL")
    from robo.app import execute_job

    slots = slots or robo.settings.bot_slots
    stopped = run_worker(robo.settings, robo.db, robo.registry, execute_job, slots, name)
    if stopped:
        note(f"worker stopped ({stopped})")


@click.command()
@json_option
@click.pass_obj
def workers(obj: Context, as_json: bool) -> None:
    """Live workers, their slots and the runs they are executing.

    \b
    Examples:
      robo workers
      robo workers --json
    """
    from robo.scheduling.workers import list_workers

    rows = list_workers(obj.robo.db, obj.robo.settings.heartbeat_seconds)
    if as_json:
        print_json(rows)
        return
    table(None, ["worker", "host", "slots", "alive", "last heartbeat (UTC)", "running runs"], [
        (w.id, w.host, w.slots, "yes" if w.alive else "NO", w.heartbeat_at, ", ".join(map(str, w.current_runs)) or "-")
        for w in rows
    ], right=["slots"])  # fmt: skip


@click.command()
@click.argument("process_ids", nargs=-1, required=True, shell_complete=complete_process_ids)
@click.option(
    "--runs",
    default=1,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Runs of each process, submitted as separate jobs: N worker slots drain its queue at once.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Local executor only: run the jobs in this process and wait for them to end.",
)
# The background process of a local submit runs the jobs its parent printed.
@click.option("--job-uid", "job_uids", multiple=True, hidden=True)
@json_option
@click.pass_obj
def submit(
    obj: Context,
    process_ids: tuple[str, ...],
    runs: int,
    wait: bool,
    job_uids: tuple[str, ...],
    as_json: bool,
) -> None:
    """Queue runs for the configured executor's workers and return at once.

    With --runs N, each process gets N jobs that workers take independently
    (not a chain): N runs drain its queue concurrently, each item taken by
    exactly one of them. A run that finds the queue empty ends at once.

    With the local executor (no broker, ROBO_EXECUTOR=local) the jobs go to a
    background process on this machine, ROBO_BOT_SLOTS at once, its output in
    ROBO_HOME/logs/; `robo runs` follows them. --wait runs them here instead.

    \b
    Examples:
      robo submit residence-permit-entry invoice-commitment-check
      robo submit invoice-commitment-check --runs 4   # a big queue over 4 worker slots
      robo submit invoice-commitment-check --runs 2 --json
      ROBO_EXECUTOR=local robo submit residence-permit-entry --wait
    """
    from robo.scheduling.executors.base import RunJob

    robo = obj.robo
    celery = robo.settings.executor == "celery"
    if wait and celery:
        raise click.UsageError("--wait is for the local executor; workers run Celery jobs")
    for process_id in process_ids:
        robo.registry.active(process_id)  # refuse unknown ids before queuing anything
    jobs = [RunJob(process_id, "submit") for process_id in process_ids for _ in range(runs)]
    if job_uids:
        if len(job_uids) != len(jobs):
            raise click.UsageError(f"{len(jobs)} job(s), {len(job_uids)} --job-uid")
        jobs = [RunJob(job.process_id, "submit", uid=uid) for job, uid in zip(jobs, job_uids, strict=True)]  # fmt: skip
    if not celery and not wait:
        log = obj.robo.settings.home / "logs" / f"submit-{jobs[0].uid}.log"
        pid = _in_background(process_ids, runs, [job.uid for job in jobs], log)
        _print_jobs(jobs, as_json)
        note(f"the local executor runs them in a background process (pid {pid}, "
             f"{robo.settings.bot_slots} at once); its output: {log}; `robo runs` follows them")  # fmt: skip
        return
    executor = robo.executor()
    try:
        for job in jobs:
            executor.submit([job])  # one job each: a batch would run one after another
        while not celery and any(executor.busy(pid) for pid in process_ids):
            time.sleep(0.5)  # --wait: until every run has ended
    finally:
        if celery:
            executor.shutdown()
        else:  # done; or interrupted: the runs stop between items (then within 60 s)
            executor.shutdown(drain_seconds=60)
    _print_jobs(jobs, as_json)


def _print_jobs(jobs: list[Any], as_json: bool) -> None:
    if as_json:
        print_json([{"process_id": j.process_id, "uid": j.uid} for j in jobs])
    else:
        for job in jobs:
            click.echo(f"queued {job.process_id} (job {job.uid})")


def _in_background(process_ids: tuple[str, ...], runs: int, uids: list[str], log: Path) -> int:
    """Start `robo submit --wait` for these jobs in a new session (a Ctrl-C in this
    terminal does not reach it), with the same global options; return its pid."""
    root = click.get_current_context().find_root().params
    argv = [sys.executable, "-m", "robo"]
    for name in ("home", "database_url", "region", "log_level"):
        if root.get(name) is not None:
            argv += [f"--{name.replace('_', '-')}", str(root[name])]
    argv += ["submit", *process_ids, "--runs", str(runs), "--wait"]
    for uid in uids:
        argv += ["--job-uid", uid]
    log.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    return os.posix_spawn(
        sys.executable,
        argv,
        dict(os.environ),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), flags, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )


@click.command()
@json_option
@click.pass_obj
def doctor(obj: Context, as_json: bool) -> None:
    """Check the database, migrations, secrets, Chromium, broker, workers and scheduler.

    Exits 1 if anything is a problem.

    \b
    Examples:
      robo doctor
      ROBO_EXECUTOR=celery ROBO_BROKER_URL=redis://broker:6379/0 robo doctor
      robo doctor --json | jq '.[] | select(.status != "ok")'
    """
    from robo.doctor import diagnose
    from robo.scheduling.executors.celery import longest_run

    robo = obj.robo
    # Doctor opens the database without migrating it, and asks for the registry (which opens
    # robo.db, migrating) only once it found the schema at the newest revision.
    checks = diagnose(robo.settings, longest_run=lambda: longest_run(robo.registry), env=robo.env)
    if as_json:
        print_json(checks)
    else:
        styles = {"ok": ("ok", "green"), "warning": ("warn", "yellow"), "problem": ("FAIL", "red")}
        for check in checks:
            label, colour = styles[check.status]
            click.echo(f"{click.style(f'{label:<4}', fg=colour)}  {check.name:<11} {check.detail}")
    if any(c.status == "problem" for c in checks):
        raise SystemExit(1)


COMMANDS = [worker, workers, submit, doctor]
