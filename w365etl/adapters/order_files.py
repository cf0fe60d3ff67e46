"""Reading order files (SPEC §2.1): CSV and xlsx into tables of cell text.

Business step: **read orders**. This adapter is the only part of ingest that touches bytes
(and the only one importing openpyxl). Every cell becomes text exactly as a person would read
it, so that parsing (``values.py``) is the same for CSV and Excel:

* CSV: UTF-8 (with or without BOM), UTF-16 (with a BOM, or recognised without one), else
  cp1252; a file mixing UTF-8 and other bytes, or holding a NUL byte, is rejected naming the
  line (decoding it anyway would garble names silently). Comma, semicolon or tab, sniffed
  from the header line; every cell read as a string. A row with more cells than the header
  is a row-level problem (a value with an unquoted delimiter), not a reason to lose the file.
* xlsx: openpyxl read-only with cached values, parsing through defusedxml. Before openpyxl
  sees anything, the zip's directory is checked (inflated size, compression ratio: zip bombs)
  and every XML part's prolog (a DOCTYPE or ENTITY is refused: entity bombs, XXE). Empty
  styled rows and cells are dropped from the sheet stream. Hidden sheets (D365's
  ``hiddenSheet``) are not read; D365's hidden leading ``(Do Not Modify) …`` *columns* are,
  they carry the GUIDs. Numbers become the decimal text Excel shows — 15 significant digits,
  Excel's own precision, so a typed number comes back exactly and a formula's binary noise
  (``59.970000000000006``) does not — written with the run's decimal mark, so that a numeric
  cell parses like the same number typed in the locale.

Limits (:class:`InputLimits`, settings ``limits.*``) are checked before the whole file is
loaded where the format allows it; a file over one is rejected naming the limit and the
setting. Anything unreadable raises :class:`FileRejected` with a one-line message; the caller
turns it into a ``FILE_REJECTED`` row. Row numbers are those a person sees: the spreadsheet
row, or for CSV the record as a spreadsheet shows it (a quoted cell spanning lines is one
row), the header being row 1 in a normal export.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import re
import threading
import warnings
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from unittest import mock
from zlib import error as zlib_error

import numpy as np
import pandas as pd

from w365etl.ingest.tables import FileContent, FileRejected, InputLimits, RawTable, limit_message
from w365etl.ingest.values import number_format

_XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_ZIP_MAGIC = b"PK\x03\x04"
_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls and encrypted workbooks


def read_file(path: Path, *, number_locale: str = "en-US", limits: InputLimits | None = None) -> FileContent:
    """Read one order file into raw tables. Raises :class:`FileRejected`."""
    limits = limits or InputLimits()
    name = str(path)
    try:
        size = Path(path).stat().st_size
        if Path(path).is_dir():
            raise IsADirectoryError
        if size > limits.max_file_bytes:
            raise FileRejected(limit_message(f"the file is {size:,} bytes,", limits.max_file_bytes, "max_file_bytes", "bytes"))
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
            content.tables, content.skipped = _read_xlsx(name, data, number_locale, limits)
        else:
            content.tables = [_read_csv(name, data, limits)]
    except FileRejected as error:
        raise FileRejected(str(error), sha256) from None
    except MemoryError:
        raise FileRejected("the file is too big to read in the memory available; split it or raise the memory", sha256) from None
    except Exception as error:  # noqa: BLE001 — whatever breaks, the file is rejected, never the run
        raise FileRejected(f"the file could not be read ({_describe(error)})", sha256) from None
    return content


# ---------------------------------------------------------------------------------------------
# CSV


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


#: a valid UTF-8 multi-byte sequence: in a file that is not all UTF-8, a sign of mixed encodings
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _utf16_without_bom(data: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when the bytes look like UTF-16 text that lost its BOM.

    ASCII-heavy UTF-16 has a zero byte in every other position and none in the others; text
    in any 8-bit encoding has none at all.
    """
    sample = data[:4096]
    half = len(sample) // 2
    if half < 8:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd >= half * 0.3 and even == 0:
        return "utf-16-le"
    if even >= half * 0.3 and odd == 0:
        return "utf-16-be"
    return None


def _decode(data: bytes) -> str:
    """The text of a CSV file; a file that is not text, or mixes encodings, is rejected."""
    utf16 = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else _utf16_without_bom(data)
    if utf16:
        try:
            return data.decode(utf16)
        except UnicodeDecodeError as error:
            raise FileRejected(f"not valid UTF-16 text ({error.reason} at byte {error.start})") from None
    if b"\x00" in data:
        # NUL never occurs in a text export: this is a binary file (or one damaged in transfer)
        raise FileRejected(
            f"not a CSV text file: it contains binary data (a NUL byte on line {_line_of(data, data.index(0))}); "
            "a workbook must be saved as .xlsx, a text export as CSV"
        )
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8")
        except UnicodeDecodeError as error:
            at = error.start + 3
            raise FileRejected(
                f"not valid UTF-8 text although it starts with a UTF-8 byte order mark: line {_line_of(data, at)} "
                f"has the byte 0x{data[at]:02x}, which is not UTF-8; re-save the whole file as UTF-8"
            ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        failed_at = error.start
    if _UTF8_SEQUENCE.search(data):
        # decoding it all as cp1252 would silently garble the UTF-8 lines (Ã© for é)
        raise FileRejected(
            f"mixed text encodings: some lines are UTF-8 but line {_line_of(data, failed_at)} is not "
            f"(byte 0x{data[failed_at]:02x}); re-save the whole file as UTF-8"
        )
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as error:
        raise FileRejected(
            f"the text is neither UTF-8 nor cp1252: line {_line_of(data, error.start)} has the byte "
            f"0x{data[error.start]:02x}; re-save the file as UTF-8"
        ) from None


_DELIMITERS = (",", ";", "\t")
#: ragged rows: each re-read widens the table to the widest row pandas reported; a file whose
#: rows keep growing past this many re-reads is rejected instead
_MAX_WIDENINGS = 8
_FIELDS_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _sniff_delimiter(header_line: str) -> str | None:
    counts = {sep: 0 for sep in _DELIMITERS}
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else None


def _read_csv(name: str, data: bytes, limits: InputLimits) -> RawTable:
    text = _decode(data)
    if "\x00" in text:
        raise FileRejected("not a CSV text file (it contains binary data)")
    # Leading blank lines: the header is the first line with something on it.
    start = skipped = 0
    while True:
        end = text.find("\n", start)
        first_line = text[start:] if end < 0 else text[start : end + 1]
        if first_line.strip(" \t\r\n,;\ufeff"):
            break
        if end < 0:
            raise FileRejected("the file is empty (no header row)")
        start, skipped = end + 1, skipped + 1
    # pandas reads UTF-8 bytes ~2× faster than a str and without StringIO's 4-bytes-per-character
    # copy (1.2 GB for a 300 MB export); the text is dropped before parsing
    body = text[start:].encode("utf-8") if start else text.encode("utf-8")
    del text
    delimiter = _sniff_delimiter(first_line.splitlines()[0] if first_line.strip() else first_line)
    if delimiter is None:
        shown = first_line.strip()
        shown = shown if len(shown) <= 80 else shown[:80] + "…"
        raise FileRejected(
            f"the header line (line {skipped + 1}: '{shown}') has no comma, semicolon or tab delimiter, so its "
            "columns cannot be told apart; export the file as CSV separated by commas or semicolons"
        )
    frame = _parse_csv(body, delimiter, skipped, limits)
    data_rows = len(frame) - 1
    if data_rows > limits.max_rows:
        raise FileRejected(limit_message(f"the file has more than {limits.max_rows:,} rows:", limits.max_rows, "max_rows", "rows"))
    header_cells = ["" if value is None else str(value) for value in frame.iloc[0].tolist()]
    # The header ends at its last named cell: cells further right cannot be named.
    named = [position for position, header in enumerate(header_cells) if header.strip()]
    width = max(named[-1] + 1 if named else 0, 1)
    if data_rows * width > limits.max_cells:
        raise FileRejected(limit_message(f"the file has {data_rows * width:,} cells ({data_rows:,} rows × {width} columns),",
                                         limits.max_cells, "max_cells", "cells"))
    headers = header_cells[:width]
    cells = frame.iloc[1:].reset_index(drop=True)
    cells.columns = range(cells.shape[1])
    cells = cells.fillna("").astype("str")
    # Row of each record as a spreadsheet shows it: the header's row + the record's position
    # (a quoted cell spanning lines is still one row).
    header_row = skipped + 1
    row_numbers = np.arange(len(cells), dtype=np.int64) + header_row + 1
    extra = cells.iloc[:, width:]
    cells = cells.iloc[:, :width]
    keep = ~_blank_rows(cells)
    problems = None
    if extra.shape[1]:
        ragged = ~_blank_rows(extra)
        if ragged.any():
            keep |= ragged
            problems = _ragged_rows(extra, ragged, keep, width)
    if not keep.all():
        cells = cells[keep].reset_index(drop=True)
        row_numbers = row_numbers[keep]
    return RawTable(name, None, headers, cells, row_numbers, header_row, problems)


def _parse_csv(body: bytes, delimiter: str, skipped: int, limits: InputLimits) -> pd.DataFrame:
    """All records as text; a row with more cells than the rows before it widens the table."""
    names: list[int] | None = None
    for _ in range(_MAX_WIDENINGS):
        try:
            return pd.read_csv(
                io.BytesIO(body),
                encoding="utf-8",
                sep=delimiter,
                header=None,
                names=names,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                quoting=csv.QUOTE_MINIMAL,
                engine="c",
                # header + max_rows + 1: one row more than allowed is enough to know
                nrows=limits.max_rows + 2,
            )
        except pd.errors.ParserError as error:
            message = str(error).replace("Error tokenizing data. C error: ", "").strip()
            wider = _FIELDS_ERROR.search(message)
            if wider is not None:
                names = list(range(int(wider.group(3))))
                continue
            raise FileRejected(f"cannot be read as CSV ({_person_rows(message, skipped)})") from None
        except (pd.errors.EmptyDataError, ValueError, UnicodeError) as error:
            raise FileRejected(f"cannot be read as CSV ({error})") from None
    raise FileRejected(f"cannot be read as CSV (its rows have ever more cells: {len(names or [])} and more)")


def _person_rows(message: str, skipped: int) -> str:
    """pandas counts records from 0 at the header and lines from the header line."""
    if message.startswith("EOF inside string starting at row"):
        row = int(message.rsplit(" ", 1)[1]) + 1 + skipped
        return f"a quoted cell that starts on row {row} is never closed: the file ends inside it"
    message = re.sub(r"row (\d+)", lambda m: f"row {int(m.group(1)) + 1 + skipped}", message)
    return re.sub(r"line (\d+)", lambda m: f"line {int(m.group(1)) + skipped}", message)


def _ragged_rows(extra: pd.DataFrame, ragged: np.ndarray, keep: np.ndarray, width: int) -> pd.DataFrame:
    """One problem per row with text right of the header: its values are in the wrong columns."""
    where = np.flatnonzero(ragged)
    rows = extra.iloc[where]
    # the number of cells the row really has: its last non-blank one
    filled = (rows.apply(lambda column: column.str.strip() != "")).to_numpy(dtype=bool)
    last = width + filled.shape[1] - np.argmax(filled[:, ::-1], axis=1)
    first_extra = width + np.argmax(filled, axis=1) + 1
    # the text right of the header, cell by cell (only the few ragged rows get here)
    values = pd.Series([" | ".join(value for value in cells if value.strip()) for cells in rows.itertuples(index=False)],
                       dtype="str").str.slice(0, 200)
    kept_position = np.cumsum(keep) - 1
    message = (
        "Row has " + pd.Series(last, dtype="int64").astype("str").to_numpy(dtype=object)
        + f" cells but the header has {width}: a value probably contains an unquoted delimiter, so the "
        "row's values are in the wrong columns; quote the value or re-export the file"
    )
    return pd.DataFrame({
        "position": kept_position[where],
        "column": "column " + pd.Series(first_extra, dtype="int64").astype("str").to_numpy(dtype=object) + " (no header)",
        "value": values.to_numpy(dtype=object),
        "message": message,
    })


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


#: parts smaller than this are not judged by their compression ratio (tiny parts vary a lot)
_RATIO_FLOOR_BYTES = 1 << 20
#: bytes of each XML part searched for a document type declaration before openpyxl reads it
_PROLOG_BYTES = 4096


def check_xlsx_archive(data: bytes, limits: InputLimits) -> None:
    """Reject a zip that is no workbook, would inflate past the limits, or declares XML entities.

    Everything here reads the zip's central directory and at most the first few KiB of each
    XML part: nothing is inflated whole, so a zip bomb costs nothing to turn away.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise FileRejected(f"not a valid xlsx workbook (damaged zip archive: {error})") from None
    with archive:
        infos = archive.infolist()
        if "[Content_Types].xml" not in archive.NameToInfo:
            raise FileRejected("not a valid xlsx workbook: it is a zip archive, but it has no [Content_Types].xml part")
        total = sum(info.file_size for info in infos)
        if total > limits.max_xlsx_uncompressed_bytes:
            raise FileRejected(limit_message(
                f"the workbook inflates to {total:,} bytes,", limits.max_xlsx_uncompressed_bytes,
                "max_xlsx_uncompressed_bytes", "bytes"))
        for info in infos:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_FLOOR_BYTES and ratio > limits.max_xlsx_compression_ratio:
                raise FileRejected(
                    f"the workbook looks like a zip bomb: its part {info.filename} inflates {ratio:,.0f} times "
                    f"({info.compress_size:,} to {info.file_size:,} bytes), over the limit of "
                    f"{limits.max_xlsx_compression_ratio}:1; setting limits.max_xlsx_compression_ratio "
                    "(W365_LIMITS__MAX_XLSX_COMPRESSION_RATIO) raises it"
                )
        for info in infos:
            if not info.filename.endswith((".xml", ".rels")):
                continue
            try:
                with archive.open(info) as part:
                    prolog = part.read(_PROLOG_BYTES)
            except (zipfile.BadZipFile, EOFError, OSError, zlib_error) as error:
                raise FileRejected(f"not a valid xlsx workbook (its part {info.filename} is damaged: {_describe(error)})") from None
            if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
                raise _entities_rejected(info.filename)


def _entities_rejected(part: str | None) -> FileRejected:
    where = f"its part {part} " if part else "it "
    return FileRejected(
        f"the workbook is refused: {where}declares an XML document type or XML entities, which Excel never "
        "writes (an XML entity expansion or external entity attack); re-save the workbook in Excel"
    )


def _read_xlsx(name: str, data: bytes, number_locale: str, limits: InputLimits) -> tuple[list[RawTable], list[str]]:
    import openpyxl  # adapters-only dependency, imported where it is used
    from defusedxml import DefusedXmlException

    if data.startswith(_CFB_MAGIC):
        raise FileRejected(
            "not a valid xlsx workbook (it is a legacy .xls or a password-protected workbook); "
            "save it as .xlsx without a password"
        )
    if not data.startswith(_ZIP_MAGIC):
        raise FileRejected("not a valid xlsx workbook (it is not a zip archive)")
    check_xlsx_archive(data, limits)
    # openpyxl parses with defusedxml when it is installed (it is a dependency): entities that
    # slipped past the prolog check still end here, as DefusedXmlException
    with warnings.catch_warnings():
        # openpyxl warns about cosmetic things (no default style, unknown extensions): noise in a batch log
        warnings.simplefilter("ignore")
        try:
            with _without_size_scan():
                workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except zipfile.BadZipFile as error:
            raise FileRejected(f"not a valid xlsx workbook (damaged zip archive: {error})") from None
        except DefusedXmlException:
            raise _entities_rejected(None) from None
        except Exception as error:  # noqa: BLE001 — openpyxl raises many kinds for a broken workbook
            if isinstance(error.__cause__ or error.__context__, DefusedXmlException):
                raise _entities_rejected(None) from None
            raise FileRejected(f"not a valid xlsx workbook ({_describe(error)})") from None
        if not workbook.worksheets:
            workbook.close()
            raise FileRejected("not a valid xlsx workbook: it has no worksheet that can be read (a sheet part is missing)")
        decimal_mark = number_format(number_locale).decimal
        tables: list[RawTable] = []
        skipped: list[str] = []
        budget = _Budget(limits)
        try:
            for sheet in workbook.worksheets:
                title = sheet.title
                if getattr(sheet, "sheet_state", "visible") != "visible":
                    skipped.append(f"sheet '{title}' skipped (hidden)")
                    continue
                try:
                    table = _read_sheet(name, sheet, decimal_mark, budget)
                except FileRejected as error:
                    raise FileRejected(f"sheet '{title}': {error}") from None
                except DefusedXmlException:
                    raise _entities_rejected(f"of sheet '{title}'") from None
                except Exception as error:  # noqa: BLE001 — e.g. XML syntax errors in a truncated file
                    raise FileRejected(f"sheet '{title}' cannot be read ({_describe(error)})") from None
                if table is None:
                    skipped.append(f"sheet '{title}' skipped (empty)")
                    continue
                tables.append(table)
        finally:
            workbook.close()
    return tables, skipped


@contextlib.contextmanager
def _without_size_scan() -> Iterator[None]:
    """Open read-only sheets without openpyxl's size scan.

    openpyxl looks for each sheet's ``<dimension>`` when it opens the workbook and, in a sheet
    without one, parses the whole sheet to find out that there is none: a million rows before
    the row limit could stop anything. The size is never used (``reset_dimensions`` below).
    """
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    with _SIZE_SCAN_LOCK, mock.patch.object(ReadOnlyWorksheet, "_get_size", lambda self: None):
        yield


_SIZE_SCAN_LOCK = threading.Lock()


class _Budget:
    """Rows and cells a workbook may still use (all its sheets together)."""

    def __init__(self, limits: InputLimits) -> None:
        self.limits = limits
        self.rows = 0
        self.cells = 0

    def take(self, width: int) -> None:
        self.rows += 1
        self.cells += width
        if self.rows > self.limits.max_rows:
            raise FileRejected(limit_message(f"it has more than {self.limits.max_rows:,} rows:", self.limits.max_rows,
                                             "max_rows", "rows"))
        if self.cells > self.limits.max_cells:
            raise FileRejected(limit_message(f"it has more than {self.limits.max_cells:,} cells:", self.limits.max_cells,
                                             "max_cells", "cells"))


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


#: a cell with no value (a styled empty cell) and a row with no cells, each with its ``r``
#: reference (without it openpyxl numbers by position, and dropping one would shift the rest)
_EMPTY_CELL = re.compile(rb"<(?:\w+:)?c\b(?=[^>]*\br=)[^>]*/>")
_EMPTY_ROW = re.compile(rb"<((?:\w+:)?)row\b(?=[^>]*\br=)[^>]*?(?:/>|>\s*</\1row>)")


class _WithoutEmptyRows(io.RawIOBase):
    """A sheet's XML without its empty styled rows and cells, streamed.

    A sheet formatted "to the bottom" carries a million ``<row r="…" s="1"/>`` elements that
    openpyxl would parse one by one (~10 s) only for us to skip them. Dropping them from the
    byte stream loses nothing: rows and cells keep their ``r`` references, so every other
    row keeps its number.
    """

    _CHUNK = 1 << 20

    def __init__(self, source) -> None:  # noqa: ANN001 — a zip member opened by openpyxl
        super().__init__()
        self.source = source
        self.carry = b""
        self.pending = b""
        self.position = 0
        self.exhausted = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while self.position >= len(self.pending) and not self.exhausted:
            chunk = self.source.read(self._CHUNK)
            if not chunk:
                self.exhausted = True
                ready, self.carry = self.carry, b""
            else:
                buffer = self.carry + chunk
                # cut before the last tag that may be incomplete; the rest waits for the next chunk
                cut = buffer.rfind(b"<")
                cut = len(buffer) if cut < 0 else cut
                ready, self.carry = buffer[:cut], buffer[cut:]
            self.pending, self.position = _EMPTY_ROW.sub(b"", _EMPTY_CELL.sub(b"", ready)), 0

    def read(self, size: int | None = -1) -> bytes:
        self._fill()
        if size is None or size < 0:
            size = len(self.pending) - self.position
        out = self.pending[self.position : self.position + size]
        self.position += len(out)
        return out

    def readinto(self, buffer) -> int:  # noqa: ANN001
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.source.close()
        super().close()


def _read_sheet(name: str, sheet, decimal_mark: str, budget: _Budget) -> RawTable | None:  # noqa: ANN001
    if hasattr(sheet, "reset_dimensions"):
        sheet.reset_dimensions()  # D365's dimension tag is not always right
    if hasattr(sheet, "_get_source"):
        opened = sheet._get_source
        sheet._get_source = lambda: _WithoutEmptyRows(opened())
    rows = _text_rows(sheet.iter_rows(values_only=True), decimal_mark)
    header: list[str] | None = None
    header_row = 0
    data: list[list[str]] = []
    numbers: list[int] = []
    width = 0
    for row_number, values in rows:
        if header is None:
            if any(value.strip() for value in values):
                header = values
                header_row = row_number
                width = len(header)
            continue
        # every row below the header counts, blank ones too: they cost reading time
        budget.take(width)
        if not any(value.strip() for value in values):
            continue
        data.append(values)
        numbers.append(row_number)
    if header is None:
        return None
    # Cells right of the last header cannot be named: they are not read.
    padded = [values + [""] * (width - len(values)) if len(values) < width else values[:width] for values in data]
    cells = pd.DataFrame(padded, columns=range(width), dtype="str") if padded else pd.DataFrame(
        {position: pd.Series([], dtype="str") for position in range(width)}
    )
    return RawTable(name, sheet.title, header, cells, np.asarray(numbers, dtype=np.int64), header_row)


def _text_rows(rows: Iterator[tuple], decimal_mark: str) -> Iterator[tuple[int, list[str]]]:
    for row_number, values in enumerate(rows, start=1):
        yield row_number, [cell_text(value, decimal_mark) for value in values]


#: the significant digits Excel keeps of a number (what it shows and what a person typed)
EXCEL_DIGITS = 15


def cell_text(value: object, decimal_mark: str = ".") -> str:
    """The text of one Excel cell value: a number as Excel shows it (15 significant digits —
    every number with at most 15 comes back exactly as typed; a formula's result loses its
    binary noise, ``2.9999999999999996`` → ``3``)."""
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
        text = format(Decimal(format(value, f".{EXCEL_DIGITS}g")), "f")
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


def read_order_files(paths, *, number_locale: str = "en-US", date_order: str = "MDY", limits: InputLimits | None = None):
    """Read a run's order files from disk: the core's ``read_order_files`` with this reader."""
    from w365etl.ingest.read import read_order_files as normalise

    return normalise(paths, read_file=read_file, number_locale=number_locale, date_order=date_order, limits=limits)
