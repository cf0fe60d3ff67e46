"""Report building for a run processed in partitions (issue 7): the partitions' reports put
back together as the one report of the whole run (SPEC §5).

Partitions never share an order, a customer or a line id (:mod:`w365etl.partitions`), so
every count of ``summary.json`` is a sum, and every table is the union of the partitions'
tables put back in the order the whole run gives it: exceptions and the mapping list by their
own sort, sheets ordered by line position by the position of each row's line.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from w365etl.report.build import sort_exceptions, sort_needs_mapping, summary_files
from w365etl.report.cells import Sheet
from w365etl.report.sheets import next_steps, order_contract_rows, summary_rows

#: summary groups whose counts add up over partitions
_COUNT_GROUPS = ("lines", "orders", "billing_contracts", "subscriptions", "one_time_charges", "exceptions_by_reason")


def merge_summaries(parts: Sequence[dict], files: list[dict]) -> dict:
    """One ``summary.json`` from the partitions' (conservation holds per partition, so it
    holds for the sums)."""
    merged = dict(parts[0])
    for group in _COUNT_GROUPS:
        keys = list(dict.fromkeys(key for part in parts for key in part[group]))
        merged[group] = {key: int(sum(part[group].get(key, 0) for part in parts)) for key in keys}
    if "exceptions_by_reason" in merged:
        merged["exceptions_by_reason"] = dict(sorted(merged["exceptions_by_reason"].items()))
    merged["customers_needing_provider_mapping"] = int(sum(part["customers_needing_provider_mapping"] for part in parts))
    merged["files"] = summary_files(files)
    # each partition reads the same files: a file's warning is said once
    merged["warnings"] = list(dict.fromkeys(warning for part in parts for warning in part.get("warnings", [])))
    return merged


#: exception columns with few distinct values: held as categories while partitions gather
#: (millions of exception rows repeat the same run id, reason, action, file and column)
_REPEATED_COLUMNS = ("run_id", "severity", "reason_code", "file", "sheet", "column", "suggested_action",
                     "customer_name", "message")


def compact_exceptions(frame: pd.DataFrame) -> pd.DataFrame:
    """A partition's exceptions as they wait for the others: repeated columns as categories,
    the other text (order numbers, line keys, values) as Arrow strings — about a third of the
    memory of Python strings, and a ten-million-line run gathers millions of these rows."""
    kinds = {}
    for name in frame.columns:
        if name in _REPEATED_COLUMNS:
            kinds[name] = "category"
        elif frame[name].dtype == object or isinstance(frame[name].dtype, pd.StringDtype):
            kinds[name] = "string[pyarrow]"
    return frame.astype(kinds)


def merge_exceptions(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The partitions' exceptions as one table in the whole run's order (``sort_exceptions``).
    Categories are united with their values sorted, so they sort as the text would.

    ``parts`` is emptied as the columns are joined, so the partitions' copy and the joined copy
    exist together for one column at a time, not for the whole table."""
    names = list(parts[0].columns)
    columns = {}
    for name in names:
        values = [part[name] for part in parts]
        if all(isinstance(value.dtype, pd.CategoricalDtype) for value in values):
            # one set of categories, sorted, as plain text (a partition whose column is all
            # empty types its categories differently)
            categories = pd.Index(sorted(set().union(*(value.cat.categories.astype(object) for value in values))),
                                  dtype=object)
            columns[name] = pd.concat([value.cat.set_categories(categories) for value in values], ignore_index=True)
        else:
            columns[name] = pd.concat(values, ignore_index=True)
        del values
        for part in parts:
            if name in part.columns:
                del part[name]
    parts.clear()
    return sort_exceptions(pd.DataFrame(columns, copy=False))


def merge_needs_mapping(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    frames = [part for part in parts if not part.empty]
    return sort_needs_mapping(pd.concat(frames, ignore_index=True)) if frames else parts[0]


def merge_status_updates(parts: Sequence[pd.DataFrame | None]) -> pd.DataFrame | None:
    frames = [part for part in parts if part is not None]
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True).sort_values("order_number", kind="stable").reset_index(drop=True)


def combine_sheets(first: list[Sheet] | None, second: list[Sheet], max_rows: int | None) -> list[Sheet]:
    """Two partitions' workbook sheets as one, each sheet cut to ``max_rows`` again — so a run
    of many partitions never holds more than two sheets' worth of rows. The sheets built from
    the whole run's summary, exceptions and mapping list are left for :func:`finish_sheets`."""
    if first is None:
        return second
    combined = []
    for left, right in zip(first, second, strict=True):
        if left.name in _WHOLE_RUN_SHEETS:
            combined.append(left)
        elif left.positions is not None:
            combined.append(_by_position([left, right], left.banner, max_rows))
        else:  # Billing Contracts: created, then reused, each by number (as sheets.py orders them)
            frame = order_contract_rows(pd.concat([left.frame, right.frame], ignore_index=True))
            combined.append(Sheet(left.name, frame, banner=left.banner))
    return combined


def finish_sheets(sheets: list[Sheet], *, summary: dict, exceptions: pd.DataFrame,
                  needs_mapping: pd.DataFrame) -> list[Sheet]:
    """The sheets of the whole run: the combined ones, and those built from its merged reports."""
    notices = tuple(summary.get("notices", []))
    whole = {
        "Summary": Sheet("Summary", summary_rows(summary), banner=notices + next_steps(summary)),
        "Exceptions": Sheet("Exceptions", exceptions, banner=notices),
        "Needs Provider Mapping": Sheet("Needs Provider Mapping", needs_mapping, banner=notices),
    }
    return [whole.get(sheet.name, sheet) for sheet in sheets]


_WHOLE_RUN_SHEETS = frozenset({"Summary", "Exceptions", "Needs Provider Mapping"})


class PartitionReports:
    """The reports of a partitioned run, gathered partition by partition: counts, the complete
    csv tables, and workbook sheets kept cut to their cap (a partition's lines are gone by the
    time the next one is read)."""

    def __init__(self, max_sheet_rows: int | None) -> None:
        self.max_sheet_rows = max_sheet_rows
        self.summaries: list[dict] = []
        self.exceptions: list[pd.DataFrame] = []
        self.needs_mapping: list[pd.DataFrame] = []
        self.status_updates: list[pd.DataFrame | None] = []
        self.sheets: list[Sheet] | None = None

    def add(self, summary: dict, exceptions: pd.DataFrame, needs_mapping: pd.DataFrame,
            status_updates: pd.DataFrame | None, sheets: list[Sheet]) -> None:
        self.summaries.append(summary)
        self.exceptions.append(compact_exceptions(exceptions))
        self.needs_mapping.append(needs_mapping)
        self.status_updates.append(status_updates)
        self.sheets = combine_sheets(self.sheets, sheets, self.max_sheet_rows)

    def merged(self, files: list[dict]) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame | None, list[Sheet]]:
        summary = merge_summaries(self.summaries, files)
        gathered, self.exceptions = self.exceptions, []
        exceptions = merge_exceptions(gathered)
        needs_mapping = merge_needs_mapping(self.needs_mapping)
        updates = merge_status_updates(self.status_updates)
        sheets = finish_sheets(self.sheets or [], summary=summary, exceptions=exceptions, needs_mapping=needs_mapping)
        return summary, exceptions, needs_mapping, updates, sheets


def _by_position(sheets: list[Sheet], notices: tuple[str, ...], max_rows: int | None) -> Sheet:
    frame = pd.concat([sheet.frame for sheet in sheets], ignore_index=True)
    positions = np.concatenate([np.asarray(sheet.positions, dtype=np.int64) for sheet in sheets])
    order = np.argsort(positions, kind="stable")
    if max_rows is not None:
        order = order[:max_rows]
    total = sum(sheet.row_count for sheet in sheets)
    return Sheet(sheets[0].name, frame.iloc[order].reset_index(drop=True), banner=notices, total_rows=total,
                 positions=positions[order])
