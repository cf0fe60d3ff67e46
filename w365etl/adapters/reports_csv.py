"""Writes a report frame as csv (SPEC §5): UTF-8 without BOM, comma, header row, always complete.

Text cells are formula-safe (a leading ``=``, ``+``, ``-``, ``@``, tab or CR gets a ``'``
prefix); numbers, exact decimals, ISO dates and booleans are written as plain values.
The file is written beside its target and renamed into place, so a reader never sees half
a report.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd

from w365etl.report.cells import csv_frame


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    path = Path(path)
    text = csv_frame(frame)
    partial = path.with_name(path.name + ".partial")
    try:
        text.to_csv(
            partial,
            index=False,
            na_rep="",
            encoding="utf-8",
            lineterminator="\r\n",
            quoting=csv.QUOTE_MINIMAL,
        )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
