"""Writes report workbooks (SPEC §5) with openpyxl in write-only (streaming) mode.

Every sheet: an optional cap note (first row, when the frame was cut), banner lines (bold),
the header row (bold), the rows; the header is frozen, an auto-filter covers the table and
columns get readable widths. Text is always stored as a string cell — never a formula,
whatever it starts with. Decimals are written as number cells from their exact text (no
float on the way); dates as dates with a date format; booleans as booleans.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from w365etl.report.cells import (
    DATE_FORMAT,
    DATETIME_FORMAT,
    EMPTY_SHEET_TEXT,
    MONEY_FORMAT,
    ColumnKind,
    Sheet,
    cap_note,
    display_width,
    is_money_column,
    sheet_title,
    xlsx_column,
    xlsx_text,
)

__all__ = ["Sheet", "write_workbook"]

_BOLD = Font(bold=True)
_ITALIC = Font(italic=True)
_WIDTH_SAMPLE = 500


def write_workbook(path: Path, sheets: Sequence[Sheet], *, max_rows: int = 100_000) -> None:
    """Write ``sheets`` to ``path``; a sheet with more than ``max_rows`` rows is cut and says so."""
    if not sheets:
        raise ValueError("a workbook needs at least one sheet")
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    path = Path(path)
    workbook = Workbook(write_only=True)
    taken: set[str] = set()
    for sheet in sheets:
        worksheet = workbook.create_sheet(title=sheet_title(sheet.name, taken))
        _write_sheet(worksheet, sheet, max_rows)
    partial = path.with_name(path.name + ".partial")
    try:
        workbook.save(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _text_cell(worksheet: Any, text: str, font: Font | None = None) -> WriteOnlyCell:
    cell = WriteOnlyCell(worksheet, value=xlsx_text(text))
    cell.data_type = "s"  # never a formula, whatever the text starts with
    if font is not None:
        cell.font = font
    return cell


class _ColumnWriter:
    """Turns one column's values into cells; reuses a cell per column (write-only mode writes
    each appended row at once, so a reused cell is never seen twice)."""

    def __init__(self, worksheet: Any, kind: ColumnKind, money: bool) -> None:
        self.kind = kind
        self.cell = WriteOnlyCell(worksheet)
        if kind == "date":
            self.cell.number_format = DATE_FORMAT
        elif kind == "datetime":
            self.cell.number_format = DATETIME_FORMAT
        elif kind == "decimal" and money:
            self.cell.number_format = MONEY_FORMAT

    def __call__(self, value: Any) -> Any:
        if value is None:
            return None
        cell = self.cell
        if self.kind == "text":
            cell.value = value
            cell.data_type = "s"
            return cell
        if self.kind == "decimal":
            # The exact decimal text goes into the <v> element as it is: a number cell
            # whose value never became a float.
            cell.value = value
            cell.data_type = "n"
            return cell
        if self.kind in ("date", "datetime"):
            cell.value = value
            return cell
        return value  # int, float, bool: openpyxl writes them as they are


def _write_sheet(worksheet: Any, sheet: Sheet, max_rows: int) -> None:
    frame = sheet.frame
    total = len(frame)
    shown = frame.iloc[:max_rows] if total > max_rows else frame
    headers = [str(name) for name in frame.columns]
    ncols = max(len(headers), 1)

    pre_rows: list[str] = []
    if total > max_rows:
        pre_rows.append(cap_note(max_rows, total))
    pre_rows.extend(sheet.banner)
    header_row = len(pre_rows) + 1
    last_row = header_row + max(len(shown), 1)

    columns: list[tuple[ColumnKind, list[Any]]] = [
        xlsx_column(shown.iloc[:, i]) for i in range(shown.shape[1])
    ]
    for i, (kind, values) in enumerate(columns):
        width = display_width(kind, headers[i], values[:_WIDTH_SAMPLE])
        worksheet.column_dimensions[get_column_letter(i + 1)].width = width
    if not columns:
        worksheet.column_dimensions["A"].width = float(len(EMPTY_SHEET_TEXT) + 4)

    worksheet.freeze_panes = f"A{header_row + 1}"
    worksheet.auto_filter.ref = f"A{header_row}:{get_column_letter(ncols)}{last_row}"

    for line in pre_rows:
        worksheet.append([_text_cell(worksheet, line, _BOLD)])
    worksheet.append([_text_cell(worksheet, name, _BOLD) for name in headers])

    if len(shown) == 0:
        worksheet.append([_text_cell(worksheet, EMPTY_SHEET_TEXT, _ITALIC)])
        return
    writers = [_ColumnWriter(worksheet, kind, is_money_column(shown.iloc[:, i]))
               for i, (kind, _) in enumerate(columns)]
    value_lists = [values for _, values in columns]
    for row in zip(*value_lists, strict=True):
        worksheet.append([write(value) for write, value in zip(writers, row, strict=True)])
