"""Bad-input corpus (issue 6) through the **read orders** step and one real ``w365etl run``.

Every corpus file (``tests/corpus/build_corpus.py``, with its expected outcome) is read by the
function the flow's read-orders task runs, and its exceptions are located as exceptions.csv
shows them (file, sheet, spreadsheet row — header = row 1 — and column). Then one real run in a
separate process takes the whole corpus plus a good file: exit status 1 (files rejected), the
good file's orders provisioned and fulfilled (R7), every expected message in exceptions.csv
and summary.json, and no traceback anywhere.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tests.corpus.build_corpus import Case, build_corpus, corpus_cases, csv_text, good_rows
from tests.support.exports import write_reference

CASES = corpus_cases()
#: a Python exception's class name in a message means a reader failure leaked through
_EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception|Warning)\b|Traceback")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    build_corpus(folder)
    return folder


def read_as_the_flow_does(paths: list[Path]):
    """The read-orders task's function, and its exceptions located as exceptions.csv shows them."""
    from flows.provision_orders import read_orders
    from w365etl.domain.keys import add_line_identifiers
    from w365etl.report.build import build_exceptions
    from w365etl.settings import Settings

    ingest, line_issues = read_orders.fn(paths, Settings())
    exceptions = build_exceptions("corpus", line_issues, ingest.file_issues, add_line_identifiers(ingest.lines),
                                  ingest.headers)
    return ingest, exceptions


def test_the_corpus_has_at_least_50_files_each_with_an_expected_outcome(corpus):
    names = [case.name for case in CASES]
    assert len(names) >= 50 and len(set(names)) == len(names)
    manifest = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    assert [entry["name"] for entry in manifest] == names
    for case in CASES:
        assert (corpus / case.name).is_file(), case.name
        assert case.outcome in ("rejected", "rows", "read"), case.name
        assert case.exercises, case.name
        if case.outcome == "rejected":
            assert case.code in ("FILE_REJECTED", "MISSING_COLUMN", "AMBIGUOUS_COLUMN") and case.text, case.name
        if case.outcome == "rows":
            assert case.issues, case.name
    # the big ones are small on disk (and cheap to build)
    assert (corpus / "xlsx_zip_bomb.xlsx").stat().st_size < 2 * 1024**2
    assert (corpus / "xlsx_empty_styled_rows.xlsx").stat().st_size < 4 * 1024**2


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_corpus_file_gives_its_expected_outcome(corpus: Path, case: Case):
    ingest, exceptions = read_as_the_flow_does([corpus / case.name])
    record = ingest.files[0]
    for message in exceptions["message"].dropna():
        assert "\n" not in message and not _EXCEPTION_NAME.search(message), message

    if case.outcome == "rejected":
        assert record.status == "rejected", f"{case.name} was read: {len(ingest.lines)} lines"
        assert exceptions["reason_code"].tolist() == [case.code], exceptions.to_dict("records")
        row = exceptions.iloc[0]
        assert row["file"] == str(corpus / case.name)
        assert case.text in row["message"], row["message"]
        assert record.error == row["message"]
        assert ingest.lines.empty
        return

    assert record.status == "read", record.error
    assert len(ingest.lines) == case.lines
    assert ingest.file_issues.empty
    if case.outcome == "read":
        assert exceptions.empty, exceptions[["row", "column", "message"]].to_dict("records")
    else:
        found = {(int(r.row), r.reason_code, r.column, None if pd.isna(r.sheet) else r.sheet): f"{r.value} {r.message}"
                 for r in exceptions.itertuples()}
        for issue in case.issues:
            key = (issue.row, issue.code, issue.column, issue.sheet)
            match = [text for (row, code, column, sheet), text in found.items()
                     if (row, code, sheet) == (issue.row, issue.code, issue.sheet) and column.startswith(issue.column)]
            assert match, f"{key} not among {sorted(found)}"
            assert any(issue.text in text for text in match), (issue.text, match)
        # nothing is reported on a row the manifest does not name
        assert {int(row) for row in exceptions["row"]} <= {issue.row for issue in case.issues}
        assert set(exceptions["file"]) == {str(corpus / case.name)}
    for name, expected in case.values.items():
        got = ingest.lines.iloc[0][name]
        if isinstance(got, (Decimal, int, float)) or name in ("quantity", "price_per_unit"):
            assert Decimal(str(got)) == Decimal(expected), (name, got)
        else:
            assert got == expected, (name, got)


def test_a_run_over_the_whole_corpus_and_a_good_file(corpus: Path, tmp_path: Path):
    """One real process, as an operator runs it: every stream and every output file is checked."""
    good = tmp_path / "good_orders.csv"
    good.write_bytes(csv_text(good_rows("GOOD-1", 3) + good_rows("GOOD-2", 2)).encode("utf-8"))
    write_reference(tmp_path / "ref", [])
    files = [str(corpus / case.name) for case in CASES] + [str(good)]
    env = {key: value for key, value in os.environ.items() if not key.startswith("W365_")}
    completed = subprocess.run(
        [sys.executable, "-m", "w365etl.cli", "run", *files, "--reference", str(tmp_path / "ref"),
         "--db", f"sqlite:///{tmp_path / 'run.sqlite'}", "--out", str(tmp_path / "out"), "--as-of", "2026-11-29"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env,
    )
    seen = completed.stdout + completed.stderr
    assert completed.returncode == 1, seen[-3000:]
    assert "Traceback" not in seen, seen[-3000:]
    folder = next((tmp_path / "out").iterdir())
    for output in folder.rglob("*"):
        if output.is_file():
            assert b"Traceback" not in output.read_bytes(), output.name

    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    files_by_path = {entry["path"]: entry for entry in summary["files"]}
    with (folder / "exceptions.csv").open(encoding="utf-8", newline="") as handle:
        exceptions = list(csv.DictReader(handle))
    by_file: dict[str, list[dict[str, str]]] = {}
    for row in exceptions:
        by_file.setdefault(row["file"], []).append(row)

    problems = []
    for case in CASES:
        path = str(corpus / case.name)
        entry = files_by_path[path]
        rows = by_file.get(path, [])
        errors = [row for row in rows if row["severity"] == "error"]
        if case.in_a_run is not None:
            # a table without a Quantity column is an orders table when other files come with it
            # (SPEC §2.1): its orders have no lines in this run and are ignored with a warning
            if entry["status"] != case.in_a_run or errors:
                problems.append((case.name, entry["status"], errors))
        elif case.outcome == "rejected":
            if not (entry["status"] == "rejected" and case.text in entry["error"]):
                problems.append((case.name, entry))
            if [(row["reason_code"], case.text in row["message"]) for row in rows] != [(case.code, True)]:
                problems.append((case.name, rows))
        else:
            if entry["status"] != "read" or entry["rows"] != case.lines:
                problems.append((case.name, entry))
            if case.outcome == "read" and errors:
                problems.append((case.name, errors))
            for issue in case.issues:
                if not any(row["row"] == str(issue.row) and row["reason_code"] == issue.code
                           and row["column"].startswith(issue.column) for row in errors):
                    problems.append((case.name, issue, errors))
    assert problems == []

    # the good file: read, no exception, its orders provisioned and fulfilled (R7)
    assert files_by_path[str(good)]["status"] == "read"
    assert str(good) not in by_file
    with (folder / "order_status_updates.csv").open(encoding="utf-8", newline="") as handle:
        fulfilled = {row["order_number"] for row in csv.DictReader(handle)}
    assert {"SO-GOOD-1", "SO-GOOD-2"} <= fulfilled
    lines = summary["lines"]
    assert lines["provisioned"] >= 5
    assert lines["input"] == sum(lines[bucket] for bucket in
                                 ("provisioned", "already_provisioned", "skipped", "held", "rejected", "failed"))
    assert summary["exceptions_by_reason"]["FILE_REJECTED"] == sum(
        1 for case in CASES if case.outcome == "rejected" and case.code == "FILE_REJECTED" and case.in_a_run is None)
