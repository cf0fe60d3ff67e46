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


@dataclass(frozen=True)
class InputLimits:
    """How much one order file may hold (issue 6): a file over a limit is rejected whole.

    Checked before the file is loaded whole where the format allows it: the size on disk
    before reading, an xlsx archive's central directory (sizes and compression ratio of its
    parts) before anything is inflated, rows and cells while reading (reading stops at the
    first row over the limit). Settings: ``limits.*`` (``W365_LIMITS__…``).
    """

    #: bytes on disk
    max_file_bytes: int = 2 * 1024**3
    #: data rows of one file (all its sheets), blank rows included
    max_rows: int = 10_000_000
    #: data rows × columns of one file
    max_cells: int = 250_000_000
    #: the sum of the inflated sizes of an xlsx archive's parts
    max_xlsx_uncompressed_bytes: int = 4 * 1024**3
    #: inflated : compressed size of any xlsx part over 1 MiB (real sheets: 5–20; zip bombs: 1000+)
    max_xlsx_compression_ratio: int = 100


def limit_message(what: str, limit: int, name: str, unit: str = "") -> str:
    """'<what> over the limit of N <unit>; raise setting limits.<name> (W365_LIMITS__<NAME>) …'."""
    shown = f"{limit:,}" + (f" {unit}" if unit else "")
    if unit == "bytes" and limit >= 1024**2:
        shown += f" ({limit / 1024**3:.1f} GiB)" if limit >= 1024**3 else f" ({limit / 1024**2:.0f} MiB)"
    return f"{what} over the limit of {shown}; setting limits.{name} (W365_LIMITS__{name.upper()}) raises it"


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
    #: problems of whole rows found while reading (e.g. a CSV row with more cells than the
    #: header): columns ``position`` (row in ``cells``), ``column``, ``value``, ``message``.
    row_problems: pd.DataFrame | None = None

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


#: reads one file: (path, number_locale, limits) → its tables, or raises FileRejected
OrderFileReader = Callable[..., FileContent]
