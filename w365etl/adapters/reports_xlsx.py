"""Writes report workbooks (SPEC §5): the sheet XML is built column-wise and streamed to the zip.

Every sheet: an optional cap note (first row, when the frame was cut), banner lines (bold),
the header row (bold), the rows; the header is frozen, an auto-filter covers the table and
columns get readable widths. Text is always stored as an inline string cell — never a
formula, whatever it starts with. Decimals are written as number cells from their exact text
(no float on the way); dates as date serials with a date format; booleans as booleans.

Why not openpyxl: even in write-only mode it builds a Python cell object per value
(≈ 2 000 rows/s here), so a capped 100 000-row sheet took most of a large run. Here each
column becomes one Arrow string array of finished ``<c>`` elements (one vectorised pass per
column, no Python per cell) and the rows are joined once. The package layout is the minimal one
Excel, LibreOffice and openpyxl all read (ECMA-376 SpreadsheetML, inline strings).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from w365etl.columns import concatenated_text
from w365etl.report.cells import (
    DATE_FORMAT,
    DATETIME_FORMAT,
    EMPTY_SHEET_TEXT,
    MONEY_FORMAT,
    ColumnKind,
    Sheet,
    cap_note,
    column_kind,
    decimal_text,
    display_width,
    is_money_column,
    sheet_title,
    xlsx_text,
    xlsx_text_column,
)

__all__ = ["Sheet", "write_workbook"]

_WIDTH_SAMPLE = 500
#: days from Excel's day 0 (1899-12-30, the 1900 date system) to the Unix epoch
_EXCEL_EPOCH_OFFSET_DAYS = 25_569

# cellXfs indexes of styles.xml below
_STYLE_BOLD, _STYLE_ITALIC, _STYLE_DATE, _STYLE_DATETIME, _STYLE_MONEY = 1, 2, 3, 4, 5

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_NS_R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

_STYLES = (
    _XML_HEAD + f"<styleSheet {_NS}>"
    f'<numFmts count="3"><numFmt numFmtId="164" formatCode={quoteattr(DATE_FORMAT)}/>'
    f'<numFmt numFmtId="165" formatCode={quoteattr(DATETIME_FORMAT)}/>'
    f'<numFmt numFmtId="166" formatCode={quoteattr(MONEY_FORMAT)}/></numFmts>'
    '<fonts count="3"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font>'
    '<font><i/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="6"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def write_workbook(path: Path, sheets: Sequence[Sheet], *, max_rows: int = 100_000) -> None:
    """Write ``sheets`` to ``path``; a sheet with more than ``max_rows`` rows is cut and says so.

    The file appears whole or not at all (written beside it, then renamed)."""
    if not sheets:
        raise ValueError("a workbook needs at least one sheet")
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    path = Path(path)
    taken: set[str] = set()
    titles = [sheet_title(sheet.name, taken) for sheet in sheets]
    partial = path.with_name(path.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            archive.writestr("[Content_Types].xml", _content_types(len(sheets)))
            archive.writestr("_rels/.rels", _ROOT_RELS)
            archive.writestr("xl/workbook.xml", _workbook_xml(titles, sheets, max_rows))
            archive.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(sheets)))
            archive.writestr("xl/styles.xml", _STYLES)
            for number, sheet in enumerate(sheets, start=1):
                with archive.open(f"xl/worksheets/sheet{number}.xml", "w", force_zip64=True) as stream:
                    for part in _sheet_parts(sheet, max_rows):
                        stream.write(part if isinstance(part, bytes) else part.encode("utf-8"))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# --------------------------------------------------------------------------- package parts

_ROOT_RELS = (
    _XML_HEAD + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)


def _content_types(count: int) -> str:
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for n in range(1, count + 1)
    )
    return (
        _XML_HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        f"{sheets}</Types>"
    )


def _workbook_rels(count: int) -> str:
    sheets = "".join(
        f'<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
        f'Target="worksheets/sheet{n}.xml"/>'
        for n in range(1, count + 1)
    )
    styles = (f'<Relationship Id="rId{count + 1}" '
              'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>')
    return (_XML_HEAD + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f"{sheets}{styles}</Relationships>")


def _workbook_xml(titles: list[str], sheets: Sequence[Sheet], max_rows: int) -> str:
    entries = "".join(f"<sheet name={quoteattr(title)} sheetId=\"{n}\" r:id=\"rId{n}\"/>"
                      for n, title in enumerate(titles, start=1))
    # Excel keeps an auto-filter's range in a hidden defined name as well
    names = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{n - 1}" hidden="1">'
        f"{escape(_quoted_sheet(title))}!{_filter_ref(sheet, max_rows, absolute=True)}</definedName>"
        for n, (title, sheet) in enumerate(zip(titles, sheets, strict=True), start=1)
    )
    return (_XML_HEAD + f"<workbook {_NS} {_NS_R}><bookViews><workbookView/></bookViews>"
            f"<sheets>{entries}</sheets><definedNames>{names}</definedNames></workbook>")


def _quoted_sheet(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


# --------------------------------------------------------------------------- one sheet


def _layout(sheet: Sheet, max_rows: int) -> tuple[pd.DataFrame, list[str], int]:
    """The rows shown, the lines above the header, and the header's row number."""
    frame = sheet.frame
    shown = frame.iloc[:max_rows] if len(frame) > max_rows else frame
    total = sheet.row_count
    above = ([cap_note(len(shown), total)] if total > len(shown) else []) + list(sheet.banner)
    return shown, above, len(above) + 1


def _filter_ref(sheet: Sheet, max_rows: int, *, absolute: bool = False) -> str:
    shown, _, header_row = _layout(sheet, max_rows)
    last_row = header_row + max(len(shown), 1)
    last_column = _column_letter(max(sheet.frame.shape[1], 1))
    if absolute:
        return f"$A${header_row}:${last_column}${last_row}"
    return f"A{header_row}:{last_column}{last_row}"


def _sheet_parts(sheet: Sheet, max_rows: int):
    """The sheet's XML in a few large pieces (head, rows in blocks, tail)."""
    shown, above, header_row = _layout(sheet, max_rows)
    headers = [str(name) for name in sheet.frame.columns]
    cells = [_column_cells(shown.iloc[:, i], _column_letter(i + 1), header_row + 1)
             for i in range(shown.shape[1])]
    widths = [display_width(kind, headers[i], sample) for i, (kind, _, sample) in enumerate(cells)]
    if not widths:
        widths = [float(len(EMPTY_SHEET_TEXT) + 4)]
    cols = "".join(f'<col min="{n}" max="{n}" width="{width:g}" customWidth="1"/>'
                   for n, width in enumerate(widths, start=1))
    yield (
        _XML_HEAD + f"<worksheet {_NS} {_NS_R}><sheetViews><sheetView workbookViewId=\"0\">"
        f'<pane ySplit="{header_row}" topLeftCell="A{header_row + 1}" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft"/></sheetView></sheetViews>'
        f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>'
    )
    for number, line in enumerate(above, start=1):
        yield f'<row r="{number}">{_text_cell(f"A{number}", line, _STYLE_BOLD)}</row>'
    yield (f'<row r="{header_row}">'
           + "".join(_text_cell(f"{_column_letter(i + 1)}{header_row}", name, _STYLE_BOLD)
                     for i, name in enumerate(headers))
           + "</row>")
    if len(shown) == 0:
        yield f'<row r="{header_row + 1}">{_text_cell(f"A{header_row + 1}", EMPTY_SHEET_TEXT, _STYLE_ITALIC)}</row>'
    else:
        row_numbers = pc.cast(pa.array(np.arange(header_row + 1, header_row + 1 + len(shown), dtype=np.int64)),
                              pa.large_string())
        rows = _join('<row r="', row_numbers, '">', *[column for _, column, _ in cells], "</row>")
        for start in range(0, len(rows), 20_000):  # bounded pieces: memory stays flat
            yield concatenated_text(rows.slice(start, 20_000))
    yield f'</sheetData><autoFilter ref="{_filter_ref(sheet, max_rows)}"/></worksheet>'


def _text_cell(reference: str, text: str, style: int | None = None) -> str:
    styled = f' s="{style}"' if style is not None else ""
    return f'<c r="{reference}"{styled} t="inlineStr"><is><t xml:space="preserve">{escape(xlsx_text(text))}</t></is></c>'


def _column_letter(number: int) -> str:
    letters = ""
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _column_cells(values: pd.Series, letter: str, first_row: int) -> tuple[ColumnKind, pa.Array, list]:
    """One column as finished ``<c>`` elements (empty text for a missing value), its kind and
    a sample of its display values for the width."""
    kind = column_kind(values)
    style, cell_type, text = None, None, None
    if kind == "text":
        text = xlsx_text_column(values)
        sample = text.iloc[:_WIDTH_SAMPLE].dropna().tolist()
        text = _escaped(text)
        body = _join('t="inlineStr"><is><t xml:space="preserve">', text, "</t></is></c>")
    else:
        if kind == "decimal":
            text = decimal_text(values)
            style = _STYLE_MONEY if is_money_column(values) else None
            cell_type = "n"
        elif kind == "bool":
            flags = values.astype("boolean")
            text = flags.map({True: "1", False: "0"}, na_action="ignore").astype("string")
            cell_type = "b"
        elif kind == "integer":
            text = values.astype("Int64").astype("string")
            cell_type = "n"
        elif kind == "float":
            text = _float_text(values.astype("float64"))
            cell_type = "n"
        else:
            text, style = _date_serials(values, kind)
            cell_type = "n"
        sample = text.iloc[:_WIDTH_SAMPLE].dropna().tolist()
        styled = f's="{style}" ' if style is not None else ""
        body = _join(f'{styled}t="{cell_type}"><v>', _arrow_text(text), "</v></c>")
    row_numbers = pc.cast(pa.array(np.arange(first_row, first_row + len(values), dtype=np.int64)), pa.large_string())
    cells = _join('<c r="', letter, row_numbers, '" ', body)
    return kind, pc.fill_null(cells, ""), sample


def _join(*parts) -> pa.Array:
    """Element-wise concatenation of arrays and constants; a missing value makes the result missing."""
    arrays = [pa.scalar(part, pa.large_string()) if isinstance(part, str) else pc.cast(part, pa.large_string())
              for part in parts]
    return pc.binary_join_element_wise(*arrays, pa.scalar("", pa.large_string()))


def _arrow_text(text: pd.Series) -> pa.Array:
    return pa.array(text.astype("string").array, type=pa.large_string(), from_pandas=True)


def _escaped(text: pd.Series) -> pa.Array:
    """XML text escaping, vectorised (the illegal characters were replaced already)."""
    array = _arrow_text(text)
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        array = pc.replace_substring(array, raw, entity)
    return array


def _float_text(floats: pd.Series) -> pd.Series:
    """Shortest round-trip text of each finite float (Arrow's cast); NaN and infinities stay empty."""
    finite = floats.where(np.isfinite(floats))
    text = pc.cast(pa.array(finite.to_numpy(), from_pandas=True), pa.string())
    return pd.Series(text, index=floats.index, dtype=pd.ArrowDtype(pa.string())).astype("string")


def _date_serials(values: pd.Series, kind: ColumnKind) -> tuple[pd.Series, int]:
    """Dates as Excel day serials (1900 system), datetimes with their fraction of a day (UTC)."""
    if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_date(values.dtype.pyarrow_dtype):
        days = pc.cast(pc.cast(pa.array(values), pa.date32()), pa.int32())
        serials = pc.add(pc.cast(days, pa.int64()), _EXCEL_EPOCH_OFFSET_DAYS)
        return pd.Series(pc.cast(serials, pa.string()), index=values.index,
                         dtype=pd.ArrowDtype(pa.string())).astype("string"), _STYLE_DATE
    stamps = pd.to_datetime(values)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    days = (stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1) + _EXCEL_EPOCH_OFFSET_DAYS
    if kind == "date":
        return days.round().astype("Int64").astype("string"), _STYLE_DATE
    return _float_text(days.astype("float64")), _STYLE_DATETIME
