"""Layouts of order files (SPEC §2.1): flat, or an orders table joined with a lines table.

A table with a quantity column is a lines table; one without is an orders table. Which
orders table a lines table joins with:

* a workbook with an orders sheet: its lines sheets join with that sheet (or sheets);
* any other lines table (CSV, or a workbook without an orders sheet) joins with the run's
  standalone orders files — files whose only tables are orders tables — when there are any;
* otherwise it is flat: each row carries its order's columns itself.

The join is on ``order_id`` when both sides have it, else on ``order_number``. Order-level
fields come from the orders table; the others from the lines table, falling back to the
orders table when only it has them. A line whose order is missing is ``INVALID_VALUE`` on
``order_number``; an order without lines is ignored with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from w365etl.ingest.headers import (
    FIELDS,
    PRODUCT_FIELDS,
    REQUIRED_FIELDS,
    HeaderMatch,
    accepted_spellings,
    match_headers,
)
from w365etl.ingest.tables import RawTable
from w365etl.ingest.result import LINE_COLUMNS, ISSUE_COLUMNS
from w365etl.ingest.values import CONTROL_CHARACTERS, FIELD_PARSERS, Parsed, empty_column, parse_field, why_bad
from w365etl.reasons import ReasonCode

FLAT = "flat"
HEADER_LINES = "header_lines"

#: A worksheet needs this many known columns (or a quantity column) to be read.
MIN_KNOWN_COLUMNS = 3
#: Orders without lines are listed one by one up to this many, then counted.
MAX_ORPHAN_WARNINGS = 100
#: A cell's text in an issue's ``value`` and quoted in its ``message`` (a 10 000-character
#: cell stays readable in exceptions.csv; Excel cells hold 32 767 at most).
MAX_VALUE_CHARS = 1000
MAX_QUOTED_CHARS = 60


def shorten(text: pd.Series, limit: int) -> pd.Series:
    """``text`` cut to ``limit`` characters, with … and the full length where it was cut."""
    long = text.str.len() > limit
    if not long.any():
        return text
    cut = text.str.slice(0, limit) + "… (" + text.str.len().astype("str") + " characters)"
    return text.where(~long, cut)


def visible(text: pd.Series) -> pd.Series:
    """Control characters written as ``\\xNN`` (a message must not ring bells or recolour terminals)."""
    if not text.str.contains(CONTROL_CHARACTERS, regex=True).any():
        return text
    return text.str.replace(CONTROL_CHARACTERS, lambda match: f"\\x{ord(match.group()):02x}", regex=True)


@dataclass
class Table:
    """A raw table with its header match and (lazily) its parsed columns."""

    raw: RawTable
    match: HeaderMatch
    number_locale: str
    _parsed: dict[str, Parsed] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, raw: RawTable, number_locale: str) -> Table:
        return cls(raw, match_headers(raw.headers), number_locale)

    @property
    def key(self) -> str:
        return self.raw.key

    @property
    def is_lines(self) -> bool:
        return self.match.has_quantity

    @property
    def fields(self) -> set[str]:
        return set(self.match.positions)

    @property
    def has_join_key(self) -> bool:
        """Has an order id or order number: the columns an orders table joins its lines on."""
        return bool(self.fields & {"order_id", "order_number"})

    @property
    def is_related(self) -> bool:
        """Does this sheet look like order data at all (SPEC: unrelated sheets are skipped)?"""
        return self.match.has_quantity or self.match.known_count >= MIN_KNOWN_COLUMNS

    def __len__(self) -> int:
        return len(self.raw.cells)

    def raw_column(self, name: str) -> pd.Series:
        return self.raw.cells[self.match.positions[name]]

    def parsed(self, name: str) -> Parsed:
        if name not in self._parsed:
            values, bad = parse_field(name, self.raw_column(name), number_locale=self.number_locale)
            self._parsed[name] = Parsed(values.reset_index(drop=True), bad.reset_index(drop=True))
        return self._parsed[name]

    def values(self, name: str) -> pd.Series:
        if name in self.match.positions:
            return self.parsed(name).values
        return empty_column(name, pd.RangeIndex(len(self)))

    def issues(self, name: str, rows: np.ndarray | None = None, line_index: np.ndarray | None = None) -> pd.DataFrame:
        """Issue rows for the bad cells of ``name`` among ``rows`` (a boolean mask; all if None).

        ``line_index`` gives the line of each table row (None: an orders table, no line).
        """
        bad = self.parsed(name).bad.to_numpy(dtype=bool)
        if rows is not None:
            bad = bad & rows
        if not bad.any():
            return pd.DataFrame(columns=list(ISSUE_COLUMNS))
        where = np.flatnonzero(bad)
        header = self.match.headers[name]
        raw = self.raw_column(name).iloc[where].reset_index(drop=True).astype("str")
        why = why_bad(name, raw, number_locale=self.number_locale)
        return pd.DataFrame(
            {
                "line_index": pd.array(line_index[where] if line_index is not None else [pd.NA] * len(where), dtype="Int64"),
                "reason_code": str(ReasonCode.INVALID_VALUE),
                "field": name,
                "file": self.raw.file_path,
                "sheet": self.raw.sheet_name,
                "row": pd.array(self.raw.row_numbers[where], dtype="Int64"),
                "column": header,
                "value": shorten(raw, MAX_VALUE_CHARS),
                "message": header + " '" + visible(shorten(raw, MAX_QUOTED_CHARS)) + "' " + why,
            }
        )

    def row_issues(self, rows: np.ndarray | None = None, line_index: np.ndarray | None = None) -> pd.DataFrame:
        """Issue rows for whole rows the reader found broken (``RawTable.row_problems``)."""
        problems = self.raw.row_problems
        if problems is None or problems.empty:
            return pd.DataFrame(columns=list(ISSUE_COLUMNS))
        position = problems["position"].to_numpy(dtype=np.int64)
        if rows is not None:
            problems, position = problems[rows[position]], position[rows[position]]
        return pd.DataFrame(
            {
                "line_index": pd.array(line_index[position] if line_index is not None else [pd.NA] * len(position),
                                       dtype="Int64"),
                "reason_code": str(ReasonCode.INVALID_VALUE),
                "field": "row",
                "file": self.raw.file_path,
                "sheet": self.raw.sheet_name,
                "row": pd.array(self.raw.row_numbers[position], dtype="Int64"),
                "column": problems["column"].astype("str").to_numpy(),
                "value": problems["value"].astype("str").to_numpy(),
                "message": problems["message"].astype("str").to_numpy(),
            }
        )


def _constant(value: str | None, n: int) -> pd.Series:
    """A text column holding one value (NA for None), built without a Python list."""
    return pd.Series(np.nan if value is None else value, index=pd.RangeIndex(n), dtype="str")


# ---------------------------------------------------------------------------------------------
# required columns


def missing_fields(fields: set[str]) -> list[str]:
    """Required fields absent from ``fields``; ``"product"`` stands for product number/name."""
    missing = [name for name in REQUIRED_FIELDS if name not in fields]
    if not any(name in fields for name in PRODUCT_FIELDS):
        missing.append("product")
    return missing


def missing_message(missing: list[str], *, joined: bool) -> tuple[str, str]:
    """(column, message) of a MISSING_COLUMN row naming each missing column and its spellings."""
    columns: list[str] = []
    parts: list[str] = []
    for name in missing:
        if name == "product":
            label = f"{FIELDS['product_number'].label}' or '{FIELDS['product_name'].label}"
            spellings = accepted_spellings("product_number") + ", " + accepted_spellings("product_name")
            columns.append(f"{FIELDS['product_number'].label} / {FIELDS['product_name'].label}")
        else:
            label = FIELDS[name].label
            spellings = accepted_spellings(name)
            columns.append(label)
        parts.append(f"required column '{label}' is missing (accepted spellings: {spellings})")
    where = " from both the orders table and the lines table" if joined else ""
    message = "; ".join(parts)
    return ", ".join(columns), message[0].upper() + message[1:] + where + "."


# ---------------------------------------------------------------------------------------------
# orders pools and the join


@dataclass
class OrdersPool:
    """The orders tables a set of lines tables joins with, as one frame of parsed orders."""

    tables: list[Table]
    frame: pd.DataFrame = field(init=False)
    fields: set[str] = field(init=False)
    matched: np.ndarray = field(init=False)
    used_fields: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    _keys: dict[str, tuple[pd.Index, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fields = set().union(*(table.fields for table in self.tables))
        frames = []
        for position, table in enumerate(self.tables):
            n = len(table)
            columns: dict[str, object] = {
                FIELD_PARSERS[name].column: table.values(name) for name in sorted(self.fields)
            }
            columns.update(
                {
                    "order_file_path": _constant(table.raw.file_path, n),
                    "order_sheet_name": _constant(table.raw.sheet_name, n),
                    "order_row_number": pd.Series(table.raw.row_numbers, dtype="int64"),
                    "order_table_key": _constant(table.key, n),
                    "_table": np.full(n, position, dtype=np.int64),
                    "_row": np.arange(n, dtype=np.int64),
                }
            )
            frames.append(pd.DataFrame(columns, index=pd.RangeIndex(n)))
        self.frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        self.matched = np.zeros(len(self.frame), dtype=bool)

    def can_join_on(self, name: str) -> bool:
        return all(name in table.fields for table in self.tables)

    def lookup(self, name: str) -> tuple[pd.Index, np.ndarray]:
        """Index of the key values of ``name`` (first occurrence wins) and their frame rows."""
        if name not in self._keys:
            keys = self.frame[FIELD_PARSERS[name].column]
            present = keys.notna().to_numpy(dtype=bool)
            first = present & ~keys.duplicated(keep="first").to_numpy(dtype=bool)
            repeated = present & ~first
            for row in np.flatnonzero(repeated)[:20]:
                self.warnings.append(
                    f"{FIELDS[name].label} '{keys.iloc[row]}' appears more than once in the orders table "
                    f"({self._where(row)}); the first row with it is used."
                )
            rows = np.flatnonzero(first)
            self._keys[name] = (pd.Index(keys.iloc[rows].to_numpy(dtype=object)), rows)
        return self._keys[name]

    def _where(self, row: int) -> str:
        file = self.frame["order_file_path"].iloc[row]
        sheet = self.frame["order_sheet_name"].iloc[row]
        number = self.frame["order_row_number"].iloc[row]
        return f"{file}" + (f", sheet '{sheet}'" if isinstance(sheet, str) else "") + f", row {number}"

    def issues(self) -> list[pd.DataFrame]:
        """Issues of the orders rows that have lines, for the fields lines took from them."""
        found = []
        for position, table in enumerate(self.tables):
            rows = self.matched[self.frame["_table"].to_numpy() == position]
            if not rows.any():
                continue
            found.append(table.row_issues(rows=rows))
            for name in sorted(self.used_fields & table.fields):
                found.append(table.issues(name, rows=rows))
        return found

    def orphan_warnings(self) -> list[str]:
        """Orders with no lines in this run: ignored, with a warning (SPEC §2.1)."""
        found = []
        orphans = np.flatnonzero(~self.matched)
        for row in orphans[:MAX_ORPHAN_WARNINGS]:
            number = self.frame["order_number"].iloc[row] if "order_number" in self.frame else None
            if not isinstance(number, str):
                ident = self.frame["order_id"].iloc[row] if "order_id" in self.frame else None
                label = f"with id '{ident}'" if isinstance(ident, str) else "without an order number"
            else:
                label = f"'{number}'"
            found.append(f"Order {label} ({self._where(row)}) has no lines in this run; it is ignored.")
        if len(orphans) > MAX_ORPHAN_WARNINGS:
            found.append(f"… and {len(orphans) - MAX_ORPHAN_WARNINGS} more orders with no lines in this run; ignored.")
        return found


@dataclass
class Plan:
    """How one lines table becomes lines: flat, or joined with a pool on ``key``."""

    table: Table
    pool: OrdersPool | None = None
    key: str | None = None

    @property
    def layout(self) -> str:
        return FLAT if self.pool is None else HEADER_LINES


def join_key(table: Table, pool: OrdersPool) -> str | None:
    for name in ("order_id", "order_number"):
        if name in table.fields and pool.can_join_on(name):
            return name
    return None


def join_key_message() -> tuple[str, str]:
    return (
        FIELDS["order_number"].label,
        "The lines table cannot be joined with the orders table: both need "
        f"'{FIELDS['order_number'].label}' (accepted spellings: {accepted_spellings('order_number')}) "
        f"or '{FIELDS['order_id'].label}' (accepted spellings: {accepted_spellings('order_id')}).",
    )


def build_lines(plan: Plan, offset: int) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """The lines of one lines table (line_index from ``offset``) and their issues."""
    table = plan.table
    n = len(table)
    index = pd.RangeIndex(n)
    line_index = np.arange(offset, offset + n, dtype=np.int64)
    raw = table.raw
    own_file = _constant(raw.file_path, n)
    own_sheet = _constant(raw.sheet_name, n)
    own_rows = pd.Series(raw.row_numbers, dtype="int64")
    own_key = _constant(table.key, n)
    columns: dict[str, pd.Series] = {
        "line_index": pd.Series(line_index, dtype="int64"),
        "file_path": own_file,
        "sheet_name": own_sheet,
        "row_number": own_rows,
        "order_file_path": own_file,
        "order_sheet_name": own_sheet,
        "order_row_number": own_rows,
        "table_key": own_key,
        "order_table_key": own_key,
        "layout": _constant(plan.layout, n),
        "dialect": _constant(table.match.dialect, n),
    }
    issues: list[pd.DataFrame] = []

    issues.append(table.row_issues(line_index=line_index))
    if plan.pool is None:
        for name in FIELD_PARSERS:
            columns[FIELD_PARSERS[name].column] = table.values(name)
            if name in table.fields:
                issues.append(table.issues(name, line_index=line_index))
        return pd.DataFrame(columns, index=index)[list(LINE_COLUMNS)], issues

    pool, key = plan.pool, plan.key
    assert key is not None
    keys, rows = pool.lookup(key)
    hit = keys.get_indexer(table.values(key).to_numpy(dtype=object, na_value=None))
    matched = hit >= 0
    pool_rows = np.where(matched, rows[np.where(matched, hit, 0)] if len(rows) else 0, -1)
    pool.matched[pool_rows[matched]] = True
    # A sentinel all-NA row at the end: row -1 is "no order".
    padded = pd.concat([pool.frame, pool.frame.iloc[:0].reindex([0])], ignore_index=True)
    taken = padded.iloc[pool_rows].reset_index(drop=True)

    for name in ("order_file_path", "order_sheet_name", "order_row_number", "order_table_key"):
        columns[name] = taken[name].where(matched, columns[name]).astype(columns[name].dtype)

    for name, parser in FIELD_PARSERS.items():
        in_lines = name in table.fields
        in_orders = name in pool.fields
        from_orders = in_orders and (FIELDS[name].order_level or not in_lines)
        if from_orders:
            pool.used_fields.add(name)
            values = taken[parser.column].astype(empty_column(name, index).dtype)
            if in_lines:
                # A line whose order is missing keeps its own value (so reports can name it).
                values = values.where(matched, table.values(name))
            columns[parser.column] = values
            if name == key:
                issues.append(table.issues(name, line_index=line_index))
        else:
            columns[parser.column] = table.values(name)
            if in_lines:
                issues.append(table.issues(name, line_index=line_index))
    issues.append(_orphan_line_issues(plan, matched, line_index))
    return pd.DataFrame(columns, index=index)[list(LINE_COLUMNS)], issues


def _orphan_line_issues(plan: Plan, matched: np.ndarray, line_index: np.ndarray) -> pd.DataFrame:
    """INVALID_VALUE on order_number for lines whose order is not in the orders table."""
    table, key = plan.table, plan.key
    assert key is not None
    bad_key = table.parsed(key).bad.to_numpy(dtype=bool)  # already reported as a bad value
    orphan = ~matched & ~bad_key
    if not orphan.any():
        return pd.DataFrame(columns=list(ISSUE_COLUMNS))
    where = np.flatnonzero(orphan)
    # Name the order as the person sees it: its order number when the lines table has one.
    shown = "order_number" if "order_number" in table.fields else key
    header = table.match.headers[shown]
    raw = table.raw_column(shown).iloc[where].reset_index(drop=True).astype("str")
    blank = (raw.str.strip() == "").to_numpy(dtype=bool)
    orders_files = sorted({t.key for t in plan.pool.tables}) if plan.pool else []
    source = ", ".join(orders_files)
    message = (header + " '" + raw + "' has no order in the orders table (" + source + ")").where(
        ~blank, header + " is blank, so the line cannot be matched to an order in the orders table (" + source + ")"
    )
    return pd.DataFrame(
        {
            "line_index": pd.array(line_index[where], dtype="Int64"),
            "reason_code": str(ReasonCode.INVALID_VALUE),
            "field": "order_number",
            "file": table.raw.file_path,
            "sheet": table.raw.sheet_name,
            "row": pd.array(table.raw.row_numbers[where], dtype="Int64"),
            "column": header,
            "value": raw,
            "message": message,
        }
    )
