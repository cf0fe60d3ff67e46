"""The provision-orders flow end to end on sample_data/, compared with golden reports.

Golden files live in tests/flows/golden/. They are regenerated only on purpose:
``W365_UPDATE_GOLDEN=1 make test`` rewrites them, and the diff is then reviewed like code.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from tests.conftest import PROJECT_ROOT

GOLDEN = Path(__file__).parent / "golden"
AS_OF = dt.date(2026, 11, 29)
SAMPLE_FILES = [
    "sample_data/d365_order_products_export.xlsx",
    "sample_data/dataverse_salesorders.csv",
    "sample_data/dataverse_salesorderdetails.csv",
]
UPDATING = os.environ.get("W365_UPDATE_GOLDEN") == "1"

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def run_sample(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)  # the reports name the files as given: relative paths
    monkeypatch.setenv("W365_DB_URL", db_url)
    from flows.provision_orders import provision_orders

    def _run(dry_run: bool = False) -> dict:
        return provision_orders(files=SAMPLE_FILES, reference_dir="sample_data/reference",
                                out_dir=str(tmp_path / "out"), as_of=AS_OF, dry_run=dry_run,
                                config_file="sample_data/w365etl.toml")

    return _run


def _stable_summary(summary: dict) -> dict:
    return {key: value for key, value in summary.items() if key not in ("run_id", "report_folder")}


def _stable_csv(path: Path) -> str:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "run_id" in frame.columns:
        frame["run_id"] = "<run>"
    return frame.to_csv(index=False)


def _compare(name: str, actual: str) -> None:
    golden = GOLDEN / name
    if UPDATING:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
    assert golden.is_file(), f"missing golden file {golden}; run with W365_UPDATE_GOLDEN=1 once"
    assert actual == golden.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def test_first_run_on_sample_data_matches_the_golden_reports(run_sample):
    summary = run_sample()
    folder = Path(summary["report_folder"])
    _compare("summary.json", json.dumps(_stable_summary(summary), indent=2, sort_keys=True) + "\n")
    for name in ("exceptions.csv", "needs_provider_mapping.csv", "order_status_updates.csv"):
        _compare(name, _stable_csv(folder / name))

    # every line-level reason code a first run can produce is exercised by the sample data
    assert {code for code, count in summary["exceptions_by_reason"].items() if count} >= {
        "INVALID_VALUE", "UNKNOWN_PRODUCT", "WRITE_IN_PRODUCT", "INVALID_QUANTITY", "AMOUNT_MISMATCH",
        "CURRENCY_MISMATCH", "DUPLICATE_LINE", "ORDER_ALREADY_FULFILLED", "ORDER_INVOICED", "ORDER_CANCELED",
        "ORDER_HAS_REJECTED_LINES", "NEEDS_PROVIDER_MAPPING", "AMBIGUOUS_CUSTOMER", "UNKNOWN_BILLING_CONTRACT",
        "EXISTING_SUBSCRIPTION_NOT_FOUND",
    }
    assert summary["notices"][0].startswith("SANDBOX")

    book = openpyxl.load_workbook(folder / "fulfilment_report.xlsx")
    assert book.sheetnames == ["Summary", "Fulfilled Orders", "Billing Contracts", "Subscriptions",
                               "One-Time Charges", "Needs Provider Mapping", "Exceptions", "Manual Tasks"]
    assert book["Summary"]["A1"].value.startswith("SANDBOX")
    formulas = [cell.coordinate for sheet in book for row in sheet.iter_rows() for cell in row if cell.data_type == "f"]
    assert formulas == []

    # timings.json: every stage of the run, in the order it ran, adding up to no more than the run
    timings = json.loads((folder / "timings.json").read_text(encoding="utf-8"))
    assert list(timings["stage_seconds"])[:4] == ["load-reference", "split-orders", "read-orders", "add-waiting-lines"]
    assert "partitions" not in timings  # 66 lines: read whole
    assert {"plan", "persist-plan", "provision", "fulfil-orders", "write-reports"} <= set(timings["stage_seconds"])
    assert 0 < sum(timings["stage_seconds"].values()) <= timings["total_seconds"] + 0.01


def test_an_identical_rerun_of_sample_data_changes_nothing(run_sample):
    first = run_sample()
    second = run_sample()
    assert second["lines"]["already_provisioned"] == first["lines"]["provisioned"]
    assert second["lines"]["provisioned"] == 0
    assert second["orders"]["already_fulfilled"] == first["orders"]["fulfilled"]
    assert second["billing_contracts"]["created"] == 0
    assert second["subscriptions"] == {"created": 0, "updated": 0}
    assert second["one_time_charges"]["created"] == 0
    # the rows that were held or rejected stay so, with the same reasons
    for key in ("held", "rejected", "skipped"):
        assert second["lines"][key] == first["lines"][key]


# what a dry run and the flow's shape are does not depend on the backend, and each run costs
# ~10 s: these two run on SQLite only (the PostgreSQL paths are the golden and re-run tests')
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_dry_run_of_sample_data_reports_what_a_real_run_does(run_sample, db_url):
    dry = run_sample(dry_run=True)
    real = run_sample()
    for key in ("lines", "orders", "billing_contracts", "subscriptions", "one_time_charges", "exceptions_by_reason",
                "customers_needing_provider_mapping"):
        assert dry[key] == real[key], key
    assert dry["notices"][0].startswith("DRY RUN")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_flow_runs_one_task_per_stage_and_leaves_a_markdown_summary(run_sample):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter

    summary = run_sample()
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["provisioning-summary"])))
        flow_runs = client.read_flow_runs()
        latest = max(flow_runs, key=lambda run: run.created)
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [latest.id]}))
    assert any(summary["run_id"] in (artifact.data or "") for artifact in artifacts)
    assert latest.name and latest.state.is_completed()
    # per stage, never per row: 66 lines, a handful of task runs
    assert sorted({run.name.rsplit("-", 1)[0] for run in task_runs}) == [
        "add-waiting-lines", "fulfil-orders", "load-reference", "load-state", "persist-plan", "plan", "provision",
        "read-orders", "split-orders", "verify-provider-accounts", "write-reports"]
    assert len(task_runs) == 11
