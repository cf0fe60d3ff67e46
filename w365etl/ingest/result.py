"""What ingest hands to the rest of the pipeline: normalised lines, issues, file records."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from w365etl.ingest.values import FIELD_PARSERS, empty_column

#: Where each line (and its order-level fields) came from.
PROVENANCE_COLUMNS: tuple[str, ...] = (
    "line_index",
    "file_path",
    "sheet_name",
    "row_number",
    "order_file_path",
    "order_sheet_name",
    "order_row_number",
    "table_key",
    "order_table_key",
    "layout",
    "dialect",
)
#: Parsed value columns, in the order of SPEC §2.1's tables.
VALUE_COLUMNS: tuple[str, ...] = tuple(parser.column for parser in FIELD_PARSERS.values())
LINE_COLUMNS: tuple[str, ...] = PROVENANCE_COLUMNS + VALUE_COLUMNS

ISSUE_COLUMNS: tuple[str, ...] = ("line_index", "reason_code", "field", "file", "sheet", "row", "column", "value", "message")
FILE_ISSUE_COLUMNS: tuple[str, ...] = ("reason_code", "file", "sheet", "row", "column", "value", "message")

_INT_PROVENANCE = {"line_index", "row_number", "order_row_number"}


@dataclass(frozen=True)
class FileRecord:
    """One file given to the run (SPEC §5 ``summary.json`` ``files``)."""

    path: str
    #: hex sha256 of the bytes; None when the file could not even be opened.
    sha256: str | None
    #: 'flat' | 'header_lines'; None when the file was rejected before its layout was known.
    layout: str | None
    #: 'display' | 'logical'; None as for ``layout``.
    dialect: str | None
    #: data rows read (lines of a lines file, orders of an orders-only file).
    rows: int
    status: str  # 'read' | 'rejected'
    error: str | None = None
    unknown_columns: list[str] = field(default_factory=list)
    sheets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class IngestResult:
    """Everything read from one run's order files.

    ``issues`` rows with ``line_index`` NA describe a cell of an orders-table row in
    header+lines (``file``, ``sheet``, ``row`` name that row): they concern every line whose
    ``order_file_path``/``order_sheet_name``/``order_row_number`` point at it — see
    :func:`issues_per_line`.
    """

    lines: pd.DataFrame
    issues: pd.DataFrame
    files: list[FileRecord]
    file_issues: pd.DataFrame
    headers: dict[str, dict[str, str]]
    warnings: list[str]


def empty_lines() -> pd.DataFrame:
    index = pd.RangeIndex(0)
    columns: dict[str, pd.Series] = {}
    for name in PROVENANCE_COLUMNS:
        columns[name] = pd.Series([], dtype="int64" if name in _INT_PROVENANCE else "str")
    for field_name, parser in FIELD_PARSERS.items():
        columns[parser.column] = empty_column(field_name, index)
    return pd.DataFrame(columns, index=index)


def issues_frame(rows: list[pd.DataFrame] | None = None) -> pd.DataFrame:
    """Concatenate issue frames into the ``issues`` contract (dtypes fixed)."""
    frames = [frame for frame in rows or [] if len(frame)]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(ISSUE_COLUMNS))
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for name in ISSUE_COLUMNS:
        column = frame[name] if name in frame else pd.Series(np.nan, index=frame.index)
        out[name] = column.astype("Int64") if name in ("line_index", "row") else column.astype("str")
    return out


def file_issues_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(FILE_ISSUE_COLUMNS))
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for name in FILE_ISSUE_COLUMNS:
        out[name] = frame[name].astype("Int64") if name == "row" else frame[name].astype("str")
    return out


def issues_per_line(result: IngestResult) -> pd.DataFrame:
    """``result.issues`` with every orders-row issue repeated for each line of that order.

    Rows whose ``line_index`` is already set are kept as they are; an orders-row issue
    (``line_index`` NA) becomes one row per line whose order fields came from that row.
    """
    issues = result.issues
    own = issues[issues["line_index"].notna()]
    order_rows = issues[issues["line_index"].isna()]
    if order_rows.empty:
        return own.reset_index(drop=True)
    lines = result.lines[["line_index", "order_file_path", "order_sheet_name", "order_row_number"]]
    keyed = order_rows.drop(columns="line_index").assign(
        _sheet=order_rows["sheet"].fillna(""), _row=order_rows["row"].astype("int64")
    )
    lines = lines.assign(_sheet=lines["order_sheet_name"].fillna(""), _row=lines["order_row_number"])
    expanded = keyed.merge(
        lines[["line_index", "order_file_path", "_sheet", "_row"]],
        left_on=["file", "_sheet", "_row"],
        right_on=["order_file_path", "_sheet", "_row"],
    )
    expanded["line_index"] = expanded["line_index"].astype("Int64")
    expanded = expanded[list(ISSUE_COLUMNS)]
    return pd.concat([own, expanded], ignore_index=True).sort_values(["line_index", "field"], kind="stable").reset_index(drop=True)
