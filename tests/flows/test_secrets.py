"""Secrets never leave the process (SPEC §2.3: "never printed, logged or written to a report").

Real runs with a PostgreSQL URL that carries a password (a role created with one on the test
server; trust authentication accepts it anyway, but it is in the URL) and a Partner Center client
id and secret set (the sandbox adapter sends them to its token endpoint as a live run sends them
to Entra ID). Then every output of those runs is searched for the secret values, raw and
percent-encoded:

- the report folders (csv, html, ``summary.json``, every XML part of the xlsx), the reports that
  ``w365etl report RUN_ID`` rebuilds, the inbox (``rejected/*.error.txt``, archive);
- what a person sees: stdout and stderr (file descriptors), the CLI's output, Python logging
  (w365etl at DEBUG);
- Prefect: flow and task runs (parameters, state messages), their logs, every artifact;
- the database: every row of every table (run history, files, exceptions …).

The runs: an inbox run with a rejected file (flow run Failed), a CLI run with ``--db URL``,
``w365etl runs``, ``w365etl report``, ``w365etl db current|upgrade``, and a run on an
unreachable database (not run, exit 2).
"""

from __future__ import annotations

import datetime as dt
import logging
import urllib.parse
import uuid
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from tests.support.exports import line, write_flat_csv, write_reference
from w365etl.adapters import tables as t

AS_OF = dt.date(2026, 11, 29)
TENANT = "0b7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e01"
#: characters a URL must percent-encode, so both spellings are searched for
DB_PASSWORD = f"S3cr3t/db@{uuid.uuid4().hex[:10]}:pw"
CLIENT_SECRET = f"Pc~cl13nt~s3cr3t.{uuid.uuid4().hex[:12]}"
SECRETS = {
    "database password": DB_PASSWORD,
    "database password (in the URL)": urllib.parse.quote(DB_PASSWORD, safe=""),
    "Partner Center client secret": CLIENT_SECRET,
}

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.postgres]


@pytest.fixture
def secret_db_url(pg_server_url):
    """A database owned by a role with a password; the URL carries it; schema upgraded."""
    from w365etl.adapters.store_sql import upgrade_schema

    role = f"w365_secret_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{DB_PASSWORD}'"))
        connection.execute(text(f'CREATE DATABASE "{role}" OWNER "{role}"'))
    url = make_url(pg_server_url).set(username=role, password=DB_PASSWORD, database=role)
    url_text = url.render_as_string(hide_password=False)
    upgrade_schema(url_text)
    yield url_text
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)'))
        connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    admin.dispose()


@pytest.fixture
def log_records(monkeypatch, caplog):
    """Every log record of the process, formatted with its arguments and exception: recorded in
    ``Logger.handle`` itself, because Prefect reconfigures handlers while it runs; w365etl at DEBUG."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines: list[str] = []
    handle = logging.Logger.handle

    def recording_handle(self, record):
        lines.append(formatter.format(record))
        return handle(self, record)

    caplog.set_level(logging.DEBUG, logger="w365etl")
    monkeypatch.setattr(logging.Logger, "handle", recording_handle)
    return lines


def _files_text(root: Path) -> dict[str, str]:
    """Every file under ``root`` as text; an xlsx (a zip) part by part."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    found[f"{path}!{member}"] = archive.read(member).decode("utf-8", errors="replace")
        else:
            found[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    return found


def _database_text(url: str) -> dict[str, str]:
    engine = create_engine(url)
    found = {}
    with engine.connect() as connection:
        for table in t.Base.metadata.sorted_tables:
            found[f"table {table.name}"] = "\n".join(repr(tuple(row)) for row in connection.execute(select(table)))
    engine.dispose()
    return found


def _prefect_text(since: dt.datetime) -> dict[str, str]:
    """Flow runs, task runs, logs and artifacts the Prefect server recorded since ``since``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter, FlowRunFilterStartTime, LogFilter, LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # the logs still queued in this process
    found = {}
    with get_client(sync_client=True) as client:
        flow_runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)))
        ids = [run.id for run in flow_runs]
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": ids})) if ids else []
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids))) if ids else []
        artifacts = client.read_artifacts()
    found["prefect flow runs"] = "\n".join(run.model_dump_json() for run in flow_runs)
    found["prefect task runs"] = "\n".join(run.model_dump_json() for run in task_runs)
    found["prefect logs"] = "\n".join(log.model_dump_json() for log in logs)
    found["prefect artifacts"] = "\n".join(artifact.model_dump_json() for artifact in artifacts)
    return found


def _leaks(sources: dict[str, str]) -> dict[str, list[str]]:
    return {where: [name for name, secret in SECRETS.items() if secret in content]
            for where, content in sources.items() if any(secret in content for secret in SECRETS.values())}


def test_no_output_of_a_run_holds_a_secret(secret_db_url, tmp_path, monkeypatch, capfd, log_records):
    from prefect.states import State

    from flows.provision_orders import provision_orders
    from w365etl.cli import app
    from w365etl.settings import load_settings

    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("W365_DB_URL", secret_db_url)
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "sandbox")
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__TENANT_ID", "partner-tenant")
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__CLIENT_ID", "w365etl-app")
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__CLIENT_SECRET", CLIENT_SECRET)
    # the secrets really are what the runs use
    settings = load_settings()
    assert settings.db_url.get_secret_value() == secret_db_url and DB_PASSWORD not in secret_db_url
    assert settings.providers["partner_center"].client_secret.get_secret_value() == CLIENT_SECRET

    # 1. the inbox, with a file that is rejected (the flow run ends Failed and says why)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_reference(inbox / "reference", [("Contoso", TENANT)])
    write_flat_csv(inbox / "orders.csv", [
        line("SO-1", "Contoso", "M365-BB-M", "3", "6", number=1),
        line("SO-1", "Contoso", "SUP-STD-M", "1", "99", number=2),
        line("SO-2", "Unmapped Ltd", "M365-BB-M", "2", "6", number=1),
        line("SO-3", "Contoso", "NOPE-1", "1", "1", number=1),
    ])
    (inbox / "broken.xlsx").write_bytes(b"not a workbook")
    state: State = provision_orders(files=[], inbox_dir=str(inbox), out_dir=str(tmp_path / "out"), as_of=AS_OF,
                                    return_state=True)
    assert state.is_failed() and "rejected" in state.message
    summary = state.result(raise_on_failure=False)
    assert summary["lines"]["provisioned"] == 2 and summary["lines"]["held"] == 1  # through the sandbox
    assert (inbox / "rejected" / "broken.xlsx.error.txt").is_file()

    # 2. the command line with --db, then the run history commands
    monkeypatch.delenv("W365_DB_URL")
    monkeypatch.setenv("W365_DB_URL", "sqlite:///never-used.sqlite")  # restored by monkeypatch; --db wins
    write_flat_csv(tmp_path / "more.csv", [line("SO-4", "Contoso", "M365-BB-M", "1", "6", number=1)])
    runner = CliRunner()
    cli_outputs = []
    result = runner.invoke(app, ["run", "more.csv", "--db", secret_db_url, "--out", "out", "--as-of", "2026-11-29"])
    assert result.exit_code == 0, result.output
    cli_outputs.append(result.output)
    listed = runner.invoke(app, ["runs", "--db", secret_db_url])
    assert listed.exit_code == 0 and summary["run_id"] in listed.output
    cli_outputs.append(listed.output)
    rebuilt = runner.invoke(app, ["report", summary["run_id"], "--db", secret_db_url, "--out", "rebuilt"])
    assert rebuilt.exit_code == 0, rebuilt.output
    cli_outputs.append(rebuilt.output)
    for command in (["db", "current"], ["db", "upgrade"]):
        done = runner.invoke(app, [*command, "--db", secret_db_url])
        assert done.exit_code == 0 and "***" in done.output, done.output  # it names the database, redacted
        cli_outputs.append(done.output)

    # 3. a database that does not answer: nothing is run, and the message shows the URL redacted
    unreachable = make_url(secret_db_url).set(port=1).render_as_string(hide_password=False)
    monkeypatch.setenv("W365_DB_URL", unreachable)
    not_run = provision_orders(files=[str(tmp_path / "more.csv")], out_dir=str(tmp_path / "out"), as_of=AS_OF,
                               return_state=True)
    assert not_run.is_failed() and "unreachable" in not_run.message and ":***@" in not_run.message

    captured = capfd.readouterr()
    sources = {"stdout": captured.out, "stderr": captured.err, "python logging": "\n".join(log_records),
               "command line output": "\n".join(cli_outputs), "flow run states": f"{state!r} {not_run!r}"}
    sources |= _files_text(tmp_path)
    sources |= _database_text(secret_db_url)
    sources |= _prefect_text(since)

    # the search covers real material: every kind of output is there and non-empty
    assert any(name.endswith("fulfilment_report.xlsx!xl/sharedStrings.xml") or "fulfilment_report.xlsx!xl/worksheets"
               in name for name in sources)
    assert any(name.endswith("report.html") for name in sources) and any(name.endswith(".error.txt") for name in sources)
    assert summary["run_id"] in sources["table runs"]
    assert sources["prefect logs"] and sources["prefect artifacts"] and sources["python logging"]
    assert "***" in sources["prefect logs"]  # the unreachable database is named, redacted

    assert _leaks(sources) == {}
