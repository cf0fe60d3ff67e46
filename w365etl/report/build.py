"""Report building (SPEC §5): the frames people read after a run, and the run's invariants.

Pure: from the plan's lines (with their final buckets), the exceptions and the file records,
build ``summary.json``'s content, ``exceptions.csv``, ``needs_provider_mapping.csv``,
``order_status_updates.csv`` and the sheets of ``fulfilment_report.xlsx``. Writing them is the
report writers' job. The two conservation equations are checked here, and a run that breaks
them fails loudly rather than hand out a report that loses lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from w365etl.columns import is_in
from w365etl.domain import outcomes
from w365etl.domain.subscriptions import CHARGE, CREATE, INCREASE
from w365etl.reasons import MAPPING_HOLD_CODES, ReasonCode, severity_of, suggested_action_of

EXCEPTION_COLUMNS = [
    "run_id", "severity", "reason_code", "file", "row", "sheet", "order_number", "line_key",
    "customer_name", "column", "value", "message", "suggested_action",
]
ORDER_FIELDS = {
    "order_id", "order_number", "order_name", "customer_id", "customer_name", "currency",
    "order_state", "order_status_reason", "payment_terms",
}
#: frame column → the SPEC field whose header names it
FIELD_OF_COLUMN = {
    "currency_code": "currency", "order_state_code": "order_state",
    "order_status_reason_code": "order_status_reason",
}
DISPLAY_NAMES = {
    "order_id": "(Do Not Modify) Order", "order_number": "Order ID", "order_name": "Name",
    "customer_id": "customerid", "customer_name": "Customer", "currency": "Currency",
    "order_state": "Status", "order_status_reason": "Status Reason", "payment_terms": "Payment Terms",
    "line_id": "(Do Not Modify) Order Product", "line_number": "Line Item Number",
    "product_number": "Product ID", "product_name": "Existing Product", "write_in_product": "Write-In Product",
    "quantity": "Quantity", "unit": "Unit", "price_per_unit": "Price Per Unit",
    "volume_discount": "Volume Discount", "manual_discount": "Manual Discount", "tax": "Tax",
    "extended_amount": "Extended Amount", "contract_type": "Contract Type",
    "billing_frequency": "Billing Frequency", "contract_product_type": "Contract Product Type",
    "process_refunds": "Process Refunds", "billing_contract": "Billing Contract",
    "provision_as": "Provision As", "provisioning_unit": "Provisioning Unit",
    "provision_on": "Provision On", "fulfill_order": "Fulfill Order",
}


class ConservationError(AssertionError):
    """A line or an order is missing from, or counted twice in, the run's buckets."""


def build_exceptions(
    run_id: str,
    line_issues: pd.DataFrame,
    file_issues: pd.DataFrame,
    lines: pd.DataFrame,
    headers: dict[str, dict[str, str]],
) -> pd.DataFrame:
    """One row per problem, placed where a person finds it (file, sheet, spreadsheet row, column)."""
    issues = line_issues.copy()
    issues["field"] = issues["field"].replace(FIELD_OF_COLUMN)
    located = issues.merge(
        lines[["line_index", "file_path", "sheet_name", "row_number", "order_file_path", "order_sheet_name",
               "order_row_number", "table_key", "order_table_key", "order_number", "line_key", "customer_name"]],
        on="line_index", how="left", suffixes=("", "_line"),
    )
    is_order_field = located["field"].isin(ORDER_FIELDS)
    for target, line_source, order_source in (
        ("file", "file_path", "order_file_path"), ("sheet", "sheet_name", "order_sheet_name"),
        ("row", "row_number", "order_row_number"),
    ):
        derived = located[line_source].where(~is_order_field, located[order_source])
        if target in located.columns:
            located[target] = located[target].where(located[target].notna(), derived)
        else:
            located[target] = derived
    table = located["table_key"].where(~is_order_field, located["order_table_key"])
    # the header as the person sees it in that file: one small frame of (table, field) → header,
    # joined to the issues (not a lookup per issue row)
    known = pd.DataFrame([(key, field, text) for key, fields in headers.items() for field, text in fields.items()],
                         columns=["table_key", "field", "header"])
    wanted = pd.DataFrame({"table_key": table.astype("string"), "field": located["field"].astype("string")})
    header = wanted.merge(known.astype("string"), on=["table_key", "field"], how="left")["header"]
    header = pd.Series(header.to_numpy(), index=located.index, dtype="string")
    header = header.fillna(located["field"].map(DISPLAY_NAMES).astype("string"))
    if "column" in located.columns:
        located["column"] = located["column"].astype("string").fillna(header)
    else:
        located["column"] = header
    frame = pd.DataFrame({
        "run_id": run_id,
        "reason_code": located["reason_code"].astype("string"),
        "file": located["file"].astype("string"),
        "row": pd.to_numeric(located["row"], errors="coerce").astype("Int64"),
        "sheet": located["sheet"].astype("string"),
        "order_number": located["order_number"].astype("string"),
        "line_key": located["line_key"].astype("string"),
        "customer_name": located["customer_name"].astype("string"),
        "column": located["column"].astype("string"),
        "value": located["value"].astype("string"),
        "message": located["message"].astype("string"),
    })
    if not file_issues.empty:
        files = pd.DataFrame({
            "run_id": run_id, "reason_code": file_issues["reason_code"].astype("string"),
            "file": file_issues["file"].astype("string"),
            "row": pd.to_numeric(file_issues.get("row"), errors="coerce").astype("Int64"),
            "sheet": file_issues.get("sheet", pd.Series(pd.NA, index=file_issues.index)).astype("string"),
            "order_number": pd.NA, "line_key": pd.NA, "customer_name": pd.NA,
            "column": file_issues.get("column", pd.Series(pd.NA, index=file_issues.index)).astype("string"),
            "value": file_issues.get("value", pd.Series(pd.NA, index=file_issues.index)).astype("string"),
            "message": file_issues["message"].astype("string"),
        })
        frame = pd.concat([files, frame], ignore_index=True)
    codes = frame["reason_code"].drop_duplicates()
    frame["severity"] = frame["reason_code"].map({code: str(severity_of(code)) for code in codes})
    frame["suggested_action"] = frame["reason_code"].map({code: suggested_action_of(code) for code in codes})
    return sort_exceptions(frame[EXCEPTION_COLUMNS])


def sort_exceptions(frame: pd.DataFrame) -> pd.DataFrame:
    """What a reviewer works through: errors first, then grouped by what to do about them,
    then by file and row (stable: one line's problems keep the order they were found in).

    Order number and line key break the remaining ties between *different* lines — lines
    waiting from earlier nights can share a file name and row — so the order does not depend
    on how a partitioned run was cut (issue 7: results identical to the run read whole)."""
    order = {"error": 0, "warning": 1}
    frame = frame.assign(_severity=frame["severity"].astype("string").map(order).astype("int8")).sort_values(
        ["_severity", "suggested_action", "reason_code", "file", "row", "order_number", "line_key"],
        kind="stable").drop(columns="_severity")
    return frame.reset_index(drop=True)


def build_needs_provider_mapping(lines: pd.DataFrame) -> pd.DataFrame:
    """R3: one row per (customer, provider) with a line held for a missing or invalid mapping.

    Its first four columns are those of ``provider_accounts.csv``: filled in, it is the
    reference file that releases the held orders.
    """
    columns = lines[["customer_key", "effective_provider_code", "customer_name", "crm_customer_id", "mapping_reason",
                     "order_key"]]  # a row filter on all 90 columns would copy them all
    held = columns[(lines["bucket"] == outcomes.HELD) & lines["mapping_reason"].isin([str(c) for c in MAPPING_HOLD_CODES])]
    if held.empty:
        return pd.DataFrame(columns=["customer_name", "customer_id", "provider", "provider_customer_id",
                                     "reason_code", "held_orders", "held_lines"])
    grouped = held.groupby(["customer_key", "effective_provider_code"], sort=True).agg(
        customer_name=("customer_name", "first"), customer_id=("crm_customer_id", "first"),
        reason_code=("mapping_reason", "first"),
        held_orders=("order_key", lambda orders: "; ".join(sorted(set(orders)))),
    ).reset_index()
    # the held lines of this row's held orders (all of their lines wait for this mapping)
    row_orders = held[["customer_key", "effective_provider_code", "order_key"]].drop_duplicates()
    held_lines = lines.loc[lines["bucket"] == outcomes.HELD, ["customer_key", "order_key"]]
    line_counts = row_orders.merge(held_lines, on=["customer_key", "order_key"]).groupby(
        ["customer_key", "effective_provider_code"]).size()
    counts = pd.MultiIndex.from_frame(grouped[["customer_key", "effective_provider_code"]]).map(line_counts)
    frame = pd.DataFrame({
        "customer_name": grouped["customer_name"], "customer_id": grouped["customer_id"],
        "provider": grouped["effective_provider_code"], "provider_customer_id": "",
        "reason_code": grouped["reason_code"], "held_orders": grouped["held_orders"],
        "held_lines": pd.Series(counts, index=grouped.index).astype("Int64"),
    })
    return sort_needs_mapping(frame)


def sort_needs_mapping(frame: pd.DataFrame) -> pd.DataFrame:
    """By customer and provider; a total order, so that it never depends on line order."""
    return frame.sort_values(["customer_name", "provider", "customer_id", "held_orders"], kind="stable",
                             na_position="last").reset_index(drop=True)


def build_order_status_updates(orders: pd.DataFrame, fulfilled: pd.DataFrame) -> pd.DataFrame:
    """R7: orders to re-import into D365 as Fulfilled / Complete (statecode 3, statuscode 100001)."""
    due = orders[orders["is_fulfilment_due"]][["order_key"]].rename(columns={"order_key": "order_number"})
    merged = due.merge(fulfilled, on="order_number", how="left")
    return pd.DataFrame({
        "order_id": merged.get("order_id", pd.Series(pd.NA, index=merged.index)),
        "order_number": merged["order_number"],
        "statecode": 3,
        "statuscode": 100001,
        "date_fulfilled": merged.get("fulfilled_date", pd.Series(pd.NA, index=merged.index)),
    }).sort_values("order_number").reset_index(drop=True)


def check_conservation(lines: pd.DataFrame, orders: pd.DataFrame) -> None:
    """SPEC §5: every line in exactly one bucket, every order in exactly one bucket."""
    # set operations on the distinct values only: a million-line run has a handful of buckets
    unknown = set(lines["bucket"].unique()) - set(outcomes.LINE_BUCKETS)
    if unknown:
        raise ConservationError(f"lines left in no final bucket: {sorted(map(str, unknown))}")
    if lines["line_index"].duplicated().any():
        raise ConservationError("a line is counted twice")
    if set(orders["order_bucket"].unique()) - set(outcomes.ORDER_BUCKETS):
        raise ConservationError("orders left in no final bucket")
    line_orders = pd.Series(lines["order_key"].unique())
    if (orders["order_key"].duplicated().any() or len(line_orders) != len(orders)
            or not is_in(line_orders, orders["order_key"]).all()):
        raise ConservationError("orders counted twice or lost")


def build_summary(
    *,
    run_id: str,
    as_of: dt.date,
    is_dry_run: bool,
    files: list[dict],
    lines: pd.DataFrame,
    orders: pd.DataFrame,
    exceptions: pd.DataFrame,
    needs_mapping: pd.DataFrame,
    new_contracts: pd.DataFrame,
    provider_modes: dict[str, str],
    warnings: Sequence[str] = (),
) -> dict:
    """``summary.json`` (SPEC §5); every count an int, conservation checked before returning.

    ``warnings``: what reading the files set aside without an exception row — a sheet skipped,
    an order with no lines ignored (SPEC §2.1 "ignored with a warning"), a repeated order row —
    so the report says it, not only the run's log."""
    check_conservation(lines, orders)
    bucket_counts = lines["bucket"].value_counts().to_dict()
    order_counts = orders["order_bucket"].value_counts().to_dict()
    # only the columns counted below: a row filter on the whole frame would copy every column
    provisioned = lines[["is_new_contract", "contract_key", "action", "target_subscription_pk"]][
        lines["bucket"] == outcomes.PROVISIONED]
    reused = provisioned.loc[~provisioned["is_new_contract"].astype(bool), "contract_key"].dropna().nunique()
    summary = {
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "dry_run": is_dry_run,
        "notices": run_notices(is_dry_run, provider_modes),
        "provider_modes": provider_modes,
        "files": summary_files(files),
        "warnings": list(dict.fromkeys(warnings)),
        "lines": {"input": int(len(lines))} | {name: int(bucket_counts.get(name, 0)) for name in outcomes.LINE_BUCKETS}
        | {"reevaluated": int(lines["is_reevaluated"].sum()) if "is_reevaluated" in lines.columns else 0},
        "orders": {"input": int(len(orders))} | {name: int(order_counts.get(name, 0)) for name in outcomes.ORDER_BUCKETS},
        "customers_needing_provider_mapping": int(len(needs_mapping)),
        "billing_contracts": {"created": int(len(new_contracts)), "reused": int(reused)},
        "subscriptions": {
            "created": int((provisioned["action"] == CREATE).sum()),
            "updated": int(provisioned.loc[provisioned["action"] == INCREASE, "target_subscription_pk"].nunique()),
        },
        "one_time_charges": {"created": int((provisioned["action"] == CHARGE).sum())},
        # every known code, zeros included, so the keys are the same from run to run
        "exceptions_by_reason": {
            code: int(count) for code, count in sorted(
                ({str(reason): 0 for reason in ReasonCode} | exceptions["reason_code"].astype("string").value_counts().to_dict()).items())
        },
    }
    line_total = sum(summary["lines"][name] for name in outcomes.LINE_BUCKETS)
    order_total = sum(summary["orders"][name] for name in outcomes.ORDER_BUCKETS)
    if line_total != summary["lines"]["input"] or order_total != summary["orders"]["input"]:
        raise ConservationError(f"buckets do not add up: lines {summary['lines']}, orders {summary['orders']}")
    return summary


def summary_files(files: list[dict]) -> list[dict]:
    """``summary.json``'s file records (SPEC §5)."""
    return [{key: item.get(key) for key in ("path", "sha256", "layout", "dialect", "rows", "status", "error")}
            | {"unknown_columns": list(item.get("unknown_columns") or [])} for item in files]


def run_notices(is_dry_run: bool, provider_modes: dict[str, str]) -> list[str]:
    """The lines every report opens with when the run was not a real provisioning run."""
    notices = []
    if is_dry_run:
        notices.append("DRY RUN: nothing was written to the database and no provider was called; "
                       "counts say what a real run would do if every provider accepted every line.")
    for code, adapter in sorted(provider_modes.items()):
        # a dry run called no provider: say where a real run would send the lines
        if adapter == "sandbox" and is_dry_run:
            notices.append(f"SANDBOX: a real run would send {code} lines to the local Partner Center simulator, "
                           "not to Microsoft.")
        elif adapter == "sandbox":
            notices.append(f"SANDBOX: {code} lines went to the local Partner Center simulator, not to Microsoft.")
        elif adapter == "record" and is_dry_run:
            notices.append(f"RECORD: a real run would only record {code} purchases; nobody would be called — "
                           "they are bought in the portal (Manual Tasks).")
        elif adapter == "record":
            notices.append(f"RECORD: {code} purchases were recorded only; nobody was called — buy them in the portal (Manual Tasks).")
    return notices
