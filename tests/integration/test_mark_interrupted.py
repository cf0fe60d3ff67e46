"""`w365etl mark-interrupted RUN_ID`: an operator records that a run left `running` has stopped.

A run killed on this machine is marked `interrupted` by the next run's start; one killed in
another container or on another machine, or started before run owners were recorded (schema
revision 0003), stays `running` — and while any run is `running`, every later run re-checks each
line it stores. The command marks such a run, on SQLite and PostgreSQL, and never one whose
process is alive here: without `--force` only a run whose process is known gone.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.support.processes import ended_pid
from w365etl.adapters import tables as t
from w365etl.adapters.process_owners import owner_record, process_space
from w365etl.adapters.store_sql import create_store_engine, upgrade_schema
from w365etl.history_commands import app

AS_OF = dt.date(2026, 11, 29)
runner = CliRunner()

pytestmark = pytest.mark.skipif(process_space() is None,
                                reason="no /proc here: no process can be told gone, so nothing is marked without --force")


def invoke(db_url: str, *args: str):
    return runner.invoke(app, ["mark-interrupted", *args, "--db", db_url], env={"COLUMNS": "250"})


@pytest.fixture
def runs(db_url):
    """A database holding one run of each kind a `runs` row can be left as."""
    upgrade_schema(db_url)
    *space, _ = owner_record().split()
    owners = {
        "killed-here": ("running", "\n".join([*space, ended_pid()])),
        "alive-here": ("running", owner_record()),  # this test's own process
        "elsewhere": ("running", "other-host\nother-boot\npid:[4026531836]\n4242"),
        "before-owners": ("running", None),
        "done": ("completed", owner_record()),
    }
    engine = create_store_engine(db_url)
    with engine.begin() as connection:
        connection.execute(t.Run.__table__.insert(), [
            {"run_id": run_id, "started_at": t.utc_now(), "as_of_date": AS_OF, "status": status, "owner": owner}
            for run_id, (status, owner) in owners.items()])
    engine.dispose()
    return db_url


def stored(db_url: str) -> dict[str, tuple[str, bool]]:
    """run id → (status, has a finished_at)."""
    engine = create_store_engine(db_url)
    with engine.connect() as connection:
        found = connection.execute(select(t.Run.run_id, t.Run.status, t.Run.finished_at)).all()
    engine.dispose()
    return {run_id: (status, finished is not None) for run_id, status, finished in found}


def test_runs_names_who_started_each_run_still_recorded_running_and_how_to_mark_it(runs):
    """Where an operator finds the stuck run: `w365etl runs` shows a killed run of this machine
    `interrupted`, and for each run still `running` says who started it and the command."""
    result = runner.invoke(app, ["runs", "--db", runs], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    hints = [line for line in result.output.splitlines() if "is recorded running" in line]
    assert len(hints) == 3  # alive-here, elsewhere, before-owners; killed-here is shown interrupted
    assert any("run elsewhere is recorded running (started by process 4242 on other-host)" in hint
               and "w365etl mark-interrupted elsewhere --force" in hint for hint in hints)
    assert any("run before-owners" in hint and "not recorded" in hint for hint in hints)
    assert not any("killed-here" in hint or "run done" in hint for hint in hints)
    invoke(runs, "elsewhere", "--force")
    again = runner.invoke(app, ["runs", "--db", runs], env={"COLUMNS": "250"})
    assert not any("run elsewhere" in line for line in again.output.splitlines() if "is recorded running" in line)


def test_a_run_whose_process_is_gone_is_marked_and_nothing_else_changes(runs):
    before = stored(runs)
    result = invoke(runs, "killed-here")
    assert result.exit_code == 0, result.output
    assert "run killed-here" in result.output and "marked interrupted" in result.output
    after = stored(runs)
    assert after["killed-here"] == ("interrupted", True)
    assert {run_id: value for run_id, value in after.items() if run_id != "killed-here"} == \
        {run_id: value for run_id, value in before.items() if run_id != "killed-here"}


@pytest.mark.parametrize("run_id, words", [
    ("elsewhere", "process 4242 on other-host, which cannot be checked from here"),
    ("before-owners", "a process that was not recorded"),
])
def test_a_run_that_cannot_be_checked_from_here_needs_force(runs, run_id, words):
    refused = invoke(runs, run_id)
    assert refused.exit_code == 2
    assert words in refused.output and "--force" in refused.output
    assert stored(runs)[run_id] == ("running", False)
    forced = invoke(runs, run_id, "--force")
    assert forced.exit_code == 0, forced.output
    assert stored(runs)[run_id] == ("interrupted", True)


def test_a_run_alive_on_this_machine_is_never_marked(runs):
    for args in (("alive-here",), ("alive-here", "--force")):
        result = invoke(runs, *args)
        assert result.exit_code == 2
        assert "still running" in result.output
    assert stored(runs)["alive-here"] == ("running", False)


@pytest.mark.parametrize("run_id, words", [("done", "is completed, not running"), ("no-such-run", "no run 'no-such-run'")])
def test_a_finished_or_unknown_run_is_refused(runs, run_id, words):
    before = stored(runs)
    result = invoke(runs, run_id, "--force")
    assert result.exit_code == 2
    assert words in result.output
    assert stored(runs) == before


def test_a_missing_embedded_database_is_not_created_by_looking(tmp_path):
    path = tmp_path / "absent.sqlite"
    result = invoke(f"sqlite:///{path}", "any-run")
    assert result.exit_code == 2
    assert "does not exist yet" in result.output
    assert not path.exists()


def test_a_marked_run_no_longer_makes_the_next_run_recheck_its_lines(runs):
    """Why the command exists: with no other run `running`, a run's marker of other runs' writing
    is known again (``_other_runs_marker``), so its load-state read can be trusted."""
    from w365etl.adapters.store_sql import SqlStore

    store = SqlStore(runs, create_schema=False)
    try:
        with store.engine.connect() as connection:
            assert store._other_runs_marker(connection, None) is None  # four runs still `running`
        for run_id in ("killed-here", "elsewhere", "before-owners"):
            store.mark_run_interrupted(run_id, is_forced=True)
        with store.engine.connect() as connection:
            assert store._other_runs_marker(connection, None) is None  # alive-here still runs
            assert store._other_runs_marker(connection, "alive-here") is not None
    finally:
        store.dispose()
