"""The provisioning run, stage by stage: the service layer the Prefect flow and tests drive.

read orders → load state → plan (R1–R9) → persist the plan → execute through providers →
fulfil orders (R7) → build and write reports. Each function here is one stage and takes its
collaborators (store, providers, writers) as arguments, so tests run the same code with fakes.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from w365etl.columns import is_in
from w365etl.domain import outcomes
from w365etl.domain.issues import concat_issues, issues_for
from w365etl.domain.rules import LineDefaults
from w365etl.execute import assume_accepted, check_providers_configured, execute_plan, provision_requests
from w365etl.failpoints import failpoint
from w365etl.plan import Plan, PlanOptions, StoredState
from w365etl.ports import Provider, Store
from w365etl.reasons import ReasonCode
from w365etl.reevaluation import payloads
from w365etl.reference import ReferenceData, merge_provider_accounts, merge_products
from w365etl.report import build
from w365etl.report.cells import Sheet
from w365etl.report.sheets import build_sheets
from w365etl.settings import Settings


@dataclass(frozen=True)
class RunOutputs:
    summary: dict
    exceptions: pd.DataFrame
    needs_mapping: pd.DataFrame
    order_status_updates: pd.DataFrame | None
    sheets: list[Sheet]
    outcomes: pd.DataFrame


def plan_options(settings: Settings, as_of: dt.date,
                 invalid_accounts: frozenset[tuple[str, str]] = frozenset()) -> PlanOptions:
    defaults = settings.defaults
    return PlanOptions(
        as_of=as_of,
        contract_end_date=defaults.contract_end_date,
        defaults=LineDefaults(
            payment_terms=defaults.payment_terms, process_refunds=defaults.process_refunds,
            provision_as=defaults.provision_as, fulfill_order=defaults.fulfill_order,
            billing_frequency=defaults.billing_frequency, provisioning_unit=defaults.provisioning_unit,
            contract_product_type=defaults.contract_product_type,
        ),
        provider_kinds={code: provider.kind for code, provider in settings.providers.items()},
        invalid_accounts=invalid_accounts,
    )


def with_reference(state: StoredState, reference: ReferenceData | None) -> StoredState:
    """A dry run applies ``--reference`` in memory only: the state as it would be after loading."""
    if reference is None:
        return state
    return StoredState(
        **{**state.__dict__,
           "products": merge_products(state.products, reference.products),
           "provider_accounts": merge_provider_accounts(state.provider_accounts, reference.provider_accounts)}
    )


def required_providers(plan: Plan) -> set[str]:
    codes = plan.lines.loc[plan.lines["bucket"] == outcomes.PLANNED, "effective_provider_code"]
    return set(codes.dropna().unique())


def verify_provider_accounts(plan: Plan, providers: dict[str, Provider]) -> frozenset[tuple[str, str]]:
    """R3: ask each automatic provider whether it knows the accounts the planned lines use."""
    columns = plan.lines[["effective_provider_code", "provider_customer_id"]]  # not all 90 columns
    planned = columns[(plan.lines["bucket"] == outcomes.PLANNED) & plan.lines["provider_customer_id"].notna()]
    invalid: set[tuple[str, str]] = set()
    for code, accounts in planned.groupby("effective_provider_code")["provider_customer_id"]:
        if code in providers:
            unknown = providers[code].verify_accounts(sorted(accounts.unique()))
            invalid.update((code, account) for account in unknown)
    return frozenset(invalid)


def ensure_providers(plan: Plan, settings: Settings) -> None:
    """Stop before anything is provisioned when a needed adapter is not configured (exit 2)."""
    adapters = {code: provider.adapter for code, provider in settings.providers.items()}
    check_providers_configured(required_providers(plan), adapters)


def ensure_catalog_providers(products: pd.DataFrame, settings: Settings) -> None:
    """A run processed in partitions checks, before its first partition stores anything, every
    provider its catalog names (a later partition may need one the first does not): a missing
    adapter stops the run before anything is provisioned, as ``ensure_providers`` does for a
    whole run."""
    adapters = {code: provider.adapter for code, provider in settings.providers.items()}
    named = set(products["provider_code"].dropna().astype(str).str.lower()) if "provider_code" in products else set()
    check_providers_configured(named & set(adapters), adapters)


def as_persisted(plan: Plan, persisted: pd.DataFrame) -> Plan:
    """The plan as the store persisted it (``persisted`` is indexed like ``plan.lines``).

    A concurrent run may have provisioned some planned lines, or created some new contracts,
    between this run's plan and its persisting: the store says so in ``bucket`` and
    ``is_new_contract``, and the run reports those lines as already provisioned and those
    contracts as reused.
    """
    columns = ["bucket", "bucket_reason", "is_new_contract"]
    lines = plan.lines.copy(deep=False)
    lines[columns] = persisted[columns].reindex(lines.index)
    planned = lines["bucket"] == outcomes.PLANNED
    used = lines.loc[planned & lines["is_new_contract"].astype(bool), "contract_number"]
    new_contracts = plan.new_contracts[is_in(plan.new_contracts["contract_number"], used)].reset_index(drop=True)
    return replace(plan, lines=lines, new_contracts=new_contracts)


def planned_for_dry_run(plan: Plan) -> pd.DataFrame:
    """A dry run stores nothing, so its planned lines are numbered by their place in the run
    (the same numbers whether the run is processed whole or in partitions)."""
    planned = plan.lines[plan.lines["bucket"] == outcomes.PLANNED]
    return planned.assign(line_pk=planned["line_index"].astype("int64"), customer_pk=pd.NA, contract_pk=pd.NA)


def execute(
    run_id: str, plan: Plan, planned: pd.DataFrame, providers: dict[str, Provider], store: Store | None,
) -> pd.DataFrame:
    """Provision the planned lines; a dry run (no store) assumes every provider accepts."""
    requests = provision_requests(planned)
    if store is None:
        return assume_accepted(requests)

    def payloads_for(line_pks: pd.Series) -> pd.Series:
        chosen = planned.index[planned["line_pk"].isin(line_pks)]
        return pd.Series(payloads(plan.lines.loc[chosen]).to_numpy(), index=planned.loc[chosen, "line_pk"].to_numpy())

    return execute_plan(run_id, requests, providers, store, plan.options.as_of, payloads_for)


def apply_results(
    plan: Plan, planned: pd.DataFrame, results: pd.DataFrame, *, keep_line_ids: bool,
    line_pks: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Final buckets: planned lines become ``provisioned`` or ``failed`` (PROVIDER_ERROR).

    ``planned`` is indexed like ``plan.lines`` and carries the ``line_pk`` the requests used.
    """
    lines = plan.lines.copy(deep=False)
    lines["line_pk"] = pd.Series(pd.NA, index=lines.index, dtype="Int64")
    if line_pks is not None:  # every stored line: run history keeps each line's outcome
        lines["line_pk"] = line_pks.reindex(lines.index).astype("Int64")
    if keep_line_ids:
        lines.loc[planned.index, "line_pk"] = planned["line_pk"].astype("Int64")
    by_pk = results.drop_duplicates("line_pk").set_index("line_pk")
    keys = planned["line_pk"].astype("int64")
    success = keys.map(by_pk["is_success"]).fillna(False).astype(bool)
    error_code = keys.map(by_pk["error_code"]).astype("string")
    error_message = keys.map(by_pk["error_message"]).astype("string")
    lines.loc[planned.index, "bucket"] = outcomes.PROVISIONED
    failed_index = success.index[~success]
    lines.loc[failed_index, "bucket"] = outcomes.FAILED
    lines.loc[failed_index, "bucket_reason"] = str(ReasonCode.PROVIDER_ERROR)
    lines["provider_subscription_id_result"] = pd.Series(pd.NA, index=lines.index, dtype="string")
    lines.loc[planned.index, "provider_subscription_id_result"] = keys.map(by_pk["provider_subscription_id"]).astype("string")
    failed = lines.index.isin(failed_index)
    message = pd.Series("", index=lines.index, dtype="string")
    value = pd.Series(pd.NA, index=lines.index, dtype="string")
    if len(failed_index):
        message.loc[failed_index] = (
            lines.loc[failed_index, "effective_provider_code"].astype("string") + " refused the line: "
            + error_code.loc[failed_index].fillna("error") + ": " + error_message.loc[failed_index].fillna("")
        )
        value.loc[failed_index] = error_code.loc[failed_index]
    provider_issues = issues_for(lines, pd.Series(failed, index=lines.index), ReasonCode.PROVIDER_ERROR,
                                 "product_number", message, value=value)
    return lines, concat_issues([plan.issues, provider_issues])


def build_outputs(
    *,
    run_id: str,
    plan: Plan,
    lines: pd.DataFrame,
    line_issues: pd.DataFrame,
    file_issues: pd.DataFrame,
    files: list[dict],
    headers: dict[str, dict[str, str]],
    fulfilled: pd.DataFrame | None,
    stored_contracts: pd.DataFrame,
    provider_modes: dict[str, str],
    is_dry_run: bool,
    max_sheet_rows: int | None = None,
    warnings: Sequence[str] = (),
) -> RunOutputs:
    """Every report of the run, with the conservation equations checked (SPEC §5)."""
    as_of = plan.options.as_of
    orders = outcomes.summarise_orders(lines)
    exceptions = build.build_exceptions(run_id, line_issues, file_issues, lines, headers)
    needs_mapping = build.build_needs_provider_mapping(lines)
    summary = build.build_summary(
        run_id=run_id, as_of=as_of, is_dry_run=is_dry_run, files=files, lines=lines, orders=orders,
        exceptions=exceptions, needs_mapping=needs_mapping, new_contracts=plan.new_contracts,
        provider_modes=provider_modes, warnings=warnings,
    )
    updates = None
    if not is_dry_run:
        updates = build.build_order_status_updates(orders, fulfilled if fulfilled is not None else pd.DataFrame(
            columns=["order_number", "order_id", "fulfilled_date"]))
    sheets = build_sheets(
        summary=summary, lines=lines, orders=orders, exceptions=exceptions, needs_mapping=needs_mapping,
        new_contracts=plan.new_contracts, stored_contracts=stored_contracts, provider_modes=provider_modes,
        provider_kinds=plan.options.provider_kinds, as_of=as_of, max_rows=max_sheet_rows,
    )
    outcome_rows = pd.DataFrame({
        "line_pk": lines["line_pk"] if "line_pk" in lines.columns else pd.Series(pd.NA, index=lines.index),
        "bucket": lines["bucket"], "reason_code": lines["bucket_reason"],
    })
    return RunOutputs(summary, exceptions, needs_mapping, updates, sheets, outcome_rows)


def gather_outputs(reports, outputs: RunOutputs) -> None:
    """Keep what a partition's reports add to the run's (``report.merge.PartitionReports``); its
    line outcomes were recorded already and are not kept."""
    reports.add(outputs.summary, outputs.exceptions, outputs.needs_mapping, outputs.order_status_updates,
                outputs.sheets)


def merge_outputs(reports, *, files: list[dict]) -> RunOutputs:
    """The reports of a run processed in partitions, as one run's reports (SPEC §5)."""
    summary, exceptions, needs_mapping, updates, sheets = reports.merged(files)
    outcome_rows = pd.DataFrame({"line_pk": pd.Series(dtype="Int64"), "bucket": pd.Series(dtype="string"),
                                 "reason_code": pd.Series(dtype="string")})
    return RunOutputs(summary, exceptions, needs_mapping, updates, sheets, outcome_rows)


def write_outputs(
    folder: Path,
    outputs: RunOutputs,
    *,
    write_csv: Callable[[Path, pd.DataFrame], None],
    write_workbook: Callable[..., None],
    write_html: Callable[[Path, dict, pd.DataFrame, pd.DataFrame], None] | None = None,
    max_rows: int,
) -> list[Path]:
    """Write the run's folder (SPEC §5). The csv files are always complete."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    summary_path = folder / "summary.json"
    summary_path.write_text(json.dumps(outputs.summary, indent=2, default=str) + "\n", encoding="utf-8")
    written.append(summary_path)
    for name, frame in (("exceptions.csv", outputs.exceptions),
                        ("needs_provider_mapping.csv", outputs.needs_mapping),
                        ("order_status_updates.csv", outputs.order_status_updates)):
        if frame is None:
            continue
        write_csv(folder / name, frame)
        written.append(folder / name)
    failpoint("while_writing_reports")  # a crash here leaves a half-written report folder
    workbook = folder / "fulfilment_report.xlsx"
    write_workbook(workbook, outputs.sheets, max_rows=max_rows)
    written.append(workbook)
    if write_html is not None:
        page = folder / "report.html"
        write_html(page, outputs.summary, outputs.exceptions, outputs.needs_mapping)
        written.append(page)
    return written


def combined_line_issues(parse_issues: pd.DataFrame, value_issues: pd.DataFrame) -> pd.DataFrame:
    """Ingest's parse problems and schema validation's problems, as one line-issue frame."""
    return concat_issues([parse_issues, value_issues])


def summary_text(summary: dict, folder: Path) -> str:
    """The short human summary the CLI prints."""
    lines = summary["lines"]
    orders = summary["orders"]
    out = []
    out.extend(summary.get("notices", []))
    out.append(
        f"lines: {lines['input']} in — {lines['provisioned']} provisioned, {lines['already_provisioned']} already "
        f"provisioned, {lines['skipped']} skipped, {lines['held']} held, {lines['rejected']} rejected, "
        f"{lines['failed']} failed"
    )
    out.append(
        f"orders: {orders['input']} in — {orders['fulfilled']} fulfilled, {orders['already_fulfilled']} already "
        f"fulfilled, {orders['provisioned_not_fulfilled']} provisioned not fulfilled, {orders['held']} held, "
        f"{orders['skipped']} skipped, {orders['failed']} failed"
    )
    out.append(
        f"billing contracts: {summary['billing_contracts']['created']} created, "
        f"{summary['billing_contracts']['reused']} reused; subscriptions: {summary['subscriptions']['created']} "
        f"created, {summary['subscriptions']['updated']} updated; one-time charges: "
        f"{summary['one_time_charges']['created']} created"
    )
    out.append(f"customers needing a provider mapping: {summary['customers_needing_provider_mapping']}")
    rejected = [item for item in summary["files"] if item["status"] == "rejected"]
    for item in rejected:
        out.append(f"file rejected: {item['path']}: {item['error']}")
    out.append(f"reports: {folder}")
    return "\n".join(out)
