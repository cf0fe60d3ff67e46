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

from w365etl.report.build import sort_exceptions, sort_needs_mapping
from w365etl.report.cells import Sheet
from w365etl.report.sheets import next_steps, summary_rows

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
    merged["files"] = [
        {key: item.get(key) for key in ("path", "sha256", "layout", "dialect", "rows", "status", "error")}
        | {"unknown_columns": list(item.get("unknown_columns") or [])}
        for item in files
    ]
    return merged


def merge_exceptions(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    return sort_exceptions(pd.concat(list(parts), ignore_index=True))


def merge_needs_mapping(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    frames = [part for part in parts if not part.empty]
    return sort_needs_mapping(pd.concat(frames, ignore_index=True)) if frames else parts[0]


def merge_status_updates(parts: Sequence[pd.DataFrame | None]) -> pd.DataFrame | None:
    frames = [part for part in parts if part is not None]
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True).sort_values("order_number", kind="stable").reset_index(drop=True)


def merge_sheets(parts: Sequence[list[Sheet]], *, summary: dict, exceptions: pd.DataFrame,
                 needs_mapping: pd.DataFrame, max_rows: int | None) -> list[Sheet]:
    """The workbook's sheets of the whole run, each cut to ``max_rows`` again."""
    notices = tuple(summary.get("notices", []))
    merged = []
    for index, first in enumerate(parts[0]):
        sheets = [part[index] for part in parts]
        if first.name == "Summary":
            merged.append(Sheet("Summary", summary_rows(summary), banner=notices + next_steps(summary)))
        elif first.name == "Exceptions":
            merged.append(Sheet("Exceptions", exceptions, banner=notices))
        elif first.name == "Needs Provider Mapping":
            merged.append(Sheet("Needs Provider Mapping", needs_mapping, banner=notices))
        elif first.positions is not None:
            merged.append(_by_position(sheets, notices, max_rows))
        else:  # Billing Contracts: each partition's rows, in the sheet's own order
            frame = pd.concat([sheet.frame for sheet in sheets], ignore_index=True)
            if "status" in frame.columns and "contract_number" in frame.columns:
                rank = frame["status"].map({"created in this run": 0, "reused": 1})
                frame = frame.assign(_rank=rank).sort_values(["_rank", "contract_number"], kind="stable") \
                    .drop(columns="_rank").reset_index(drop=True)
            merged.append(Sheet(first.name, frame, banner=notices))
    return merged


def _by_position(sheets: list[Sheet], notices: tuple[str, ...], max_rows: int | None) -> Sheet:
    frame = pd.concat([sheet.frame for sheet in sheets], ignore_index=True)
    positions = np.concatenate([np.asarray(sheet.positions, dtype=np.int64) for sheet in sheets])
    order = np.argsort(positions, kind="stable")
    if max_rows is not None:
        order = order[:max_rows]
    total = sum(sheet.row_count for sheet in sheets)
    return Sheet(sheets[0].name, frame.iloc[order].reset_index(drop=True), banner=notices, total_rows=total,
                 positions=positions[order])
