"""Bad-input corpus (issue 6): hostile and broken order files, each with its expected outcome.

Business step: **read orders** (SPEC §2.1, §5). Every file here must end in a clear file-level
row (``MISSING_COLUMN``, ``AMBIGUOUS_COLUMN``, ``FILE_REJECTED``) or clear row-level rows
(file, sheet, spreadsheet row — header = row 1 — and column), or read fine; never a traceback.

Run as a script to look at the files::

    python tests/corpus/build_corpus.py OUT_DIR      # writes the files and manifest.json

or import :func:`build_corpus` (the tests write the corpus into ``tmp_path``). Big files are
written by hand with :mod:`zipfile` (the 1 M empty styled rows workbook, the zip bomb) so the
whole corpus builds in a couple of seconds and stays small on disk.

Every file uses its own order numbers (``SO-<case>-…``) so that one run over the whole corpus
has no duplicate lines, and only the ``manual`` products of ``tests.support.exports.PRODUCTS``
(no provider mapping is needed).
"""

from __future__ import annotations

import codecs
import io
import json
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

# ---------------------------------------------------------------------------------------------
# the manifest


@dataclass(frozen=True)
class RowIssue:
    """One row-level exception the file must give."""

    row: int
    code: str
    column: str
    #: a part of the message (or of the value) that must be there
    text: str = ""
    sheet: str | None = None


@dataclass(frozen=True)
class Case:
    """One corpus file and what reading it must give.

    ``outcome``: ``rejected`` (one file-level row ``code`` whose message contains ``text``),
    ``rows`` (read; the row-level ``issues`` listed, by row/code/column, and none on other
    rows) or ``read`` (read with no exception row at all). ``lines`` is the number of lines read (not checked
    for rejected files). ``values``: expected parsed values of the first line read.
    """

    name: str
    exercises: str
    outcome: str
    code: str | None = None
    text: str = ""
    lines: int = 0
    issues: tuple[RowIssue, ...] = ()
    values: dict[str, str] = field(default_factory=dict)
    #: the file's status when other files come with it, where that differs (SPEC §2.1: a table
    #: without a Quantity column is then an orders table for the run's lines files)
    in_a_run: str | None = None


# ---------------------------------------------------------------------------------------------
# the content of a good export

HEADERS = [
    "Order ID", "Potential Customer (Order)", "Currency (Order)", "Status (Order)", "Line Item Number",
    "Product ID", "Quantity", "Unit", "Price Per Unit", "Extended Amount",
]
QUANTITY = HEADERS.index("Quantity")
PRICE = HEADERS.index("Price Per Unit")
CUSTOMER = HEADERS.index("Potential Customer (Order)")
EXTENDED = HEADERS.index("Extended Amount")


def row(order: str, number: int, *, quantity: str = "2", price: str = "99.00", customer: str = "Contoso",
        product: str = "SUP-STD-M", extended: str | None = None) -> list[str]:
    """One flat export row; the extended amount is exact unless given (or the quantity is not a number)."""
    if extended is None:
        try:
            extended = str(Decimal(quantity) * Decimal(price))
        except ArithmeticError:
            extended = ""
    unit = "Each" if product == "ONB-SETUP" else "Monthly"
    return [order, customer, "USD", "Active", str(number), product, quantity, unit, price, extended]


def good_rows(case: str, count: int = 2) -> list[list[str]]:
    return [row(f"SO-{case}", number) for number in range(1, count + 1)]


# ---------------------------------------------------------------------------------------------
# CSV


def csv_text(rows: Sequence[Sequence[str]], *, sep: str = ",", newline: str = "\r\n", headers=HEADERS) -> str:
    def cell(value: str) -> str:
        if any(char in value for char in (sep, '"', "\n", "\r")):
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [headers, *rows] if headers else list(rows)
    return "".join(sep.join(cell(value) for value in line) + newline for line in lines)


# ---------------------------------------------------------------------------------------------
# xlsx, written by hand: every part is under our control and big sheets cost nothing


@dataclass(frozen=True)
class Formula:
    formula: str
    cached: object = None


@dataclass(frozen=True)
class ErrorCell:
    code: str  # "#N/A", "#DIV/0!", "#REF!"…


@dataclass
class Sheet:
    name: str
    rows: list[list[object]]
    state: str = "visible"
    #: spreadsheet row of rows[0]
    first_row: int = 1
    merges: list[str] = field(default_factory=list)
    #: raw XML appended after the rows inside <sheetData> (huge runs of styled rows)
    tail: Callable[[], Iterable[str]] | None = None
    dimension: str | None = None


def _column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _cell_xml(ref: str, value: object) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, Formula):
        cached = "" if value.cached is None else f"<v>{value.cached}</v>"
        return f'<c r="{ref}"><f>{escape(value.formula)}</f>{cached}</c>'
    if isinstance(value, ErrorCell):
        return f'<c r="{ref}" t="e"><v>{escape(value.code)}</v></c>'
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (int, float, Decimal)):
        return f'<c r="{ref}"><v>{value}</v></c>'
    text = escape(str(value))
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def _sheet_parts(sheet: Sheet) -> Iterable[str]:
    yield '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    yield '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    if sheet.dimension:
        yield f'<dimension ref="{sheet.dimension}"/>'
    yield "<sheetData>"
    for offset, values in enumerate(sheet.rows):
        number = sheet.first_row + offset
        cells = "".join(_cell_xml(f"{_column_letters(i)}{number}", v) for i, v in enumerate(values))
        yield f'<row r="{number}">{cells}</row>'
    if sheet.tail is not None:
        yield from sheet.tail()
    yield "</sheetData>"
    if sheet.merges:
        yield f'<mergeCells count="{len(sheet.merges)}">'
        yield "".join(f'<mergeCell ref="{ref}"/>' for ref in sheet.merges)
        yield "</mergeCells>"
    yield "</worksheet>"


_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    '<fill><patternFill patternType="solid"><fgColor rgb="FFFFFF00"/></patternFill></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="0" fillId="2" borderId="0" xfId="0" applyFill="1"/></cellXfs>'
    "</styleSheet>"
)


def xlsx_parts(sheets: Sequence[Sheet]) -> dict[str, str | Iterable[str]]:
    """The parts of a minimal workbook (inline strings, one style besides the default)."""
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, len(sheets) + 1)
    )
    parts: dict[str, str | Iterable[str]] = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/styles.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            f"{overrides}</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
            + "".join(
                f'<sheet name="{escape(sheet.name, {chr(34): "&quot;"})}" sheetId="{i}" '
                + (f'state="{sheet.state}" ' if sheet.state != "visible" else "")
                + f'r:id="rId{i}"/>'
                for i, sheet in enumerate(sheets, start=1)
            )
            + "</sheets></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(
                f'<Relationship Id="rId{i}" '
                'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
                f'Target="worksheets/sheet{i}.xml"/>'
                for i in range(1, len(sheets) + 1)
            )
            + f'<Relationship Id="rId{len(sheets) + 1}" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
            'Target="styles.xml"/></Relationships>'
        ),
        "xl/styles.xml": _STYLES,
    }
    for i, sheet in enumerate(sheets, start=1):
        parts[f"xl/worksheets/sheet{i}.xml"] = _sheet_parts(sheet)
    return parts


def zip_bytes(parts: dict[str, str | bytes | Iterable[str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, content in parts.items():
            if isinstance(content, bytes):
                archive.writestr(name, content)
            elif isinstance(content, str):
                archive.writestr(name, content.encode("utf-8"))
            else:
                with archive.open(name, "w", force_zip64=True) as handle:
                    chunk: list[str] = []
                    size = 0
                    for piece in content:
                        chunk.append(piece)
                        size += len(piece)
                        if size > 1 << 20:
                            handle.write("".join(chunk).encode("utf-8"))
                            chunk, size = [], 0
                    handle.write("".join(chunk).encode("utf-8"))
    return buffer.getvalue()


def xlsx_bytes(*sheets: Sheet) -> bytes:
    return zip_bytes(xlsx_parts(sheets))


def sheet_rows(rows: list[list[str]], headers=HEADERS) -> list[list[object]]:
    """Rows as an export writes them: numbers as numbers, text as text."""
    out: list[list[object]] = [list(headers)]
    for values in rows:
        typed: list[object] = []
        for position, value in enumerate(values):
            if position in (QUANTITY, PRICE, EXTENDED, HEADERS.index("Line Item Number")) and value:
                try:
                    typed.append(Decimal(value))
                    continue
                except ArithmeticError:
                    pass
            typed.append(value)
        out.append(typed)
    return out


def zip_bomb(uncompressed: int = 1 << 30) -> bytes:
    """A workbook whose sheet inflates to ``uncompressed`` bytes of blanks (~1000:1).

    The deflate stream is one compressed megabyte of spaces repeated: with a full flush the
    compressor's output for each megabyte is the same bytes, so 1 GiB costs ~1 MB and no time.
    """
    block = b" " * (1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    count = uncompressed // len(block)
    stream = first + again * (count - 1) + compressor.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    parts = {name: value for name, value in xlsx_parts([Sheet("Orders", [])]).items() if not name.startswith("xl/worksheets")}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content if isinstance(content, str) else "".join(content))
        info = zipfile.ZipInfo("xl/worksheets/sheet1.xml", date_time=(2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.file_size, info.compress_size, info.CRC = count * len(block), len(stream), crc
        # a raw entry: local header + the prepared stream, then the central directory
        archive.fp.seek(archive.start_dir)  # type: ignore[union-attr]
        info.header_offset = archive.start_dir
        archive.fp.write(info.FileHeader(zip64=True))  # type: ignore[union-attr]
        archive.fp.write(stream)  # type: ignore[union-attr]
        archive.start_dir = archive.fp.tell()  # type: ignore[union-attr]
        archive.filelist.append(info)
        archive.NameToInfo[info.filename] = info
    return buffer.getvalue()


def _entity_bomb_sheet() -> str:
    entities = ['<!ENTITY lol0 "lollollollollollollollollol">']
    entities += [f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE worksheet [' + "".join(entities) + "]>"
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>'
    )


def _external_entity_workbook(sheet: Sheet) -> dict[str, str | Iterable[str]]:
    parts = xlsx_parts([sheet])
    parts["xl/sharedStrings.xml"] = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE sst [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
        "<si><t>&xxe;</t></si></sst>"
    )
    return parts


def _styled_empty_rows(first: int, last: int) -> Callable[[], Iterable[str]]:
    def rows() -> Iterable[str]:
        step = 10_000
        for start in range(first, last + 1, step):
            yield "".join(
                f'<row r="{number}" s="1" customFormat="1"/>' for number in range(start, min(start + step, last + 1))
            )

    return rows


def _styled_gap(order: str, first: int, last: int) -> Callable[[], Iterable[str]]:
    """Rows ``first``..``last`` empty but styled (row and cell styles), then one data row with a bad quantity."""

    def rows() -> Iterable[str]:
        for number in range(first, last + 1):
            yield f'<row r="{number}" spans="1:10" s="1" customFormat="1"><c r="A{number}" s="1"/><c r="G{number}" s="1"/></row>'
        bad = row(order, 3, quantity="lots")
        cells = "".join(_cell_xml(f"{_column_letters(i)}{last + 1}", value) for i, value in enumerate(bad))
        yield f'<row r="{last + 1}">{cells}</row>'

    return rows


# ---------------------------------------------------------------------------------------------
# the cases


def _cases() -> list[tuple[Case, Callable[[], bytes] | None]]:
    cases: list[tuple[Case, Callable[[], bytes] | None]] = []

    def add(case: Case, content: Callable[[], bytes] | None) -> None:
        cases.append((case, content))

    # --- encodings ----------------------------------------------------------------------------
    name = "Müller & Søn – Café"
    add(Case("enc_utf8.csv", "plain UTF-8 with accents", "read", lines=2, values={"customer_name": name}),
        lambda: csv_text([row("SO-E01", 1, customer=name), row("SO-E01", 2, customer=name)]).encode("utf-8"))
    add(Case("enc_utf8_bom.csv", "UTF-8 with a byte order mark", "read", lines=2, values={"customer_name": name}),
        lambda: codecs.BOM_UTF8 + csv_text([row("SO-E02", 1, customer=name), row("SO-E02", 2)]).encode("utf-8"))
    add(Case("enc_utf16le_bom.csv", "UTF-16 LE with BOM (Excel 'Unicode text')", "read", lines=2,
             values={"customer_name": name}),
        lambda: csv_text([row("SO-E03", 1, customer=name), row("SO-E03", 2)], sep="\t").encode("utf-16"))
    add(Case("enc_utf16be_bom.csv", "UTF-16 BE with BOM", "read", lines=2, values={"customer_name": name}),
        lambda: codecs.BOM_UTF16_BE + csv_text([row("SO-E04", 1, customer=name), row("SO-E04", 2)]).encode("utf-16-be"))
    add(Case("enc_utf16le_no_bom.csv", "UTF-16 LE without a byte order mark", "read", lines=2,
             values={"customer_name": name}),
        lambda: csv_text([row("SO-E05", 1, customer=name), row("SO-E05", 2)]).encode("utf-16-le"))
    add(Case("enc_cp1252.csv", "cp1252 (Windows 'ANSI') with € and accents", "read", lines=2,
             values={"customer_name": "Crème Brûlée € Ltd"}),
        lambda: csv_text([row("SO-E06", 1, customer="Crème Brûlée € Ltd"), row("SO-E06", 2)]).encode("cp1252"))
    add(Case("enc_mixed_utf8_cp1252.csv", "UTF-8 file with one line saved in cp1252 (concatenated exports)",
             "rejected", code="FILE_REJECTED", text="line 3"),
        lambda: (csv_text([row("SO-E07", 1, customer="Zoë Ltd")]).encode("utf-8")
                 + csv_text([row("SO-E07", 2, customer="Zoë Ltd")], headers=[]).encode("cp1252")))
    add(Case("enc_bad_utf16.csv", "UTF-16 BOM followed by an odd number of bytes", "rejected",
             code="FILE_REJECTED", text="UTF-16"),
        lambda: codecs.BOM_UTF16_LE + csv_text(good_rows("E08")).encode("utf-16-le") + b"A")
    add(Case("enc_bad_utf8_after_bom.csv", "UTF-8 BOM but a cp1252 byte on line 2", "rejected",
             code="FILE_REJECTED", text="line 2"),
        lambda: codecs.BOM_UTF8 + csv_text([row("SO-E09", 1, customer="Zoë")]).encode("cp1252"))
    add(Case("enc_binary.csv", "random binary bytes named .csv", "rejected", code="FILE_REJECTED", text="binary"),
        lambda: bytes(range(256)) * 40)
    add(Case("enc_gzip.csv", "a gzip-compressed CSV named .csv", "rejected", code="FILE_REJECTED", text="binary"),
        lambda: __import__("gzip").compress(csv_text(good_rows("E11")).encode("utf-8"), mtime=0))
    add(Case("enc_nul_in_cell.csv", "a NUL byte inside a cell of an otherwise good UTF-8 file", "rejected",
             code="FILE_REJECTED", text="line 3"),
        lambda: csv_text([row("SO-E12", 1), row("SO-E12", 2, customer="Con\x00toso")]).encode("utf-8"))

    # --- delimiters, quoting, line ends --------------------------------------------------------
    add(Case("delim_semicolon.csv", "semicolon-separated (European Excel)", "read", lines=2),
        lambda: csv_text(good_rows("D01"), sep=";").encode("utf-8"))
    add(Case("delim_tab.csv", "tab-separated", "read", lines=2),
        lambda: csv_text(good_rows("D02"), sep="\t").encode("utf-8"))
    add(Case("delim_pipe.csv", "pipe-separated: no supported delimiter", "rejected", code="FILE_REJECTED",
             text="delimiter"),
        lambda: csv_text(good_rows("D03"), sep="|").encode("utf-8"))
    add(Case("delim_semicolon_comma_decimals.csv", "semicolon file with quoted comma-grouped money", "read", lines=1,
             values={"price_per_unit": "1299"}),
        lambda: csv_text([row("SO-D04", 1, quantity="1", price="1,299.00", extended="1,299.00")], sep=";").encode())
    add(Case("quoted_newlines.csv", "quoted cells spanning lines: rows are records as a spreadsheet shows them",
             "rows", lines=4,
             issues=(RowIssue(5, "INVALID_VALUE", "Quantity", "abc"),)),
        lambda: csv_text([row("SO-Q01", 1, customer="Contoso\nEurope"), row("SO-Q01", 2, customer="A\r\nB\r\nC"),
                          row("SO-Q02", 1), row("SO-Q03", 1, quantity="abc")]).encode())
    add(Case("quote_unterminated.csv", "a quote opened on row 3 and never closed", "rejected",
             code="FILE_REJECTED", text="row 3"),
        lambda: (csv_text([row("SO-Q04", 1)]) + 'SO-Q04,"Contoso,USD,Active,2,SUP-STD-M,1,Monthly,9,9\r\n'
                 + "SO-Q04,Contoso,USD,Active,3,SUP-STD-M,1,Monthly,9,9\r\n").encode())
    add(Case("line_ends_cr_only.csv", "classic Mac line ends (CR only)", "read", lines=2),
        lambda: csv_text(good_rows("Q05"), newline="\r").encode())
    add(Case("line_ends_lf_mixed.csv", "LF and CRLF line ends mixed", "read", lines=3),
        lambda: (csv_text(good_rows("Q06"), newline="\n") + csv_text([row("SO-Q06", 3)], headers=[])).encode())
    add(Case("no_final_newline.csv", "no line end after the last row", "read", lines=2),
        lambda: csv_text(good_rows("Q07")).rstrip("\r\n").encode())

    # --- empty and header-only ---------------------------------------------------------------
    add(Case("empty.csv", "zero bytes", "rejected", code="FILE_REJECTED", text="empty"), lambda: b"")
    add(Case("whitespace_only.csv", "only blanks and line ends", "rejected", code="FILE_REJECTED", text="empty"),
        lambda: b" \r\n\t\r\n  \n")
    add(Case("bom_only.csv", "only a UTF-8 byte order mark", "rejected", code="FILE_REJECTED", text="empty"),
        lambda: codecs.BOM_UTF8)
    add(Case("header_only.csv", "the header and no rows: an export of nothing", "read", lines=0),
        lambda: csv_text([]).encode())
    add(Case("header_then_blank_lines.csv", "the header then only blank and delimiter-only lines", "read", lines=0),
        lambda: (csv_text([]) + "\r\n,,,,,,,,,\r\n\r\n").encode())
    add(Case("blank_lines_before_header.csv", "two blank lines above the header; a bad cell on line 5", "rows",
             lines=2, issues=(RowIssue(5, "INVALID_VALUE", "Price Per Unit", "twelve"),)),
        lambda: ("\r\n,,\r\n" + csv_text([row("SO-H01", 1), row("SO-H01", 2, price="twelve")])).encode())
    add(Case("empty.xlsx", "a workbook whose only sheet is empty", "rejected", code="FILE_REJECTED",
             text="no sheet with sales order columns"),
        lambda: xlsx_bytes(Sheet("Sheet1", [])))
    add(Case("header_only.xlsx", "a workbook with the header and no rows", "read", lines=0),
        lambda: xlsx_bytes(Sheet("Order Products", sheet_rows([]))))
    add(Case("hidden_sheets_only.xlsx", "the order sheet is hidden (nothing visible to read)", "rejected",
             code="FILE_REJECTED", text="no sheet with sales order columns"),
        lambda: xlsx_bytes(Sheet("Notes", [["Exported from D365"]]),
                           Sheet("Order Products", sheet_rows(good_rows("H02")), state="hidden")))

    # --- headers -----------------------------------------------------------------------------
    add(Case("header_duplicate.csv", "the Quantity header twice", "rejected", code="AMBIGUOUS_COLUMN",
             text="'Quantity' and 'Quantity'"),
        lambda: csv_text([r + ["3"] for r in good_rows("C01")], headers=HEADERS + ["Quantity"]).encode())
    add(Case("header_alias_duplicate.csv", "Order ID and Order Number both present", "rejected",
             code="AMBIGUOUS_COLUMN", text="Order Number"),
        lambda: csv_text([r + [r[0]] for r in good_rows("C02")], headers=HEADERS + ["Order Number"]).encode())
    add(Case("header_missing_quantity.csv", "no Quantity column", "rejected", code="MISSING_COLUMN",
             text="Quantity", in_a_run="read"),
        lambda: csv_text([r[:QUANTITY] + r[QUANTITY + 1:] for r in good_rows("C03")],
                         headers=HEADERS[:QUANTITY] + HEADERS[QUANTITY + 1:]).encode())
    add(Case("header_zero_width_and_nbsp.csv", "headers with zero-width spaces, a stray BOM and no-break spaces",
             "read", lines=2),
        lambda: csv_text(good_rows("C04"), headers=[
            "\ufeffOrder\u00a0ID", "Potential Customer (Order)\u200b", *HEADERS[2:6], "Quantity\u00a0",
            *HEADERS[7:]]).encode())
    add(Case("header_repeated_in_body.csv", "two exports pasted together: the header again on row 4", "rows",
             lines=4, issues=(RowIssue(4, "INVALID_VALUE", "Quantity", "'Quantity'"),
                              RowIssue(4, "INVALID_VALUE", "Price Per Unit", "'Price Per Unit'"),
                              RowIssue(4, "INVALID_VALUE", "Status (Order)", "'Status (Order)'"),
                              RowIssue(4, "INVALID_VALUE", "Line Item Number", "'Line Item Number'"),
                              RowIssue(4, "INVALID_VALUE", "Extended Amount", "'Extended Amount'"),
                              RowIssue(4, "INVALID_VALUE", "Currency (Order)", "'Currency (Order)'"))),
        lambda: (csv_text(good_rows("C05")) + csv_text([row("SO-C05", 3)], headers=HEADERS)).encode())
    add(Case("header_one_column.csv", "one column only, no delimiter at all", "rejected", code="FILE_REJECTED",
             text="delimiter"),
        lambda: "Order ID\r\nSO-C06\r\nSO-C07\r\n".encode())

    # --- ragged rows ---------------------------------------------------------------------------
    add(Case("ragged_extra_cells.csv", "row 4 has two cells more than the header (an unquoted comma)", "rows",
             lines=3, issues=(RowIssue(4, "INVALID_VALUE", "column 11", "12 cells"),)),
        lambda: (csv_text(good_rows("R01")) + "SO-R01,Contoso, Inc,USD,Active,3,SUP-STD-M,1,Monthly,5,5,extra\r\n").encode())
    add(Case("ragged_short_row.csv", "row 4 stops after the product (4 cells missing)", "rows", lines=3,
             issues=(RowIssue(4, "INVALID_VALUE", "Quantity", "blank"),
                     RowIssue(4, "INVALID_VALUE", "Price Per Unit", "blank"))),
        lambda: (csv_text(good_rows("R02")) + "SO-R02,Contoso,USD,Active,3,SUP-STD-M\r\n").encode())
    add(Case("ragged_trailing_delimiters.csv", "every row ends with empty extra cells (harmless)", "read", lines=2),
        lambda: csv_text([r + ["", ""] for r in good_rows("R03")]).encode())
    add(Case("ragged_in_quoted_newline_file.csv", "a ragged row after a quoted cell spanning lines: its record row",
             "rows", lines=3, issues=(RowIssue(4, "INVALID_VALUE", "column 11", "11 cells"),)),
        lambda: (csv_text([row("SO-R04", 1, customer="Two\nLines"), row("SO-R04", 2)])
                 + "SO-R04,Contoso,USD,Active,3,SUP-STD-M,1,Monthly,5,5,oops\r\n").encode())
    add(Case("ragged_first_row_short_then_long.csv", "rows of 10, 11 and 13 cells (the table widens twice)", "rows",
             lines=3, issues=(RowIssue(3, "INVALID_VALUE", "column 11", "11 cells"),
                              RowIssue(4, "INVALID_VALUE", "column 11", "13 cells"))),
        lambda: (csv_text([row("SO-R05", 1)]) + "SO-R05,Contoso,USD,Active,2,SUP-STD-M,1,Monthly,5,5,x\r\n"
                 + "SO-R05,Contoso,USD,Active,3,SUP-STD-M,1,Monthly,5,5,x,,z\r\n").encode())

    # --- xlsx structure ------------------------------------------------------------------------
    add(Case("xlsx_not_a_zip.xlsx", "CSV text saved with an .xlsx name", "rejected", code="FILE_REJECTED",
             text="not a zip archive"),
        lambda: csv_text(good_rows("X01")).encode())
    add(Case("xlsx_truncated.xlsx", "the first half of a good workbook (download cut short)", "rejected",
             code="FILE_REJECTED", text="damaged"),
        lambda: (lambda data: data[: len(data) // 2])(xlsx_bytes(Sheet("Orders", sheet_rows(good_rows("X02", 50))))))
    add(Case("xlsx_zip_bomb.xlsx", "a 1 MB workbook whose sheet inflates to 1 GiB", "rejected",
             code="FILE_REJECTED", text="max_xlsx_compression_ratio"),
        zip_bomb)
    add(Case("xlsx_entity_bomb.xlsx", "billion laughs: nested XML entities in the sheet", "rejected",
             code="FILE_REJECTED", text="XML entity"),
        lambda: zip_bytes({**xlsx_parts([Sheet("Orders", [])]), "xl/worksheets/sheet1.xml": _entity_bomb_sheet()}))
    add(Case("xlsx_external_entity.xlsx", "XXE: shared strings declare an entity read from /etc/passwd",
             "rejected", code="FILE_REJECTED", text="XML entity"),
        lambda: zip_bytes(_external_entity_workbook(Sheet("Orders", sheet_rows(good_rows("X04"))))))
    add(Case("xlsx_zip_without_workbook.xlsx", "a zip archive that is not a workbook", "rejected",
             code="FILE_REJECTED", text="no [Content_Types].xml part"),
        lambda: zip_bytes({"readme.txt": "hello"}))
    add(Case("xlsx_missing_sheet_part.xlsx", "the workbook lists a sheet whose part is missing", "rejected",
             code="FILE_REJECTED", text="a sheet part is missing"),
        lambda: zip_bytes({k: v for k, v in xlsx_parts([Sheet("Orders", sheet_rows(good_rows("X06")))]).items()
                           if not k.startswith("xl/worksheets")}))
    add(Case("xlsx_legacy.xls", "a legacy binary .xls (OLE compound file)", "rejected", code="FILE_REJECTED",
             text="legacy .xls"),
        lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4000)
    add(Case("xlsx_encrypted.xlsx", "a password-protected workbook (OLE container under an .xlsx name)",
             "rejected", code="FILE_REJECTED", text="password"),
        lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4000)
    add(Case("xlsx_named_csv.csv", "a real workbook saved with a .csv name", "read", lines=2),
        lambda: xlsx_bytes(Sheet("Orders", sheet_rows(good_rows("X09")))))
    add(Case("xlsx_empty_styled_rows.xlsx", "two lines then 1 M empty rows with a fill style (a formatted column)",
             "read", lines=2),
        lambda: xlsx_bytes(Sheet("Order Products", sheet_rows(good_rows("X10")), dimension="A1:J1000003",
                                 tail=_styled_empty_rows(4, 1_000_003))))
    add(Case("xlsx_styled_gaps.xlsx", "60 000 styled empty rows and cells between data rows: numbers kept", "rows",
             lines=3, issues=(RowIssue(60_003, "INVALID_VALUE", "Quantity", "lots", sheet="Orders"),)),
        lambda: xlsx_bytes(Sheet("Orders", sheet_rows(good_rows("X13")), dimension="A1:J60003",
                                 tail=_styled_gap("SO-X13", 4, 60_002))))
    add(Case("xlsx_wrong_dimension.xlsx", "the dimension tag says A1:B2 but the data is wider and longer", "read",
             lines=3),
        lambda: xlsx_bytes(Sheet("Orders", sheet_rows(good_rows("X11", 3)), dimension="A1:B2")))
    add(Case("xlsx_title_rows.xlsx", "a title and a blank row above the header: the first non-blank row is the header",
             "rejected", code="FILE_REJECTED", text="header row 1 (the first non-blank row)"),
        lambda: xlsx_bytes(Sheet("Orders", [["Sales orders, November"], [],
                                            *sheet_rows([row("SO-X12", 1), row("SO-X12", 2, quantity="-1")])])))

    # --- xlsx cells ----------------------------------------------------------------------------
    rtl_sheet = "طلبات 📦"
    add(Case("cells_merged.xlsx", "order columns merged down over the lines of an order", "rows", lines=3,
             issues=(RowIssue(3, "INVALID_VALUE", "Order ID", "blank", sheet="Orders"),
                     RowIssue(3, "INVALID_VALUE", "Potential Customer (Order)", "blank", sheet="Orders"),
                     RowIssue(4, "INVALID_VALUE", "Order ID", "blank", sheet="Orders"),
                     RowIssue(4, "INVALID_VALUE", "Potential Customer (Order)", "blank", sheet="Orders"))),
        lambda: xlsx_bytes(Sheet("Orders", [
            *sheet_rows([row("SO-M01", 1)]),
            *[[None, None, *r[2:]] for r in sheet_rows([row("SO-M01", 2), row("SO-M01", 3)])[1:]]],
            merges=["A2:A4", "B2:B4"])))
    add(Case("cells_formulas.xlsx", "formulas: with a cached value (read) and never calculated (blank)", "rows",
             lines=2, issues=(RowIssue(3, "INVALID_VALUE", "Quantity", "blank", sheet="Orders"),)),
        lambda: xlsx_bytes(Sheet("Orders", [
            HEADERS,
            ["SO-F01", "Contoso", "USD", "Active", 1, "SUP-STD-M", Formula("1+1", 2), "Monthly", 99, Formula("G2*I2", 198)],
            ["SO-F01", "Contoso", "USD", "Active", 2, "SUP-STD-M", Formula("1+1"), "Monthly", 99, 198]])))
    add(Case("cells_error_values.xlsx", "#N/A and #DIV/0! error cells", "rows", lines=2,
             issues=(RowIssue(2, "INVALID_VALUE", "Price Per Unit", "#N/A", sheet="Orders"),
                     RowIssue(3, "INVALID_VALUE", "Quantity", "#DIV/0!", sheet="Orders"))),
        lambda: xlsx_bytes(Sheet("Orders", [
            HEADERS,
            ["SO-F02", "Contoso", "USD", "Active", 1, "SUP-STD-M", 2, "Monthly", ErrorCell("#N/A"), 198],
            ["SO-F02", "Contoso", "USD", "Active", 2, "SUP-STD-M", ErrorCell("#DIV/0!"), "Monthly", 99, 198]])))
    add(Case("cells_dates.xlsx", "dates as text and as serials in an extra column; a quantity Excel turned into a date",
             "rows", lines=3, issues=(RowIssue(4, "INVALID_VALUE", "Quantity", "", sheet="Orders"),)),
        lambda: xlsx_bytes(Sheet("Orders", [
            HEADERS + ["Date Fulfilled"],
            [*row("SO-F03", 1), "11/29/2026"],
            [*sheet_rows([row("SO-F03", 2)])[1], 46355],
            ["SO-F03", "Contoso", "USD", "Active", 3, "SUP-STD-M", "2026-03-04T00:00:00", "Monthly", 99, 99, ""]])))
    add(Case("cells_numbers_as_text.xlsx", "numbers stored as text ('3', '$1,299.00')", "read", lines=2,
             values={"quantity": "3", "price_per_unit": "1299"}),
        lambda: xlsx_bytes(Sheet("Orders", [HEADERS, row("SO-F04", 1, quantity="3", price="$1,299.00",
                                                         extended="$3,897.00"), row("SO-F04", 2)])))
    add(Case("cells_huge_numbers.xlsx", "numeric cells 1E+300 and 12345678901234567890123 in amounts", "rows",
             lines=2, issues=(RowIssue(2, "INVALID_VALUE", "Quantity", "", sheet="Orders"),
                              RowIssue(3, "INVALID_VALUE", "Price Per Unit", "", sheet="Orders"))),
        lambda: xlsx_bytes(Sheet("Orders", [
            HEADERS,
            ["SO-F05", "Contoso", "USD", "Active", 1, "SUP-STD-M", 1e300, "Monthly", 99, None],
            ["SO-F05", "Contoso", "USD", "Active", 2, "SUP-STD-M", 1, "Monthly", 12345678901234567890123, None]])))
    add(Case("cells_booleans.xlsx", "a TRUE boolean cell as the quantity", "rows", lines=1,
             issues=(RowIssue(2, "INVALID_VALUE", "Quantity", "true", sheet="Orders"),)),
        lambda: xlsx_bytes(Sheet("Orders", [HEADERS, ["SO-F06", "Contoso", "USD", "Active", 1, "SUP-STD-M", True,
                                                      "Monthly", 99, None]])))
    add(Case("cells_rtl_sheet_name.xlsx", "right-to-left and emoji sheet name; a bad currency on row 3", "rows",
             lines=2, issues=(RowIssue(3, "INVALID_VALUE", "Currency (Order)", "", sheet=rtl_sheet),)),
        lambda: xlsx_bytes(Sheet(rtl_sheet, sheet_rows([row("SO-F07", 1),
                                                        [*row("SO-F07", 2)[:2], "DOLLARS", *row("SO-F07", 2)[3:]]]))))

    # --- values --------------------------------------------------------------------------------
    add(Case("values_huge_numbers.csv", "huge and exotic numbers as text", "rows", lines=5,
             issues=(RowIssue(2, "INVALID_VALUE", "Quantity", "1e308"),
                     RowIssue(3, "INVALID_VALUE", "Price Per Unit", "99999999999999999999999"),
                     RowIssue(4, "INVALID_VALUE", "Quantity", "NaN"),
                     RowIssue(5, "INVALID_VALUE", "Price Per Unit", "Infinity"),
                     RowIssue(6, "INVALID_VALUE", "Quantity", "1.123456"))),
        lambda: csv_text([row("SO-V01", 1, quantity="1e308", extended=""),
                          row("SO-V01", 2, price="99999999999999999999999", extended=""),
                          row("SO-V01", 3, quantity="NaN", extended=""),
                          row("SO-V01", 4, price="Infinity", extended=""),
                          row("SO-V01", 5, quantity="1.123456", extended="")]).encode())
    add(Case("values_negative_zero_quantity.csv", "quantities 0, -2 and -0", "rows", lines=4,
             issues=(RowIssue(2, "INVALID_QUANTITY", "Quantity"), RowIssue(3, "INVALID_QUANTITY", "Quantity"),
                     RowIssue(4, "INVALID_QUANTITY", "Quantity"))),
        lambda: csv_text([row("SO-V02", 1, quantity="0"), row("SO-V02", 2, quantity="-2"),
                          row("SO-V02", 3, quantity="-0"), row("SO-V02", 4)]).encode())
    add(Case("values_long_cells.csv", "10 000-character cells: a customer name (read) and a quantity (bad)",
             "rows", lines=2, issues=(RowIssue(3, "INVALID_VALUE", "Quantity", "…"),),
             values={"customer_name": "C" * 10_000}),
        lambda: csv_text([row("SO-V03", 1, customer="C" * 10_000), row("SO-V03", 2, quantity="9" * 10_000)]).encode())
    add(Case("values_control_characters.csv", "control characters (BEL, ESC, FF) inside names; a trailing VT is "
             "stripped as whitespace; the message shows them escaped", "rows", lines=4,
             issues=(RowIssue(2, "INVALID_VALUE", "Potential Customer (Order)",
                              "'Con\\x07toso' contains the control character U+0007"),
                     RowIssue(3, "INVALID_VALUE", "Potential Customer (Order)", "U+001B"),
                     RowIssue(4, "INVALID_VALUE", "Product ID", "U+000C"))),
        lambda: csv_text([row("SO-V04", 1, customer="Con\x07toso"), row("SO-V04", 2, customer="\x1b[31mContoso"),
                          row("SO-V04", 3, product="SUP-STD\x0c-M"), row("SO-V04", 4, product="SUP-STD-M\x0b")]).encode())
    rtl = "شركة النور \u202eCorp\u202c 🚀👩🏽‍💻"
    add(Case("values_rtl_emoji.csv", "right-to-left customer name with a bidi override and emoji", "read", lines=2,
             values={"customer_name": rtl}),
        lambda: csv_text([row("SO-V05", 1, customer=rtl), row("SO-V05", 2, customer="דוגמה בע\"מ 🎉")]).encode())
    add(Case("values_formula_text.csv", "text that looks like a formula (=, +, -, @) in names", "read", lines=2,
             values={"customer_name": "=HYPERLINK(\"http://x\",\"y\")"}),
        lambda: csv_text([row("SO-V06", 1, customer='=HYPERLINK("http://x","y")'),
                          row("SO-V06", 2, customer="@SUM(1+1)")]).encode())
    add(Case("values_thousands_and_spaces.csv", "quoted '1,000' quantity and padded cells", "read", lines=1,
             values={"quantity": "1000"}),
        lambda: csv_text([row("SO-V07", 1, quantity="1,000", price=" 2.00 ", extended="2,000.00")]).encode())
    add(Case("values_wrong_locale_money.csv", "money in de-DE form under en-US", "rows", lines=1,
             issues=(RowIssue(2, "INVALID_VALUE", "Price Per Unit", "1.299,00"),)),
        lambda: csv_text([row("SO-V08", 1, quantity="1", price="1.299,00", extended="")]).encode())
    return cases


def corpus_cases() -> list[Case]:
    return [case for case, _ in _cases()]


def build_corpus(out_dir: Path | str) -> list[Case]:
    """Write every corpus file and ``manifest.json`` into ``out_dir``; return the cases."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cases = _cases()
    names = [case.name for case, _ in cases]
    if len(set(names)) != len(names):
        raise ValueError("two corpus cases share a file name")
    for case, content in cases:
        if content is not None:
            (out / case.name).write_bytes(content())
    (out / "manifest.json").write_text(
        json.dumps([asdict(case) for case, _ in cases], ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return [case for case, _ in cases]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/corpus/build_corpus.py OUT_DIR")
    built = build_corpus(sys.argv[1])
    print(f"{len(built)} files written to {sys.argv[1]} (manifest.json lists what each one must give)")
