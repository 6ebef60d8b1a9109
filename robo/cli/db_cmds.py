"""Database commands: schema version and migrations."""

from __future__ import annotations

import click

from robo.cli.common import Context
from robo.cli.render import print_json


@click.group()
def db() -> None:
    """Inspect and migrate the database schema (SQLite or PostgreSQL).

    \b
    Examples:
      robo db current
      robo db upgrade
      ROBO_DATABASE_URL=postgresql+psycopg://robo@db/robo robo db upgrade
    """


@db.command("current")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
def current(obj: Context, as_json: bool) -> None:
    """Show the schema revision of the database and the newest one robo knows.

    \b
    Examples:
      robo db current
      robo db current --json   # up_to_date, current, head
    """
    from robo.storage.database import Database, head_revision

    database = Database(obj.robo.settings.effective_database_url, migrate=False)
    try:
        found, head = database.revision(), head_revision()
    finally:
        database.close()
    if as_json:
        print_json(
            {
                "database": database.safe_url,
                "current": found,
                "head": head,
                "up_to_date": found == head,
            }
        )
        return
    state = "up to date" if found == head else "behind: run `robo db upgrade`"
    click.echo(f"{database.safe_url}: revision {found or 'none'} (newest {head}, {state})")


@db.command("upgrade")
@click.pass_obj
def upgrade(obj: Context) -> None:
    """Migrate the database to the newest schema (robo also does this when it opens one).

    \b
    Example:
      ROBO_DATABASE_URL=postgresql+psycopg://robo@db/robo robo db upgrade
    """
    from robo.storage.database import Database

    database = Database(obj.robo.settings.effective_database_url, migrate=True)
    try:
        click.echo(f"{database.safe_url}: at revision {database.revision()}")
    finally:
        database.close()


COMMANDS = [db]
