"""The report writers (SPEC §5): formula safety, exact decimals, the xlsx cap and layout."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from w365etl.adapters.reports_csv import write_csv
from w365etl.adapters.reports_xlsx import write_workbook
from w365etl.amounts import MONEY_DTYPE, QUANTITY_DTYPE, decimals_from_text
from w365etl.report.cells import FORMULA_TRIGGERS, Sheet, sheet_title, xlsx_text

TRIGGERS = st.sampled_from(FORMULA_TRIGGERS)
ANY_TEXT = st.text(max_size=40)
#: a sign and digits (``-1``, ``+2.5``, ``-1,299.00``): a number to a spreadsheet, never escaped
PLAIN_NUMBER = re.compile(r"[+-][0-9]+(?:[.,][0-9]+)*")
DANGEROUS_TEXT = st.builds(lambda head, tail: head + tail, TRIGGERS, ANY_TEXT).filter(
    lambda s: PLAIN_NUMBER.fullmatch(s) is None)
SAFE_TEXT = ANY_TEXT.filter(lambda s: not s.startswith(FORMULA_TRIGGERS))
HYPOTHESIS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def money(*values: str | None) -> pd.Series:
    return decimals_from_text(pd.Series(list(values), dtype=object), MONEY_DTYPE.pyarrow_dtype)


def quantity(*values: str | None) -> pd.Series:
    return decimals_from_text(pd.Series(list(values), dtype=object), QUANTITY_DTYPE.pyarrow_dtype)


def read_csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def sheet_xml(path: Path, index: int = 1) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read(f"xl/worksheets/sheet{index}.xml").decode("utf-8")


def all_cells(path: Path) -> list[openpyxl.cell.Cell]:
    workbook = openpyxl.load_workbook(path)
    return [cell for ws in workbook for row in ws.iter_rows() for cell in row]


# --------------------------------------------------------------------------- csv


@HYPOTHESIS
@given(texts=st.lists(DANGEROUS_TEXT, min_size=1, max_size=8))
def test_csv_dangerous_text_gets_a_quote_prefix(tmp_path: Path, texts: list[str]) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, pd.DataFrame({"value": texts, "n": range(len(texts))}))
    rows = read_csv_rows(path)
    assert rows[0] == ["value", "n"]
    assert [row[0] for row in rows[1:]] == ["'" + text for text in texts]


@HYPOTHESIS
@given(texts=st.lists(SAFE_TEXT, min_size=1, max_size=8))
def test_csv_other_text_is_written_unchanged(tmp_path: Path, texts: list[str]) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, pd.DataFrame({"value": pd.array(texts, dtype="string")}))
    assert [row[0] if row else "" for row in read_csv_rows(path)[1:]] == texts


#: cells a formula-safe writer leaves as they are, the csv specials among them
CSV_CELL = st.one_of(st.none(), SAFE_TEXT, st.sampled_from(['"', ",", "\n", "a\r", "b\r\n", "", " ", 'a,"b"'])
                     ).filter(lambda text: text is None or not text.startswith(FORMULA_TRIGGERS))


@HYPOTHESIS
@given(shape=st.integers(1, 4).flatmap(lambda width: st.lists(st.lists(CSV_CELL, min_size=width, max_size=width),
                                                               min_size=0, max_size=7)),
       slice_rows=st.integers(1, 3))
def test_csv_bytes_are_what_pythons_csv_module_writes(tmp_path: Path, shape: list[list[str | None]],
                                                      slice_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """SPEC §5 csv: the Arrow writer quotes exactly as ``csv.QUOTE_MINIMAL`` with CRLF line ends
    (quotes, commas, line breaks; a row's only cell when empty), NA as an empty cell, in slices."""
    monkeypatch.setattr("w365etl.adapters.reports_csv.CSV_SLICE_ROWS", slice_rows)
    width = len(shape[0]) if shape else 2
    names = [f"c{i}" for i in range(width)]
    frame = pd.DataFrame({name: pd.array([row[i] for row in shape], dtype="string") for i, name in enumerate(names)})
    path = tmp_path / "out.csv"
    write_csv(path, frame)
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(names)
    writer.writerows([["" if cell is None else cell for cell in row] for row in shape])
    assert path.read_bytes() == expected.getvalue().encode("utf-8")


def test_csv_plain_values_encoding_and_no_prefix_on_numbers(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "order_number": ["ORD-1", "-5", "@x"],
            "amount": money("0.3", "-1299.5", None),
            "quantity": quantity("10", "2.5", "-1"),
            "row": pd.array([2, None, 4], dtype="Int64"),
            "as_of": [dt.date(2026, 11, 29), None, dt.date(2026, 1, 2)],
            "dry_run": pd.array([True, False, None], dtype="boolean"),
            "customer": ["Müller GmbH", "Café, Ltd", 'A "quoted" name'],
        }
    )
    path = tmp_path / "exceptions.csv"
    write_csv(path, frame)
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    raw.decode("utf-8")
    assert read_csv_rows(path) == [
        ["order_number", "amount", "quantity", "row", "as_of", "dry_run", "customer"],
        ["ORD-1", "0.3", "10", "2", "2026-11-29", "true", "Müller GmbH"],
        ["-5", "-1299.5", "2.5", "", "", "false", "Café, Ltd"],
        ["'@x", "", "-1", "4", "2026-01-02", "", 'A "quoted" name'],
    ]
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(("text", "written"), [
    ("-1", "-1"), ("+2.5", "+2.5"), ("-1,299.00", "-1,299.00"),  # numbers: R9 names the value as given
    ("-1+2", "'-1+2"), ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"), ("-", "'-"), ("--1", "'--1"),
    ("-1e5", "'-1e5"), ("+1 ", "'+1 "), ("-1.", "'-1."), ("=1", "'=1"), ("@1", "'@1"),
    ("-\u0661", "'-\u0661"), ("+\uff13", "'+\uff13"),  # digits of other scripts: not a plain number
])
def test_csv_plain_signed_numbers_are_not_escaped_anything_more_is(tmp_path: Path, text: str, written: str) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, pd.DataFrame({"value": pd.array([text], dtype="string")}))
    assert read_csv_rows(path)[1] == [written]


def test_csv_decimals_are_exact(tmp_path: Path) -> None:
    total = Decimal("0.1") + Decimal("0.2")
    frame = pd.DataFrame(
        {
            "arrow": money("0.1", "0.2", str(total), "12345678901.123456", "0.000001"),
            "objects": [Decimal("0.1"), Decimal("0.2"), total, Decimal("12345678901.123456"), Decimal("1E+3")],
        }
    )
    path = tmp_path / "amounts.csv"
    write_csv(path, frame)
    assert read_csv_rows(path)[1:] == [
        ["0.1", "0.1"],
        ["0.2", "0.2"],
        ["0.3", "0.3"],
        ["12345678901.123456", "12345678901.123456"],
        ["0.000001", "1000"],
    ]


def test_csv_empty_frame_has_its_header(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    write_csv(path, pd.DataFrame({"order_id": pd.Series([], dtype="string"), "amount": money()}))
    assert read_csv_rows(path) == [["order_id", "amount"]]


# --------------------------------------------------------------------------- xlsx: formula safety


@HYPOTHESIS
@given(texts=st.lists(st.one_of(DANGEROUS_TEXT, ANY_TEXT), min_size=1, max_size=8))
def test_xlsx_text_is_never_a_formula(tmp_path: Path, texts: list[str]) -> None:
    path = tmp_path / "report.xlsx"
    write_workbook(path, [Sheet("Lines", pd.DataFrame({"value": texts, "n": range(len(texts))}))])
    cells = [row[0] for row in openpyxl.load_workbook(path)["Lines"].iter_rows(min_row=2)]
    for text, cell in zip(texts, cells, strict=True):
        expected = xlsx_text(text)
        if expected == "":
            assert cell.value is None
        else:
            assert cell.data_type == "s"
            assert cell.value == expected
    assert "<f>" not in sheet_xml(path)


@HYPOTHESIS
@given(text=DANGEROUS_TEXT.filter(lambda s: "\r" not in s))
def test_xlsx_dangerous_text_round_trips_unchanged(tmp_path: Path, text: str) -> None:
    if re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", text):
        text = "=" + text.encode("ascii", "ignore").decode().strip("\x00")
    path = tmp_path / "report.xlsx"
    write_workbook(path, [Sheet("S", pd.DataFrame({"value": [text]}))])
    cell = openpyxl.load_workbook(path)["S"]["A2"]
    assert (cell.data_type, cell.value) == ("s", xlsx_text(text))


def test_xlsx_no_cell_anywhere_is_a_formula(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "=HYPERLINK(\"http://evil\",\"x\")": ['=HYPERLINK("http://evil","click")', "+1", "-2+3", "@SUM(A1:A9)"],
            "+header": ["\t=1", "=1+1", "=cmd|' /C calc'!A0", "ok"],
        }
    )
    path = tmp_path / "report.xlsx"
    write_workbook(path, [Sheet("=Sheet", frame, banner=("=1+2", "-DRY RUN"))])
    cells = [cell for cell in all_cells(path) if cell.value is not None]
    assert cells
    assert all(cell.data_type != "f" for cell in cells)
    values = {cell.value for cell in cells}
    assert {'=HYPERLINK("http://evil","click")', "+1", "=cmd|' /C calc'!A0", "=1+2", "+header"} <= values
    assert "<f>" not in sheet_xml(path)


# --------------------------------------------------------------------------- xlsx: layout


def _lines(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_number": [f"ORD-{i:05d}" for i in range(n)],
            "quantity": quantity(*[str(i + 1) for i in range(n)]),
        }
    )


def test_xlsx_cap_note_first_row_and_row_count(tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    write_workbook(path, [Sheet("Lines", _lines(25), banner=("DRY RUN — nothing was written",))], max_rows=10)
    ws = openpyxl.load_workbook(path)["Lines"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "Showing the first 10 of 25 rows — the csv outputs are complete."
    assert rows[1][0] == "DRY RUN — nothing was written"
    assert rows[2] == ("order_number", "quantity")
    data = rows[3:]
    assert len(data) == 10
    assert data[0] == ("ORD-00000", 1) and data[-1] == ("ORD-00009", 10)
    assert ws.freeze_panes == "A4"
    assert ws.auto_filter.ref == "A3:B13"


def test_xlsx_cap_note_uses_thousands_separators(tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    write_workbook(path, [Sheet("Lines", _lines(1_001))], max_rows=1_000)
    first = openpyxl.load_workbook(path)["Lines"]["A1"].value
    assert first == "Showing the first 1,000 of 1,001 rows — the csv outputs are complete."


def test_xlsx_no_cap_note_within_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    write_workbook(path, [Sheet("Lines", _lines(10))], max_rows=10)
    ws = openpyxl.load_workbook(path)["Lines"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("order_number", "quantity")
    assert len(rows) == 11
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:B11"


def test_xlsx_header_bold_frozen_filtered_and_widths(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "customer_name": ["Contoso Pharmaceuticals Ltd", "x" * 200],
            "n": [1, 2],
        }
    )
    path = tmp_path / "report.xlsx"
    write_workbook(path, [Sheet("Summary", frame, banner=("SANDBOX: Partner Center lines went to the local simulator",))])
    ws = openpyxl.load_workbook(path)["Summary"]
    assert ws["A1"].font.b and ws["A2"].font.b and ws["B2"].font.b
    assert not ws["A3"].font.b
    assert ws.freeze_panes == "A3"
    assert ws.auto_filter.ref == "A2:B4"
    assert ws.column_dimensions["A"].width == 60  # capped
    assert 8 <= ws.column_dimensions["B"].width < 20


def test_xlsx_decimals_dates_and_booleans(tmp_path: Path) -> None:
    total = Decimal("0.1") + Decimal("0.2")
    frame = pd.DataFrame(
        {
            "price": money(str(total), "12345678901.123456", None),
            "objects": [total, Decimal("-1299.50"), None],
            "as_of": [dt.date(2026, 11, 29), None, dt.date(2026, 1, 2)],
            "dry_run": [True, False, True],
        }
    )
    path = tmp_path / "report.xlsx"
    write_workbook(path, [Sheet("Amounts", frame)])
    xml = sheet_xml(path)
    # the exact decimal text is stored, never a float rendering like 0.30000000000000004
    assert '<c r="A2" s="1" t="n"><v>0.3</v></c>' in xml or re.search(r'r="A2"[^>]*t="n"><v>0\.3</v>', xml)
    assert re.search(r'r="A3"[^>]*t="n"><v>12345678901\.123456</v>', xml)
    assert re.search(r'r="B3"[^>]*t="n"><v>-1299\.5</v>', xml)
    assert "0.30000000000000004" not in xml
    ws = openpyxl.load_workbook(path)["Amounts"]
    assert ws["A2"].data_type == "n" and ws["A2"].value == pytest.approx(0.3)
    assert ws["A4"].value is None
    assert ws["C2"].is_date and ws["C2"].value == dt.datetime(2026, 11, 29)
    assert ws["C2"].number_format == "yyyy-mm-dd"
    assert ws["D2"].data_type == "b" and ws["D2"].value is True and ws["D3"].value is False


def test_xlsx_datetimes_floats_and_integers_keep_their_values(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "at": pd.to_datetime(["2026-11-29 18:30:15", None, "1999-12-31 23:59:59"]).tz_localize("UTC"),
        "ratio": [0.1, float("nan"), 1e-7],
        "count": pd.Series([7, None, -3], dtype="Int64"),
        "as_of": pd.Series([dt.date(2026, 11, 29), None, dt.date(1900, 3, 1)], dtype="date32[pyarrow]"),
    })
    path = tmp_path / "report.xlsx"
    write_workbook(path, [Sheet("Values", frame)])
    ws = openpyxl.load_workbook(path)["Values"]
    assert ws["A2"].value == dt.datetime(2026, 11, 29, 18, 30, 15) and ws["A2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert ws["A4"].value == dt.datetime(1999, 12, 31, 23, 59, 59)
    assert ws["B2"].value == 0.1 and ws["B3"].value is None and ws["B4"].value == 1e-7
    assert [ws["C2"].value, ws["C3"].value, ws["C4"].value] == [7, None, -3]
    assert ws["D2"].value == dt.datetime(2026, 11, 29) and ws["D4"].value == dt.datetime(1900, 3, 1)
    assert ws["D2"].number_format == "yyyy-mm-dd"


def test_xlsx_empty_sheet_has_header_and_none_row(tmp_path: Path) -> None:
    frame = pd.DataFrame({"order_number": pd.Series([], dtype="string"), "amount": money()})
    path = tmp_path / "report.xlsx"
    write_workbook(path, [Sheet("Needs provider mapping", frame), Sheet("Empty", pd.DataFrame())])
    workbook = openpyxl.load_workbook(path)
    rows = list(workbook["Needs provider mapping"].iter_rows(values_only=True))
    assert rows == [("order_number", "amount"), ("(none)", None)]
    assert list(workbook["Empty"].iter_rows(values_only=True))[-1] == ("(none)",)


def test_xlsx_sheet_names_follow_excel_rules(tmp_path: Path) -> None:
    names = ["Exceptions: by reason [all]", "a" * 40, "a" * 40, "What/why?*\\", "'quoted'"]
    path = tmp_path / "report.xlsx"
    write_workbook(path, [Sheet(name, _lines(1)) for name in names])
    titles = openpyxl.load_workbook(path).sheetnames
    assert len(set(t.casefold() for t in titles)) == len(names)
    for title in titles:
        assert 0 < len(title) <= 31
        assert not set(title) & set("[]:*?/\\")
        assert not title.startswith("'") and not title.endswith("'")
    assert titles[0] == "Exceptions_ by reason _all_"
    assert not list(tmp_path.glob("*.partial"))


def test_sheet_title_is_unique_case_insensitively() -> None:
    taken: set[str] = set()
    assert sheet_title("Lines", taken) == "Lines"
    assert sheet_title("lines", taken) == "lines (2)"
    assert sheet_title("History", taken) == "History_"


def test_workbook_needs_a_sheet(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_workbook(tmp_path / "x.xlsx", [])


def test_columns_in_several_arrow_chunks_are_written_whole(tmp_path: Path) -> None:
    """A run's frames are concatenated, so a text column can be several Arrow chunks: both
    writers take every chunk, in order (the xlsx rows over its 20 000-row pieces)."""
    texts = [f"line {i}, \"{i % 3}\"" if i % 11 else None for i in range(45_001)]
    chunks = pa.chunked_array([pa.array(texts[:7], pa.large_string()), pa.array([], pa.large_string()),
                               pa.array(texts[7:30_000], pa.large_string()), pa.array(texts[30_000:], pa.large_string())])
    frame = pd.DataFrame({"value": pd.arrays.ArrowStringArray(chunks), "n": range(len(texts))})
    write_csv(tmp_path / "out.csv", frame)
    assert read_csv_rows(tmp_path / "out.csv")[1:] == [["" if text is None else text, str(i)]
                                                       for i, text in enumerate(texts)]
    write_workbook(tmp_path / "out.xlsx", [Sheet("Lines", frame)], max_rows=50_000)
    rows = list(openpyxl.load_workbook(tmp_path / "out.xlsx", read_only=True)["Lines"].iter_rows(values_only=True))
    assert rows[1:] == [(text, i) for i, text in enumerate(texts)]
