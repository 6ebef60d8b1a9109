"""Operations: workers (scale-out), submitting runs to them, and the doctor."""

from __future__ import annotations

import click

from robo.cli.common import Context, json_option
from robo.cli.render import print_json, table


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
    broker (Redis or RabbitMQ). SIGTERM waits for running bots to finish.

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
    run_worker(robo.settings, robo.db, robo.registry, execute_job, slots, name)


@click.command()
@json_option
@click.pass_obj
def workers(obj: Context, as_json: bool) -> None:
    """Live workers, their slots and the runs they are executing."""
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
@click.argument("process_ids", nargs=-1, required=True)
@click.option(
    "--runs",
    default=1,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Runs of each process, submitted as separate jobs: N worker slots drain its queue at once.",
)
@json_option
@click.pass_obj
def submit(obj: Context, process_ids: tuple[str, ...], runs: int, as_json: bool) -> None:
    """Queue runs for the configured executor's workers instead of running here.

    With --runs N, each process gets N jobs that workers take independently
    (not a chain): N runs drain its queue concurrently, each item taken by
    exactly one of them. A run that finds the queue empty ends at once.

    \b
    Examples:
      robo submit residence-permit-entry invoice-commitment-check
      robo submit invoice-commitment-check --runs 4   # a big queue over 4 worker slots
      robo submit invoice-commitment-check --runs 2 --json
    """
    from robo.scheduling.executors.base import RunJob

    robo = obj.robo
    for process_id in process_ids:
        robo.registry.active(process_id)  # refuse unknown ids before queuing anything
    executor = robo.executor()
    jobs = [RunJob(process_id, "submit") for process_id in process_ids for _ in range(runs)]
    try:
        for job in jobs:
            executor.submit([job])  # one job each: a batch would run one after another
    finally:
        if robo.settings.executor == "celery":
            executor.shutdown()
        else:
            executor.shutdown(drain_seconds=86400)  # local: wait for the runs to end
    if as_json:
        print_json([{"process_id": j.process_id, "uid": j.uid} for j in jobs])
    else:
        for job in jobs:
            click.echo(f"queued {job.process_id} (job {job.uid})")


@click.command()
@json_option
@click.pass_obj
def doctor(obj: Context, as_json: bool) -> None:
    """Check the database, migrations, secrets, Chromium, broker, workers and scheduler.

    Exits 1 if anything is a problem.
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
