"""The command line (SPEC §4): exit statuses, clear messages, no silent provider default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.exports import line, write_flat_csv, write_reference
from w365etl.cli import app

TENANT = "0b7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e01"
runner = CliRunner()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("W365_DB_URL", "W365_PROVIDERS__PARTNER_CENTER__ADAPTER"):
        monkeypatch.delenv(name, raising=False)
    write_reference(tmp_path / "ref", [("Contoso", TENANT)])
    write_flat_csv(tmp_path / "orders.csv", [line("SO-1", "Contoso", "M365-BB-M", "3", "6", number=1),
                                             line("SO-2", "Contoso", "SUP-STD-M", "1", "99", number=1)])
    return tmp_path


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.usefixtures("prefect_server")
def test_no_silent_default_a_partner_center_line_without_an_adapter_stops_with_exit_2(workdir):
    result = invoke("run", "orders.csv", "--reference", "ref", "--as-of", "2026-11-29")
    assert result.exit_code == 2
    assert "W365_PROVIDERS__PARTNER_CENTER__ADAPTER" in result.output
    assert "Traceback" not in result.output
    # nothing was provisioned: the database holds no run and no subscription
    from sqlalchemy import create_engine, func, select

    from w365etl.adapters import tables as t

    engine = create_engine("sqlite:///w365etl.sqlite")
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(t.Subscription)).scalar_one() == 0
        assert connection.execute(select(func.count()).select_from(t.Run)).scalar_one() == 0
    engine.dispose()


@pytest.mark.usefixtures("prefect_server")
def test_run_exits_0_and_prints_the_summary_and_report_folder(workdir, monkeypatch):
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "record")
    result = invoke("run", "orders.csv", "--reference", "ref", "--as-of", "2026-11-29", "--out", "reports")
    assert result.exit_code == 0, result.output
    assert "RECORD" in result.output.splitlines()[0]
    assert "2 provisioned" in result.output
    folder = Path(result.output.strip().splitlines()[-1].removeprefix("reports: "))
    assert json.loads((workdir / folder / "summary.json").read_text())["as_of"] == "2026-11-29"


@pytest.mark.usefixtures("prefect_server")
def test_a_rejected_file_exits_1_and_the_other_files_still_run(workdir, monkeypatch):
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "record")
    (workdir / "broken.xlsx").write_bytes(b"this is not a zip file")
    result = invoke("run", "broken.xlsx", "orders.csv", "--reference", "ref", "--out", "reports")
    assert result.exit_code == 1, result.output
    assert "file rejected: broken.xlsx" in result.output
    assert "2 provisioned" in result.output


def test_an_unreachable_database_exits_2_without_showing_its_password(workdir):
    """A real process, so that every stream a person sees is checked (stdout, stderr, logs).
    The database is opened before Prefect starts: no flow run is begun (or logged) for a run
    that cannot start."""
    import subprocess
    import sys

    completed = subprocess.run(
        [sys.executable, "-m", "w365etl.cli", "run", "orders.csv", "--db",
         "postgresql+psycopg://billing:s3cret-pw@127.0.0.1:1/none"],
        capture_output=True, text=True, timeout=300, cwd=workdir,
    )
    seen = completed.stdout + completed.stderr
    assert completed.returncode == 2, seen
    assert "unreachable" in seen and "billing:***@" in seen
    assert "s3cret-pw" not in seen
    assert "Traceback" not in seen
    assert "Flow run" not in seen and "prefect" not in seen.lower(), seen


@pytest.mark.parametrize("args, words", [
    (("run", "missing.csv"), "not found"),
    (("run", "orders.csv", "--as-of", "29/11/2026"), "YYYY-MM-DD"),
    (("run", "orders.csv", "--reference", "nowhere"), "not a folder"),
    (("run", "orders.csv", "--config", "nope.toml"), "does not exist"),
])
def test_bad_arguments_exit_2_with_a_clear_message(workdir, args, words):
    result = invoke(*args)
    assert result.exit_code == 2
    assert words in result.output


@pytest.mark.parametrize("args", [("run", "orders.csv"), ("run", "orders.csv", "--dry-run"), ("runs",),
                                  ("report", "some-run"), ("mark-interrupted", "some-run"), ("db", "current")])
def test_a_database_url_that_cannot_be_parsed_exits_2_with_one_line(workdir, args):
    """A port that is not a number makes SQLAlchemy raise ValueError, not its ArgumentError: every
    command says so in one line (exit 2), before any Prefect server starts, without the password."""
    result = invoke(*args, "--db", "postgresql://billing:s3cret-pw@db-host:notaport/billing")
    assert result.exit_code == 2, result.output
    assert "is not usable" in result.output and "notaport" in result.output
    assert "s3cret-pw" not in result.output and "Traceback" not in result.output


def test_an_embedded_database_whose_folder_cannot_be_made_is_refused_clearly(tmp_path):
    from w365etl.adapters.store_sql import SqlStore, StoreUnavailable

    (tmp_path / "afile").write_text("a file where the database folder should be")
    with pytest.raises(StoreUnavailable, match="its folder cannot be created"):
        SqlStore(f"sqlite:///{tmp_path / 'afile' / 'w365etl.sqlite'}")


def test_reference_load_upserts_the_catalog_and_mappings(workdir):
    result = invoke("reference", "load", "ref")
    assert result.exit_code == 0, result.output
    assert "loaded 4 product(s) and 1 provider account mapping(s)" in result.output
    again = invoke("reference", "load", "ref")
    assert again.exit_code == 0
    from sqlalchemy import create_engine, func, select

    from w365etl.adapters import tables as t

    engine = create_engine("sqlite:///w365etl.sqlite")
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(t.Product)).scalar_one() == 4
        assert connection.execute(select(func.count()).select_from(t.ProviderAccount)).scalar_one() == 1
    engine.dispose()


def test_reference_load_names_the_file_row_and_column_of_a_bad_value(workdir):
    products = workdir / "ref" / "products.csv"
    products.write_text(products.read_text().replace("true,Monthly,Monthly,P1M,1,300", "maybe,Monthly,Monthly,P1M,1,300"))
    result = invoke("reference", "load", "ref")
    assert result.exit_code == 2
    assert "products.csv: row 2, column recurring: 'maybe'" in result.output
