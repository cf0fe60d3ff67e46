"""The sheets of ``fulfilment_report.xlsx`` (SPEC §5): what was provisioned, and what to do next.

Built from the run's lines with their final buckets, so a dry run gets the same workbook as a
real run would (without database ids).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from w365etl.amounts import decimals_to_text, units_to_text
from w365etl.columns import is_in
from w365etl.domain import outcomes
from w365etl.domain.subscriptions import CHARGE, CREATE, INCREASE
from w365etl.report.cells import Sheet

SHEET_NAMES = (
    "Summary", "Fulfilled Orders", "Billing Contracts", "Subscriptions", "One-Time Charges",
    "Needs Provider Mapping", "Exceptions", "Manual Tasks",
)


def summary_rows(summary: dict) -> pd.DataFrame:
    rows: list[tuple[str, str, object]] = []
    rows.append(("Run", "run id", summary["run_id"]))
    rows.append(("Run", "as of", summary["as_of"]))
    rows.append(("Run", "dry run", "yes" if summary["dry_run"] else "no"))
    for code, adapter in sorted(summary.get("provider_modes", {}).items()):
        rows.append(("Providers", code, adapter))
    for group in ("lines", "orders", "billing_contracts", "subscriptions", "one_time_charges"):
        for name, count in summary[group].items():
            rows.append((group.replace("_", " ").capitalize(), name.replace("_", " "), count))
    rows.append(("Customers", "needing provider mapping", summary["customers_needing_provider_mapping"]))
    for item in summary["files"]:
        rows.append(("Files", item["path"], f"{item['status']}: {item['rows']} rows, {item.get('layout') or '-'} / "
                     f"{item.get('dialect') or '-'}" + (f" — {item['error']}" if item.get("error") else "")))
        if item.get("unknown_columns"):
            rows.append(("Files", item["path"], "unknown columns ignored: " + ", ".join(item["unknown_columns"])))
    for warning in summary.get("warnings", []):
        rows.append(("Warnings", "set aside while reading", warning))
    for code, count in summary["exceptions_by_reason"].items():
        if count:
            rows.append(("Exceptions", code, count))
    return pd.DataFrame(rows, columns=["section", "item", "value"]).astype({"value": "string"})


def next_steps(summary: dict) -> tuple[str, ...]:
    """The 'what to do next' lines that open the Summary sheet."""
    steps = []
    mapping = summary["customers_needing_provider_mapping"]
    if mapping:
        steps.append(f"{mapping} customer(s) need a provider account mapping: fill in needs_provider_mapping.csv "
                     f"and load it as provider_accounts.csv ({summary['orders']['held']} order(s) held in all).")
    errors = sum(count for code, count in summary["exceptions_by_reason"].items()
                 if code not in ("NEEDS_PROVIDER_MAPPING", "ORDER_HAS_REJECTED_LINES", "ORDER_CANCELED",
                                 "ORDER_ALREADY_FULFILLED", "ORDER_INVOICED"))
    if summary["lines"]["rejected"]:
        steps.append(f"{summary['lines']['rejected']} line(s) were rejected: fix them in D365 and re-export "
                     f"(see Exceptions, {errors} problem(s)).")
    if summary["lines"]["failed"]:
        steps.append(f"{summary['lines']['failed']} line(s) failed at the provider: read the provider's message "
                     f"in Exceptions; they are retried on the next run.")
    if not summary["dry_run"] and summary["orders"].get("fulfilled", 0) + summary["orders"].get("already_fulfilled", 0):
        steps.append("Import order_status_updates.csv into D365 to mark the fulfilled orders.")
    return tuple(steps)


def build_sheets(
    *,
    summary: dict,
    lines: pd.DataFrame,
    orders: pd.DataFrame,
    exceptions: pd.DataFrame,
    needs_mapping: pd.DataFrame,
    new_contracts: pd.DataFrame,
    stored_contracts: pd.DataFrame,
    provider_modes: dict[str, str],
    provider_kinds: dict[str, str],
    as_of,
    max_rows: int | None = None,
) -> list[Sheet]:
    """The workbook's sheets. With ``max_rows`` (the xlsx cap, SPEC §5) each table is cut to its
    first ``max_rows`` rows *before* it is formatted, and the sheet keeps its full row count for
    the "showing the first …" line; the csv outputs are built elsewhere and stay complete."""
    notices = tuple(summary.get("notices", []))
    is_provisioned = (lines["bucket"] == outcomes.PROVISIONED).to_numpy(dtype=bool)
    action = lines["action"].astype("string")
    totals: dict[str, int] = {}

    def first_rows(name: str, frame: pd.DataFrame) -> pd.DataFrame:
        totals[name] = len(frame)
        return frame if max_rows is None or len(frame) <= max_rows else frame.iloc[:max_rows]

    def provisioned_rows(name: str, keep: pd.Series, columns: list[str]) -> pd.DataFrame:
        """The sheet's rows (the first ``max_rows``), only its columns: filtering the whole
        90-column frame would copy every column of a million lines."""
        positions = np.flatnonzero(is_provisioned & keep.fillna(False).to_numpy(dtype=bool))
        totals[name] = len(positions)
        if max_rows is not None:
            positions = positions[:max_rows]
        present = [column for column in ["line_index", *columns] if column in lines.columns]
        return lines[present].iloc[positions]

    done = first_rows("Fulfilled Orders", orders[orders["order_bucket"].isin(
        ["fulfilled", "already_fulfilled", "provisioned_not_fulfilled"])])
    # the first line of each order (by input position) names its id, customer and currency
    first_line = lines["line_index"].groupby(lines["order_key"], sort=False).idxmin()
    first_line = first_line[is_in(first_line.index.to_series(), done["order_key"]).to_numpy()]
    first = lines.loc[first_line.to_numpy(), ["order_key", "order_id", "customer_name", "currency_code",
                                              "line_index"]].set_index("order_key")
    order_lines = lines["order_key"].value_counts(sort=False)
    fulfilled = pd.DataFrame({
        "order_number": done["order_key"],
        "order_id": done["order_key"].map(first["order_id"]),
        "customer_name": done["order_key"].map(first["customer_name"]),
        "currency": done["order_key"].map(first["currency_code"]),
        "lines": done["order_key"].map(order_lines).astype("Int64"),
        "outcome": done["order_bucket"],
        "date_fulfilled": pd.Series(as_of, index=done.index).where(done["order_bucket"] == "fulfilled"),
    })

    contracts = _contract_rows(lines[["contract_number", "is_new_contract"]][is_provisioned], new_contracts,
                               stored_contracts)

    subs = provisioned_rows("Subscriptions", action.isin([CREATE, INCREASE]), [
        "line_pk", "action", "customer_name", "order_number", "line_key", "contract_number", "catalog_product_number",
        "catalog_product_name", "effective_provider_code", "provider_subscription_id_result", "quantity",
        "quantity_before_units", "quantity_after_units", "price_per_unit", "effective_provisioning_unit",
        "effective_term_duration"])
    subscription_number = pd.Series(pd.NA, index=subs.index, dtype="string")
    if "line_pk" in subs.columns:
        subscription_number = ("SUB-" + subs["line_pk"].astype("Int64").astype("string").str.zfill(8))
        subscription_number = subscription_number.where(subs["action"] == CREATE)
    subscriptions = pd.DataFrame({
        "subscription": subscription_number,
        "action": subs["action"].map({CREATE: "created", INCREASE: "quantity increased"}),
        "customer_name": subs["customer_name"], "order_number": subs["order_number"], "line_key": subs["line_key"],
        "billing_contract": subs["contract_number"], "product_number": subs["catalog_product_number"],
        "product_name": subs["catalog_product_name"], "provider": subs["effective_provider_code"],
        "provider_subscription_id": subs.get("provider_subscription_id_result", pd.Series(pd.NA, index=subs.index)),
        "quantity": decimals_to_text(subs["quantity"]),
        "quantity_before": units_to_text(subs["quantity_before_units"]),
        "quantity_after": units_to_text(subs["quantity_after_units"]),
        "price_per_unit": decimals_to_text(subs["price_per_unit"]),
        "provisioning_unit": subs["effective_provisioning_unit"], "term": subs["effective_term_duration"],
        "start_date": as_of,
    })

    charges_lines = provisioned_rows("One-Time Charges", action == CHARGE, [
        "customer_name", "order_number", "line_key", "contract_number", "catalog_product_number",
        "catalog_product_name", "effective_provider_code", "quantity", "price_per_unit", "extended_amount"])
    charges = pd.DataFrame({
        "customer_name": charges_lines["customer_name"], "order_number": charges_lines["order_number"],
        "line_key": charges_lines["line_key"], "billing_contract": charges_lines["contract_number"],
        "product_number": charges_lines["catalog_product_number"], "product_name": charges_lines["catalog_product_name"],
        "provider": charges_lines["effective_provider_code"], "quantity": decimals_to_text(charges_lines["quantity"]),
        "price_per_unit": decimals_to_text(charges_lines["price_per_unit"]),
        "extended_amount": decimals_to_text(charges_lines["extended_amount"]), "charge_date": as_of,
    })

    by_hand = provisioned_rows(
        "Manual Tasks", lines["effective_provider_code"].isin(by_hand_providers(provider_modes, provider_kinds)),
        ["action", "catalog_product_name", "catalog_product_number", "catalog_provider_sku", "quantity",
         "effective_term_duration", "effective_billing_frequency", "effective_provider_code", "customer_name",
         "provider_customer_id", "order_number", "line_key", "contract_number"])
    tasks = manual_tasks(
        by_hand.assign(product_name=by_hand["catalog_product_name"],
                       product_number=by_hand["catalog_product_number"],
                       provider_sku=by_hand["catalog_provider_sku"],
                       quantity=decimals_to_text(by_hand["quantity"]),
                       term_duration=by_hand["effective_term_duration"],
                       billing_frequency=by_hand["effective_billing_frequency"]),
        provider_modes, provider_kinds)

    return [
        Sheet("Summary", summary_rows(summary), banner=notices + next_steps(summary)),
        Sheet("Fulfilled Orders", fulfilled.reset_index(drop=True), banner=notices, total_rows=totals["Fulfilled Orders"],
              positions=done["order_key"].map(first["line_index"]).to_numpy(dtype="int64")),
        Sheet("Billing Contracts", contracts, banner=notices),
        Sheet("Subscriptions", subscriptions.reset_index(drop=True), banner=notices, total_rows=totals["Subscriptions"],
              positions=subs["line_index"].to_numpy(dtype="int64")),
        Sheet("One-Time Charges", charges.reset_index(drop=True), banner=notices, total_rows=totals["One-Time Charges"],
              positions=charges_lines["line_index"].to_numpy(dtype="int64")),
        Sheet("Needs Provider Mapping", needs_mapping, banner=notices),
        Sheet("Exceptions", exceptions, banner=notices),
        Sheet("Manual Tasks", tasks.reset_index(drop=True), banner=notices, total_rows=totals["Manual Tasks"],
              positions=by_hand["line_index"].to_numpy(dtype="int64")),
    ]


def manual_tasks(provisioned: pd.DataFrame, provider_modes: dict[str, str],
                 provider_kinds: dict[str, str]) -> pd.DataFrame:
    """What someone has to do by hand for the run's provisioned lines (manual providers, and
    automatic ones the run only recorded)."""
    recorded = {code for code, adapter in provider_modes.items() if adapter == "record"}
    lines = provisioned[provisioned["effective_provider_code"].isin(by_hand_providers(provider_modes, provider_kinds))]
    verb = lines["action"].map({CREATE: "Set up subscription", INCREASE: "Increase subscription",
                                CHARGE: "Deliver and bill one-time item"}).astype("string")
    product = lines["product_name"].astype("string").fillna(lines["product_number"].astype("string"))
    return pd.DataFrame({
        "task": verb + " " + product + " × " + lines["quantity"].astype("string") + " for "
        + lines["customer_name"].astype("string"),
        "provider": lines["effective_provider_code"],
        "how": pd.Series("manual provider", index=lines.index).where(
            ~lines["effective_provider_code"].isin(recorded), "buy in the provider portal (record mode)"),
        "customer_name": lines["customer_name"], "provider_customer_id": lines["provider_customer_id"],
        "order_number": lines["order_number"], "line_key": lines["line_key"],
        "product_number": lines["product_number"], "provider_sku": lines["provider_sku"],
        "quantity": lines["quantity"], "term": lines["term_duration"],
        "billing_frequency": lines["billing_frequency"], "billing_contract": lines["contract_number"],
    }).reset_index(drop=True)


def by_hand_providers(provider_modes: dict[str, str], provider_kinds: dict[str, str]) -> set[str]:
    """Providers whose lines a person carries out: manual ones, and automatic ones in record mode."""
    recorded = {code for code, adapter in provider_modes.items() if adapter == "record"}
    return {code for code, kind in provider_kinds.items() if kind == "manual"} | recorded


def _contract_rows(provisioned: pd.DataFrame, new_contracts: pd.DataFrame, stored: pd.DataFrame) -> pd.DataFrame:
    used = provisioned.groupby("contract_number").size()
    created = new_contracts.assign(status="created in this run")
    reused_numbers = provisioned.loc[~provisioned["is_new_contract"].astype(bool), "contract_number"].dropna().unique()
    reused = stored[stored["contract_number"].isin(reused_numbers)].assign(status="reused")
    columns = ["contract_number", "contract_name", "status", "contract_type", "contract_product_type",
               "billing_frequency", "currency_code"]
    frame = pd.concat([created.reindex(columns=columns + ["start_date", "end_date", "payment_terms", "process_refunds"]),
                       reused.reindex(columns=columns)], ignore_index=True)
    frame["lines_in_run"] = frame["contract_number"].map(used).fillna(0).astype("Int64")
    return order_contract_rows(frame)


def order_contract_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Created first, then reused, each by number: the same whichever order the lines came in
    (and whether the run was processed whole or in partitions)."""
    rank = frame["status"].map({"created in this run": 0, "reused": 1})
    return frame.assign(_rank=rank).sort_values(["_rank", "contract_number"], kind="stable") \
        .drop(columns="_rank").reset_index(drop=True)
