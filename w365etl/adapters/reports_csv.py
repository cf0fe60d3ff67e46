"""Writes a report frame as csv (SPEC §5): UTF-8 without BOM, comma, header row, always complete.

Text cells are formula-safe (a leading ``=``, ``+``, ``-``, ``@``, tab or CR gets a ``'``
prefix, except on a plain signed number like ``-1``); numbers, exact decimals, ISO dates and
booleans are written as plain values.
The file is written beside its target and renamed into place, so a reader never sees half
a report.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd

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
        with partial.open("w", encoding="utf-8", newline="") as out:
            for start in range(0, max(len(frame), 1), step):
                text = csv_frame(frame.iloc[start:start + step])
                text.to_csv(out, index=False, header=start == 0, na_rep="", lineterminator="\r\n",
                            quoting=csv.QUOTE_MINIMAL)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
