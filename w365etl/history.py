"""Run history (nightly operation, item 5): past runs listed, and a run's reports rebuilt.

Pure: from the frames ``w365etl.adapters.run_history`` reads, build the list ``w365etl runs``
prints and the files ``w365etl report RUN_ID`` writes again. The report builders of
``w365etl.report`` are reused wherever the database holds what they need, so a rebuilt file
has the same columns, order and format as the run's own.

How faithful each rebuilt file is:

* ``summary.json`` — identical: the run stored it whole (``runs.summary_json``).
* ``exceptions.csv`` — identical: the run stored every row (the ``exceptions`` table).
* ``needs_provider_mapping.csv`` — the run's held lines (``line_outcomes``) whose own provider
  mapping is missing or invalid, grouped by ``report.build.build_needs_provider_mapping``. A
  line's own gap is read from its stored plan (automatic provider, no provider account) when
  the run was the last to plan it; a line planned again by a later run falls back to the hold
  reason this run recorded (NEEDS_PROVIDER_MAPPING / PROVIDER_MAPPING_INVALID), so a line of
  such an order held only for a rejected line (R2) is then not listed. Provider kinds come
  from the current settings; names and CRM ids from the stored customer.
* ``order_status_updates.csv`` — the run's orders whose every line ended ``provisioned`` or
  ``already_provisioned`` in the run and that the database has Fulfilled by this run or an
  earlier one (fulfilled by a later run: not listed), with their stored fulfilment date.
  This covers both what the run fulfilled (``orders.fulfilled_run_id``) and the fulfilled
  orders it re-listed (R7). An order whose Fulfill Order said No in this run but that an
  earlier run had fulfilled is listed although the run did not.
* ``fulfilment_report.xlsx`` — Summary (from ``summary.json``), Fulfilled Orders, Billing
  Contracts (created by the run, or used by a line it provisioned), Subscriptions (created by
  the run, and the quantity increases it made), One-Time Charges, Needs Provider Mapping,
  Exceptions, Manual Tasks; rows are what the database holds now for that run.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from w365etl.domain import outcomes
from w365etl.reasons import MAPPING_HOLD_CODES, ReasonCode
from w365etl.report import build
from w365etl.report.cells import Sheet
from w365etl.report.sheets import manual_tasks, next_steps, summary_rows

REBUILT_NOTICE = ("REBUILT from the database by `w365etl report`: the rows are what the database holds now "
                  "for this run.")
RUNS_COLUMNS = ["run_id", "started_at", "as_of", "status", "files", "lines_in", "provisioned", "held",
                "rejected", "failed", "orders_fulfilled"]
_DONE = (outcomes.PROVISIONED, outcomes.ALREADY_PROVISIONED)


class RunNotFound(LookupError):
    """No run with this id in the database."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


#: a run found killed while running: its process was gone (``adapters.process_owners``), or an
#: operator said so (``w365etl mark-interrupted``)
INTERRUPTED = "interrupted"


class RunNotMarked(ValueError):
    """A run could not be marked interrupted; the message says why and what to do."""


class RunNotFinished(ValueError):
    """The run has no recorded summary: it is still running, or it stopped before its reports."""


@dataclass(frozen=True)
class RunRecords:
    """What the database holds of one run (read by ``adapters.run_history``)."""

    run: dict[str, Any]
    lines: pd.DataFrame
    contracts: pd.DataFrame
    subscriptions: pd.DataFrame
    subscription_changes: pd.DataFrame
    one_time_charges: pd.DataFrame
    exceptions: pd.DataFrame


@dataclass(frozen=True)
class RebuiltReports:
    summary: dict
    exceptions: pd.DataFrame
    needs_mapping: pd.DataFrame
    order_status_updates: pd.DataFrame
    sheets: list[Sheet]
    #: false when the run recorded outcomes for only some of its lines (see ``run_lines``)
    outcomes_complete: bool = True


# --------------------------------------------------------------------------- the list of runs


def _timestamp_text(value: Any) -> str | None:
    if value is None or value is pd.NaT or (not isinstance(value, (dt.datetime, str)) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def runs_overview(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run with its counts (from its summary; NA while it has none), in the given order."""
    summaries = [json.loads(text) if isinstance(text, str) and text else None for text in runs["summary_json"]]

    def count(path: tuple[str, ...]) -> pd.Series:
        values = []
        for summary in summaries:
            value: Any = summary
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            values.append(value)
        return pd.Series(values, index=runs.index, dtype="Int64")

    return pd.DataFrame({
        "run_id": runs["run_id"].astype("string"),
        "started_at": pd.Series([_timestamp_text(value) for value in runs["started_at"]], index=runs.index,
                                dtype="string"),
        "as_of": pd.Series([None if pd.isna(value) else str(value) for value in runs["as_of_date"]],
                           index=runs.index, dtype="string"),
        "status": runs["status"].astype("string"),
        "files": pd.Series([len(s["files"]) if s and isinstance(s.get("files"), list) else None for s in summaries],
                           index=runs.index, dtype="Int64"),
        "lines_in": count(("lines", "input")),
        "provisioned": count(("lines", "provisioned")),
        "held": count(("lines", "held")),
        "rejected": count(("lines", "rejected")),
        "failed": count(("lines", "failed")),
        "orders_fulfilled": count(("orders", "fulfilled")),
    }, columns=RUNS_COLUMNS)


# --------------------------------------------------------------------------- one run's reports


def rebuild_reports(records: RunRecords, *, provider_kinds: dict[str, str]) -> RebuiltReports:
    """Every report of the run, from what the database holds (see the module docstring)."""
    run_id = records.run["run_id"]
    summary_json = records.run.get("summary_json")
    if not summary_json:
        if records.run.get("status") == INTERRUPTED:
            raise RunNotFinished(f"run {run_id} was interrupted: its process ended before it recorded its reports "
                                 "(killed — out of memory, a reboot — or stopped by an error it could not record; "
                                 "the log of that run says which). What it stored stays; run the same files again "
                                 "to finish its work (nothing is provisioned twice)")
        raise RunNotFinished(f"run {run_id} has no recorded summary (status '{records.run.get('status')}'): "
                             "its reports are recorded when it finishes")
    summary = json.loads(summary_json)
    exceptions = exceptions_report(records.exceptions)
    lines, complete = run_lines(records.lines, summary)
    lines = _with_keys(lines)
    needs_mapping = needs_provider_mapping(lines, run_id=run_id, provider_kinds=provider_kinds)
    orders = run_orders(lines, run_id=run_id, started_at=records.run.get("started_at"))
    fulfilled = orders[["order_key", "order_id", "fulfilled_date"]].rename(columns={"order_key": "order_number"})
    updates = build.build_order_status_updates(orders, fulfilled)
    sheets = report_sheets(records, summary=summary, lines=lines, orders=orders, exceptions=exceptions,
                           needs_mapping=needs_mapping, provider_kinds=provider_kinds)
    return RebuiltReports(summary, exceptions, needs_mapping, updates, sheets, complete)


def run_lines(lines: pd.DataFrame, summary: dict) -> tuple[pd.DataFrame, bool]:
    """The run's lines: its recorded outcomes when they cover every line it counted; else
    (runs that recorded only their planned lines) completed by the stand-ins the adapter
    reads, which hold for the lines and orders no later run has seen. Returns the lines and
    whether the outcomes were complete."""
    recorded = lines["recorded"].astype("boolean").fillna(False).astype(bool)
    complete = int(recorded.sum()) >= int(summary.get("lines", {}).get("input", 0))
    chosen = lines[recorded] if complete else lines
    chosen = chosen.sort_values(["line_pk"], kind="stable").drop_duplicates("line_pk")
    return chosen.reset_index(drop=True), complete


def exceptions_report(exceptions: pd.DataFrame) -> pd.DataFrame:
    """The stored exception rows as ``exceptions.csv`` has them (SPEC §5 column order)."""
    frame = exceptions.reindex(columns=build.EXCEPTION_COLUMNS)
    text = [column for column in build.EXCEPTION_COLUMNS if column != "row"]
    frame = frame.astype({column: "string" for column in text})
    frame["row"] = pd.to_numeric(frame["row"], errors="coerce").astype("Int64")
    return frame.reset_index(drop=True)


def _with_keys(lines: pd.DataFrame) -> pd.DataFrame:
    """The stored lines under the names the report builders use."""
    customer_pk = pd.to_numeric(lines["customer_pk"], errors="coerce").astype("Int64")
    order_number = lines["order_number"].astype("string")
    return lines.assign(
        bucket=lines["bucket"].astype("string"),
        customer_key=("pk:" + customer_pk.astype("string")),
        # an order without a number is the line alone (the run keyed it by its GUID or file row)
        order_key=order_number.fillna("line " + lines["line_key"].astype("string")),
        effective_provider_code=lines["provider_code"].astype("string"),
        customer_name=lines["customer_name"].astype("string"),
        crm_customer_id=lines["crm_customer_id"].astype("string"),
    )


def own_mapping_reasons(lines: pd.DataFrame, *, run_id: str, provider_kinds: dict[str, str]) -> pd.Series:
    """R3: the held lines whose own provider mapping was missing or invalid in this run.

    A held line's own gap: its provider is automatic and, as this run planned it, it had no
    provider account (NEEDS_PROVIDER_MAPPING) or its order was held because the provider did
    not know the account (PROVIDER_MAPPING_INVALID). When a later run planned the line again,
    its stored plan is that run's, and this run's recorded hold reason is used instead.
    """
    automatic = lines["effective_provider_code"].map(provider_kinds).eq("automatic").fillna(False).astype(bool)
    held = (lines["bucket"] == outcomes.HELD).fillna(False).astype(bool) & automatic
    reason_code = lines["reason_code"].astype("string")
    planned_here = (lines["last_run_id"].astype("string") == run_id).fillna(False).astype(bool)
    no_account = lines["provider_customer_id"].isna()
    reasons = pd.Series(pd.NA, index=lines.index, dtype="string")
    reasons[held & planned_here & no_account] = str(ReasonCode.NEEDS_PROVIDER_MAPPING)
    invalid = held & planned_here & ~no_account & (reason_code == str(ReasonCode.PROVIDER_MAPPING_INVALID)).fillna(False)
    reasons[invalid] = str(ReasonCode.PROVIDER_MAPPING_INVALID)
    later = held & ~planned_here & reason_code.isin([str(code) for code in MAPPING_HOLD_CODES]).fillna(False)
    reasons[later] = reason_code[later]
    return reasons


def needs_provider_mapping(lines: pd.DataFrame, *, run_id: str, provider_kinds: dict[str, str]) -> pd.DataFrame:
    """``needs_provider_mapping.csv`` of the run (``build.build_needs_provider_mapping``)."""
    keyed = lines.assign(mapping_reason=own_mapping_reasons(lines, run_id=run_id, provider_kinds=provider_kinds))
    return build.build_needs_provider_mapping(keyed)


def run_orders(lines: pd.DataFrame, *, run_id: str, started_at: Any) -> pd.DataFrame:
    """The run's orders that ended complete (every line provisioned, now or before).

    ``order_bucket``: ``fulfilled`` (a line provisioned in this run, the order Fulfilled by
    this run or before), ``already_fulfilled`` (nothing new, Fulfilled by this run or before),
    ``provisioned_not_fulfilled`` (not Fulfilled then); with ``is_fulfilment_due`` (R7).
    """
    columns = ["order_key", "order_bucket", "is_fulfilment_due", "order_id", "customer_name", "currency", "lines",
               "fulfilled_date"]
    if lines.empty:
        return pd.DataFrame(columns=columns).astype({"is_fulfilment_due": bool})
    frame = pd.DataFrame({
        "order_key": lines["order_key"],
        "done": lines["bucket"].isin(_DONE).fillna(False).astype(bool),
        "new": (lines["bucket"] == outcomes.PROVISIONED).fillna(False).astype(bool),
    })
    grouped = frame.groupby("order_key", sort=True).agg(all_done=("done", "all"), any_new=("new", "any"),
                                                        lines=("done", "size"))
    first = lines.drop_duplicates("order_key").set_index("order_key")
    complete = grouped[grouped["all_done"]]
    order = first.loc[complete.index]
    is_fulfilled = order["is_fulfilled"].astype("boolean").fillna(False).astype(bool)
    by_whom = order["fulfilled_run_id"].astype("string")
    when = order["fulfilled_run_started_at"]
    by_now = by_whom.isna() | (by_whom == run_id)
    if started_at is not None:
        before = pd.Series([_not_later(stamp, started_at) for stamp in when], index=order.index, dtype=bool)
        by_now = by_now | before
    fulfilled = is_fulfilled & by_now.fillna(False).astype(bool)
    bucket = pd.Series("provisioned_not_fulfilled", index=order.index, dtype="string")
    bucket[fulfilled & complete["any_new"]] = "fulfilled"
    bucket[fulfilled & ~complete["any_new"]] = "already_fulfilled"
    result = pd.DataFrame({
        "order_key": complete.index.astype("string"),
        "order_bucket": bucket.to_numpy(),
        "is_fulfilment_due": fulfilled.to_numpy(),
        "order_id": order["order_id"].astype("string").to_numpy(),
        "customer_name": order["customer_name"].to_numpy(),
        "currency": order["currency_code"].astype("string").to_numpy(),
        "lines": complete["lines"].astype("Int64").to_numpy(),
        "fulfilled_date": order["fulfilled_date"].where(fulfilled).to_numpy(),
    }, columns=columns)
    return result.reset_index(drop=True)


def _not_later(stamp: Any, reference: Any) -> bool:
    if stamp is None or pd.isna(stamp):
        return False
    return pd.Timestamp(stamp) <= pd.Timestamp(reference)


# --------------------------------------------------------------------------- the workbook


def report_sheets(
    records: RunRecords,
    *,
    summary: dict,
    lines: pd.DataFrame,
    orders: pd.DataFrame,
    exceptions: pd.DataFrame,
    needs_mapping: pd.DataFrame,
    provider_kinds: dict[str, str],
) -> list[Sheet]:
    """The sheets of ``fulfilment_report.xlsx``, with the columns of ``report.sheets``."""
    notices = tuple(summary.get("notices", [])) + (REBUILT_NOTICE,)
    as_of = records.run.get("as_of_date")
    provisioned = lines[lines["bucket"] == outcomes.PROVISIONED]

    fulfilled = pd.DataFrame({
        "order_number": orders["order_key"], "order_id": orders["order_id"],
        "customer_name": orders["customer_name"], "currency": orders["currency"], "lines": orders["lines"],
        "outcome": orders["order_bucket"],
        "date_fulfilled": orders["fulfilled_date"].where(orders["order_bucket"] == "fulfilled"),
    })

    contracts = records.contracts
    used = provisioned.groupby(pd.to_numeric(provisioned["contract_pk"], errors="coerce").astype("Int64")).size()
    contract_rows = pd.DataFrame({
        "contract_number": contracts["contract_number"], "contract_name": contracts["contract_name"],
        "status": (contracts["created_run_id"] == records.run["run_id"]).map(
            {True: "created in this run", False: "reused"}),
        "contract_type": contracts["contract_type"], "contract_product_type": contracts["contract_product_type"],
        "billing_frequency": contracts["billing_frequency"], "currency_code": contracts["currency_code"],
        "start_date": contracts["start_date"], "end_date": contracts["end_date"],
        "payment_terms": contracts["payment_terms"], "process_refunds": contracts["process_refunds"],
        "customer_name": contracts["customer_name"],
        "lines_in_run": pd.to_numeric(contracts["contract_pk"]).astype("Int64").map(used).fillna(0).astype("Int64"),
    })
    contract_rows = contract_rows.sort_values("status", kind="stable")

    subscriptions = _subscription_rows(records.subscriptions, records.subscription_changes, as_of)

    charges = records.one_time_charges
    charge_rows = pd.DataFrame({
        "charge": charges["charge_number"], "customer_name": charges["customer_name"],
        "order_number": charges["order_number"], "line_key": charges["line_key"],
        "billing_contract": charges["contract_number"], "product_number": charges["product_number"],
        "product_name": charges["product_name"], "provider": charges["provider_code"],
        "quantity": charges["quantity"], "price_per_unit": charges["price_per_unit"],
        "extended_amount": charges["extended_amount"], "charge_date": charges["charge_date"],
    })

    return [
        Sheet("Summary", summary_rows(summary), banner=notices + next_steps(summary)),
        Sheet("Fulfilled Orders", fulfilled.reset_index(drop=True), banner=notices),
        Sheet("Billing Contracts", contract_rows.reset_index(drop=True), banner=notices),
        Sheet("Subscriptions", subscriptions.reset_index(drop=True), banner=notices),
        Sheet("One-Time Charges", charge_rows.reset_index(drop=True), banner=notices),
        Sheet("Needs Provider Mapping", needs_mapping, banner=notices),
        Sheet("Exceptions", exceptions, banner=notices),
        Sheet("Manual Tasks", manual_tasks(provisioned, summary.get("provider_modes", {}), provider_kinds),
              banner=notices),
    ]


SUBSCRIPTION_COLUMNS = [
    "subscription", "action", "customer_name", "order_number", "line_key", "billing_contract", "product_number",
    "product_name", "provider", "provider_subscription_id", "quantity", "quantity_before", "quantity_after",
    "price_per_unit", "provisioning_unit", "term", "start_date",
]


def _subscription_rows(created: pd.DataFrame, changed: pd.DataFrame, as_of: Any) -> pd.DataFrame:
    """Subscriptions the run created, then the quantity increases it made (R5 Existing)."""
    renames = {"subscription_number": "subscription", "contract_number": "billing_contract",
               "provider_code": "provider", "term_duration": "term"}
    parts = []
    if not created.empty:
        parts.append(created.rename(columns=renames).assign(action="created", quantity_before=None,
                                                            quantity_after=None))
    if not changed.empty:
        parts.append(changed.rename(columns=renames).assign(action="quantity increased", start_date=as_of))
    if not parts:
        return pd.DataFrame(columns=SUBSCRIPTION_COLUMNS)
    return pd.concat(parts, ignore_index=True)[SUBSCRIPTION_COLUMNS]


