"""Command line of the database schema: ``w365etl db upgrade``, ``w365etl db current``.

The schema is versioned with Alembic (``w365etl/adapters/migrations``). ``upgrade`` brings a
database to the newest revision (creating every table in an empty one, adopting one built
before migrations existed); it is the only way a PostgreSQL schema is created or changed — runs
refuse an empty or out-of-date PostgreSQL database with exit 2 and say to run it. The embedded
SQLite database upgrades itself on the first real run. ``current`` shows where a database
stands and changes nothing.

An entrypoint like ``cli.py`` (the lead registers ``app`` as the ``db`` sub-command). Exit
status: 0 done (``current``: the schema is at head), 1 ``current`` found it not at head, 2
nothing done (unreadable configuration, database unreachable, a schema that cannot be upgraded
automatically).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Database schema: upgrade it to this version, show its revision.")

EXIT_NOT_AT_HEAD, EXIT_NOT_DONE = 1, 2

_DB_HELP = "Database URL (default: the settings' embedded SQLite; also W365_DB_URL)."
_CONFIG_HELP = "Settings file (default ./w365etl.toml if present)."


def _fail(message: str) -> NoReturn:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]w365etl:[/] {message}", highlight=False)
    raise typer.Exit(EXIT_NOT_DONE)


def _url(db: str | None, config: Path | None) -> str:
    from w365etl.settings import SettingsError, load_settings

    try:
        return load_settings(config, db_url=db).db_url.get_secret_value()
    except SettingsError as error:
        _fail(str(error))


@app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Option("--revision", help="Target revision (default: the newest).")] = "head",
    db: Annotated[Optional[str], typer.Option("--db", help=_DB_HELP)] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help=_CONFIG_HELP)] = None,
) -> None:
    """Create or upgrade the database schema (one transaction; safe to repeat)."""
    from w365etl.adapters.store_sql import StoreUnavailable, redact_url, upgrade_schema

    url = _url(db, config)
    try:
        before, after = upgrade_schema(url, revision)
    except StoreUnavailable as error:
        _fail(str(error))
    out = Console(soft_wrap=True)
    if before.revision == after.revision and not before.is_legacy:
        out.print(f"database {redact_url(url)} is already at {after.describe()}: nothing to do", highlight=False)
        return
    start = "an empty database" if before.is_empty else before.describe()
    out.print(f"upgraded database {redact_url(url)} from {start} to {after.describe()}", highlight=False)


@app.command("current")
def current(
    db: Annotated[Optional[str], typer.Option("--db", help=_DB_HELP)] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help=_CONFIG_HELP)] = None,
) -> None:
    """Show the database's schema revision (exit 1 when it is not at head). Changes nothing."""
    from w365etl.adapters import migrations
    from w365etl.adapters.store_sql import StoreUnavailable, redact_url, schema_status, sqlite_file_missing

    url = _url(db, config)
    out = Console(soft_wrap=True)
    if sqlite_file_missing(url):  # do not create the embedded database by looking at it
        out.print(f"database {redact_url(url)}: no database file yet (head is {migrations.head_revision()}); "
                  "the first run creates it", highlight=False)
        raise typer.Exit(EXIT_NOT_AT_HEAD)
    try:
        status = schema_status(url)
    except StoreUnavailable as error:
        _fail(str(error))
    out.print(f"database {redact_url(url)}: {status.describe()}", highlight=False)
    if not status.is_current:
        if not status.is_ahead:
            out.print("run `w365etl db upgrade` to bring it to head", highlight=False)
        raise typer.Exit(EXIT_NOT_AT_HEAD)
