"""Commands over definitions and the registry: validate, schema, deploy, processes, show..."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem

from robo.cli.common import Context, json_option
from robo.cli.completion import process_ids
from robo.cli.render import note, print_json, table

if TYPE_CHECKING:
    _ParamType = click.ParamType[str, Any]
else:  # generic only in recent click
    _ParamType = click.ParamType


class StoredText(_ParamType):
    """An argument robo looks up in its database: a process id, a version, a name.

    Refused before any query when it could not be stored at all (a lone surrogate from
    undecodable bytes, a NUL, too long) or does not match ``pattern``: a usage error
    saying what is expected, instead of a database error.
    """

    name = "text"

    def __init__(
        self,
        what: str,
        pattern: str | None = None,
        max_length: int = 255,
        complete: Callable[[click.Context, click.Parameter, str], list[str]] | None = None,
    ) -> None:
        self.what = what
        self.pattern = re.compile(pattern) if pattern else None
        self.max_length = max_length
        self.complete = complete

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        """The values robo knows (``complete``: read from the database), for the shell."""
        if self.complete is None:
            return []
        return [CompletionItem(value) for value in self.complete(ctx, param, incomplete)]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if "\0" in text or not _encodable(text) or len(text) > self.max_length:
            self.fail(f"{text[:40]!r}... is not a {self.what}", param, ctx)
        if self.pattern is not None and not self.pattern.match(text):
            self.fail(f"{text!r} is not a {self.what}", param, ctx)
        return text


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


PROCESS_ID = StoredText(
    "process id (lower-case letters, digits and '-'; `robo processes` lists them)",
    r"^[a-z0-9][a-z0-9-]{0,62}$",
    complete=process_ids,
)
VERSION = StoredText("version (e.g. 1.2.0; `robo history ID` lists them)", max_length=64)


def write_output(output: Path, data: bytes) -> None:
    """Write an -o file, or say in one line why it cannot be written."""
    from robo.errors import RoboError

    try:
        output.write_bytes(data)
    except OSError as exc:
        raise RoboError(
            f"cannot write {output}: {exc.strerror or exc}; choose a file you may write"
        ) from None


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def validate(paths: tuple[Path, ...], as_json: bool) -> None:
    """Check process definitions without deploying them.

    PATH is a process folder, its process.yaml, or a folder of process folders.
    Every problem is reported with its file, line, field and a hint; the exit
    code is 1 if any definition is invalid.

    \b
    Examples:
      robo validate processes/
      robo validate processes/invoice-commitment-check/process.yaml
    """
    from robo.errors import DefinitionError
    from robo.loader import load_many

    try:
        loaded = load_many(paths)
    except DefinitionError as exc:
        if as_json:
            print_json({"valid": False, "problems": exc.problems})
            raise SystemExit(1) from None
        raise
    if as_json:
        print_json({"valid": True, "processes": [
            {"id": p.definition.id, "version": p.definition.version, "content_hash": p.content_hash}
            for p in loaded
        ]})  # fmt: skip
        return
    for process in loaded:
        click.echo(
            f"ok  {process.definition.id} {process.definition.version}  ({process.source_dir})"
        )


@click.command()
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Write to FILE instead of stdout."
)
def schema(output: Path | None) -> None:
    """Print the JSON Schema of process.yaml, for editors.

    \b
    Example (VS Code with the YAML extension, in .vscode/settings.json):
      robo schema -o process.schema.json
      "yaml.schemas": {"./process.schema.json": "processes/*/process.yaml"}
    """
    from robo.definition import json_schema

    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output:
        write_output(output, text.encode("utf-8"))
        note(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--fork",
    is_flag=True,
    help="Deploy over a process imported from another region as a local fork of it "
    "(its origin region and version are kept).",
)
@json_option
@click.pass_obj
def deploy(obj: Context, paths: tuple[Path, ...], fork: bool, as_json: bool) -> None:
    """Validate and store immutable versions of processes; make them active.

    Identical content is a no-op. Changed content under an already deployed
    version number is refused: raise the version in process.yaml. All or
    nothing: nothing is stored unless every given definition is valid and
    every version can be stored. A process imported from another region is
    refused (its lineage would be lost) unless --fork records a local fork.

    \b
    Examples:
      robo deploy processes/               # every process folder inside
      robo deploy processes/residence-permit-entry
      robo deploy --fork my-adapted-copy/  # a local fork of an imported process
    """
    from robo.errors import RoboError
    from robo.loader import load_many

    loaded = load_many(paths)
    robo = obj.robo
    try:
        results = robo.registry.deploy_many(loaded, fork=fork, local_region=robo.settings.region)
    except RoboError as exc:
        if len(loaded) > 1 and "nothing was stored" not in exc.message:
            exc.args = (f"{exc.message}; nothing was stored (deploy is all or nothing)",)
        raise
    if as_json:
        print_json(results)
        return
    for result in results:
        click.echo(
            f"{result.outcome:<12} {result.process_id} {result.version}  ({result.content_hash[:12]})"
        )


@click.command()
@json_option
@click.pass_obj
def processes(obj: Context, as_json: bool) -> None:
    """List registered processes with their active version.

    \b
    Examples:
      robo processes
      robo processes --json | jq -r '.[].id'
    """
    rows = obj.robo.registry.processes()
    if as_json:
        print_json(rows)
        return
    if not rows:
        note("no processes yet; `robo deploy processes/` registers the samples")
        return
    table(None, ["id", "version", "enabled", "region", "applications", "versions", "name"], [
        (r.id, r.active_version, "yes" if r.enabled else "no", r.owner_region,
         ", ".join(r.applications), r.versions, r.name)
        for r in rows
    ], right=["versions"], optional=["applications", "versions", "region", "enabled"])  # fmt: skip


@click.command()
@click.argument("process_id", type=PROCESS_ID)
@click.option(
    "--version", "version", type=VERSION, help="A deployed version (default: the active one)."
)
@json_option
@click.pass_obj
def show(obj: Context, process_id: str, version: str | None, as_json: bool) -> None:
    """Show a process definition as deployed (default: the active version).

    \b
    Examples:
      robo show residence-permit-entry
      robo show residence-permit-entry --version 1.0.0
      robo show residence-permit-entry --json
    """
    registry = obj.robo.registry
    found = registry.get(process_id, version) if version else registry.active(process_id)
    if as_json:
        print_json({
            "definition": found.definition.model_dump(mode="json"),
            "content_hash": found.content_hash,
            "enabled": found.enabled,
            "files": sorted(found.files),
        })  # fmt: skip
        return
    d = found.definition
    b = d.baseline
    click.echo(f"{d.id} {d.version}  {d.name}  [{'enabled' if found.enabled else 'disabled'}]")
    click.echo(f"  owner:        {d.owner.region} / {d.owner.team} <{d.owner.contact}>")
    click.echo(f"  applications: {', '.join(d.applications)}")
    click.echo(
        f"  bot:          {d.bot.entrypoint or f'{len(d.bot.steps or [])} declarative steps'}"
    )
    click.echo(
        f"  items:        {d.items.source}{' ' + d.items.path if d.items.path else ''} (reference: {d.items.reference})"
    )
    click.echo(
        f"  baseline:     {b.manual_minutes_per_item:g} min by hand, {b.residual_minutes_per_item:g} min left "
        f"per item -> {b.minutes_saved_per_item:g} min saved (measured by {b.measured_by}, {b.measured_on})"
    )
    click.echo(f"  parameters:   {', '.join(f'{k}={v}' for k, v in d.parameters.items()) or '-'}")
    click.echo(f"  secrets:      {', '.join(d.secrets) or '-'}")
    click.echo(f"  hash:         {found.content_hash}")
    click.echo(f"  files:        {', '.join(['process.yaml', *sorted(found.files)])}")
    if d.description:
        click.echo(f"\n{d.description.strip()}")


@click.command()
@click.argument("process_id", type=PROCESS_ID)
@json_option
@click.pass_obj
def history(obj: Context, process_id: str, as_json: bool) -> None:
    """Versions of a process and every deploy, rollback, disable and enable.

    \b
    Examples:
      robo history residence-permit-entry
      robo history residence-permit-entry --json
    """
    registry = obj.robo.registry
    versions, events = registry.versions(process_id), registry.history(process_id)
    if as_json:
        print_json({"versions": versions, "events": events})
        return
    table(f"{process_id}: versions", ["version", "active", "deployed at (UTC)", "by", "hash", "from"], [
        (v.version, "*" if v.active else "", v.deployed_at, v.deployed_by, v.content_hash[:12], v.source_path)
        for v in versions
    ])  # fmt: skip
    table(f"{process_id}: events", ["at (UTC)", "action", "version", "by", "detail"], [
        (e.at, e.action, e.version or "", e.actor, e.detail) for e in events
    ])  # fmt: skip


@click.command()
@click.argument("process_id", type=PROCESS_ID)
@click.argument("old", type=VERSION)
@click.argument("new", type=VERSION)
@click.pass_obj
def diff(obj: Context, process_id: str, old: str, new: str) -> None:
    """Show what changed between two deployed versions (unified diff).

    \b
    Example:
      robo diff residence-permit-entry 1.0.0 1.1.0
    """
    text = obj.robo.registry.diff(process_id, old, new)
    click.echo(text or f"{process_id} {old} and {new} have the same content", nl=not text)


@click.command()
@click.argument("process_id", type=PROCESS_ID)
@click.argument("version", type=VERSION)
@click.pass_obj
def rollback(obj: Context, process_id: str, version: str) -> None:
    """Make an earlier deployed version the active one again.

    \b
    Example:
      robo rollback residence-permit-entry 1.0.0
    """
    obj.robo.registry.rollback(process_id, version)
    click.echo(f"{process_id}: version {version} is active")


@click.command()
@click.argument("process_id", type=PROCESS_ID)
@click.pass_obj
def disable(obj: Context, process_id: str) -> None:
    """Stop a process from running (manual runs and schedules) until enabled.

    \b
    Examples:
      robo disable residence-permit-entry
      robo enable residence-permit-entry   # runs again
    """
    changed = obj.robo.registry.set_enabled(process_id, False)
    click.echo(f"{process_id}: disabled" if changed else f"{process_id} was already disabled")


@click.command()
@click.argument("process_id", type=PROCESS_ID)
@click.pass_obj
def enable(obj: Context, process_id: str) -> None:
    """Allow a disabled process to run again.

    \b
    Example:
      robo enable residence-permit-entry
    """
    changed = obj.robo.registry.set_enabled(process_id, True)
    click.echo(f"{process_id}: enabled" if changed else f"{process_id} was already enabled")


COMMANDS = [validate, schema, deploy, processes, show, history, diff, rollback, disable, enable]
