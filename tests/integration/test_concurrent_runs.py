"""Two ``w365etl run`` processes on one database with the same files: every line provisioned once.

Each race starts two real processes together (``python -m w365etl.cli run …``), each with
Prefect's temporary server, both sharing one ``PREFECT_HOME``. A start-up hook (a
``sitecustomize`` on the processes' ``PYTHONPATH``, test-only) holds each process at the end of
its ``load-state`` stage until the other has got there too, so both always plan from the same
stored state — the worst case: without the database's locks both would insert and provision
every line. Then:

- zero duplicates: as many lines, customers, orders, billing contracts, subscriptions and one-time
  charges as one run alone makes, and every stored line reachable by an identifier;
- the two summaries together provisioned each line exactly once (the other run reports it
  ``already_provisioned``), and held what one run holds.

``W365_RACE_ITERATIONS`` (default 2 per backend) sets how many races a test runs; ``make stress``
runs 50 and prints the duplicates found. ``W365_RACE_BARRIER=0`` lets the processes race
freely (no hook).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.exports import line, write_flat_csv, write_reference
from w365etl.adapters import tables as t
from w365etl.adapters.store_sql import create_store_engine

TENANT = "0b7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e01"
ITERATIONS = int(os.environ.get("W365_RACE_ITERATIONS", "1"))  # each race is the same held worst case; make stress: 50
USE_BARRIER = os.environ.get("W365_RACE_BARRIER", "1") != "0"

LINES_IN = 12

HOOK = textwrap.dedent('''
    """Test-only start-up hook: a barrier at the end of SqlStore.load_state (both runs plan first)."""
    import importlib.util
    import os
    import sys
    import time
    from pathlib import Path

    _BARRIER = os.environ.get("W365_TEST_RACE_BARRIER")
    _PARTIES = int(os.environ.get("W365_TEST_RACE_PARTIES", "2"))


    def _patch(module):
        original = module.SqlStore.load_state

        def load_state(self, lines):
            state = original(self, lines)
            folder = Path(_BARRIER)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / str(os.getpid())).touch()
            deadline = time.monotonic() + 90
            while len(list(folder.iterdir())) < _PARTIES and time.monotonic() < deadline:
                time.sleep(0.02)
            return state

        module.SqlStore.load_state = load_state


    class _Hook:
        def find_spec(self, name, path=None, target=None):
            if name != "w365etl.adapters.store_sql":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run_module = spec.loader.exec_module

            def exec_module(module):
                run_module(module)
                _patch(module)

            spec.loader.exec_module = exec_module
            return spec


    if _BARRIER:
        sys.meta_path.insert(0, _Hook())
''')


def _orders(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    first = write_flat_csv(folder / "orders.csv", [
        line("SO-1", "Contoso", "M365-BB-M", "10", "6.00", guid="11111111-0000-0000-0000-000000000001", number=1),
        line("SO-1", "Contoso", "SUP-STD-M", "1", "99.50", guid="11111111-0000-0000-0000-000000000002", number=2),
        line("SO-1", "Contoso", "ONB-SETUP", "1", "500", guid="11111111-0000-0000-0000-000000000003", number=3),
        line("SO-2", "Fabrikam", "M365-BP-A", "5", "264.00", guid="22222222-0000-0000-0000-000000000001", number=1,
             unit="Annual"),
        line("SO-2", "Fabrikam", "ONB-SETUP", "2", "250", guid="22222222-0000-0000-0000-000000000002", number=2),
        line("SO-3", "Northwind", "M365-BB-M", "3", "6.00", number=1),  # no GUID: known by order + number
        line("SO-3", "Northwind", "SUP-STD-M", "1", "99.50", number=2),
        line("SO-4", "Unmapped Ltd", "M365-BB-M", "2", "6.00", number=1),  # held: no provider account
        line("SO-5", "Contoso", "NOPE-1", "1", "1.00", number=1),  # rejected: unknown product
    ])
    second = write_flat_csv(folder / "more_orders.csv", [
        line("SO-6", "Tailspin", "M365-BB-M", "7", "6.00", number=1),
        line("SO-6", "Tailspin", "ONB-SETUP", "1", "500", number=2),
        line("SO-7", "Contoso", "SUP-STD-M", "2", "99.50", number=1),
    ])
    return [first, second]


def _reference(folder: Path) -> Path:
    return write_reference(folder, [("Contoso", TENANT), ("Fabrikam", TENANT.replace("0b", "1c")),
                                    ("Northwind", TENANT.replace("0b", "2d")), ("Tailspin", TENANT.replace("0b", "3e"))])


#: what one run alone makes of these files: 10 lines provisioned, 1 held, 1 rejected
EXPECTED_ROWS = {"lines": 12, "customers": 5, "orders": 7, "billing_contracts": 9, "subscriptions": 7,
                 "one_time_charges": 3}
EXPECTED_PROVISIONED = 10


@pytest.fixture(scope="session")
def prefect_home(tmp_path_factory) -> Path:
    """One PREFECT_HOME for every process of the races, its database built once."""
    home = tmp_path_factory.mktemp("prefect-home")
    environment = _base_environment() | {"PREFECT_HOME": str(home)}
    subprocess.run([str(Path(sys.executable).parent / "prefect"), "server", "database", "upgrade", "-y"],
                   env=environment, check=True, capture_output=True, timeout=300)
    return home


def _base_environment() -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("PREFECT_API", "W365_"))}
    environment["W365_PROVIDERS__PARTNER_CENTER__ADAPTER"] = "record"
    return environment


def _start(workdir: Path, name: str, db_url: str, prefect_home: Path, files: list[Path], reference: Path,
           **environment_overrides: str) -> subprocess.Popen:
    """``python -m w365etl.cli run …`` as a process of its own; reports in ``workdir/out-<name>``."""
    hook_dir = workdir / "hook"
    hook_dir.mkdir(parents=True, exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(HOOK)
    environment = _base_environment() | {"PREFECT_HOME": str(prefect_home), "W365_DB_URL": db_url}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hook_dir), os.environ.get("PYTHONPATH")]))
    environment |= environment_overrides
    command = [sys.executable, "-m", "w365etl.cli", "run", *map(str, files), "--reference", str(reference),
               "--out", str(workdir / f"out-{name}"), "--as-of", "2026-11-29"]
    log = (workdir / f"run-{name}.log").open("w")
    # a session of its own: a run killed on purpose leaves its Prefect server behind, and the
    # group is how that server is found and stopped (see _finish)
    process = subprocess.Popen(command, env=environment, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    log.close()
    return process


def _finish(process: subprocess.Popen, workdir: Path, name: str) -> tuple[int, str]:
    """Wait for a run; stop whatever it left in its process group; its exit status and output."""
    try:
        returncode = process.wait(timeout=600)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return returncode, (workdir / f"run-{name}.log").read_text()


def _summary(workdir: Path, name: str) -> dict:
    return json.loads(next((workdir / f"out-{name}").glob("*/summary.json")).read_text())


def _race(workdir: Path, db_url: str, prefect_home: Path, files: list[Path], reference: Path) -> list[dict]:
    """Start two runs together; return both summaries (each process must exit 0)."""
    barrier = {"W365_TEST_RACE_BARRIER": str(workdir / "barrier")} if USE_BARRIER else {}
    processes = {name: _start(workdir, name, db_url, prefect_home, files, reference, **barrier) for name in ("a", "b")}
    for name, process in processes.items():
        returncode, output = _finish(process, workdir, name)
        assert returncode == 0, output
    return [_summary(workdir, name) for name in ("a", "b")]


def _rows(db_url: str) -> dict[str, int]:
    engine = create_store_engine(db_url)
    with engine.connect() as connection:
        counts = {name: connection.execute(select(func.count()).select_from(t.Base.metadata.tables[name])).scalar_one()
                  for name in EXPECTED_ROWS}
        counts["lines_without_identifier"] = connection.execute(
            select(func.count()).select_from(t.Line).where(
                t.Line.line_pk.not_in(select(t.LineIdentifier.line_pk)))).scalar_one()
        counts["lines_not_done"] = connection.execute(
            select(func.count()).select_from(t.Line).where(t.Line.status == "planned")).scalar_one()
    engine.dispose()
    return counts


def duplicates(rows: dict[str, int]) -> int:
    """Rows beyond what one run alone makes, plus stored lines no identifier leads to."""
    return sum(max(0, rows[name] - expected) for name, expected in EXPECTED_ROWS.items()) \
        + rows["lines_without_identifier"]


def _problems(rows: dict[str, int], summaries: list[dict]) -> list[str]:
    """What is wrong with one race's outcome (nothing, when each line was provisioned once)."""
    problems = []
    if duplicates(rows):
        problems.append(f"{duplicates(rows)} duplicate row(s): {rows}")
    if rows["lines_not_done"]:
        problems.append(f"{rows['lines_not_done']} line(s) left planned")
    lines = [summary["lines"] for summary in summaries]
    if [item["input"] for item in lines] != [LINES_IN, LINES_IN]:
        problems.append(f"input lines {lines}")
    if sum(item["provisioned"] for item in lines) != EXPECTED_PROVISIONED:
        problems.append(f"provisioned {sum(item['provisioned'] for item in lines)} times in all, "
                        f"not {EXPECTED_PROVISIONED}: {lines}")
    # the same customers: one run took them all, the other then found them provisioned
    if sorted(item["already_provisioned"] for item in lines) != [0, EXPECTED_PROVISIONED]:
        problems.append(f"already provisioned {lines}")
    if [(item["held"], item["rejected"]) for item in lines] != [(1, 1), (1, 1)]:
        problems.append(f"held/rejected {lines}")
    for what, key, expected in (("billing_contracts", "created", EXPECTED_ROWS["billing_contracts"]),
                                ("subscriptions", "created", EXPECTED_ROWS["subscriptions"]),
                                ("one_time_charges", "created", EXPECTED_ROWS["one_time_charges"])):
        reported = [summary[what][key] for summary in summaries]
        if sum(reported) != expected:
            problems.append(f"{what} {key} {reported}, not {expected} in all")
    return problems


def test_two_concurrent_runs_provision_each_line_exactly_once(db_url, prefect_home, tmp_path):
    from tests.conftest import _reset_postgres

    files = _orders(tmp_path / "input")
    reference = _reference(tmp_path / "ref")
    is_sqlite = db_url.startswith("sqlite")
    found, failures = 0, []
    started = time.monotonic()
    for iteration in range(ITERATIONS):
        workdir = tmp_path / f"race-{iteration}"
        url = f"sqlite:///{workdir / 'w365etl.sqlite'}" if is_sqlite else db_url
        if iteration and not is_sqlite:
            _reset_postgres(url)  # empty again, upgraded (`w365etl db upgrade`)
        summaries = _race(workdir, url, prefect_home, files, reference)
        rows = _rows(url)
        found += duplicates(rows)
        failures += [f"race {iteration}: {problem}" for problem in _problems(rows, summaries)]
    backend = "sqlite" if is_sqlite else "postgresql"
    print(f"\nrace: {ITERATIONS} iteration(s) on {backend} in {time.monotonic() - started:.0f} s, "
          f"duplicates: {found}")
    assert failures == []


def test_a_run_killed_while_provisioning_leaves_no_lock_and_the_next_run_takes_its_lines_over(
        db_url, prefect_home, tmp_path):
    """SIGKILL after the provider was called, before anything was recorded: the lines stay
    ``planned`` under a lock that died with the process; the next run does not wait for it and
    provisions every line once (recording converges on the same line rows). The killed run's
    row, left ``running``, is shown ``interrupted`` by ``w365etl runs`` and marked so by the
    next run (its process is gone), and ``w365etl report`` says what to do about it."""
    from sqlalchemy import create_engine, text

    from w365etl.adapters.run_history import RunHistory
    from w365etl.history import RunNotFinished, rebuild_reports

    def stored_runs() -> dict:
        engine = create_engine(db_url)
        try:
            with engine.connect() as connection:
                return {run_id: (status, finished_at) for run_id, status, finished_at in connection.execute(
                    text("SELECT run_id, status, finished_at FROM runs"))}
        finally:
            engine.dispose()

    files = _orders(tmp_path / "input")
    reference = _reference(tmp_path / "ref")
    killed = _start(tmp_path, "killed", db_url, prefect_home, files, reference,
                    W365_FAILPOINTS="after_provider_call:manual=kill")
    returncode, output = _finish(killed, tmp_path, "killed")
    assert returncode == -signal.SIGKILL, output
    assert _rows(db_url)["lines_not_done"] > 0
    [(killed_id, (status, finished_at))] = stored_runs().items()
    assert status == "running" and finished_at is None
    history = RunHistory(db_url)
    try:
        assert history.list_runs()["status"].tolist() == ["interrupted"]  # shown so before any run marks it
        with pytest.raises(RunNotFinished, match="interrupted.*run the same files again"):
            rebuild_reports(history.load_run(killed_id), provider_kinds={})
    finally:
        history.dispose()

    started = time.monotonic()
    after = _start(tmp_path, "after", db_url, prefect_home, files, reference)
    returncode, output = _finish(after, tmp_path, "after")
    assert returncode == 0, output
    assert time.monotonic() - started < 300
    summary = _summary(tmp_path, "after")
    assert summary["lines"]["provisioned"] == EXPECTED_PROVISIONED, summary["lines"]
    rows = _rows(db_url)
    assert duplicates(rows) == 0 and rows["lines_not_done"] == 0, rows
    runs = stored_runs()
    assert runs[killed_id][0] == "interrupted" and runs[killed_id][1] is not None
    assert sorted(status for status, _ in runs.values()) == ["completed", "interrupted"]


def test_runs_on_the_same_customers_wait_for_each_other_and_others_need_not(db_url, monkeypatch):
    """The locks themselves: the same customer waits; on PostgreSQL other customers do not (on
    SQLite every run waits — it writes one transaction at a time anyway); a lock that is not
    released in time stops the waiting run with exit-2 ``StoreUnavailable``."""
    import pandas as pd

    from w365etl.adapters import store_sql
    from w365etl.adapters.store_sql import SqlStore, StoreUnavailable

    monkeypatch.setattr(store_sql, "RUN_LOCK_TIMEOUT_SECONDS", 1)

    def plan_lines(customer: str, order: str) -> pd.DataFrame:
        return pd.DataFrame({"customer_name_key": [customer], "customer_id": [None], "order_number": [order]})

    first, second = SqlStore(db_url), SqlStore(db_url)
    try:
        first.lock_customers(plan_lines("contoso", "SO-1"))
        with pytest.raises(StoreUnavailable, match="another w365etl run"):
            second.lock_customers(plan_lines("contoso", "SO-2"))
        if db_url.startswith("postgresql"):
            second.lock_customers(plan_lines("fabrikam", "SO-3"))  # at once
            second.release_customers()
        first.release_customers()
        second.lock_customers(plan_lines("contoso", "SO-2"))
        second.release_customers()
    finally:
        first.dispose()
        second.dispose()
