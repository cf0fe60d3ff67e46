"""Cell values of the report files, shared by the csv and xlsx writers (pure: no openpyxl).

Two concerns live here so that both writers obey them the same way:

* **Formula safety** (SPEC §5, the "never a formula" issue): a text cell that starts with
  ``=``, ``+``, ``-``, ``@``, a tab or a carriage return must never be taken for a formula by a
  spreadsheet. In csv such a cell gets a leading single quote (a plain signed number such as
  ``-1`` is a number, not a formula, and is written as it is); in xlsx the writer stores every
  text cell as a string cell, so the text stays exactly as it was.
* **Value conversion**: every column of a frame is classified once (text, decimal, integer,
  float, bool, date, datetime) and converted column-wise. Decimals stay exact: Arrow decimal
  columns become canonical decimal text ("1299.5") without ever passing through a float.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from w365etl.amounts import MONEY_SCALE, decimals_to_text

#: Leading characters that make a spreadsheet read a cell as a formula (or a DDE payload).
FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
#: What a csv text cell starting with a trigger is prefixed with.
FORMULA_ESCAPE = "'"
#: A sign, then digits with ``.``/``,`` between groups — a number, never a formula: not escaped.
PLAIN_SIGNED_NUMBER = r"[+-][0-9]+(?:[.,][0-9]+)*"

ColumnKind = Literal["text", "decimal", "integer", "float", "bool", "date", "datetime"]

#: Excel's limits on a sheet name.
SHEET_NAME_MAX = 31
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
#: Excel's limit on the characters in one cell.
CELL_TEXT_MAX = 32_767
#: Characters that XML 1.0 (and so xlsx) cannot hold; tab, LF and CR are allowed.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
#: the same class in RE2 syntax (Arrow's regex engine); a unit test checks every code point
XML_ILLEGAL_RE2 = r"[\x{00}-\x{08}\x{0b}\x{0c}\x{0e}-\x{1f}\x{fffe}\x{ffff}]"
_REPLACEMENT = "\ufffd"

EMPTY_SHEET_TEXT = "(none)"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
MONEY_FORMAT = "#,##0.00####"


@dataclass(frozen=True)
class Sheet:
    """One sheet of a report workbook: a table, with optional banner lines above it."""

    name: str
    frame: pd.DataFrame
    banner: tuple[str, ...] = ()
    #: rows the whole table has when ``frame`` holds only its first rows (cut before formatting,
    #: so a million-line run does not format a million rows a sheet will never show)
    total_rows: int | None = None
    #: each row's place in the run (the position of its line, or of its order's first line):
    #: how the sheets of a run processed in partitions are put back in the whole run's order
    positions: Any = field(default=None, compare=False, repr=False)

    @property
    def row_count(self) -> int:
        return len(self.frame) if self.total_rows is None else max(self.total_rows, len(self.frame))


# --------------------------------------------------------------------------- classification


def column_kind(values: pd.Series) -> ColumnKind:
    """How a column is written: decided once per column from its dtype (or, for object
    columns, from what the values are)."""
    dtype = values.dtype
    if isinstance(dtype, pd.ArrowDtype):
        arrow_type = dtype.pyarrow_dtype
        if pa.types.is_decimal(arrow_type):
            return "decimal"
        if pa.types.is_boolean(arrow_type):
            return "bool"
        if pa.types.is_integer(arrow_type):
            return "integer"
        if pa.types.is_floating(arrow_type):
            return "float"
        if pa.types.is_date(arrow_type):
            return "date"
        if pa.types.is_timestamp(arrow_type):
            return "datetime"
        return "text"
    if isinstance(dtype, pd.CategoricalDtype) or isinstance(dtype, pd.StringDtype):
        return "text"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if dtype == object:
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        return {
            "decimal": "decimal",
            "boolean": "bool",
            "integer": "integer",
            "floating": "float",
            "mixed-integer-float": "float",
            "date": "date",
            "datetime": "datetime",
            "datetime64": "datetime",
        }.get(inferred, "text")
    return "text"


# --------------------------------------------------------------------------- formula safety


def starts_like_formula(values: pd.Series) -> pd.Series:
    """Boolean mask: the text starts with a formula trigger and is not a plain signed number
    (NA → False).

    ``-1`` or ``+2.5`` is read by a spreadsheet as that very number — nothing runs — and a
    person comparing an exception's value with the cell of the export must see ``-1``, not
    ``'-1`` (R9 names the value). Anything more (``-1+2``, ``-2+cmd|…``) is still escaped."""
    text = values.astype("string")
    triggered = text.str.startswith(FORMULA_TRIGGERS).fillna(False).astype(bool)
    if not triggered.any():
        return triggered
    return triggered & ~text.str.fullmatch(PLAIN_SIGNED_NUMBER).fillna(False).astype(bool)


def escape_formula_text(values: pd.Series) -> pd.Series:
    """Prefix ``'`` to every text that starts with a formula trigger (csv rule); vectorised."""
    text = values.astype("string")
    return text.mask(starts_like_formula(text), FORMULA_ESCAPE + text)


def escape_formula(value: str) -> str:
    """The csv rule for one header or banner string."""
    is_formula = value.startswith(FORMULA_TRIGGERS) and re.fullmatch(PLAIN_SIGNED_NUMBER, value) is None
    return FORMULA_ESCAPE + value if is_formula else value


# --------------------------------------------------------------------------- exact decimals


def decimal_text(values: pd.Series) -> pd.Series:
    """Exact canonical text of a decimal column (Arrow decimals or ``Decimal`` objects)."""
    if isinstance(values.dtype, pd.ArrowDtype):
        return decimals_to_text(values)
    objects = values.to_numpy(dtype=object, na_value=None)
    try:
        arrow = pa.array(objects)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arrow = None
    if arrow is not None and pa.types.is_decimal(arrow.type):
        return decimals_to_text(pd.Series(arrow, index=values.index, dtype=pd.ArrowDtype(arrow.type)))
    # Mixed exponents Arrow cannot hold in one type: format each Decimal in fixed notation.
    text = pd.Series(
        [None if v is None else format(v, "f") for v in objects], index=values.index, dtype="string"
    )
    return text.str.replace(r"(\.\d*?)0+$", r"\1", regex=True).str.replace(r"\.$", "", regex=True)


def is_money_column(values: pd.Series) -> bool:
    dtype = values.dtype
    return (
        isinstance(dtype, pd.ArrowDtype)
        and pa.types.is_decimal(dtype.pyarrow_dtype)
        and dtype.pyarrow_dtype.scale == MONEY_SCALE
    )


# --------------------------------------------------------------------------- csv values


def _datetime_text(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values)
    suffix = ""
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        suffix = "Z"
    valid = stamps.dropna()
    if suffix == "" and (valid == valid.dt.normalize()).all():
        return stamps.dt.strftime("%Y-%m-%d").astype("string")
    return (stamps.dt.strftime("%Y-%m-%dT%H:%M:%S") + suffix).astype("string")


def csv_column(values: pd.Series) -> pd.Series:
    """The text a csv cell holds for each value of a column (NA stays NA → empty cell)."""
    kind = column_kind(values)
    if kind == "decimal":
        return decimal_text(values)
    if kind == "bool":
        flags = values.astype("boolean")
        return flags.map({True: "true", False: "false"}, na_action="ignore").astype("string")
    if kind in ("integer", "float"):
        return values.astype("string")
    if kind == "date":
        if isinstance(values.dtype, pd.ArrowDtype):
            return values.astype("string")
        return _datetime_text(values)
    if kind == "datetime":
        return _datetime_text(values)
    return escape_formula_text(values)


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The whole frame as csv text, header included, formula-safe."""
    columns = [csv_column(frame.iloc[:, i]) for i in range(frame.shape[1])]
    out = pd.concat(columns, axis=1, ignore_index=True) if columns else pd.DataFrame(index=frame.index)
    out.columns = [escape_formula(str(name)) for name in frame.columns]
    return out


# --------------------------------------------------------------------------- xlsx values


def xlsx_text(value: str) -> str:
    """Text as an xlsx cell can hold it: XML-illegal control characters become U+FFFD,
    line ends become LF (XML normalises CR anyway), and Excel's cell length limit applies."""
    value = _XML_ILLEGAL.sub(_REPLACEMENT, value).replace("\r\n", "\n").replace("\r", "\n")
    return value[:CELL_TEXT_MAX]


def xlsx_text_column(values: pd.Series) -> pd.Series:
    """``xlsx_text`` for a whole column, in Arrow: one regex pass in C++, not a Python ``re``
    call per cell (half a million exception rows in a report)."""
    text = values.astype("string")
    arrow = pc.replace_substring_regex(text.array.__arrow_array__(), XML_ILLEGAL_RE2, _REPLACEMENT)
    text = pd.Series(pd.arrays.ArrowStringArray(arrow), index=values.index, name=values.name)
    text = text.str.replace("\r\n", "\n", regex=False).str.replace("\r", "\n", regex=False)
    return text.str.slice(0, CELL_TEXT_MAX).mask((text == "").fillna(False).astype(bool))


def display_width(kind: ColumnKind, header: str, sample: Iterable[Any], *, cap: int = 60) -> float:
    """A readable column width: the longest of the header and a sample of values, capped."""
    fixed = {"date": 10, "datetime": 19, "bool": 5}
    longest = len(header)
    if kind in fixed:
        longest = max(longest, fixed[kind])
    else:
        for value in sample:
            if value is not None:
                text = str(value)
                longest = max(longest, max((len(part) for part in text.split("\n")), default=0))
    return float(min(max(longest + 2, 8), cap))


# --------------------------------------------------------------------------- sheet names


def sheet_title(name: str, taken: set[str]) -> str:
    """A name Excel accepts (≤ 31 characters, none of ``[]:*?/\\``, no leading or trailing
    apostrophe, not empty, not "History"), unique case-insensitively among ``taken``;
    the result is added to ``taken``."""
    base = _SHEET_NAME_FORBIDDEN.sub("_", name).strip().strip("'")
    if not base or base.casefold() == "history":
        base = f"{base or 'Sheet'}_"
    base = base[:SHEET_NAME_MAX]
    title, n = base, 1
    while title.casefold() in {t.casefold() for t in taken}:
        n += 1
        suffix = f" ({n})"
        title = base[: SHEET_NAME_MAX - len(suffix)] + suffix
    taken.add(title)
    return title


def cap_note(shown: int, total: int) -> str:
    return f"Showing the first {shown:,} of {total:,} rows — the csv outputs are complete."


__all__ = [
    "CELL_TEXT_MAX",
    "DATETIME_FORMAT",
    "DATE_FORMAT",
    "EMPTY_SHEET_TEXT",
    "FORMULA_ESCAPE",
    "FORMULA_TRIGGERS",
    "MONEY_FORMAT",
    "Sheet",
    "cap_note",
    "column_kind",
    "csv_column",
    "csv_frame",
    "decimal_text",
    "display_width",
    "escape_formula",
    "escape_formula_text",
    "is_money_column",
    "sheet_title",
    "starts_like_formula",
    "xlsx_text",
]
