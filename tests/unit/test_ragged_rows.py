"""Ragged CSV rows in the **read orders** step (issue 6): a row with more cells than the header.

Such a row's values sit in the wrong columns (a value with an unquoted delimiter), so the row
is rejected with one INVALID_VALUE naming its spreadsheet row — the record as a spreadsheet
shows it, quoted newlines included — and the first cell beyond the header; the other rows and
files still read. Trailing empty cells are harmless.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from tests.corpus.build_corpus import csv_text, row
from w365etl.adapters.order_files import read_order_files
from w365etl.ingest import issues_per_line


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=1, max_size=12))
def test_exactly_the_ragged_records_are_reported_at_their_spreadsheet_row(tmp_path: Path, shape):
    """Each record: does its customer cell span lines, and how many extra non-empty cells it has."""
    body = ""
    for number, (spans_lines, extra) in enumerate(shape, start=1):
        cells = row("SO-P", number, customer="Two\nLines" if spans_lines else "Contoso")
        body += csv_text([cells + [f"x{i}" for i in range(extra)]], headers=[])
    path = tmp_path / "ragged.csv"
    path.write_text(csv_text([]) + body, encoding="utf-8", newline="")
    result = read_order_files([path])
    assert result.files[0].status == "read" and len(result.lines) == len(shape)
    issues = issues_per_line(result)
    ragged = issues[issues["field"] == "row"]
    expected_rows = [number + 1 for number, (_, extra) in enumerate(shape, start=1) if extra]
    assert ragged["row"].tolist() == expected_rows
    assert (ragged["column"] == "column 11 (no header)").all()
    for (_, extra), message in zip([s for s in shape if s[1]], ragged["message"], strict=True):
        assert f"Row has {10 + extra} cells but the header has 10" in message
    assert result.lines["row_number"].tolist() == list(range(2, len(shape) + 2))


def test_a_ragged_row_of_an_orders_file_rejects_the_lines_of_that_order(tmp_path: Path):
    orders = tmp_path / "orders.csv"
    orders.write_text("Order ID,Potential Customer,Currency,Status\nSO-1,Contoso,USD,Active\n"
                      "SO-2,Contoso, Inc,USD,Active\n", encoding="utf-8")
    lines = tmp_path / "lines.csv"
    lines.write_text("Order ID,Product ID,Quantity,Price Per Unit\nSO-1,SUP-STD-M,1,5\nSO-2,SUP-STD-M,1,5\n"
                     "SO-2,SUP-STD-M,2,5\n", encoding="utf-8")
    result = read_order_files([orders, lines])
    assert [record.status for record in result.files] == ["read", "read"]
    issues = issues_per_line(result)
    ragged = issues[issues["field"] == "row"]
    assert set(ragged["file"]) == {str(orders)} and set(ragged["row"]) == {3}
    assert sorted(ragged["line_index"].tolist()) == [1, 2]  # both lines of SO-2, none of SO-1
    assert ragged["value"].tolist() == ["Active", "Active"]
