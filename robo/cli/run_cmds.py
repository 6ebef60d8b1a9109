"""Commands that run processes and read the ledger: run, runs, run-show (reports: report_cmds)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from robo.cli.common import Context, json_option
from robo.cli.completion import process_ids, run_ids
from robo.cli.progress import ProgressBar
from robo.cli.render import hours, note, print_json, table


def _params(values: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{value}' is not KEY=VALUE", param_hint="--param")
        params[key.strip()] = val
    return params


@click.command()
@click.argument("process_id", shell_complete=process_ids)
@click.option(
    "--input",
    "input_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Work items file (CSV, XLSX or JSON, per the definition): queued, then drained.",
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    help="Take at most N items from the queue in this run (the rest wait for the next).",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a parameter for this run; repeatable.",
)
@click.option("--headed", is_flag=True, help="Show the browser window (needs a display).")
@click.option(
    "--test",
    "is_test",
    is_flag=True,
    help="A test run: recorded and shown, left out of reports unless --include-test.",
)
@click.option(
    "--no-progress",
    is_flag=True,
    help="No progress bar (it is off anyway when stderr is not a terminal).",
)
@json_option
@click.pass_obj
def run(
    obj: Context,
    process_id: str,
    input_path: Path | None,
    limit: int | None,
    params: tuple[str, ...],
    headed: bool,
    is_test: bool,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Run the active version of a process now: queue its input, then drain its queue.

    The input (the definition's file, --input FILE, or what the bot produces)
    goes into the process's queue first; a reference already queued is refused
    and reported, never done twice. Then items are taken one by one in Chromium.
    Each ends as success, skipped (nothing to do), business exception (bad data,
    for a human) or application exception (retried per the retry policy, then
    by later runs). Failed items keep a screenshot (and a trace per the
    evidence.trace policy, ROBO_TRACE) under
    ROBO_HOME/evidence/RUN_ID. Exits 0 when the run completed (whatever the
    items' outcomes), 1 when it failed, timed out, was interrupted or was
    cancelled (`robo cancel RUN`, from any terminal). A --test
    run (trying a new version, a training session) is kept out of the
    production figures of `robo report`.

    \b
    Examples:
      robo run residence-permit-entry
      robo run residence-permit-entry --input today.csv --param portal_url=http://127.0.0.1:8765
      robo run invoice-commitment-check --limit 50
      robo run residence-permit-entry --test --input samples.csv
    """
    from robo.runner.run import RunRequest, run_process

    robo = obj.robo
    request = RunRequest(
        process_id=process_id, input_path=input_path, params=_params(params), headed=headed,
        limit=limit, purpose="test" if is_test else "production",
    )  # fmt: skip
    version = robo.registry.active(process_id)
    progress = ProgressBar(
        process_id, enabled=not no_progress and not as_json and sys.stderr.isatty()
    )
    try:
        result = run_process(robo.run_environment(), version, request, progress)
    finally:
        progress.stop()
    if as_json:
        print_json(result)
    else:
        click.echo(
            f"run {result.run_id} {process_id}: {result.status} · {result.items_total} items: "
            f"{result.succeeded} ok, {result.skipped} skipped, "
            f"{result.business_exceptions} business exception(s), "
            f"{result.application_exceptions} application exception(s) · "
            f"{hours(result.minutes_saved)} h saved"
        )
        if result.error:
            note(f"  {result.error}")
        if result.refused:
            note(f"  {len(result.refused)} reference(s) already queued, not added again:")
            for refusal in result.refused[:5]:
                note(f"    {refusal.render()}")
            if len(result.refused) > 5:
                note(f"    ... `robo queue show {version.definition.queue_name}` lists them all")
        if result.uncertain:
            note(f"  {len(result.uncertain)} item(s) left in progress by a dead run are uncertain "
                 f"(no verify block): {', '.join(result.uncertain[:5])}; see `robo worklist`")  # fmt: skip
        if result.business_exceptions or result.application_exceptions:
            note(f"  details: robo run-show {result.run_id}")
    if result.status != "completed":
        raise SystemExit(1)


@click.command()
@click.option("--process", "process_id", help="Only this process.", shell_complete=process_ids)
@click.option(
    "--status",
    type=click.Choice(
        ["running", "completed", "failed", "timed_out", "interrupted", "abandoned", "cancelled"]
    ),
)
@click.option("--limit", default=30, show_default=True, type=click.IntRange(1, 100000))
@json_option
@click.pass_obj
def runs(
    obj: Context, process_id: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    """List recent runs, newest first.

    \b
    Examples:
      robo runs
      robo runs --process residence-permit-entry --status failed
      robo runs --limit 5 --json
    """
    rows = obj.robo.ledger.runs(process_id=process_id, status=status, limit=limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        note("no runs yet; `robo run PROCESS_ID` starts one")
        return
    table(None, ["run", "process", "version", "region", "status", "started (UTC)", "items", "ok", "business", "app", "h saved"], [
        (r.id, r.process_id, r.version, r.region,
         r.status if r.purpose == "production" else f"{r.status} ({r.purpose})",
         r.started_at, r.items_total,
         r.succeeded, r.business_exceptions, r.application_exceptions, hours(r.minutes_saved))
        for r in rows
    ], right=["run", "items", "ok", "business", "app", "h saved"], optional=["region", "version", "items"])  # fmt: skip


@click.command("run-show")
@click.argument(
    "run_id", type=click.IntRange(1, 2**31 - 1), shell_complete=run_ids
)  # a database integer id
@json_option
@click.pass_obj
def run_show(obj: Context, run_id: int, as_json: bool) -> None:
    """Show one run: its items, errors, evidence and the baseline it used.

    \b
    Examples:
      robo run-show 42
      robo run-show 42 --json | jq '.items[] | select(.status != "success")'
    """
    detail = obj.robo.ledger.run_detail(run_id)
    if as_json:
        print_json(detail)
        return
    r, b = detail.run, detail.baseline
    click.echo(
        f"run {r.id} · {r.process_id} {r.version} · {r.region} · {r.status} · trigger {r.trigger}"
        + ("" if r.purpose == "production" else f" · {r.purpose} run (not in production reports)")
    )
    click.echo(f"  started {r.started_at} UTC, finished {r.finished_at or '-'} on {detail.host}")
    click.echo(
        f"  input {detail.input_name} · {r.items_total if r.items_total is not None else '?'} item(s)"
    )
    click.echo(
        f"  baseline: {b['manual_minutes_per_item']:g} min by hand - {b['residual_minutes_per_item']:g} min left "
        f"per item (+{b['manual_minutes_per_run']:g} min per run), measured by {b['measured_by']} on {b['measured_on']}"
    )
    click.echo(f"  saved: {r.minutes_saved:g} min ({hours(r.minutes_saved)} h)")
    if r.error:
        click.echo(f"  error: {r.error}")
    if r.items_total is not None and len(detail.items) < r.items_total:
        click.echo(f"  not processed: {r.items_total - len(detail.items)} item(s)")
    table(None, ["#", "reference", "status", "tries", "seconds", "min saved", "error / output"], [
        (i.position, i.reference, i.status, i.attempts,
         f"{i.duration_seconds:.1f}" if i.duration_seconds is not None else "",
         f"{i.minutes_saved:g}",
         (f"{i.error_type}: {i.error}" if i.error else ", ".join(f"{k}={v}" for k, v in i.output.items())))
        for i in detail.items
    ], right=["#", "tries", "seconds", "min saved"], optional=["seconds", "min saved", "tries"])  # fmt: skip
    evidence = [(i.reference, path) for i in detail.items for path in i.evidence]
    if evidence:
        click.echo("evidence:")
        for reference, path in evidence:
            click.echo(f"  {reference}: {path}")


COMMANDS = [run, runs, run_show]
