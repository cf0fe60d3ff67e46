"""`w365etl serve` with a bad cron expression or time zone: exit 2 and one line, nothing started.

SPEC §4: exit 2 when nothing was run (bad arguments). Prefect's ``Cron`` schedule refuses
them only once the flow is served — after the local Prefect server was started for it — so
they used to cost a server start, then a traceback and exit 1.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import flows.serve
from w365etl.cli import app

runner = CliRunner()


@pytest.fixture
def no_server(tmp_path, monkeypatch):
    """Any attempt to start a local Prefect server is recorded (and refused)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # else serve would use that server
    monkeypatch.delenv("W365_SCHEDULE_TIMEZONE", raising=False)
    started = []

    def start_local_server(**options):
        started.append(options)
        raise RuntimeError("a local Prefect server was started")

    monkeypatch.setattr(flows.serve, "start_local_server", start_local_server)
    return started


@pytest.mark.parametrize("args, environment, words", [
    (["--cron", "not a cron"], {}, '--cron: Invalid cron string: "not a cron"'),
    (["--cron", "0 2 * *"], {}, '--cron: Invalid cron string: "0 2 * *"'),
    (["--cron", "H 2 * * *"], {}, "--cron: "),  # Prefect has no hashed (H) expressions
    (["--timezone", "Mars/Olympus"], {}, '--timezone: Invalid timezone: "Mars/Olympus"'),
    ([], {"W365_SCHEDULE_TIMEZONE": "Mars/Olympus"},
     'setting schedule_timezone (W365_SCHEDULE_TIMEZONE): Invalid timezone: "Mars/Olympus"'),
])
def test_a_bad_schedule_exits_2_naming_the_option_before_any_server_starts(no_server, monkeypatch, args,
                                                                           environment, words):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit(2), not an error escaping
    assert words in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert no_server == []


def test_serve_nightly_itself_refuses_a_bad_schedule_before_starting_a_server(no_server):
    with pytest.raises(flows.serve.ScheduleError) as refused:
        flows.serve.serve_nightly(cron="0 2 * * *", timezone="Mars/Olympus", inbox_dir="inbox", config_file=None,
                                  out_dir=None)
    assert refused.value.field == "timezone"
    assert no_server == []


def test_a_good_schedule_passes_the_check():
    flows.serve.check_schedule("30 1 * * *", "Europe/London")
    flows.serve.check_schedule("@daily", "UTC")


def test_the_command_says_one_line_and_exits_2_without_starting_prefect(tmp_path):
    """The real command in a process of its own: no traceback, and no Prefect server ever ran
    (a server would have created its database in PREFECT_HOME)."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PREFECT_API_URL", "PREFECT_API_DATABASE_CONNECTION_URL")}
    environment["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    completed = subprocess.run([sys.executable, "-m", "w365etl.cli", "serve", "--cron", "not a cron"],
                               capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=120)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.strip().splitlines() == [
        'w365etl: --cron: Invalid cron string: "not a cron" (five fields: minute hour day month weekday, '
        'e.g. "0 2 * * *")']
    assert completed.stdout == ""
    assert not (tmp_path / "prefect-home" / "prefect.db").exists()
