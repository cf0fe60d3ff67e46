"""The ``provision-orders`` Prefect flow: one task per stage, never one per row.

Tasks are thin: each calls one stage of ``w365etl.provisioning`` with the adapters built by
``flows.wiring``. Frames move between tasks in memory with caching off (no hashing of large
inputs, nothing persisted as a Prefect result). Secrets never travel as flow parameters: the
database URL comes from the settings (``W365_DB_URL`` or the TOML file).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

from flows import wiring
from w365etl import provisioning
from w365etl.adapters import inbox
from w365etl.adapters.order_files import read_order_files
from w365etl.adapters.order_partitions import (
    NotPartitioned, PartitionedInput, may_partition, read_partition, return_freed_memory, split_files,
)
from w365etl.adapters.reports_csv import write_csv
from w365etl.adapters.reports_html import write_html_report
from w365etl.adapters.reports_xlsx import write_workbook
from w365etl.adapters.store_sql import StoreUnavailable
from w365etl.domain.validation import validate_line_values
from w365etl.execute import ProviderNotConfigured
from w365etl.failpoints import failpoint
from w365etl.ingest import IngestResult, issues_per_line
from w365etl.domain.keys import add_line_identifiers
from w365etl.domain.outcomes import PLANNED
from w365etl.plan import Plan, StoredState, build_plan, empty_state
from w365etl.reevaluation import waiting_keys, with_waiting_lines
from w365etl.report.merge import PartitionReports
from w365etl.reference import ReferenceData, ReferenceDataError, read_reference_dir
from w365etl.safe_paths import UnsafePath, business_date, report_folder
from w365etl.settings import Settings, SettingsError, load_settings
from w365etl.timing import StageClock

NOT_RUN_ERRORS = (SettingsError, StoreUnavailable, ProviderNotConfigured, ReferenceDataError, UnsafePath)


def new_run_id(as_of: dt.date) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


@task(name="load-reference", cache_policy=NO_CACHE)
def load_reference(store, reference: ReferenceData | None, is_dry_run: bool) -> None:
    if reference is not None and store is not None and not is_dry_run:
        store.upsert_reference(reference.products, reference.provider_accounts)


@task(name="split-orders", cache_policy=NO_CACHE)
def split_orders(store, paths: list[Path], settings: Settings) -> tuple[PartitionedInput | None, pd.DataFrame]:
    """The stored waiting lines, and — for a run over ``partition_lines`` lines of flat CSV —
    the run's lines split into partitions of whole customers and orders (else None: read whole)."""
    waiting = store.waiting_lines() if store is not None else pd.DataFrame(columns=["order_number", "payload"])
    if not may_partition(paths, settings.partition_lines):  # a nightly batch: read whole, nothing scanned
        return None, waiting
    try:
        split = split_files(paths, partition_lines=settings.partition_lines, limits=settings.limits.input_limits(),
                            waiting=waiting_keys(waiting) if len(waiting) > 0 else None,
                            stored_customers=store.stored_customers() if store is not None else None,
                            spill_dir=settings.spill_dir)
    except NotPartitioned as reason:
        # a big export read whole needs memory in proportion: say why, so it can be fixed
        log = get_run_logger().warning if reason.is_big else get_run_logger().info
        log(f"orders read whole, not in partitions: {reason}")
        return None, waiting
    if len(waiting):  # the waiting lines' places in the whole run: after every line of its files
        waiting = waiting.assign(line_index=np.arange(split.file_lines, split.file_lines + len(waiting), dtype="int64"))
    return split, waiting


@task(name="read-orders", cache_policy=NO_CACHE)
def read_orders(paths: list[Path], settings: Settings, split: PartitionedInput | None = None,
                partition: int | None = None) -> tuple[IngestResult, pd.DataFrame]:
    if split is None:
        ingest = read_order_files(paths, number_locale=settings.number_locale, date_order=settings.date_order,
                                  limits=settings.limits.input_limits())
    else:
        ingest = read_partition(split, partition, paths, number_locale=settings.number_locale,
                                date_order=settings.date_order, limits=settings.limits.input_limits())
    parse_issues = issues_per_line(ingest)
    value_issues = validate_line_values(ingest.lines, parse_issues, ingest.headers)
    line_issues = provisioning.combined_line_issues(parse_issues, value_issues)
    return ingest, line_issues


@task(name="add-waiting-lines", cache_policy=NO_CACHE)
def add_waiting_lines(store, lines: pd.DataFrame, waiting: pd.DataFrame | None = None) -> pd.DataFrame:
    """Orders held for a mapping and lines that failed at the provider come back every run
    (``waiting``: those already read, e.g. this partition's; else read from the store)."""
    if waiting is None:
        waiting = store.waiting_lines() if store is not None else pd.DataFrame(columns=["order_number", "payload"])
    return add_line_identifiers(with_waiting_lines(lines, waiting))  # R6 keys, computed once per run


@task(name="load-state", cache_policy=NO_CACHE)
def load_state(store, lines: pd.DataFrame, reference: ReferenceData | None, is_dry_run: bool) -> StoredState:
    state = empty_state() if store is None else store.load_state(lines)
    # a real run loaded the reference into the database already; a dry run applies it in memory
    return provisioning.with_reference(state, reference if is_dry_run else None)


@task(name="plan", cache_policy=NO_CACHE)
def make_plan(lines: pd.DataFrame, line_issues: pd.DataFrame, state: StoredState, settings: Settings,
              as_of: dt.date, invalid_accounts: frozenset = frozenset()) -> Plan:
    options = provisioning.plan_options(settings, as_of, invalid_accounts)
    return build_plan(lines, line_issues, state, options)


@task(name="verify-provider-accounts", cache_policy=NO_CACHE)
def verify_provider_accounts(plan: Plan, providers: dict) -> frozenset:
    return provisioning.verify_provider_accounts(plan, providers)


@task(name="persist-plan", cache_policy=NO_CACHE)
def persist_plan(store, run_id: str, plan: Plan, is_first: bool = True) -> pd.DataFrame:
    if store is None:
        return provisioning.planned_for_dry_run(plan)
    if is_first:  # a partitioned run is one run: started once, by its first partition
        store.start_run(run_id, plan.options.as_of)
    failpoint("after_run_started")
    persisted = store.persist_plan(run_id, plan)
    failpoint("after_plan_stored")
    return persisted


@task(name="provision", cache_policy=NO_CACHE)
def provision(store, run_id: str, plan: Plan, planned: pd.DataFrame, providers: dict) -> pd.DataFrame:
    return provisioning.execute(run_id, plan, planned, providers, store)


@task(name="fulfil-orders", cache_policy=NO_CACHE)
def fulfil_orders(store, run_id: str, lines: pd.DataFrame, as_of: dt.date) -> pd.DataFrame | None:
    from w365etl.domain.outcomes import summarise_orders

    orders = summarise_orders(lines)
    if store is None:
        return None
    due = orders[orders["is_fulfilment_due"]].rename(columns={"order_key": "order_number"})
    return store.mark_orders_fulfilled(run_id, due, as_of)


@task(name="record-outcomes", cache_policy=NO_CACHE)
def record_outcomes(store, run_id: str, outcomes: pd.DataFrame) -> None:
    store.record_outcomes(run_id, outcomes)


@task(name="write-reports", cache_policy=NO_CACHE)
def write_reports(store, run_id: str, outputs: provisioning.RunOutputs, folder: Path, files: list[dict],
                  max_rows: int) -> list[Path]:
    written = provisioning.write_outputs(folder, outputs, write_csv=write_csv, write_workbook=write_workbook,
                                         write_html=write_html_report, max_rows=max_rows)
    if store is not None:
        failpoint("before_finish_run")
        store.finish_run(run_id, outputs.summary, files, outputs.exceptions, outputs.outcomes)
        failpoint("after_finish_run")
    return written


@flow(name="provision-orders", log_prints=False, validate_parameters=False)
def provision_orders(
    files: list[str],
    reference_dir: str | None = None,
    out_dir: str | None = None,
    as_of: dt.date | None = None,
    dry_run: bool = False,
    config_file: str | None = None,
    inbox_dir: str | None = None,
) -> dict:
    """Provision exported D365 sales orders (SPEC §1): validate, hold, contract, provision,
    fulfil, report. Returns ``summary.json``'s content plus ``report_folder``.

    With no ``files`` and an ``inbox_dir``, the run takes every new file of the inbox (the
    nightly schedule). The run ends Failed when a file was rejected whole (the CLI exits 1) or
    when it could not start (exit 2)."""
    logger = get_run_logger()
    clock = StageClock()
    try:
        as_of_date = business_date(as_of)  # a deployment's JSON parameter arrives as text
        settings = load_settings(Path(config_file) if config_file else None)
        reference_path = Path(reference_dir) if reference_dir else settings.reference_dir
        reference = read_reference_dir(reference_path) if reference_path else None
        store = wiring.build_store(settings, is_dry_run=dry_run)
    except NOT_RUN_ERRORS as error:
        return _not_run(logger, error)
    # a dry run may read an existing database, but writes nothing and calls no provider
    writer = None if dry_run else store
    run_id = new_run_id(as_of_date)
    providers: dict = {}
    batch = None
    try:
        folder = report_folder(Path(out_dir or settings.out_dir), run_id)
        duplicates: list[dict] = []
        paths = [Path(item) for item in files]
        if not files and inbox_dir:
            with clock.stage("take-inbox"):
                batch, paths, duplicates = take_inbox(store, Path(inbox_dir), run_id, dry_run)
            if batch.reference_dir is not None:
                reference = read_reference_dir(batch.reference_dir)  # dropped in inbox/reference/
        with clock.stage("load-reference"):
            load_reference(store, reference, dry_run)
        with clock.stage("split-orders"):
            split, waiting = split_orders(store, paths, settings)
        slice_args = dict(store=store, writer=writer, run_id=run_id, paths=paths, settings=settings,
                          reference=reference, as_of=as_of_date, clock=clock, logger=logger, batch=batch,
                          providers=providers)
        if split is None:
            outputs, files_records = _provision_slice(**slice_args, waiting=waiting, is_first=True,
                                                      duplicates=duplicates)
        else:
            logger.info(f"{split.file_lines} lines: processed in {split.count} partitions of about "
                        f"{settings.partition_lines} lines (whole customers and orders)")
            reports, part_files = PartitionReports(settings.report_max_rows), []
            partition = 0
            try:
                if writer is not None:
                    writer.lock_run()  # no other run between this run's partitions
                for partition in range(split.count):
                    part_waiting = waiting[split.waiting_partition == partition] if len(waiting) else waiting
                    part, records = _provision_slice(**slice_args, waiting=part_waiting, is_first=partition == 0,
                                                     split=split, partition=partition)
                    with clock.stage("build-outputs"):
                        provisioning.gather_outputs(reports, part)
                    del part
                    return_freed_memory()
                    part_files.append(records)
            except NOT_RUN_ERRORS as error:
                if partition == 0 or writer is None:
                    raise  # nothing was stored yet
                message = (f"the run stopped in partition {partition + 1} of {split.count}: {error}. The "
                           f"{partition} partition(s) before it were provisioned and recorded; run the same files "
                           "again once this is fixed (nothing is provisioned twice)")
                writer.fail_run(run_id, message)
                raise type(error)(message) from None
            finally:
                split.close()
            clock.note("partitions", split.count)
            files_records = _summed_rows(part_files) + duplicates
            with clock.stage("build-outputs"):
                outputs = provisioning.merge_outputs(reports, files=files_records)
            del reports
        with clock.stage("write-reports"):
            write_reports(writer, run_id, outputs, folder, files_records, settings.report_max_rows)
        if batch is not None:
            with clock.stage("settle-inbox"):
                settle_inbox(batch, files_records, as_of_date)
        clock.write(folder)
    except NOT_RUN_ERRORS as error:
        if batch is not None:
            inbox.release(batch)
        return _not_run(logger, error)
    finally:
        for provider in providers.values():
            provider.close()
        if store is not None:
            store.dispose()
    summary = outputs.summary | {"report_folder": str(folder)}
    logger.info(provisioning.summary_text(summary, folder))
    create_markdown_artifact(key="provisioning-summary", markdown=_markdown(summary, folder),
                             description="w365etl run summary")
    create_table_artifact(key="top-exceptions", table=_top_exceptions(outputs.exceptions),
                          description="The first exceptions of the run (exceptions.csv has them all)")
    create_link_artifact(key="report-folder", link=folder.resolve().as_uri(), link_text=str(folder),
                         description="The run's report folder")
    rejected = [item for item in summary["files"] if item["status"] == "rejected"]
    if rejected:
        message = f"{len(rejected)} file(s) rejected: " + "; ".join(f"{item['path']}: {item['error']}" for item in rejected)
        logger.error(message)
        return Failed(message=message, data=summary)
    return summary


def _provision_slice(*, store, writer, run_id: str, paths: list[Path], settings: Settings,
                     reference: ReferenceData | None, as_of: dt.date, clock: StageClock, logger, batch,
                     providers: dict, waiting: pd.DataFrame, is_first: bool, split=None,
                     partition: int | None = None,
                     duplicates: list[dict] = ()) -> tuple[provisioning.RunOutputs, list[dict]]:
    """read → plan → persist → provision → fulfil → build the reports, for the whole run or for
    one partition of it (then the run's outcomes are recorded here, partition by partition)."""
    with clock.stage("read-orders"):
        ingest, line_issues = read_orders(paths, settings, split, partition)
    if batch is not None:
        ingest, line_issues = inbox.as_seen_in_inbox(batch, ingest, line_issues)
    for warning in ingest.warnings:
        if is_first:  # a partitioned run's files say the same about their columns every time
            logger.warning(warning)
    with clock.stage("add-waiting-lines"):
        lines = add_waiting_lines(store, ingest.lines, waiting)
    ingest = replace(ingest, lines=ingest.lines.iloc[:0])  # the lines live on in `lines` only
    with clock.stage("load-state"):
        state = load_state(store, lines, reference, writer is None)
    with clock.stage("plan"):
        plan = make_plan(lines, line_issues, state, settings, as_of)
    # SPEC §2.2: no silent default — stop before anything is stored or provisioned
    provisioning.ensure_providers(plan, settings)
    if split is not None and is_first:
        provisioning.ensure_catalog_providers(state.products, settings)
    if writer is not None:
        # built once per run (a partitioned run needs them from its first partition that has lines for them)
        providers.update(wiring.build_providers(settings, provisioning.required_providers(plan) - set(providers),
                                                store=store, run_id=run_id, state=state))
        # R3: a mapped account the provider does not know holds its order like a missing one
        with clock.stage("verify-provider-accounts"):
            invalid = verify_provider_accounts(plan, providers)
        if invalid:
            with clock.stage("plan"):
                plan = make_plan(lines, line_issues, state, settings, as_of, invalid)
    with clock.stage("persist-plan"):
        persisted = persist_plan(writer, run_id, plan, is_first)
    if writer is not None:  # lines a concurrent run provisioned meanwhile are not provisioned again
        plan = provisioning.as_persisted(plan, persisted)
    planned = persisted[persisted["bucket"] == PLANNED]
    with clock.stage("provision"):
        results = provision(writer, run_id, plan, planned, providers)
    with clock.stage("apply-results"):
        lines, issues = provisioning.apply_results(
            plan, planned, results, keep_line_ids=writer is not None,
            line_pks=persisted["line_pk"] if writer is not None else None)
    del persisted, planned, results  # a large run keeps one copy of its lines from here on
    if writer is not None:
        failpoint("before_fulfilment")
    with clock.stage("fulfil-orders"):
        fulfilled = fulfil_orders(writer, run_id, lines, as_of)
    if writer is not None:
        failpoint("after_fulfilment")
    # inbox files imported before are listed as duplicates (a partitioned run adds them when it merges)
    files_records = [asdict(record) for record in ingest.files] + list(duplicates)
    with clock.stage("build-outputs"):
        outputs = provisioning.build_outputs(
            run_id=run_id, plan=plan, lines=lines, line_issues=issues, file_issues=ingest.file_issues,
            files=files_records, headers=ingest.headers, fulfilled=fulfilled, stored_contracts=state.contracts,
            provider_modes=wiring.provider_modes(settings), is_dry_run=writer is None,
            max_sheet_rows=settings.report_max_rows, warnings=ingest.warnings,
        )
    if split is not None and writer is not None:
        with clock.stage("record-outcomes"):
            record_outcomes(writer, run_id, outputs.outcomes)
    return outputs, files_records


def _summed_rows(part_files: list[list[dict]]) -> list[dict]:
    """A partitioned run's file records: each file read once, its rows counted over partitions."""
    records = [dict(record) for record in part_files[0]]
    for record, *others in zip(records, *part_files[1:]):
        record["rows"] = int(record.get("rows") or 0) + sum(int(other.get("rows") or 0) for other in others)
    return records


@task(name="take-inbox", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def take_inbox(store, root: Path, run_id: str, is_dry_run: bool):
    """Claim the inbox's files; set aside those imported before (sha256, renamed copies too)."""
    batch = inbox.claim(root, run_id, is_dry_run=is_dry_run)
    imported = store.imported_files([inbox.sha256_of(path) for path in batch.order_files]) if store else {}
    paths, duplicates = inbox.split_duplicates(batch, imported)
    return batch, paths, duplicates


@task(name="settle-inbox", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def settle_inbox(batch, files_records: list[dict], as_of: dt.date) -> None:
    inbox.settle(batch, inbox.outcomes_by_path(batch, files_records), as_of.isoformat())


def _top_exceptions(exceptions: pd.DataFrame, limit: int = 200) -> list[dict]:
    columns = ["severity", "reason_code", "file", "row", "order_number", "customer_name", "column", "value",
               "suggested_action"]
    head = exceptions.head(limit)[columns].astype("string").fillna("")
    return head.to_dict("records")


def _not_run(logger, error: Exception) -> State:
    """Infrastructure or configuration that stops a run before it provisions anything: the
    flow run ends Failed with one clear line (no traceback) and the CLI exits 2."""
    message = str(error)
    logger.error(message)
    return Failed(message=message, data=NotRun(message))


class NotRun(Exception):
    """Nothing was run (exit status 2); the message says why and which setting to change."""


def _markdown(summary: dict, folder: Path) -> str:
    rows = ["| | " + " | ".join(summary["lines"]) + " |", "|---|" + "---|" * len(summary["lines"]),
            "| lines | " + " | ".join(str(value) for value in summary["lines"].values()) + " |"]
    order_rows = ["| | " + " | ".join(summary["orders"]) + " |", "|---|" + "---|" * len(summary["orders"]),
                  "| orders | " + " | ".join(str(value) for value in summary["orders"].values()) + " |"]
    notices = "\n".join(f"> {notice}" for notice in summary.get("notices", []))
    return (f"# w365etl run {summary['run_id']} (as of {summary['as_of']})\n\n{notices}\n\n" + "\n".join(rows)
            + "\n\n" + "\n".join(order_rows) + f"\n\nReports: `{folder}`\n")
