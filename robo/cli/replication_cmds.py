"""Commands that share processes and figures between regions.

export, import, keys, overlay, replicas, upgrade, metrics.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from robo.cli.common import Context, json_option
from robo.cli.registry_cmds import PROCESS_ID, VERSION
from robo.cli.render import note, print_json, table

catalogue_option = click.option(
    "--catalogue",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder of bundles (default: ROBO_CATALOGUE).",
)


def _day(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"'{value}' is not a date (YYYY-MM-DD)", param_hint=option
        ) from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


# --- bundles -----------------------------------------------------------------------------


@click.command("export")
@click.argument("process_id", type=PROCESS_ID)
@click.option("--version", type=VERSION, help="Version to export (default: the active one).")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Bundle file to write."
)
@click.option(
    "--with-items",
    is_flag=True,
    help="Also carry the items file (items.path); it often holds personal data.",
)
@json_option
@click.pass_obj
def export_cmd(
    obj: Context,
    process_id: str,
    version: str | None,
    output: Path | None,
    with_items: bool,
    as_json: bool,
) -> None:
    """Write a signed bundle of a process version for other regions.

    The bundle holds the definition, bot code and documentation, with their
    hashes, the origin region and version, and this region's Ed25519 signature
    (`robo keys generate` first). Never secrets, evidence or run data; the items
    file (items.path: work items, often names and dates) only with --with-items.
    The file is written mode 0644, for a shared catalogue.

    \b
    Examples:
      robo export residence-permit-entry -o catalogue/residence-permit-entry-1.1.0.robo.zip
      robo export residence-permit-entry --version 1.0.0 -o old.robo.zip
    """
    from robo.replication.bundles import bundle_name, export_bundle

    robo = obj.robo
    if output is None:
        chosen = version or robo.registry.active(process_id, with_overlay=False).definition.version
        output = Path(bundle_name(process_id, chosen))
    result = export_bundle(
        robo.registry, robo.keys, process_id, version, output, with_items=with_items
    )
    if as_json:
        print_json(result)
        return
    click.echo(
        f"wrote {result.path}: {result.process_id} {result.version} "
        f"(origin {result.origin_region} {result.origin_version}, {result.files} files, "
        f"sha256 {result.sha256[:12]})"
    )


@click.command("import")
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--overlay",
    "overlay_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A new overlay file for this version, checked against it and stored with it.",
)
@json_option
@click.pass_obj
def import_cmd(obj: Context, bundle: Path, overlay_file: Path | None, as_json: bool) -> None:
    """Verify a bundle (signature, hashes, definition) and register its version.

    Nothing is unpacked or stored unless every check passes. The version keeps
    its lineage (origin region and version); a downgrade is refused, and so is
    a version that this region's overlay no longer fits.

    \b
    Example:
      robo keys trust occitanie ed25519:...
      robo import residence-permit-entry-1.0.0.robo.zip
    """
    from robo.replication.bundles import import_bundle

    robo = obj.robo
    result = import_bundle(robo.db, robo.registry, robo.keys, bundle, overlay_file)
    if as_json:
        print_json(result)
        return
    click.echo(
        f"{result.outcome}: {result.process_id} {result.version} "
        f"(from {result.origin_region} {result.origin_version})"
        + (" · overlay kept" if result.overlay_kept else "")
    )
    if result.diff:
        click.echo(result.diff, nl=False)


# --- keys ------------------------------------------------------------------------------------


@click.group()
def keys() -> None:
    """This region's signing key and the keys of the regions it trusts.

    \b
    Examples:
      robo keys generate
      robo keys trust occitanie ed25519:...
      robo keys list
    """


@keys.command("generate")
@click.option("--force", is_flag=True, help="Replace an existing key (others must re-trust).")
@json_option
@click.pass_obj
def keys_generate(obj: Context, force: bool, as_json: bool) -> None:
    """Create this region's Ed25519 key (ROBO_HOME/keys/REGION.key, mode 0600).

    Prints the public key to give to other regions for `robo keys trust`.

    \b
    Examples:
      robo keys generate
      robo keys generate --force   # a new key: other regions must trust it again
    """
    result = obj.robo.keys.generate(force=force)
    if as_json:
        print_json(result)
        return
    note(f"wrote {result.path} (keep it private; back it up)")
    note(f"other regions trust it with: robo keys trust {result.region} {result.public_key}")
    click.echo(result.public_key)


@keys.command("trust")
@click.argument("region")
@click.argument("public_key")
@click.option("--replace", is_flag=True, help="Replace the key already trusted for REGION.")
@json_option
@click.pass_obj
def keys_trust(obj: Context, region: str, public_key: str, replace: bool, as_json: bool) -> None:
    """Trust REGION's public key for bundles and metrics files.

    \b
    Examples:
      robo keys trust occitanie ed25519:...
      robo keys trust guyane ed25519:... --replace   # guyane generated a new key
    """
    result = obj.robo.keys.trust(region, public_key, replace=replace)
    if as_json:
        print_json(result)
        return
    click.echo(f"trusted {result.region} ({result.fingerprint})")


@keys.command("list")
@json_option
@click.pass_obj
def keys_list(obj: Context, as_json: bool) -> None:
    """This region's public key and every trusted key.

    \b
    Examples:
      robo keys list
      robo keys list --json
    """
    result = obj.robo.keys.listing()
    if as_json:
        print_json(result)
        return
    click.echo(f"{result.region}: {result.local_key or 'no signing key (robo keys generate)'}")
    table("Trusted keys", ["region", "fingerprint", "public key", "added (UTC)"], [
        (k.region, k.fingerprint, k.public_key, k.added_at) for k in result.trusted
    ])  # fmt: skip


# --- overlays --------------------------------------------------------------------------------


@click.group()
def overlay() -> None:
    """Regional overlays: local parameters, schedule, calendar, baseline, secret names.

    \b
    Examples:
      robo overlay apply overlays/
      robo overlay list
      robo overlay show residence-permit-entry
    """


@overlay.command("apply")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@json_option
@click.pass_obj
def overlay_apply(obj: Context, paths: tuple[Path, ...], as_json: bool) -> None:
    """Validate overlay files against their processes and store them (all or none).

    \b
    Example:
      robo overlay apply overlays/
    """
    from robo.replication.overlays import apply_overlays

    results = apply_overlays(obj.robo.db, obj.robo.registry, list(paths))
    if as_json:
        print_json(results)
        return
    for r in results:
        click.echo(f"{r.outcome:9}  {r.process_id}  ({r.source})")


@overlay.command("show")
@click.argument("process_id", type=PROCESS_ID)
@json_option
@click.pass_obj
def overlay_show(obj: Context, process_id: str, as_json: bool) -> None:
    """The overlay stored for a process, as applied to its runs.

    \b
    Examples:
      robo overlay show residence-permit-entry
      robo overlay show residence-permit-entry --json
    """
    from robo.replication.overlays import show_overlay

    view = show_overlay(obj.robo.db, process_id)
    if as_json:
        print_json(view)
        return
    click.echo(f"# {view.process_id} · from {view.source} · applied {view.updated_at} UTC")
    click.echo(view.text, nl=not view.text.endswith("\n"))


@overlay.command("list")
@json_option
@click.pass_obj
def overlay_list(obj: Context, as_json: bool) -> None:
    """Every stored overlay.

    \b
    Examples:
      robo overlay list
      robo overlay list --json
    """
    from robo.replication.overlays import list_overlays

    views = list_overlays(obj.robo.db)
    if as_json:
        print_json(views)
        return
    table(None, ["process", "source", "changes", "applied (UTC)"], [
        (v.process_id, v.source, ", ".join(k for k, val in v.overlay.items() if val and k != "process"),
         v.updated_at)
        for v in views
    ])  # fmt: skip


@overlay.command("remove")
@click.argument("process_id", type=PROCESS_ID)
@click.pass_obj
def overlay_remove(obj: Context, process_id: str) -> None:
    """Forget a process's overlay: it runs with the origin's values again.

    \b
    Example:
      robo overlay remove residence-permit-entry
    """
    from robo.replication.overlays import remove_overlay

    removed = remove_overlay(obj.robo.db, process_id)
    click.echo(f"removed the overlay of {process_id}" if removed else "no overlay to remove")


# --- replicas and upgrades -------------------------------------------------------------------


@click.command()
@catalogue_option
@json_option
@click.pass_obj
def replicas(obj: Context, catalogue: Path | None, as_json: bool) -> None:
    """Processes adopted from other regions, and newer versions in the catalogue.

    \b
    Examples:
      robo replicas --catalogue catalogue/
      ROBO_CATALOGUE=/srv/catalogue robo replicas --json
    """
    from robo.replication.catalogue import replicas as list_replicas

    robo = obj.robo
    folder = catalogue or robo.settings.catalogue
    rows, read = list_replicas(robo.db, robo.registry, robo.keys, folder)
    if as_json:
        print_json({"replicas": rows, "rejected": read.rejected if read else []})
        return
    for problem in read.rejected if read else []:
        note(f"ignored {problem}")
    if not rows:
        note("no replicated processes; `robo import BUNDLE` adopts one")
        return
    table(None, ["process", "origin", "origin version", "in use", "available", "overlay"], [
        (r.process_id, r.origin_region, r.origin_version, r.version_in_use,
         r.available or ("-" if read else "?"), "yes" if r.overlay else "")
        for r in rows
    ])  # fmt: skip


@click.command()
@click.argument("process_id", type=PROCESS_ID)
@catalogue_option
@click.option(
    "--overlay",
    "overlay_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A new overlay file for this version, checked against it and stored with it.",
)
@json_option
@click.pass_obj
def upgrade(
    obj: Context, process_id: str, catalogue: Path | None, overlay_file: Path | None, as_json: bool
) -> None:
    """Import the newest catalogue version of a process, keeping the overlay.

    Shows what changed. Refused, with nothing stored, when the overlay no
    longer fits the new version: fix the overlay file and upgrade again with
    --overlay FILE (checked against the new version, stored with it).

    \b
    Examples:
      robo replicas --catalogue /mnt/catalogue
      robo upgrade residence-permit-entry --catalogue /mnt/catalogue
      robo upgrade residence-permit-entry --overlay overlays/residence-permit-entry.yaml
    """
    from robo.replication.catalogue import upgrade as do_upgrade

    robo = obj.robo
    folder = catalogue or robo.settings.catalogue
    result = do_upgrade(robo.db, robo.registry, robo.keys, process_id, folder, overlay_file)
    if as_json:
        print_json(result)
        return
    if result.outcome == "up-to-date":
        click.echo(f"{process_id} {result.from_version} is up to date")
        return
    click.echo(
        f"upgraded {process_id} {result.from_version} -> {result.to_version}"
        + (" · overlay kept" if result.overlay_kept else "")
    )
    if result.diff:
        click.echo(result.diff, nl=False)


# --- metrics -------------------------------------------------------------------------------


@click.group()
def metrics() -> None:
    """Ledger figures between a region and the national level; `serve`: a Prometheus
    endpoint for monitoring.

    \b
    Examples:
      robo metrics export -o guyane.json
      robo metrics import metrics/*.json
      robo metrics serve --port 9464
    """


@metrics.command("export")
@click.option("--since", help="First day included (YYYY-MM-DD, UTC, by run start).")
@click.option("--until", help="First day excluded (YYYY-MM-DD, UTC).")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path, dir_okay=False))
@json_option
@click.pass_obj
def metrics_export(
    obj: Context, since: str | None, until: str | None, output: Path, as_json: bool
) -> None:
    """Write this region's finished runs and items, signed, for the national view.

    No work-item data, outputs, error texts, parameters or evidence: outcomes,
    durations, baselines and minutes saved only.

    \b
    Examples:
      robo metrics export -o guyane.json
      robo metrics export --since 2026-07-01 --until 2026-10-01 -o guyane-2026-q3.json
    """
    from robo.replication.metrics import export_metrics

    robo = obj.robo
    since_at, until_at = _day(since, "--since"), _day(until, "--until")
    result = export_metrics(robo.ledger, robo.keys, output, since_at, until_at)
    if as_json:
        print_json(result)
        return
    click.echo(f"wrote {result.path}: {result.runs} runs, {result.items} items ({result.region})")


@metrics.command("import")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True)
)
@json_option
@click.pass_obj
def metrics_import(obj: Context, files: tuple[Path, ...], as_json: bool) -> None:
    """Merge regions' metrics files; importing one twice changes nothing.

    \b
    Examples:
      robo metrics import metrics/*.json
      robo metrics import guyane.json --json
    """
    from robo.replication.metrics import import_metrics

    results = import_metrics(obj.robo.ledger, obj.robo.keys, list(files))
    if as_json:
        print_json(results)
        return
    for r in results:
        click.echo(
            f"{r.outcome:16}  {r.region:24}  +{r.runs_added} runs  +{r.items_added} items  "
            f"({r.path})"
        )
        for reason in r.ignored[:10]:
            note(f"  ignored: {reason}")
        if len(r.ignored) > 10:
            note(f"  ... {len(r.ignored) - 10} more (--json lists them all)")


COMMANDS: list[click.Command] = [
    export_cmd,
    import_cmd,
    keys,
    overlay,
    replicas,
    upgrade,
    metrics,
]
