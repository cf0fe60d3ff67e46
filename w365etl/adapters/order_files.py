"""Reading order files (SPEC §2.1): CSV and xlsx into tables of cell text.

This adapter is the only part of ingest that touches bytes (and the only one importing openpyxl). Every cell becomes text exactly as a
person would read it, so that parsing (``values.py``) is the same for CSV and Excel:

* CSV: UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252; comma, semicolon or tab,
  sniffed from the header line; every cell read as a string.
* xlsx: openpyxl read-only with cached values. Hidden sheets (D365's ``hiddenSheet``) are not
  read; D365's hidden leading ``(Do Not Modify) …`` *columns* are, they carry the GUIDs.
  Numbers become exact decimal text (``repr`` of the float, never rounded) written with the
  run's decimal mark, so that a numeric cell parses like the same number typed in the locale.

Anything unreadable raises :class:`FileRejected` with a one-line message; the caller turns it
into a ``FILE_REJECTED`` row. Row numbers are those a person sees: the spreadsheet row (or
the CSV line), the header being row 1 in a normal export.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from w365etl.ingest.tables import FileContent, FileRejected, RawTable
from w365etl.ingest.values import number_format

_XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_ZIP_MAGIC = b"PK\x03\x04"
_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls and encrypted workbooks


def read_file(path: Path, *, number_locale: str = "en-US") -> FileContent:
    """Read one order file into raw tables. Raises :class:`FileRejected`."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise FileRejected("the file does not exist") from None
    except IsADirectoryError:
        raise FileRejected("the path is a directory, not a file") from None
    except OSError as error:
        raise FileRejected(f"the file cannot be opened ({error.strerror or error})") from None
    sha256 = hashlib.sha256(data).hexdigest()
    content = FileContent(name, sha256, "csv")
    if not data or (len(data) < 65536 and not data.strip()):
        raise FileRejected("the file is empty", sha256)
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".xls" or (data.startswith(_CFB_MAGIC) and suffix not in _XLSX_SUFFIXES):
            raise FileRejected(
                "this is a legacy .xls (or encrypted) workbook; save it as .xlsx or CSV"
            )
        if suffix in _XLSX_SUFFIXES or data.startswith(_ZIP_MAGIC):
            content.kind = "xlsx"
            content.tables, content.skipped = _read_xlsx(name, data, number_locale)
        else:
            content.tables = [_read_csv(name, data)]
    except FileRejected as error:
        raise FileRejected(str(error), sha256) from None
    except Exception as error:  # noqa: BLE001 — whatever breaks, the file is rejected, never the run
        raise FileRejected(f"the file could not be read ({_describe(error)})", sha256) from None
    return content


# ---------------------------------------------------------------------------------------------
# CSV


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise FileRejected(f"not valid UTF-16 text ({error.reason} at byte {error.start})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8")
        except UnicodeDecodeError as error:
            raise FileRejected(f"not valid UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as error:
        raise FileRejected(
            f"the text is neither UTF-8 nor cp1252 (byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None


def _sniff_delimiter(header_line: str) -> str:
    counts = {sep: 0 for sep in (",", ";", "\t")}
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _read_csv(name: str, data: bytes) -> RawTable:
    text = _decode(data)
    if "\x00" in text:
        raise FileRejected("not a CSV text file (it contains binary data)")
    # Leading blank lines: the header is the first line with something on it.
    start = skipped = 0
    while True:
        end = text.find("\n", start)
        first_line = text[start:] if end < 0 else text[start : end + 1]
        if first_line.strip(" \t\r\n,;"):
            break
        if end < 0:
            raise FileRejected("the file is empty (no header row)")
        start, skipped = end + 1, skipped + 1
    body = text[start:] if start else text
    delimiter = _sniff_delimiter(first_line)
    try:
        frame = pd.read_csv(
            io.StringIO(body),
            sep=delimiter,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            quoting=csv.QUOTE_MINIMAL,
            engine="c",
        )
    except pd.errors.ParserError as error:
        message = str(error).replace("Error tokenizing data. C error: ", "").strip()
        # pandas counts lines from the header; a person counts from the top of the file.
        message = re.sub(r"line (\d+)", lambda m: f"line {int(m.group(1)) + skipped}", message)
        raise FileRejected(f"cannot be read as CSV ({message})") from None
    except (pd.errors.EmptyDataError, ValueError, UnicodeError) as error:
        raise FileRejected(f"cannot be read as CSV ({error})") from None
    headers = ["" if value is None else str(value) for value in frame.iloc[0].tolist()]
    cells = frame.iloc[1:].reset_index(drop=True)
    cells.columns = range(cells.shape[1])
    cells = cells.fillna("").astype("str")
    # Line of each record: header line + record position (exact unless a quoted cell spans lines).
    header_row = skipped + 1
    row_numbers = np.arange(len(cells), dtype=np.int64) + header_row + 1
    keep = ~_blank_rows(cells)
    if not keep.all():
        cells = cells[keep].reset_index(drop=True)
        row_numbers = row_numbers[keep]
    return RawTable(name, None, headers, cells, row_numbers, header_row)


def _blank_rows(cells: pd.DataFrame) -> np.ndarray:
    """Rows whose every cell is empty or whitespace (checked on a shrinking candidate set)."""
    candidates = np.arange(len(cells))
    for column in cells.columns:
        if not len(candidates):
            break
        values = cells[column].iloc[candidates]
        candidates = candidates[(values.str.strip() == "").to_numpy(dtype=bool)]
    blank = np.zeros(len(cells), dtype=bool)
    blank[candidates] = True
    return blank


# ---------------------------------------------------------------------------------------------
# xlsx


def _read_xlsx(name: str, data: bytes, number_locale: str) -> tuple[list[RawTable], list[str]]:
    import openpyxl  # adapters-only dependency, imported where it is used

    if data.startswith(_CFB_MAGIC):
        raise FileRejected(
            "not a valid xlsx workbook (it is a legacy .xls or a password-protected workbook); "
            "save it as .xlsx without a password"
        )
    if not data.startswith(_ZIP_MAGIC):
        raise FileRejected("not a valid xlsx workbook (it is not a zip archive)")
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except zipfile.BadZipFile as error:
        raise FileRejected(f"not a valid xlsx workbook (damaged zip archive: {error})") from None
    except Exception as error:  # noqa: BLE001 — openpyxl raises many kinds for a broken workbook
        raise FileRejected(f"not a valid xlsx workbook ({_describe(error)})") from None
    decimal_mark = number_format(number_locale).decimal
    tables: list[RawTable] = []
    skipped: list[str] = []
    try:
        for sheet in workbook.worksheets:
            title = sheet.title
            if getattr(sheet, "sheet_state", "visible") != "visible":
                skipped.append(f"sheet '{title}' skipped (hidden)")
                continue
            try:
                table = _read_sheet(name, sheet, decimal_mark)
            except (zipfile.BadZipFile, EOFError, KeyError, ValueError, TypeError, OSError) as error:
                raise FileRejected(f"sheet '{title}' cannot be read ({_describe(error)})") from None
            except Exception as error:  # noqa: BLE001 — e.g. XML syntax errors in a truncated file
                raise FileRejected(f"sheet '{title}' cannot be read ({_describe(error)})") from None
            if table is None:
                skipped.append(f"sheet '{title}' skipped (empty)")
                continue
            tables.append(table)
    finally:
        workbook.close()
    return tables, skipped


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _read_sheet(name: str, sheet, decimal_mark: str) -> RawTable | None:  # noqa: ANN001
    if hasattr(sheet, "reset_dimensions"):
        sheet.reset_dimensions()  # D365's dimension tag is not always right
    rows = _text_rows(sheet.iter_rows(values_only=True), decimal_mark)
    header: list[str] | None = None
    header_row = 0
    data: list[list[str]] = []
    numbers: list[int] = []
    for row_number, values in rows:
        if header is None:
            if any(value.strip() for value in values):
                header = values
                header_row = row_number
            continue
        if not any(value.strip() for value in values):
            continue
        data.append(values)
        numbers.append(row_number)
    if header is None:
        return None
    # Cells right of the last header cannot be named: they are not read.
    width = len(header)
    padded = [values + [""] * (width - len(values)) if len(values) < width else values[:width] for values in data]
    cells = pd.DataFrame(padded, columns=range(width), dtype="str") if padded else pd.DataFrame(
        {position: pd.Series([], dtype="str") for position in range(width)}
    )
    return RawTable(name, sheet.title, header, cells, np.asarray(numbers, dtype=np.int64), header_row)


def _text_rows(rows: Iterator[tuple], decimal_mark: str) -> Iterator[tuple[int, list[str]]]:
    for row_number, values in enumerate(rows, start=1):
        yield row_number, [cell_text(value, decimal_mark) for value in values]


def cell_text(value: object, decimal_mark: str = ".") -> str:
    """The text of one Excel cell value, exact: numbers never pass through rounding."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer():
            return str(int(value))
        text = format(Decimal(repr(value)), "f")
        return text.replace(".", decimal_mark) if decimal_mark != "." else text
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return str(value)


def read_order_files(paths, *, number_locale: str = "en-US", date_order: str = "MDY"):
    """Read a run's order files from disk: the core's ``read_order_files`` with this reader."""
    from w365etl.ingest.read import read_order_files as normalise

    return normalise(paths, read_file=read_file, number_locale=number_locale, date_order=date_order)
