"""Writes a report frame as csv (SPEC §5): UTF-8 without BOM, comma, header row, always complete.

Text cells are formula-safe (a leading ``=``, ``+``, ``-``, ``@``, tab or CR gets a ``'``
prefix, except on a plain signed number like ``-1``); numbers, exact decimals, ISO dates and
booleans are written as plain values.
The file is written beside its target and renamed into place, so a reader never sees half
a report.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from w365etl.columns import concatenated_text
from w365etl.report.cells import column_kind, csv_frame


#: rows turned into csv text at a time: a run's exceptions can be millions of rows
CSV_SLICE_ROWS = 200_000
_SLICEABLE = frozenset({"text", "integer", "float", "decimal", "bool"})


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        # a date column is written date-only when all its values are at midnight, and an object
        # column by what its values are: decided over the whole column, so those go in one piece
        step = CSV_SLICE_ROWS if all(column_kind(frame.iloc[:, i]) in _SLICEABLE and frame.dtypes.iloc[i] != object
                                     for i in range(frame.shape[1])) else max(len(frame), 1)
        with partial.open("wb") as out:
            for start in range(0, max(len(frame), 1), step):
                text = csv_frame(frame.iloc[start:start + step])
                if start == 0:
                    out.write(csv_bytes([pa.array([str(name)], type=pa.large_string()) for name in text.columns]))
                out.write(csv_bytes([pa.array(text.iloc[:, i].array, type=pa.large_string(), from_pandas=True)
                                     for i in range(text.shape[1])]))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


_NEEDS_QUOTES = r'[",\r\n]'
_QUOTE, _COMMA, _LINE_END, _NOTHING = (pa.scalar(text, pa.large_string()) for text in ('"', ",", "\r\n", ""))


def csv_bytes(columns: list[pa.Array]) -> bytes:
    """Rows of text cells (NA → empty) as UTF-8 csv lines ending in CRLF, quoted exactly as
    Python's ``csv`` module quotes with ``QUOTE_MINIMAL``: a cell holding a comma, a quote or a
    line break is quoted with its quotes doubled, and so is an empty cell that is a row's only
    one. Built column by column in Arrow (a million rows: no Python string per cell), the rows'
    bytes are the joined array's data buffer, written as they are."""
    if not columns or len(columns[0]) == 0:
        return b""
    cells = []
    for column in columns:
        text = pc.fill_null(column, _NOTHING)
        needs_quotes = pc.match_substring_regex(text, _NEEDS_QUOTES)
        if len(columns) == 1:
            needs_quotes = pc.or_(needs_quotes, pc.equal(pc.binary_length(text), 0))
        if pc.any(needs_quotes).as_py():
            quoted = pc.binary_join_element_wise(_QUOTE, pc.replace_substring(text, '"', '""'), _QUOTE, _NOTHING)
            text = pc.if_else(needs_quotes, quoted, text)
        cells.append(text)
    rows = pc.binary_join_element_wise(*cells, _COMMA) if len(cells) > 1 else cells[0]
    return concatenated_text(pc.binary_join_element_wise(rows, _NOTHING, _LINE_END))  # each row, then its line end
