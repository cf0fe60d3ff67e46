"""Run history (nightly operation, item 5): `w365etl runs` and `w365etl report RUN_ID`.

Runs are produced by the real provision-orders flow (Prefect's temporary server) on SQLite and
PostgreSQL; the reports rebuilt from the database are compared with the ones the run wrote.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import event, func, select
from typer.testing import CliRunner

from tests.support.database import rows
from tests.support.exports import line, write_flat_csv, write_reference
from w365etl.adapters import tables as t
from w365etl.history_commands import app

AS_OF = dt.date(2026, 11, 29)
CONTOSO = "0b7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e01"
FABRIKAM = "9a9a9a9a-0000-4000-8000-000000000000"
COMPARED = ("summary.json", "exceptions.csv", "needs_provider_mapping.csv", "order_status_updates.csv")

pytestmark = pytest.mark.usefixtures("prefect_server")
runner = CliRunner()


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    """Run the flow like `w365etl run` does; returns its summary (with ``report_folder``)."""
    monkeypatch.setenv("W365_DB_URL", db_url)
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "record")
    from flows.provision_orders import provision_orders

    def _run(files, *, reference=None):
        return provision_orders(files=[str(path) for path in files], reference_dir=str(reference) if reference else None,
                                out_dir=str(tmp_path / "out"), as_of=AS_OF)

    return _run


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


def orders_file(tmp_path: Path, *extra: dict) -> Path:
    return write_flat_csv(tmp_path / "orders.csv", [
        # mapped: provisioned and fulfilled
        line("SO-1", "Contoso", "M365-BB-M", "10", "6.00", guid="11111111-0000-0000-0000-000000000001", number=1),
        line("SO-1", "Contoso", "SUP-STD-M", "1", "99.50", guid="11111111-0000-0000-0000-000000000002", number=2),
        line("SO-1", "Contoso", "ONB-SETUP", "1", "500", guid="11111111-0000-0000-0000-000000000003", number=3),
        # no mapping: held until one is loaded
        line("SO-2", "Fabrikam", "M365-BP-A", "5", "264.00", guid="22222222-0000-0000-0000-000000000001", number=1,
             unit="Annual"),
        # no mapping, and a manual line held with it: one row, for the automatic provider only
        line("SO-4", "Northwind", "M365-BB-M", "3", "6.00", guid="44444444-0000-0000-0000-000000000001", number=1),
        line("SO-4", "Northwind", "SUP-STD-M", "1", "99.50", guid="44444444-0000-0000-0000-000000000002", number=2),
        # a formula-looking customer without a mapping, in an order held for a rejected line
        line("SO-5", "=Evil Corp", "M365-BB-M", "1", "6.00", guid="55555555-0000-0000-0000-000000000001", number=1),
        line("SO-5", "=Evil Corp", "NO-SUCH-PRODUCT", "1", "5", guid="55555555-0000-0000-0000-000000000002",
             number=2),
        *extra,
    ])


def rebuild(run_id: str, db_url: str, out: Path) -> Path:
    result = invoke("report", run_id, "--out", str(out), "--db", db_url)
    assert result.exit_code == 0, result.output
    assert run_id in result.output
    return out / run_id


def assert_same_files(original: Path, rebuilt: Path, names=COMPARED) -> None:
    for name in names:
        assert (rebuilt / name).read_bytes() == (original / name).read_bytes(), name


def sheet_rows(path: Path, name: str) -> list[tuple]:
    workbook = load_workbook(path, read_only=True)
    rows = [tuple(row) for row in workbook[name].iter_rows(values_only=True)]
    workbook.close()
    return rows


def table_rows(rows: list[tuple], first_header: str) -> list[dict]:
    """The table of a sheet (below its banner lines), as dicts."""
    start = next(index for index, row in enumerate(rows) if row and row[0] == first_header)
    header = rows[start]
    return [dict(zip(header, row)) for row in rows[start + 1:] if any(value is not None for value in row)]


def test_reports_rebuilt_from_the_database_match_the_runs_own(run, db_url, tmp_path):
    first = run([orders_file(tmp_path)], reference=write_reference(tmp_path / "ref1", [("Contoso", CONTOSO)]))
    assert first["lines"]["provisioned"] == 3 and first["lines"]["rejected"] == 1
    assert first["customers_needing_provider_mapping"] == 3
    first_folder = Path(first["report_folder"])

    # right after the run, every file rebuilt from the database is the run's own, byte for byte
    rebuilt = rebuild(first["run_id"], db_url, tmp_path / "again")
    assert_same_files(first_folder, rebuilt)
    template = pd.read_csv(rebuilt / "needs_provider_mapping.csv", dtype=str)
    assert template[["customer_name", "provider", "held_lines"]].values.tolist() == [
        ["'=Evil Corp", "partner_center", "1"], ["Fabrikam", "partner_center", "1"],
        ["Northwind", "partner_center", "2"]]
    exceptions = pd.read_csv(rebuilt / "exceptions.csv", dtype=str)
    assert "'=Evil Corp" in set(exceptions["customer_name"])  # formula-safe, like the run's

    # a second run: Fabrikam's mapping arrives, SO-1 comes again (already provisioned, R7 re-lists
    # it), SO-3 adds to Contoso's subscription (R5 Existing)
    second = run([orders_file(tmp_path, line("SO-3", "Contoso", "M365-BB-M", "2", "6.00", number=1,
                                             provision_as="Existing"))],
                 reference=write_reference(tmp_path / "ref2", [("Fabrikam", FABRIKAM)]))
    assert second["lines"]["already_provisioned"] == 3
    assert second["subscriptions"] == {"created": 1, "updated": 1}
    second_folder = Path(second["report_folder"])
    rebuilt_second = rebuild(second["run_id"], db_url, tmp_path / "again")
    assert_same_files(second_folder, rebuilt_second)
    updates = pd.read_csv(rebuilt_second / "order_status_updates.csv", dtype=str)
    assert updates["order_number"].tolist() == ["SO-1", "SO-2", "SO-3"]

    # the workbook, rebuilt from the tables
    workbook = rebuilt_second / "fulfilment_report.xlsx"
    names = load_workbook(workbook, read_only=True).sheetnames
    for name in ("Summary", "Fulfilled Orders", "Billing Contracts", "Subscriptions", "One-Time Charges",
                 "Needs Provider Mapping", "Exceptions", "Manual Tasks"):
        assert name in names
    subscriptions = table_rows(sheet_rows(workbook, "Subscriptions"), "subscription")
    assert sorted((row["action"], row["order_number"], row["quantity_before"], row["quantity_after"])
                  for row in subscriptions) == [("created", "SO-2", None, None),
                                                ("quantity increased", "SO-3", "10", "12")]
    contracts = table_rows(sheet_rows(workbook, "Billing Contracts"), "contract_number")
    assert sorted(row["status"] for row in contracts) == ["created in this run", "reused"]
    first_book = rebuilt / "fulfilment_report.xlsx"
    charges = table_rows(sheet_rows(first_book, "One-Time Charges"), "charge")
    assert [(row["order_number"], row["product_number"]) for row in charges] == [("SO-1", "ONB-SETUP")]
    fulfilled = table_rows(sheet_rows(first_book, "Fulfilled Orders"), "order_number")
    assert [(row["order_number"], row["outcome"]) for row in fulfilled] == [("SO-1", "fulfilled")]
    summary = sheet_rows(first_book, "Summary")
    assert any("REBUILT" in str(row[0]) for row in summary)
    assert json.loads((rebuilt / "summary.json").read_text())["run_id"] == first["run_id"]


def test_an_earlier_run_is_rebuilt_after_a_later_one_planned_its_lines_again(run, db_url, tmp_path):
    first = run([orders_file(tmp_path)], reference=write_reference(tmp_path / "ref1", [("Contoso", CONTOSO)]))
    run([orders_file(tmp_path)], reference=write_reference(tmp_path / "ref2", [("Fabrikam", FABRIKAM)]))
    recorded = rows(db_url, select(func.count()).select_from(t.LineOutcome).where(
        t.LineOutcome.run_id == first["run_id"]))[0][0]
    assert recorded == first["lines"]["input"]  # every line's outcome of that run is kept
    later = rebuild(first["run_id"], db_url, tmp_path / "later")
    assert_same_files(Path(first["report_folder"]), later,
                      ("summary.json", "exceptions.csv", "order_status_updates.csv"))
    # customers held for their own mapping stay listed; a line held only because its order had a
    # rejected line (R2) is not told apart once a later run planned it again (see w365etl.history)
    template = pd.read_csv(later / "needs_provider_mapping.csv", dtype=str)
    assert template[["customer_name", "held_orders", "held_lines"]].values.tolist() == [
        ["Fabrikam", "SO-2", "1"], ["Northwind", "SO-4", "2"]]


def test_runs_lists_newest_first_with_counts(run, db_url, tmp_path):
    reference = write_reference(tmp_path / "ref", [("Contoso", CONTOSO)])
    first = run([orders_file(tmp_path)], reference=reference)
    second = run([orders_file(tmp_path)])

    result = invoke("runs", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert result.output.index(second["run_id"]) < result.output.index(first["run_id"])
    row = next(text for text in result.output.splitlines() if first["run_id"] in text)
    cells = [cell.strip() for cell in row.strip("│┃ ").split("│")]
    assert cells[2:] == ["2026-11-29", "completed", "1", "8", "3", "4", "1", "0", "1"]

    limited = invoke("runs", "--db", db_url, "--limit", "1")
    assert limited.exit_code == 0 and second["run_id"] in limited.output and first["run_id"] not in limited.output


def test_unknown_run_and_empty_database(db_url, tmp_path):
    result = invoke("report", "no-such-run", "--db", db_url, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "no run 'no-such-run'" in result.output
    assert not (tmp_path / "out").exists()
    listing = invoke("runs", "--db", db_url)
    assert listing.exit_code == 0 and "no runs" in listing.output
    if db_url.startswith("sqlite"):
        # looking does not create the embedded database
        assert not Path(db_url.removeprefix("sqlite:///")).exists()


def test_a_report_reads_in_a_fixed_number_of_queries(run, db_url, tmp_path):
    from w365etl.adapters.run_history import RunHistory

    summary = run([orders_file(tmp_path)], reference=write_reference(tmp_path / "ref", [("Contoso", CONTOSO)]))
    history = RunHistory(db_url)
    statements: list[str] = []
    event.listen(history.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: statements.append(statement))
    records = history.load_run(summary["run_id"])
    history.dispose()
    assert len(records.lines) == summary["lines"]["input"]
    assert len(statements) <= 8  # the run row and one query per table, whatever the run's size


def test_runs_shows_a_killed_run_interrupted_beside_runs_recorded_before_owners(db_url, tmp_path):
    """After an upgrade the runs table holds runs without an owner (before schema revision 0003)
    beside runs with one: a killed run with an owner is shown ``interrupted``; one without stays
    ``running`` (nobody can tell), and neither stops the listing."""
    from tests.support.processes import ended_pid
    from w365etl.adapters.process_owners import owner_record, process_space
    from w365etl.adapters.run_history import RunHistory
    from w365etl.adapters.store_sql import create_store_engine, upgrade_schema

    if process_space() is None:
        pytest.skip("no /proc here: a process space cannot be told, so no run is ever shown interrupted")
    upgrade_schema(db_url)
    ended = ended_pid()
    *space, _ = owner_record().split()
    engine = create_store_engine(db_url)
    with engine.begin() as connection:
        connection.execute(t.Run.__table__.insert(), [
            {"run_id": run_id, "started_at": t.utc_now(), "as_of_date": AS_OF, "status": status, "owner": owner}
            for run_id, status, owner in [("before-owners", "running", None),
                                          ("killed", "running", "\n".join([*space, ended])),
                                          ("done", "completed", owner_record())]])
    engine.dispose()
    history = RunHistory(db_url)
    try:
        shown = dict(zip(history.list_runs()["run_id"], history.list_runs()["status"]))
        loaded = {run_id: history.load_run(run_id).run["status"] for run_id in shown}
    finally:
        history.dispose()
    assert shown == loaded == {"before-owners": "running", "killed": "interrupted", "done": "completed"}


def test_runs_lists_a_database_not_yet_upgraded_to_run_owners(tmp_path):
    """``w365etl runs`` only reads: on a database at revision 0002 (no ``runs.owner`` — a
    PostgreSQL database is upgraded by hand) it lists the runs as they are recorded."""
    from alembic import command

    from w365etl.adapters import migrations
    from w365etl.adapters.run_history import RunHistory
    from w365etl.adapters.store_sql import create_store_engine, upgrade_schema

    url = f"sqlite:///{tmp_path / 'at-0002.sqlite'}"
    upgrade_schema(url)
    engine = create_store_engine(url)
    with engine.begin() as connection:
        command.downgrade(migrations.alembic_config(connection=connection), "0002")
        connection.exec_driver_sql("INSERT INTO runs (run_id, started_at, as_of_date, status) "
                                   "VALUES ('old', '2026-11-29 02:00:00', '2026-11-29', 'running')")
    engine.dispose()
    history = RunHistory(url)
    try:
        listed = history.list_runs()
        assert listed["status"].tolist() == ["running"] and "owner" not in listed.columns
        assert "started_by" not in listed.columns
        assert history.load_run("old").run["status"] == "running"
    finally:
        history.dispose()
    shown = invoke("runs", "--db", url)
    assert shown.exit_code == 0, shown.output
    assert "run old is recorded running; if it is not going any more: w365etl mark-interrupted old --force" in shown.output
