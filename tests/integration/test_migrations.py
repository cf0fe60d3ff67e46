"""The schema is versioned with Alembic, on both backends.

- ``w365etl db upgrade`` builds an empty database; ``w365etl db current`` then shows head.
- The initial revision is exactly the models: no autogenerate difference, and the same tables,
  columns, types, keys and indexes as ``create_all`` made before migrations existed.
- Data survives: a populated database at the initial revision keeps every row through
  ``upgrade head`` — which runs 0002 (``lines.row_digest``) and 0003 (``runs.owner``) on it —
  and so does a database built by ``create_all`` before migrations (adopted: checked, stamped,
  upgraded). Both are made by a real run at head taken back to the initial schema
  (``downgrade``, or the columns dropped by hand), since a run needs the current schema.
- A run never creates or alters a PostgreSQL schema: against an empty or un-upgraded one it
  exits 2 telling the user to run ``w365etl db upgrade``. The embedded SQLite upgrades itself.
"""

from __future__ import annotations

import os

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from typer.testing import CliRunner

from tests.support.exports import line, write_flat_csv, write_reference
from tests.support.threads import at_once
from w365etl.adapters import migrations
from w365etl.adapters import tables as t
from w365etl.adapters.store_sql import SqlStore, StoreUnavailable, create_store_engine
from w365etl.db_commands import app as db_app

AS_OF = dt.date(2026, 11, 29)
TENANT = "0b7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e01"
runner = CliRunner()


def db(*args: str):
    return runner.invoke(db_app, list(args), catch_exceptions=False)


def _drop_everything(url: str) -> None:
    engine = create_store_engine(url)
    with engine.begin() as connection:
        t.Base.metadata.drop_all(connection)
        connection.execute(text(f"DROP TABLE IF EXISTS {migrations.VERSION_TABLE}"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db_url(request, tmp_path) -> str:
    """A database with no tables at all (not even the migration history)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'w365etl.sqlite'}"
    url = request.getfixturevalue("pg_server_url")
    _drop_everything(url)
    return url


def _status(url: str) -> migrations.SchemaStatus:
    engine = create_store_engine(url)
    with engine.connect() as connection:
        status = migrations.schema_status(connection)
    engine.dispose()
    return status


def _counts(url: str) -> dict[str, int]:
    engine = create_store_engine(url)
    with engine.connect() as connection:
        counts = {table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                  for table in t.Base.metadata.sorted_tables}
    engine.dispose()
    return counts


def _downgrade(url: str, revision: str) -> None:
    from alembic import command

    engine = create_store_engine(url)
    with engine.begin() as connection:
        command.downgrade(migrations.alembic_config(connection=connection), revision)
    engine.dispose()


def _shape(url: str) -> dict:
    """Everything a schema is made of, as reflected (names, types, nullability, keys, indexes)."""
    engine = create_store_engine(url)
    with engine.connect() as connection:
        inspector = inspect(connection)
        shape = {
            table: (
                [(column["name"], str(column["type"]), column["nullable"]) for column in inspector.get_columns(table)],
                inspector.get_pk_constraint(table)["constrained_columns"],
                sorted((index["name"], tuple(index["column_names"]), bool(index["unique"]))
                       for index in inspector.get_indexes(table)),
                sorted(tuple(unique["column_names"]) for unique in inspector.get_unique_constraints(table)),
                sorted((tuple(key["constrained_columns"]), key["referred_table"], tuple(key["referred_columns"]))
                       for key in inspector.get_foreign_keys(table)),
            )
            for table in inspector.get_table_names() if table != migrations.VERSION_TABLE
        }
    engine.dispose()
    return shape


# ---------------------------------------------------------------------------- upgrade / current
def test_db_upgrade_builds_an_empty_database_and_current_shows_head(empty_db_url):
    before = db("current", "--db", empty_db_url)
    assert before.exit_code == 1
    assert "w365etl db upgrade" in before.output or "first run creates it" in before.output

    upgraded = db("upgrade", "--db", empty_db_url)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"to {migrations.head_revision()} (head)" in upgraded.output

    current = db("current", "--db", empty_db_url)
    assert current.exit_code == 0, current.output
    assert f"{migrations.head_revision()} (head)" in current.output
    assert set(_shape(empty_db_url)) == {table.name for table in t.Base.metadata.sorted_tables}

    again = db("upgrade", "--db", empty_db_url)
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_the_migrated_schema_is_exactly_the_models(empty_db_url):
    engine = create_store_engine(empty_db_url)
    migrations.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, t.Base.metadata) == []
    engine.dispose()
    migrated = _shape(empty_db_url)

    # the same schema as create_all built before migrations existed (so old databases match)
    _drop_everything(empty_db_url)
    engine = create_store_engine(empty_db_url)
    t.Base.metadata.create_all(engine)
    engine.dispose()
    assert _shape(empty_db_url) == migrated


def test_two_upgrades_at_once_serialise_and_both_succeed(empty_db_url):
    def upgrade() -> tuple:
        engine = create_store_engine(empty_db_url)
        try:
            return migrations.upgrade(engine)
        finally:
            engine.dispose()

    results, errors = at_once(upgrade, 2)
    assert errors == []
    assert sorted(before.is_empty for before, _ in results) == [False, True]  # one built it, one found it built
    assert _status(empty_db_url).is_current


# ---------------------------------------------------------------------------- data survives
@pytest.fixture
def run_flow(tmp_path, monkeypatch):
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "record")
    from flows.provision_orders import provision_orders

    def _run(url: str, files):
        monkeypatch.setenv("W365_DB_URL", url)
        return provision_orders(files=[str(path) for path in files], reference_dir=str(_reference(tmp_path)),
                                out_dir=str(tmp_path / "out"), as_of=AS_OF)

    return _run


def _reference(tmp_path):
    return write_reference(tmp_path / "ref", [("Contoso", TENANT), ("Fabrikam", TENANT.replace("0b", "1c"))])


def _orders(tmp_path):
    return write_flat_csv(tmp_path / "orders.csv", [
        line("SO-1", "Contoso", "M365-BB-M", "10", "6.00", guid="11111111-0000-0000-0000-000000000001", number=1),
        line("SO-1", "Contoso", "ONB-SETUP", "1", "500", guid="11111111-0000-0000-0000-000000000002", number=2),
        line("SO-2", "Fabrikam", "M365-BP-A", "5", "264.00", guid="22222222-0000-0000-0000-000000000001",
             number=1, unit="Annual"),
        line("SO-3", "Nobody Mapped", "M365-BB-M", "2", "6.00", number=1),  # held: needs a mapping
    ])


@pytest.mark.usefixtures("prefect_server")
def test_a_populated_database_at_the_initial_revision_keeps_every_row_through_upgrade_head(
        empty_db_url, run_flow, tmp_path):
    engine = create_store_engine(empty_db_url)
    migrations.upgrade(engine)
    engine.dispose()
    first = run_flow(empty_db_url, [_orders(tmp_path)])
    assert first["lines"]["provisioned"] == 3 and first["lines"]["held"] == 1
    before = _counts(empty_db_url)
    assert before["subscriptions"] == 2 and before["one_time_charges"] == 1 and before["line_identifiers"] > 0
    _downgrade(empty_db_url, migrations.INITIAL_REVISION)  # the populated database as 0001 left it
    assert "row_digest" not in [name for name, _, _ in _shape(empty_db_url)["lines"][0]]
    assert "owner" not in [name for name, _, _ in _shape(empty_db_url)["runs"][0]]
    assert not _status(empty_db_url).is_current and _counts(empty_db_url) == before

    upgraded = db("upgrade", "--db", empty_db_url)
    assert upgraded.exit_code == 0, upgraded.output
    assert _counts(empty_db_url) == before
    assert _status(empty_db_url).is_current
    # and the data is still what the store reads: a second run finds every line provisioned
    second = run_flow(empty_db_url, [_orders(tmp_path)])
    assert second["lines"]["already_provisioned"] == 3 and second["lines"]["provisioned"] == 0


@pytest.mark.usefixtures("prefect_server")
def test_a_database_built_before_migrations_is_adopted_with_every_row(empty_db_url, run_flow, tmp_path):
    engine = create_store_engine(empty_db_url)
    migrations.upgrade(engine)
    engine.dispose()
    run_flow(empty_db_url, [_orders(tmp_path)])
    before = _counts(empty_db_url)
    # what create_all left behind: the same tables, no migration history
    engine = create_store_engine(empty_db_url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {migrations.VERSION_TABLE}"))
        connection.execute(text("ALTER TABLE lines DROP COLUMN row_digest"))  # added by 0002
        connection.execute(text("ALTER TABLE runs DROP COLUMN owner"))  # added by 0003
    engine.dispose()
    assert _status(empty_db_url).is_legacy
    assert "before migrations" in db("current", "--db", empty_db_url).output

    upgraded = db("upgrade", "--db", empty_db_url)
    assert upgraded.exit_code == 0, upgraded.output
    assert _status(empty_db_url).is_current
    assert _counts(empty_db_url) == before


def test_a_legacy_schema_that_differs_is_never_touched(empty_db_url):
    engine = create_store_engine(empty_db_url)
    t.Base.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE line_outcomes"))
    engine.dispose()
    result = db("upgrade", "--db", empty_db_url)
    assert result.exit_code == 2
    assert "line_outcomes is missing" in result.output and "not changed" in result.output
    status = _status(empty_db_url)
    assert status.is_legacy and "line_outcomes" not in _shape(empty_db_url)


# ---------------------------------------------------------------------------- runs and the schema
@pytest.mark.postgres
@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("state", ["empty", "before migrations"])
def test_a_run_on_an_un_upgraded_postgresql_database_exits_2_and_says_to_upgrade(
        state, pg_server_url, tmp_path, monkeypatch):
    import subprocess
    import sys

    _drop_everything(pg_server_url)
    if state == "before migrations":
        engine = create_store_engine(pg_server_url)
        t.Base.metadata.create_all(engine)
        engine.dispose()
    # a real process, so every stream a person sees is checked (an in-process CliRunner shares
    # Prefect's log handlers with earlier tests and their closed streams)
    environment = dict(os.environ, W365_DB_URL=pg_server_url, W365_PROVIDERS__PARTNER_CENTER__ADAPTER="record")
    environment.pop("PREFECT_API_URL", None)
    completed = subprocess.run(
        [sys.executable, "-m", "w365etl.cli", "run", str(_orders(tmp_path)), "--reference", str(_reference(tmp_path)),
         "--out", str(tmp_path / "out"), "--as-of", "2026-11-29"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=environment)
    seen = completed.stdout + completed.stderr
    assert completed.returncode == 2, seen
    assert "w365etl db upgrade" in seen and "Traceback" not in seen
    # nothing was created or changed
    status = _status(pg_server_url)
    assert status.is_empty if state == "empty" else status.is_legacy
    if state == "before migrations":
        assert _counts(pg_server_url)["runs"] == 0


@pytest.mark.postgres
def test_the_store_never_alters_a_postgresql_schema(pg_server_url):
    _drop_everything(pg_server_url)
    for create_schema in (True, False):
        if create_schema:
            with pytest.raises(StoreUnavailable, match="w365etl db upgrade"):
                SqlStore(pg_server_url, create_schema=True)
        else:  # a dry run accepts an empty database: it reads nothing and writes nothing
            store = SqlStore(pg_server_url, create_schema=False)
            assert not store.has_schema()
            store.dispose()
    assert _status(pg_server_url).is_empty


def test_the_embedded_sqlite_database_upgrades_itself_on_first_use(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh' / 'w365etl.sqlite'}"
    SqlStore(url).dispose()
    assert _status(url).is_current
    # one built before migrations is adopted on first use too
    _drop_alembic = create_store_engine(url)
    with _drop_alembic.begin() as connection:
        connection.execute(text(f"DROP TABLE {migrations.VERSION_TABLE}"))
        connection.execute(text("ALTER TABLE lines DROP COLUMN row_digest"))  # the schema as it was then
        connection.execute(text("ALTER TABLE runs DROP COLUMN owner"))
    _drop_alembic.dispose()
    # a dry run writes nothing: a schema older than the code is refused, and left as it is
    with pytest.raises(StoreUnavailable, match="w365etl db upgrade"):
        SqlStore(url, create_schema=False)
    assert _status(url).is_legacy
    SqlStore(url).dispose()
    assert _status(url).is_current
