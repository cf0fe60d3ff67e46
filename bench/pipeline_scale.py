"""Pipeline at scale (issue 7): a whole ``w365etl run`` against the I/O floor of its own input.

For each size N a synthetic export is written by ``w365etl generate-orders`` (≈4 lines per
order, ≈50 orders per customer, ~5 % bad rows, ~10 % of customers unmapped). Then, each in its
own process so that peak RSS is the process's own (``os.wait4``):

- **I/O floor** — ``pandas.read_csv(engine="pyarrow")`` of the file plus one ``executemany`` of
  all its rows, as text, into one fresh SQLite table in one transaction (the ``sqlite3`` module).
  It is the least any tool must do to get this file into this database.
- **run** — ``w365etl run FILE`` end to end on a fresh SQLite database, every provider manual
  (no network), reports written.
- **re-run** — the identical file again on the same database: every line is read and matched
  (already provisioned, skipped, held… — nothing is skipped by file hash, that is the inbox's rule).
- **store floor** — what storing the run's results costs at the least, measured after each
  run: the rows it left in its database, read beforehand (not timed), written back by one
  ``executemany`` per table into the same schema (its tables, indexes and foreign keys, the
  store's pragmas) in one transaction. For the run: every row into an empty database; for the
  re-run: the rows it added under its run id (outcomes, exceptions, its run and file rows) into
  a copy of the database as the run left it (the lines it marked seen are not counted, so this
  is a lower bound). ``store floor / floor`` is the least run / floor any code keeping this data
  model could reach on this machine.

- **bounded memory** — one run of a 10 M-line export (partitioned, ``partition_lines``), its
  peak RSS against 4 GB; no floor (the floor script would hold 10 M rows as Python strings)
  and no re-run. ``W365_BENCH_SKIP_BOUNDED=1`` leaves it out.

Runs use a Prefect server started once by the benchmark (``PREFECT_API_URL``), as the nightly
``w365etl serve`` does; the temporary server a bare ``w365etl run`` starts costs a further
8–12 s per process, measured here once as ``prefect start-up``. Ratios are to the floor measured
in the same run; per-stage seconds come from the run's own ``timings.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIZES = (100_000, 1_000_000)
QUICK_SIZES = (20_000,)
#: the bounded-memory size: run once (no floor — holding its 10 M rows as Python strings takes
#: more memory than the machine has — and no re-run), peak RSS against RSS_BAR_BOUNDED_GB
BOUNDED_SIZE = 10_000_000
RSS_BAR_BOUNDED_GB = 4.0
AS_OF = "2026-11-15"
RUN_BAR = 3.0     # run ≤ 3 × floor
RERUN_BAR = 1.0   # identical re-run ≤ 1 × floor
RSS_BAR_GB = 3.0  # at 1M lines

FLOOR_SCRIPT = r"""
import sqlite3, sys, time
import pandas as pd
path, db = sys.argv[1], sys.argv[2]
frame = pd.read_csv(path, engine="pyarrow", dtype=str, encoding="utf-8-sig")
columns = list(frame.columns)
rows = list(zip(*(frame[column].tolist() for column in columns)))
connection = sqlite3.connect(db)
names = ", ".join(f'"c{i}" text' for i in range(len(columns)))
connection.execute(f"create table export_rows ({names})")
with connection:
    connection.executemany(f"insert into export_rows values ({', '.join('?' * len(columns))})", rows)
connection.close()
print(len(rows))
"""

#: the least it costs to store what a run stored: its rows, read beforehand from the run's own
#: database, written back by ``executemany`` into the same schema (tables, indexes, foreign keys,
#: the store's pragmas) in one transaction. ``fresh``: every row into an empty database (a
#: first run); ``added``: the rows a later run added under its ``run_id`` into a copy of the
#: database as the earlier run left it (an identical re-run). Prints JSON: seconds and rows.
STORE_FLOOR_SCRIPT = r"""
import json, sqlite3, sys, time
mode, source, target = sys.argv[1], sys.argv[2], sys.argv[3]
run_id = sys.argv[4] if len(sys.argv) > 4 else None
read = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
objects = read.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                       "AND name NOT LIKE 'sqlite_%' ORDER BY rowid").fetchall()
tables = [name for kind, name, _ in objects if kind == "table"]
batches = []
for table in tables:
    columns = [row[1] for row in read.execute(f'PRAGMA table_info("{table}")')]
    if mode == "added":
        if "run_id" not in columns:
            continue
        rows = read.execute(f'SELECT * FROM "{table}" WHERE run_id = ? ORDER BY rowid', (run_id,)).fetchall()
    else:
        order = "" if read.execute("SELECT 1 FROM sqlite_master WHERE name = ? AND sql LIKE '%WITHOUT ROWID%'",
                                   (table,)).fetchone() else " ORDER BY rowid"
        rows = read.execute(f'SELECT * FROM "{table}"{order}').fetchall()
    if rows:
        batches.append((table, len(columns), rows))
read.close()
write = sqlite3.connect(target, isolation_level=None)
for pragma in ("foreign_keys=ON", "journal_mode=WAL", "busy_timeout=60000", "cache_size=-262144", "temp_store=MEMORY"):
    write.execute(f"PRAGMA {pragma}")
if mode == "fresh":
    for _, _, sql in objects:
        write.execute(sql)
started = time.perf_counter()
write.execute("BEGIN IMMEDIATE")
table_seconds = {}
for table, width, rows in batches:
    begun = time.perf_counter()
    write.executemany(f'INSERT INTO "{table}" VALUES ({", ".join("?" * width)})', rows)
    table_seconds[table] = round(time.perf_counter() - begun, 2)
begun = time.perf_counter()
write.execute("COMMIT")
table_seconds["(commit)"] = round(time.perf_counter() - begun, 2)
seconds = time.perf_counter() - started
write.close()
print(json.dumps({"seconds": round(seconds, 2), "rows": {table: len(rows) for table, _, rows in batches},
                  "table_seconds": table_seconds}))
"""

SETTINGS = """db_url = "sqlite:///{db}"
out_dir = "{out}"
[limits]
max_file_bytes = 8_000_000_000
max_rows = 20_000_000
max_cells = 1_000_000_000
[providers.partner_center]
kind = "automatic"
adapter = "manual"
"""


def run_process(command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Wall seconds and peak RSS (GB) of one process, reaped with ``os.wait4`` so the RSS is its own."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    return {"seconds": round(seconds, 2), "peak_rss_gb": round(usage.ru_maxrss / 1024 / 1024, 3),
            "returncode": process.returncode, "stdout": stdout[-3000:], "stderr": stderr[-3000:]}


def _report_folder(stdout: str) -> Path | None:
    for line in stdout.splitlines():
        if line.startswith("reports: "):
            return Path(line.split(": ", 1)[1].strip())
    return None


def _run(work: Path, export: Path, reference: Path, env: dict[str, str]) -> dict[str, Any]:
    figures = run_process([str(BIN / "w365etl"), "run", str(export), "--reference", str(reference),
                           "--config", str(work / "w365etl.toml"), "--as-of", AS_OF], env=env, cwd=work)
    if figures["returncode"] not in (0, 1):
        raise RuntimeError(f"w365etl run failed ({figures['returncode']}):\n{figures['stdout']}\n{figures['stderr']}")
    folder = _report_folder(figures["stdout"])
    if folder is not None:
        folder = work / folder if not folder.is_absolute() else folder
        figures["summary"] = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        timings = folder / "timings.json"
        figures["timings"] = json.loads(timings.read_text(encoding="utf-8")) if timings.exists() else {}
        figures["report_bytes"] = sum(path.stat().st_size for path in folder.iterdir())
    return figures


def _generate(lines: int, root: Path, env: dict[str, str], log) -> tuple[Path, Path, Path]:
    """A fresh work folder with the synthetic export of ``lines`` lines and its reference folder."""
    work = root / f"n{lines}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    generated = run_process([str(BIN / "w365etl"), "generate-orders", "--lines", str(lines), "--seed", "7",
                             "--out", str(work / "gen")], env=env)
    if generated["returncode"] != 0:
        raise RuntimeError(f"generate-orders failed:\n{generated['stderr']}")
    export, reference = work / "gen" / "orders.csv", work / "gen" / "reference"
    log(f"  {lines:,} lines: export {export.stat().st_size / 1e6:.0f} MB written in {generated['seconds']:.1f} s")
    return work, export, reference


def measure_size(lines: int, root: Path, env: dict[str, str], log=print) -> dict[str, Any]:
    work, export, reference = _generate(lines, root, env, log)
    floor = run_process([sys.executable, "-c", FLOOR_SCRIPT, str(export), str(work / "floor.sqlite")], env=env)
    if floor["returncode"] != 0:
        raise RuntimeError(f"floor failed:\n{floor['stderr']}")
    log(f"    floor   {floor['seconds']:7.1f} s  peak {floor['peak_rss_gb']:.2f} GB")
    (work / "w365etl.toml").write_text(SETTINGS.format(db=(work / "w365etl.sqlite").as_posix(),
                                                       out=(work / "out").as_posix()), encoding="utf-8")
    first = _run(work, export, reference, env)
    log(f"    run     {first['seconds']:7.1f} s  peak {first['peak_rss_gb']:.2f} GB  "
        f"= {first['seconds'] / floor['seconds']:.2f}× floor")
    database = work / "w365etl.sqlite"
    as_left = work / "as_left.sqlite"
    _copy_database(database, as_left)  # for the re-run's store floor, before the re-run changes it
    stored = _store_floor("fresh", database, work / "store_floor.sqlite", env)
    log(f"    store floor, run     {stored['seconds']:7.1f} s  ({sum(stored['rows'].values()):,} rows)")
    again = _run(work, export, reference, env)
    log(f"    re-run  {again['seconds']:7.1f} s  peak {again['peak_rss_gb']:.2f} GB  "
        f"= {again['seconds'] / floor['seconds']:.2f}× floor")
    added = _store_floor("added", database, as_left, env, again.get("summary", {}).get("run_id"))
    log(f"    store floor, re-run  {added['seconds']:7.1f} s  ({sum(added['rows'].values()):,} rows)")
    first["store_floor"], again["store_floor"] = stored, added
    for process in (floor, first, again):  # the figures, not this machine's paths and logs
        process.pop("stdout", None)
        process.pop("stderr", None)
        if "summary" in process:
            process["summary"] = {key: process["summary"][key] for key in ("lines", "orders")}
    figures = {"lines": lines, "export_mb": round(export.stat().st_size / 1e6, 1), "floor": floor,
               "run": first, "rerun": again}
    shutil.rmtree(work, ignore_errors=True)
    return figures


def _copy_database(source: Path, target: Path) -> None:
    import sqlite3
    from contextlib import closing

    target.unlink(missing_ok=True)
    with closing(sqlite3.connect(source)) as read, closing(sqlite3.connect(target)) as write:
        read.backup(write)


def _store_floor(mode: str, source: Path, target: Path, env: dict[str, str], run_id: str | None = None) -> dict[str, Any]:
    """``STORE_FLOOR_SCRIPT`` in its own process; its target database is removed afterwards."""
    if mode == "added" and not run_id:
        raise RuntimeError("the re-run wrote no summary: no run id to measure its store floor by")
    process = run_process([sys.executable, "-c", STORE_FLOOR_SCRIPT, mode, str(source), str(target),
                           *([run_id] if run_id else [])], env=env)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    if process["returncode"] != 0:
        raise RuntimeError(f"store floor ({mode}) failed:\n{process['stderr']}")
    return json.loads(process["stdout"].strip().splitlines()[-1])


def measure_bounded(lines: int, root: Path, env: dict[str, str], log=print) -> dict[str, Any]:
    """One run of a file bigger than memory would allow whole: its wall time and peak RSS."""
    work, export, reference = _generate(lines, root, env, log)
    (work / "w365etl.toml").write_text(SETTINGS.format(db=(work / "w365etl.sqlite").as_posix(),
                                                       out=(work / "out").as_posix()), encoding="utf-8")
    first = _run(work, export, reference, env)
    log(f"    run     {first['seconds']:7.1f} s  peak {first['peak_rss_gb']:.2f} GB")
    first.pop("stdout", None)
    first.pop("stderr", None)
    if "summary" in first:
        first["summary"] = {key: first["summary"][key] for key in ("lines", "orders")}
    figures = {"lines": lines, "export_mb": round(export.stat().st_size / 1e6, 1), "run": first}
    shutil.rmtree(work, ignore_errors=True)
    return figures


def _stage_note(label: str, figures: dict[str, Any]) -> str:
    stages = figures.get("timings", {}).get("stage_seconds", {})
    top = sorted(stages.items(), key=lambda item: -item[1])[:6]
    inside = figures.get("timings", {}).get("total_seconds")
    peaks = figures.get("timings", {}).get("peak_rss_mb_after_stage", {})
    # the stage during which the process reached its peak: the first whose figure is the top one
    peak_stage = next((name for name, mb in peaks.items() if mb == max(peaks.values())), None) if peaks else None
    return (f"{label}: flow {inside} s of {figures['seconds']} s wall; "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in top)
            + (f"; peak RSS reached during {peak_stage} ({peaks[peak_stage] / 1024:.2f} GB)" if peak_stage else ""))


def run(*, quick: bool = False) -> dict[str, Any]:
    from flows.prefect_environment import configure_prefect_environment
    configure_prefect_environment()
    from flows.serve import start_local_server

    sizes = QUICK_SIZES if quick else SIZES
    root = Path(os.environ.get("W365_BENCH_DIR", tempfile.gettempdir())) / "w365etl-bench-pipeline"
    root.mkdir(parents=True, exist_ok=True)
    server = start_local_server()
    env = dict(os.environ, PREFECT_API_URL=f"{server.url}/api")
    try:
        startup = run_process([sys.executable, "-c", "import prefect; from prefect import flow\n"
                               "@flow\ndef noop():\n    return 1\nnoop()"],
                              env={key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"})
        print(f"  prefect start-up (temporary server, trivial flow): {startup['seconds']:.1f} s", flush=True)
        startup = {key: value for key, value in startup.items() if key not in ("stdout", "stderr")}
        results = [measure_size(lines, root, env) for lines in sizes]
        bounded = None if quick or os.environ.get("W365_BENCH_SKIP_BOUNDED") == "1" else \
            measure_bounded(BOUNDED_SIZE, root, env)
    finally:
        server.stop()
    columns = ["lines", "export (MB)", "floor (s)", "run (s)", "run / floor", "re-run (s)", "re-run / floor",
               "store floor run / re-run (s)", "store floor / floor", "peak RSS floor / run / re-run (GB)", "result"]
    rows, notes = [], [f"Prefect's temporary server (a bare `w365etl run` with no `PREFECT_API_URL`) adds "
                       f"{startup['seconds']:.1f} s per process on this machine (trivial flow)."]
    passed = True
    for figures in results:
        floor, first, again = figures["floor"]["seconds"], figures["run"], figures["rerun"]
        ok = (first["seconds"] <= RUN_BAR * floor and again["seconds"] <= RERUN_BAR * floor
              and max(first["peak_rss_gb"], again["peak_rss_gb"]) <= RSS_BAR_GB)
        passed = passed and ok
        rows.append([f"{figures['lines']:,}", figures["export_mb"], floor, first["seconds"],
                     f"{first['seconds'] / floor:.2f}×", again["seconds"], f"{again['seconds'] / floor:.2f}×",
                     f"{first['store_floor']['seconds']} / {again['store_floor']['seconds']}",
                     f"{first['store_floor']['seconds'] / floor:.2f}× / {again['store_floor']['seconds'] / floor:.2f}×",
                     f"{figures['floor']['peak_rss_gb']:.2f} / {first['peak_rss_gb']:.2f} / {again['peak_rss_gb']:.2f}",
                     "PASS" if ok else "FAIL"])
        notes.append(_stage_note(f"{figures['lines']:,} lines, run", first))
        notes.append(_stage_note(f"{figures['lines']:,} lines, re-run", again))
        lines_summary = first.get("summary", {}).get("lines", {})
        notes.append(f"{figures['lines']:,} lines, run outcome: " + ", ".join(f"{key} {value:,}" for key, value in lines_summary.items()))
        for label, process in (("run", first), ("re-run", again)):
            stored = process["store_floor"]
            notes.append(f"{figures['lines']:,} lines, store floor of the {label}: {stored['seconds']} s for "
                         f"{sum(stored['rows'].values()):,} rows ("
                         + ", ".join(f"{table} {count:,}" for table, count in
                                     sorted(stored["rows"].items(), key=lambda item: -item[1])[:6])
                         + "; slowest: " + ", ".join(f"{table} {seconds} s" for table, seconds in
                                                     sorted(stored["table_seconds"].items(), key=lambda item: -item[1])[:4])
                         + f"); the {label} took {process['seconds'] / stored['seconds']:.1f}× its store floor")
    if bounded is not None:
        peak = bounded["run"]["peak_rss_gb"]
        ok = peak <= RSS_BAR_BOUNDED_GB and bounded["run"]["returncode"] in (0, 1)
        passed = passed and ok
        rows.append([f"{bounded['lines']:,}", bounded["export_mb"], "–", bounded["run"]["seconds"], "–", "–", "–",
                     "–", "–", f"– / {peak:.2f} / –", ("PASS" if ok else "FAIL") + f" (RSS bar {RSS_BAR_BOUNDED_GB:g} GB)"])
        notes.append(_stage_note(f"{bounded['lines']:,} lines, run (partitioned; no floor, no re-run)", bounded["run"]))
        lines_summary = bounded["run"].get("summary", {}).get("lines", {})
        notes.append(f"{bounded['lines']:,} lines, run outcome: "
                     + ", ".join(f"{key} {value:,}" for key, value in lines_summary.items()))
    largest = results[-1]
    headline = (f"{largest['lines']:,} lines: run {largest['run']['seconds'] / largest['floor']['seconds']:.2f}× floor "
                f"(bar {RUN_BAR:g}×), re-run {largest['rerun']['seconds'] / largest['floor']['seconds']:.2f}× "
                f"(bar {RERUN_BAR:g}×), peak RSS {max(largest['run']['peak_rss_gb'], largest['rerun']['peak_rss_gb']):.2f} GB "
                f"(bar {RSS_BAR_GB:g} GB)")
    method = __doc__.split("\n\n", 1)[1]
    return {"title": "Pipeline at scale against the I/O floor", "status": "PASS" if passed else "FAIL",
            "headline": headline, "columns": columns, "rows": rows,
            "config": {"sizes": list(sizes), "as_of": AS_OF, "providers": "manual", "database": "SQLite",
                       "seed": 7},
            "method": method, "notes": notes, "figures": results, "bounded": bounded, "prefect_startup": startup}
