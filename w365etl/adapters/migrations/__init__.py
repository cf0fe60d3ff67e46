"""Alembic migrations of the w365etl schema, run from code (no ``alembic.ini`` at run time).

- :func:`upgrade` brings a database to a revision (``head`` by default) in **one transaction**,
  under a lock (PostgreSQL: an advisory transaction lock; SQLite: the ``BEGIN IMMEDIATE`` write
  lock of the engines :func:`w365etl.adapters.store_sql.create_store_engine` builds), so two
  processes upgrading at once serialise and the second finds nothing to do.
- A database built before migrations existed (``create_all``: the tables but no
  ``alembic_version``) is *adopted*: its tables and columns are checked against what the initial
  revision creates, it is stamped at that revision and then upgraded. A schema that does not
  match is never touched; the error lists the differences.
- :func:`schema_status` says where a database stands; the store refuses to run on PostgreSQL
  unless it is at head (``w365etl db upgrade`` — see ``docs/data-model.md``).

A new revision (development only): change ``tables.py``, then on a database at head::

    from w365etl.adapters import migrations
    from w365etl.adapters.store_sql import create_store_engine
    migrations.revision(create_store_engine("sqlite:///scratch.sqlite"), "add an index", "0004")

and review the generated file in ``versions/`` by hand (types, names, batch mode for SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, inspect, text

MIGRATIONS_DIR = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version"
#: the revision that creates the schema as it stood when migrations were introduced
INITIAL_REVISION = "0001"
#: PostgreSQL advisory lock held by every upgrade (one at a time per database)
MIGRATION_LOCK_KEY = 0x7733_3635_0000_0001
#: a table every w365etl schema has: present without ``alembic_version`` = built by create_all
MARKER_TABLE = "runs"


class SchemaError(Exception):
    """The database's schema cannot be upgraded automatically (the message says why)."""


def alembic_config(*, connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic ``Config`` built in code: the packaged scripts, and a connection or URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    config.attributes["connection"] = connection
    config.attributes["url"] = url
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "no migration scripts found"
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database stands. ``revision`` is None for an empty or a legacy database."""

    revision: str | None
    head: str
    is_empty: bool
    is_legacy: bool

    @property
    def is_current(self) -> bool:
        return self.revision == self.head

    @property
    def is_ahead(self) -> bool:
        """Migrated by a newer w365etl than this one (a revision these scripts do not know)."""
        return self.revision is not None and self.revision not in known_revisions()

    def describe(self) -> str:
        if self.is_empty:
            return "empty database (no w365etl tables)"
        if self.is_legacy:
            return "tables created before migrations existed (no alembic_version)"
        if self.is_current:
            return f"{self.revision} (head)"
        if self.is_ahead:
            return f"{self.revision} (newer than this w365etl, whose head is {self.head})"
        return f"{self.revision} (out of date; head is {self.head})"


def schema_status(connection: Connection) -> SchemaStatus:
    tables = set(inspect(connection).get_table_names())
    head = head_revision()
    if VERSION_TABLE in tables:
        revision = MigrationContext.configure(connection).get_current_revision()
        return SchemaStatus(revision=revision, head=head, is_empty=revision is None and MARKER_TABLE not in tables,
                            is_legacy=revision is None and MARKER_TABLE in tables)
    return SchemaStatus(revision=None, head=head, is_empty=MARKER_TABLE not in tables,
                        is_legacy=MARKER_TABLE in tables)


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def upgrade(engine: Engine, revision: str = "head") -> tuple[SchemaStatus, SchemaStatus]:
    """Upgrade to ``revision`` in one transaction; returns the status before and after.

    ``engine`` should come from ``create_store_engine`` (on SQLite it makes the transaction
    ``BEGIN IMMEDIATE``, so the DDL is transactional and two upgrades serialise).
    """
    with engine.begin() as connection:
        _lock(connection)
        before = schema_status(connection)
        if before.is_ahead:
            raise SchemaError(f"the database schema is at {before.describe()}: upgrade w365etl instead")
        if before.is_legacy:
            _adopt_legacy_schema(connection)
        command.upgrade(alembic_config(connection=connection), revision)
        after = schema_status(connection)
    return before, after


def stamp(engine: Engine, revision: str) -> None:
    """Record ``revision`` without running anything (tests and recovery only)."""
    with engine.begin() as connection:
        _lock(connection)
        command.stamp(alembic_config(connection=connection), revision)


def revision(engine: Engine, message: str, rev_id: str, *, autogenerate: bool = True) -> None:
    """Development: write a new revision file, compared against the database behind ``engine``."""
    with engine.begin() as connection:
        command.revision(alembic_config(connection=connection), message=message, rev_id=rev_id,
                         autogenerate=autogenerate)
    _scripts.cache_clear()


def _shape(connection: Connection) -> dict[str, set[str]]:
    inspector = inspect(connection)
    return {table: {column["name"] for column in inspector.get_columns(table)}
            for table in inspector.get_table_names() if table != VERSION_TABLE}


@lru_cache(maxsize=1)
def initial_shape() -> dict[str, frozenset[str]]:
    """Tables and columns the initial revision creates (built once in an in-memory SQLite)."""
    scratch = create_engine("sqlite://")
    try:
        with scratch.begin() as connection:
            command.upgrade(alembic_config(connection=connection), INITIAL_REVISION)
            return {table: frozenset(columns) for table, columns in _shape(connection).items()}
    finally:
        scratch.dispose()


def _adopt_legacy_schema(connection: Connection) -> None:
    """A create_all schema that is exactly the initial revision's is stamped at that revision."""
    expected = initial_shape()
    found = _shape(connection)
    problems = []
    for table, columns in sorted(expected.items()):
        if table not in found:
            problems.append(f"table {table} is missing")
            continue
        missing, extra = sorted(columns - found[table]), sorted(found[table] - columns)
        if missing:
            problems.append(f"{table} lacks {', '.join(missing)}")
        if extra:
            problems.append(f"{table} has unexpected {', '.join(extra)}")
    if problems:
        raise SchemaError(
            "the database has w365etl tables but no migration history, and they differ from the "
            f"initial schema ({'; '.join(problems)}); it was not changed — upgrade it by hand or "
            "start from an empty database")
    command.stamp(alembic_config(connection=connection), INITIAL_REVISION)
