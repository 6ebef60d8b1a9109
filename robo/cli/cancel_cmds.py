"""`robo cancel RUN`: ask a running run to stop (robo.cancellation)."""

from __future__ import annotations

import click

from robo.cli.common import Context, json_option
from robo.cli.completion import run_ids
from robo.cli.render import note, print_json


@click.command()
@click.argument("run_id", type=click.IntRange(1, 2**31 - 1), shell_complete=run_ids)
@click.option(
    "--now",
    is_flag=True,
    help="Stop at once: the item in flight goes back to the queue (not counted) and the "
    "browser is closed. Without it the run finishes the item in flight first.",
)
@json_option
@click.pass_obj
def cancel(obj: Context, run_id: int, now: bool, as_json: bool) -> None:
    """Stop a running run after its item in flight (--now: at once), wherever it runs.

    `robo run` in a terminal, the scheduler's runs, Celery workers on other
    machines: the request is recorded on the run's row, with who asked; the run reads it
    before each item and every few seconds. It takes no new item, finishes the
    one in flight (--now: leaves it at once, handed back to the queue) and
    ends `cancelled`: what it recorded stays, it earns no per-run minutes and is
    never resumed. The items it did not take wait in the queue for the next run
    (`robo pause PROCESS` as well, if the scheduler should start none).
    Exits 1 for an unknown run or one that is not running (its status is said).

    \b
    Examples:
      robo cancel 42
      robo cancel 42 --now
      robo runs --status running --json | jq '.[].id'   # what can be cancelled
    """
    request = obj.robo.cancellations.request(run_id, "now" if now else "after_item")
    if as_json:
        print_json(request)
        return
    how = "at once" if request.mode == "now" else "after the item in flight"
    if request.already:
        click.echo(
            f"run {run_id} ({request.process_id}): cancel already requested by "
            f"{request.requested_by or '?'} at {request.when} ({how})"
        )
        return
    click.echo(f"run {run_id} ({request.process_id}): cancel requested ({how})")
    where = (
        f" on {request.worker}"
        if request.worker
        else (f" on {request.host}" if request.host else "")
    )
    then = (
        "leaves the item in flight (back to the queue), closes its browser"
        if request.mode == "now"
        else "takes no new item, finishes the one in flight"
    )
    note(f"  the run{where} {then} and ends `cancelled`; `robo run-show {run_id}` shows it")


COMMANDS = [cancel]
