"""Command line of the run history (nightly operation, item 5): ``w365etl runs``, ``w365etl report``.

``runs`` lists past runs with their counts, newest first. ``report RUN_ID`` writes that run's
reports again, from the database, into ``OUT/<run_id>/`` (see ``w365etl.history`` for how
faithful each file is). Both read the database only; neither creates it. ``mark-interrupted
RUN_ID`` records that a run left ``running`` has stopped (its only write).

An entrypoint like ``cli.py`` (the lead registers ``runs``, ``report`` and ``mark-interrupted``
on the main app; ``app`` here carries all three for tests and standalone use). Exit status: 0
done, 2 nothing done (unknown run id, run without a recorded summary, a run that cannot be
marked, unreadable configuration, database unreachable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Run history: past runs and their reports.")

EXIT_NOT_DONE = 2

_DB_HELP = "Database URL (default: the settings' embedded SQLite; also W365_DB_URL)."


def _fail(message: str) -> None:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]w365etl:[/] {message}", highlight=False)
    raise typer.Exit(EXIT_NOT_DONE)


def _settings(config: Path | None, **overrides):
    from w365etl.settings import SettingsError, load_settings

    try:
        return load_settings(config, **overrides)
    except SettingsError as error:
        _fail(str(error))


def _history(url: str):
    from w365etl.adapters.run_history import RunHistory, StoreUnavailable

    try:
        return RunHistory(url)
    except StoreUnavailable as error:
        _fail(str(error))


@app.command("runs")
def runs(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs to list (newest first).")] = 20,
    db: Annotated[Optional[str], typer.Option("--db", help=_DB_HELP)] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Settings file (default ./w365etl.toml if present).")] = None,
) -> None:
    """List past runs with their counts, newest first."""
    from w365etl.history import runs_overview

    settings = _settings(config, db_url=db)
    history = _history(settings.db_url.get_secret_value())
    try:
        listed = history.list_runs(limit)
        overview = runs_overview(listed)
    finally:
        history.dispose()
    out = Console()
    if overview.empty:
        out.print("no runs recorded in this database yet")
        return
    table = Table(title=f"w365etl runs (newest first, at most {limit})", title_justify="left")
    headers = {"run_id": "run id", "started_at": "started (UTC)", "as_of": "as of", "status": "status",
               "files": "files", "lines_in": "lines in", "provisioned": "provisioned", "held": "held",
               "rejected": "rejected", "failed": "failed", "orders_fulfilled": "orders fulfilled"}
    numeric = {"files", "lines_in", "provisioned", "held", "rejected", "failed", "orders_fulfilled"}
    for column, header in headers.items():
        table.add_column(header, justify="right" if column in numeric else "left",
                         no_wrap=column in ("run_id", "started_at", "as_of"))
    for row in overview.astype(object).where(overview.notna(), None).itertuples(index=False):
        table.add_row(*["-" if value is None else str(value) for value in row])
    out.print(table)
    # a run left `running` that is not going any more makes every later run re-check its lines
    running = listed[listed["status"] == "running"]
    for run_id, owner in zip(running["run_id"], running.get("started_by", [None] * len(running))):
        where = f" (started by {owner})" if isinstance(owner, str) else ""
        out.print(f"run {run_id} is recorded running{where}; if it is not going any more: "
                  f"w365etl mark-interrupted {run_id} --force", highlight=False, soft_wrap=True)


@app.command("report")
def report(
    run_id: Annotated[str, typer.Argument(help="The run id (see `w365etl runs`).")],
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Report folder root (default ./out).")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help=_DB_HELP)] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Settings file (default ./w365etl.toml if present).")] = None,
) -> None:
    """Write RUN_ID's reports again, from the database, into OUT/<run_id>/."""
    from w365etl.history import RunNotFinished, RunNotFound, rebuild_reports
    from w365etl.safe_paths import UnsafePath, report_folder

    settings = _settings(config, db_url=db, out_dir=out_dir)
    try:  # before anything else: the run id names the folder the reports go to
        report_folder(Path(settings.out_dir), run_id)
    except UnsafePath as error:
        _fail(str(error))
    history = _history(settings.db_url.get_secret_value())
    try:
        records = history.load_run(run_id)
    except RunNotFound:
        _fail(f"no run '{run_id}' in this database (`w365etl runs` lists the runs it holds)")
        return
    finally:
        history.dispose()
    provider_kinds = {code: provider.kind for code, provider in settings.providers.items()}
    try:
        reports = rebuild_reports(records, provider_kinds=provider_kinds)
    except RunNotFinished as error:
        _fail(str(error))
        return

    from w365etl.adapters.reports_csv import write_csv
    from w365etl.adapters.reports_xlsx import write_workbook
    from w365etl.provisioning import RunOutputs, write_outputs

    outputs = RunOutputs(summary=reports.summary, exceptions=reports.exceptions, needs_mapping=reports.needs_mapping,
                         order_status_updates=reports.order_status_updates, sheets=reports.sheets, outcomes=None)
    folder = report_folder(Path(settings.out_dir), run_id)
    written = write_outputs(folder, outputs, write_csv=write_csv, write_workbook=write_workbook,
                            max_rows=settings.report_max_rows)
    out = Console(soft_wrap=True)
    out.print(f"rebuilt the reports of run {run_id} from the database: " + ", ".join(path.name for path in written),
              highlight=False)
    if not reports.outcomes_complete:
        out.print("note: this run recorded line outcomes for its planned lines only; its other lines are taken "
                  "from their latest state, which a later run may have changed", highlight=False)
    out.print(f"reports: {folder}", highlight=False)


@app.command("mark-interrupted")
def mark_interrupted(
    run_id: Annotated[str, typer.Argument(help="The run id (see `w365etl runs`).")],
    force: Annotated[bool, typer.Option("--force", help="Mark it even though its process cannot be checked "
                                        "from here (another machine or container, or a run from before "
                                        "run owners were recorded).")] = False,
    db: Annotated[Optional[str], typer.Option("--db", help=_DB_HELP)] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Settings file (default ./w365etl.toml if present).")] = None,
) -> None:
    """Record that RUN_ID, still shown running, has stopped (it was killed): it becomes interrupted."""
    from w365etl.adapters.store_sql import SqlStore, StoreUnavailable, sqlite_file_missing
    from w365etl.history import RunNotFound, RunNotMarked

    settings = _settings(config, db_url=db)
    url = settings.db_url.get_secret_value()
    if sqlite_file_missing(url):  # looking must not create the embedded database
        _fail(f"no run '{run_id}': the database does not exist yet")
    try:
        store = SqlStore(url, create_schema=False)
    except StoreUnavailable as error:
        _fail(str(error))
        return
    try:
        if not store.has_schema():
            _fail(f"no run '{run_id}': the database holds no runs yet")
        started_by = store.mark_run_interrupted(run_id, is_forced=force)
    except RunNotFound:
        _fail(f"no run '{run_id}' in this database (`w365etl runs` lists the runs it holds)")
        return
    except RunNotMarked as error:
        _fail(str(error))
        return
    finally:
        store.dispose()
    Console(soft_wrap=True).print(f"run {run_id} (started by {started_by}) is now marked interrupted; "
                                  "its provisioned lines stay provisioned, and running the same files again "
                                  "finishes what it left (nothing is provisioned twice)", highlight=False)
