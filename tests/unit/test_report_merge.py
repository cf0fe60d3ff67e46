"""Report merging for partitioned runs (issue 7): partitions' exceptions, however they are
cut — some with none at all — merge into exactly the whole run's sorted exceptions (SPEC §5)."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from w365etl.report.build import EXCEPTION_COLUMNS, sort_exceptions
from w365etl.report.merge import compact_exceptions, merge_exceptions, merge_summaries
from w365etl.report.sheets import summary_rows

row = st.fixed_dictionaries({
    "run_id": st.just("run-1"),
    "severity": st.sampled_from(["error", "warning"]),
    "reason_code": st.sampled_from(["UNKNOWN_PRODUCT", "INVALID_VALUE", "NEEDS_PROVIDER_MAPPING"]),
    "file": st.sampled_from(["a.csv", "b.csv", None]),
    "row": st.one_of(st.none(), st.integers(2, 30)),
    "sheet": st.sampled_from([None, "Sheet1"]),
    "order_number": st.sampled_from(["SO-1", "SO-2", None]),
    "line_key": st.text("abc", min_size=1, max_size=3),
    "customer_name": st.sampled_from(["Acme", "Contoso", None]),
    "column": st.sampled_from(["Quantity", "Product ID", None]),
    "value": st.one_of(st.none(), st.text("xyz", max_size=2)),
    "message": st.sampled_from(["m1", "m2", "m3"]),
    "suggested_action": st.sampled_from(["Fix it in D365", "Add a mapping"]),
})


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=EXCEPTION_COLUMNS)
    return frame.astype({name: "string" for name in EXCEPTION_COLUMNS if name != "row"}).astype({"row": "Int64"})


def _values(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(None if pd.isna(value) else str(value) for value in values)
            for values in frame[EXCEPTION_COLUMNS].itertuples(index=False)]


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(row, max_size=40), cuts=st.lists(st.integers(0, 40), max_size=5))
def test_partitions_exceptions_merge_into_the_whole_runs(rows, cuts):
    whole = sort_exceptions(_frame(rows))
    bounds = [0, *sorted(min(cut, len(rows)) for cut in cuts), len(rows)]
    # each partition sorts its own, as build_exceptions does; empty ones included
    parts = [compact_exceptions(sort_exceptions(_frame(rows[start:end]))) for start, end in zip(bounds, bounds[1:])]
    merged = merge_exceptions(parts)
    # rows of one partition keep their order among equal keys; across partitions the whole
    # run's stable sort sees them in partition order, as merge does
    assert _values(merged) == _values(whole)


def test_a_partition_without_exceptions_merges():
    empty = compact_exceptions(_frame([]))
    some = compact_exceptions(_frame([{name: None for name in EXCEPTION_COLUMNS} | {
        "run_id": "r", "severity": "error", "reason_code": "INVALID_VALUE", "message": "m",
        "suggested_action": "Fix", "line_key": "k"}]))
    merged = merge_exceptions([empty, some, empty])
    assert len(merged) == 1 and merged.loc[0, "reason_code"] == "INVALID_VALUE"


def test_lines_that_tie_on_file_and_row_merge_in_the_whole_runs_order_however_they_were_cut():
    """Two lines waiting from different nights' files of the same name and row tie on every
    column a reviewer sorts by; order number and line key order them, so the partition that
    held each does not decide where it lands."""
    base = {name: None for name in EXCEPTION_COLUMNS} | {
        "run_id": "r", "severity": "warning", "reason_code": "NEEDS_PROVIDER_MAPPING", "file": "inbox/orders.csv",
        "row": 7, "message": "m", "suggested_action": "Add a mapping"}
    first = base | {"order_number": "SO-1", "line_key": "a"}
    second = base | {"order_number": "SO-2", "line_key": "b"}
    whole = sort_exceptions(_frame([second, first]))
    # the partition holding SO-2 comes first in the partitioned run
    merged = merge_exceptions([compact_exceptions(sort_exceptions(_frame([second]))),
                               compact_exceptions(sort_exceptions(_frame([first])))])
    assert list(merged["order_number"]) == list(whole["order_number"]) == ["SO-1", "SO-2"]


def _summary(warnings: list[str]) -> dict:
    return {"run_id": "r", "as_of": "2026-11-29", "dry_run": False, "files": [], "warnings": warnings,
            "lines": {"input": 1, "provisioned": 1, "rejected": 0, "failed": 0}, "orders": {"input": 1, "fulfilled": 1},
            "billing_contracts": {"created": 0, "reused": 0}, "subscriptions": {"created": 1, "updated": 0},
            "one_time_charges": {"created": 0}, "customers_needing_provider_mapping": 0,
            "exceptions_by_reason": {"INVALID_VALUE": 0}}


def test_a_warning_every_partition_gives_is_said_once_and_reaches_the_summary_sheet():
    """Each partition reads the same files, so a file's warning comes from each: the run's
    report lists it once, in first-seen order, on the Summary sheet too."""
    merged = merge_summaries([_summary(["a.csv: column X ignored", "Order 'SO-1' has no lines"]),
                              _summary(["a.csv: column X ignored", "Order 'SO-7' has no lines"])], files=[])
    assert merged["warnings"] == ["a.csv: column X ignored", "Order 'SO-1' has no lines", "Order 'SO-7' has no lines"]
    assert merged["lines"] == {"input": 2, "provisioned": 2, "rejected": 0, "failed": 0}
    rows = summary_rows(merged)
    assert rows.loc[rows["section"] == "Warnings", "value"].tolist() == merged["warnings"]


def test_import_the_status_updates_is_asked_only_when_an_order_is_in_them():
    from w365etl.report.sheets import next_steps
    summary = _summary([])
    assert any("order_status_updates.csv" in step for step in next_steps(summary))
    summary["orders"] = {"input": 1, "held": 1}
    assert not any("order_status_updates.csv" in step for step in next_steps(summary))


def test_a_dry_run_says_where_a_real_run_would_send_the_lines_not_that_they_went():
    from w365etl.report.build import run_notices
    real = run_notices(False, {"partner_center": "sandbox", "manual": "manual"})
    dry = run_notices(True, {"partner_center": "sandbox", "other": "record"})
    assert real == ["SANDBOX: partner_center lines went to the local Partner Center simulator, not to Microsoft."]
    assert dry[0].startswith("DRY RUN") and dry[1].startswith("RECORD: a real run would")
    assert dry[2].startswith("SANDBOX: a real run would send partner_center lines")
    assert not any("went to" in notice or "were recorded" in notice for notice in dry)
