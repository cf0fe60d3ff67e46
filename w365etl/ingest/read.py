"""``read_order_files``: every order file of a run → normalised lines, issues, file records.

Files are independent: a file that cannot be read, names a field twice or lacks a required
column is rejected whole (one ``file_issues`` row) and the others go on. Within a readable
file every bad cell is an issue row and the line is still returned, with NA in that field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from schemas.sales_orders import NormalisedLines
from w365etl.ingest.headers import FIELDS
from w365etl.ingest.layouts import (
    FLAT,
    HEADER_LINES,
    OrdersPool,
    Plan,
    Table,
    build_lines,
    join_key,
    join_key_message,
    missing_fields,
    missing_message,
)
from w365etl.ingest.tables import FileRejected, InputLimits, OrderFileReader
from w365etl.ingest.result import FileRecord, IngestResult, empty_lines, file_issues_frame, issues_frame
from w365etl.ingest.values import DATE_ORDERS, number_format
from w365etl.reasons import ReasonCode


@dataclass
class _FileState:
    path: str
    sha256: str | None = None
    kind: str | None = None
    tables: list[Table] = field(default_factory=list)
    layout: str | None = None
    error: str | None = None
    plans: list[Plan] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def lines_tables(self) -> list[Table]:
        return [table for table in self.tables if table.is_lines]

    @property
    def orders_tables(self) -> list[Table]:
        return [table for table in self.tables if not table.is_lines]


class _Run:
    def __init__(self, number_locale: str, read_file: OrderFileReader, limits: InputLimits) -> None:
        self.number_locale = number_locale
        self.read_file = read_file
        self.limits = limits
        self.warnings: list[str] = []
        self.file_issues: list[dict[str, object]] = []

    def reject(
        self,
        state: _FileState,
        code: ReasonCode,
        message: str,
        *,
        sheet: str | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        state.error = message
        state.plans = []
        self.file_issues.append(
            {
                "reason_code": str(code),
                "file": state.path,
                "sheet": sheet,
                "row": pd.NA,
                "column": column,
                "value": value,
                "message": message,
            }
        )

    def load(self, path: Path) -> _FileState:
        state = _FileState(str(path))
        try:
            content = self.read_file(path, number_locale=self.number_locale, limits=self.limits)
        except FileRejected as error:
            state.sha256 = error.sha256
            self.reject(state, ReasonCode.FILE_REJECTED, str(error))
            return state
        state.sha256, state.kind = content.sha256, content.kind
        unrelated: list[str] = []
        for raw in content.tables:
            table = Table.of(raw, self.number_locale)
            if content.kind == "xlsx" and not table.is_related:
                # the header is the sheet's first non-blank row: say which row that was
                why = (
                    f"sheet '{raw.sheet_name}' skipped: its header row {raw.header_row} (the first non-blank row) "
                    "has no Quantity column and fewer than 3 sales order columns"
                )
                self.warnings.append(f"{state.path}: {why}.")
                unrelated.append(why)
                continue
            state.tables.append(table)
        if content.kind == "xlsx" and any(table.is_lines for table in state.tables):
            # beside a lines sheet, a sheet with no Quantity and no order key (a summary, a
            # pivot) cannot be an orders table: nothing could join with it
            for table in [table for table in state.tables if not table.is_lines and not table.has_join_key]:
                why = (f"sheet '{table.raw.sheet_name}' skipped: it has no Quantity column and no "
                       f"{FIELDS['order_number'].label} or {FIELDS['order_id'].label} column to join its rows on")
                self.warnings.append(f"{state.path}: {why}.")
                state.tables.remove(table)
        if not state.tables:
            self.reject(
                state,
                ReasonCode.FILE_REJECTED,
                "The workbook has no sheet with sales order columns"
                + (f" ({'; '.join(unrelated + content.skipped)})." if unrelated or content.skipped else "."),
            )
            return state
        for table in state.tables:
            for name, headers in table.match.ambiguous.items():
                shown = " and ".join(f"'{header}'" for header in headers)
                self.reject(
                    state,
                    ReasonCode.AMBIGUOUS_COLUMN,
                    f"Columns {shown} both mean {FIELDS[name].label}; keep only one of them.",
                    sheet=table.raw.sheet_name,
                    column=" / ".join(headers),
                )
                return state
        return state

    def plan(self, state: _FileState, run_pool: OrdersPool | None) -> None:
        """Decide the layout of a readable file and check its required columns."""
        lines, orders = state.lines_tables, state.orders_tables
        if not lines:
            if run_pool is not None and any(table.has_join_key for table in orders):
                state.layout = HEADER_LINES
                return
            # No lines table in the run to join with: judged as a flat table (no Quantity).
            state.layout = FLAT
            table = orders[0]
            column, message = missing_message(missing_fields(table.fields), joined=False)
            self.reject(state, ReasonCode.MISSING_COLUMN, message, sheet=table.raw.sheet_name, column=column)
            return
        pool = OrdersPool(orders) if orders else run_pool
        # a lines table carrying its own order columns is a flat export, even when another
        # file of the run is a standalone orders table: it joins with nothing
        if not orders and pool is not None and not missing_fields(
            set().union(*(table.fields for table in lines))
        ):
            pool = None
        state.layout = FLAT if pool is None else HEADER_LINES
        plans = []
        for table in lines:
            key = None
            if pool is not None:
                key = join_key(table, pool)
                if key is None:
                    column, message = join_key_message()
                    self.reject(state, ReasonCode.MISSING_COLUMN, message, sheet=table.raw.sheet_name, column=column)
                    return
            fields = table.fields | (pool.fields if pool is not None else set())
            missing = missing_fields(fields)
            if missing:
                column, message = missing_message(missing, joined=pool is not None)
                self.reject(state, ReasonCode.MISSING_COLUMN, message, sheet=table.raw.sheet_name, column=column)
                return
            plans.append(Plan(table, pool, key))
        state.plans = plans


def read_order_files(
    paths: Sequence[Path | str], *, read_file: OrderFileReader, number_locale: str = "en-US",
    date_order: str = "MDY", limits: InputLimits | None = None,
) -> IngestResult:
    """Read, join and parse the order files of one run (SPEC §2.1).

    ``number_locale`` decides how money and quantities written as text are read;
    ``date_order`` how text dates are read (no date column is part of the line contract yet;
    it is validated so that a bad setting fails early). ``limits``: how much one file may
    hold (:class:`InputLimits`; a file over a limit is rejected whole).
    """
    number_format(number_locale)
    if date_order not in DATE_ORDERS:
        raise ValueError(f"unknown date order {date_order!r}; expected one of {', '.join(DATE_ORDERS)}")
    run = _Run(number_locale, read_file, limits or InputLimits())
    states = [run.load(Path(path)) for path in paths]

    readable = [state for state in states if state.ok]
    # an orders table needs a column to join on: a file without one (an unrelated CSV given
    # beside the export) is judged alone — rejected, never silently read as nothing
    standalone = [state for state in readable
                  if not state.lines_tables and any(table.has_join_key for table in state.orders_tables)]
    loose = [state for state in readable if state.lines_tables and not state.orders_tables]
    run_pool = None
    if standalone and loose:
        run_pool = OrdersPool([table for state in standalone for table in state.orders_tables])
    for state in readable:
        run.plan(state, run_pool)

    frames: list[pd.DataFrame] = []
    issue_frames: list[pd.DataFrame] = []
    pools: list[OrdersPool] = [run_pool] if run_pool is not None else []
    offset = 0
    for state in states:
        for plan in state.plans:
            frame, issues = build_lines(plan, offset)
            offset += len(frame)
            frames.append(frame)
            issue_frames.extend(issues)
            if plan.pool is not None and all(plan.pool is not pool for pool in pools):
                pools.append(plan.pool)
    for pool in pools:
        issue_frames.extend(pool.issues())
        run.warnings.extend(pool.warnings)
        run.warnings.extend(pool.orphan_warnings())

    lines = pd.concat(frames, ignore_index=True) if frames else empty_lines()
    headers: dict[str, dict[str, str]] = {}
    for state in readable:
        if state.ok:
            for table in state.tables:
                headers[table.key] = dict(table.match.headers)

    lines = NormalisedLines.validate(lines)  # the stage's invariant: its output contract
    return IngestResult(
        lines=lines,
        issues=issues_frame(issue_frames),
        files=[_record(state) for state in states],
        file_issues=file_issues_frame(run.file_issues),
        headers=headers,
        warnings=run.warnings,
    )


def _record(state: _FileState) -> FileRecord:
    lines = state.lines_tables
    used = lines or state.orders_tables
    unknown: list[str] = []
    for table in state.tables:
        unknown.extend(header for header in table.match.unknown if header not in unknown)
    dialect = used[0].match.dialect if used else None
    return FileRecord(
        path=state.path,
        sha256=state.sha256,
        layout=state.layout,
        dialect=dialect,
        rows=sum(len(table) for table in used),
        status="read" if state.ok else "rejected",
        error=state.error,
        unknown_columns=unknown,
        sheets=[table.raw.sheet_name for table in state.tables if table.raw.sheet_name is not None],
    )
