"""``robo``: the root command, global options and the one place errors become exit codes."""

from __future__ import annotations

import codecs
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from robo.cli.common import Context
from robo.cli.render import error

EXAMPLES = """
\b
Examples:
  robo demo                              # portal + sample processes + hours saved
  robo validate processes/               # check definitions, every problem at once
  robo deploy processes/invoice-commitment-check
  robo run invoice-commitment-check --param portal_url=http://127.0.0.1:8765
  robo runs --json | jq '.[0]'
  robo report
"""


class RoboGroup(click.Group):
    """Turns every RoboError into its message and an exit code, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        from robo.errors import RoboError

        try:
            return super().invoke(ctx)
        except RoboError as exc:
            error(exc.message)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            error("interrupted")
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            # Not a RoboError: a bug, or a failure robo does not know how to explain yet.
            # One line, never a traceback (ROBO_LOG_LEVEL=debug shows it).
            if _debugging(ctx):
                raise
            lines = str(exc).strip().splitlines()
            detail = f": {lines[0][:300]}" if lines else ""
            error(
                f"unexpected {type(exc).__name__}{detail} (this is a bug in robo: please report "
                "it with the command; ROBO_LOG_LEVEL=debug shows the traceback)"
            )
            sys.exit(INTERNAL_ERROR)


INTERNAL_ERROR = 70  # EX_SOFTWARE


def _debugging(ctx: click.Context) -> bool:
    level = ctx.params.get("log_level") or os.environ.get("ROBO_LOG_LEVEL", "")
    return str(level).strip().lower() == "debug"


def _sigterm_as_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _unencodable(exc: UnicodeError) -> tuple[str | bytes, int]:
    """Text robo prints may hold lone surrogates: a file name given as undecodable bytes
    (written back as those bytes), or an escape in input data (shown as \\udXXX)."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    chunk = exc.object[exc.start : exc.end]
    if all("\udc80" <= c <= "\udcff" for c in chunk):
        return bytes(ord(c) - 0xDC00 for c in chunk), exc.end
    return "".join(f"\\u{ord(c):04x}" for c in chunk), exc.end


codecs.register_error("robo-text", _unencodable)


def _tolerant_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # a stream that cannot change
                reconfigure(errors="robo-text")


@click.group(
    cls=RoboGroup, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("--home", type=click.Path(path_type=Path), help="Data folder (ROBO_HOME).")
@click.option("--database-url", help="SQLAlchemy URL (ROBO_DATABASE_URL).")
@click.option("--region", help="Region recorded on runs (ROBO_REGION).")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log verbosity (ROBO_LOG_LEVEL); logs go to stderr.",
)
@click.version_option(package_name="robo")
@click.pass_context
def cli(
    ctx: click.Context,
    home: Path | None,
    database_url: str | None,
    region: str | None,
    log_level: str | None,
) -> None:
    """robo: register, run and measure software robots (RPA) for public administrations.

    Process definitions live in folders (process.yaml + bot code); `robo deploy`
    stores immutable versions; `robo run` drives a headless Chromium through
    each work item; every item lands in the ledger with the minutes it saved.
    """
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    _tolerant_output()
    state = Context(
        {"home": home, "database_url": database_url, "region": region, "log_level": log_level}
    )
    ctx.obj = state
    ctx.call_on_close(state.close)


def _register() -> None:
    from robo.cli import (
        alert_cmds,
        cancel_cmds,
        db_cmds,
        demo_cmds,
        ops_cmds,
        queue_cmds,
        registry_cmds,
        replication_cmds,
        report_cmds,
        run_cmds,
        scheduler_cmds,
        secret_cmds,
        status_cmds,
        worklist_cmds,
    )

    modules = (registry_cmds, run_cmds, report_cmds, scheduler_cmds, replication_cmds, alert_cmds)
    others = (cancel_cmds, queue_cmds, worklist_cmds, ops_cmds, secret_cmds, db_cmds, demo_cmds)
    for module in (*modules, *others, status_cmds):
        for command in module.COMMANDS:
            cli.add_command(command)
    for command in status_cmds.METRICS_COMMANDS:  # `robo metrics serve`
        replication_cmds.metrics.add_command(command)


_register()


def main() -> None:
    cli(prog_name="robo")
