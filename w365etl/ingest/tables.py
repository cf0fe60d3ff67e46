"""The shape of an order file once read: tables of cell text (the reader port's contract).

An order-file reader (``w365etl.adapters.order_files``) turns bytes into these; everything
after — header matching, layouts, parsing — works on them and never touches a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


class FileRejected(Exception):
    """The file cannot be read at all; the message is one line for a person."""

    def __init__(self, message: str, sha256: str | None = None) -> None:
        message = " ".join(message.split())
        if message and not message.endswith("."):
            message += "."
        super().__init__(message[:1].upper() + message[1:])
        self.sha256 = sha256


@dataclass
class RawTable:
    """One table of cell text: a CSV file or one worksheet."""

    file_path: str
    sheet_name: str | None
    #: header texts as they appear in the file, in column order.
    headers: list[str]
    #: cell text, columns 0..n-1 in header order; "" for an empty cell.
    cells: pd.DataFrame
    #: spreadsheet row (CSV line) of each data row, header row included in the count.
    row_numbers: np.ndarray
    header_row: int = 1

    @property
    def key(self) -> str:
        return self.file_path if self.sheet_name is None else f"{self.file_path}#{self.sheet_name}"


@dataclass
class FileContent:
    path: str
    sha256: str
    kind: str  # "csv" | "xlsx"
    tables: list[RawTable] = field(default_factory=list)
    #: sheets not read, with why (hidden, empty); unrelated sheets are judged later.
    skipped: list[str] = field(default_factory=list)


#: reads one file: (path, number_locale) → its tables, or raises FileRejected
OrderFileReader = Callable[..., FileContent]
