"""Secrets: set (prompted, never echoed), list (names only), delete."""

from __future__ import annotations

import sys

import click

from robo.cli.common import Context
from robo.cli.render import print_json, table


@click.group()
def secret() -> None:
    """Manage secrets used by bots (stored encrypted; values never shown).

    Bots read a secret by name (listed under `secrets:` in process.yaml).
    ROBO_SECRET_<NAME> environment variables override stored values.

    \b
    Examples:
      robo secret set portal_password
      robo secret list
      robo secret delete portal_password
    """


@secret.command("set")
@click.argument("name")
@click.option(
    "--stdin", "from_stdin", is_flag=True, help="Read the value from standard input (for scripts)."
)
@click.pass_obj
def set_secret(obj: Context, name: str, from_stdin: bool) -> None:
    """Store a secret; the value is prompted for and never echoed.

    \b
    Examples:
      robo secret set portal_password
      printf %s "$PASSWORD" | robo secret set portal_password --stdin
    """
    from robo.secrets import check_name

    check_name(name)
    if from_stdin:
        value = sys.stdin.read().rstrip("\r\n")
    else:
        value = click.prompt(f"value for {name}", hide_input=True, confirmation_prompt=True)
    obj.robo.secrets.set(name, value)
    click.echo(f"secret {name} stored (encrypted)")


@secret.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
def list_secrets(obj: Context, as_json: bool) -> None:
    """List secret names and where each comes from; never their values.

    \b
    Examples:
      robo secret list
      robo secret list --json
    """
    rows = obj.robo.secrets.names()
    if as_json:
        print_json(rows)
        return
    table(
        None,
        ["name", "source", "updated (UTC)"],
        [(r["name"], r["source"], r["updated_at"]) for r in rows],
    )


@secret.command("delete")
@click.argument("name")
@click.pass_obj
def delete_secret(obj: Context, name: str) -> None:
    """Remove a stored secret.

    \b
    Example:
      robo secret delete portal_password
    """
    from robo.errors import SecretError
    from robo.secrets import check_name

    check_name(name)
    if not obj.robo.secrets.delete(name):
        raise SecretError(f"no stored secret '{name}'")
    click.echo(f"secret {name} deleted")


COMMANDS = [secret]
