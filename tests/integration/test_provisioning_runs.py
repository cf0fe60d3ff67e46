"""Whole runs of the provision-orders flow on a real database (SQLite and PostgreSQL).

Each test drives the real Prefect flow (temporary server) over small flat exports written in
the test, and checks both the summary and what the database holds afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from tests.support.database import count, rows
from tests.support.exports import line, write_flat_csv, write_reference
from w365etl.adapters import tables as t

AS_OF = dt.date(2026, 11, 29)
TENANT = "0b7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e01"

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    """Run the flow like `w365etl run` does; returns its summary."""
    monkeypatch.setenv("W365_DB_URL", db_url)
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "record")
    from flows.provision_orders import provision_orders

    def _run(files, *, reference=None, dry_run=False, as_of=AS_OF):
        return provision_orders(files=[str(path) for path in files], reference_dir=str(reference) if reference else None,
                                out_dir=str(tmp_path / "out"), as_of=as_of, dry_run=dry_run)

    return _run


def two_orders(tmp_path: Path) -> Path:
    return write_flat_csv(tmp_path / "orders.csv", [
        line("SO-1", "Contoso", "M365-BB-M", "10", "6.00", guid="11111111-0000-0000-0000-000000000001", number=1),
        line("SO-1", "Contoso", "SUP-STD-M", "1", "99.50", guid="11111111-0000-0000-0000-000000000002", number=2),
        line("SO-1", "Contoso", "ONB-SETUP", "1", "500", guid="11111111-0000-0000-0000-000000000003", number=3),
        line("SO-2", "Fabrikam", "M365-BP-A", "5", "264.00", guid="22222222-0000-0000-0000-000000000001", number=1,
             unit="Annual"),
    ])


def test_r6_identical_rerun_changes_nothing(run, db_url, tmp_path):
    reference = write_reference(tmp_path / "ref", [("Contoso", TENANT), ("Fabrikam", TENANT.replace("0b", "1c"))])
    orders = two_orders(tmp_path)
    first = run([orders], reference=reference)
    assert first["lines"] == {"input": 4, "provisioned": 4, "already_provisioned": 0, "skipped": 0, "held": 0,
                              "rejected": 0, "failed": 0, "reevaluated": 0}
    assert first["orders"]["fulfilled"] == 2
    # Contoso: a CSP Monthly, a Support Contract Monthly and a non-recurring contract; Fabrikam: CSP Annually
    assert first["billing_contracts"] == {"created": 4, "reused": 0}
    assert first["subscriptions"] == {"created": 3, "updated": 0}
    assert first["one_time_charges"] == {"created": 1}
    before = {table.name: count(db_url, table) for table in (t.Subscription.__table__, t.BillingContract.__table__,
                                                             t.OneTimeCharge.__table__, t.Line.__table__)}

    second = run([orders], reference=reference)
    assert second["lines"]["already_provisioned"] == 4
    assert second["lines"]["provisioned"] == 0
    assert second["orders"]["already_fulfilled"] == 2
    assert second["billing_contracts"] == {"created": 0, "reused": 0}
    assert second["subscriptions"]["created"] == 0
    after = {table.name: count(db_url, table) for table in (t.Subscription.__table__, t.BillingContract.__table__,
                                                            t.OneTimeCharge.__table__, t.Line.__table__)}
    assert after == before
    # R7: an order still Active in a later export is sent to D365 again
    updates = pd.read_csv(Path(second["report_folder"]) / "order_status_updates.csv")
    assert sorted(updates["order_number"]) == ["SO-1", "SO-2"]
    assert set(updates["statecode"]) == {3} and set(updates["statuscode"]) == {100001}


def test_r3_a_mapping_added_later_releases_the_held_order(run, db_url, tmp_path):
    orders = two_orders(tmp_path)
    first = run([orders], reference=write_reference(tmp_path / "ref1", [("Contoso", TENANT)]))
    assert first["lines"]["held"] == 1 and first["lines"]["provisioned"] == 3
    assert first["customers_needing_provider_mapping"] == 1
    template = pd.read_csv(Path(first["report_folder"]) / "needs_provider_mapping.csv")
    assert template.loc[0, "customer_name"] == "Fabrikam" and template.loc[0, "held_orders"] == "SO-2"

    second = run([orders], reference=write_reference(tmp_path / "ref2", [("Fabrikam", "9a9a9a9a-0000-4000-8000-000000000000")]))
    assert second["lines"]["provisioned"] == 1
    assert second["lines"]["already_provisioned"] == 3
    assert second["orders"]["fulfilled"] == 1 and second["orders"]["already_fulfilled"] == 1
    assert second["customers_needing_provider_mapping"] == 0


# three runs; the date is one UPDATE the golden and re-run tests run on PostgreSQL too
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_r7_an_order_fulfilled_again_after_a_new_line_is_dated_by_the_run_that_fulfilled_it_again(run, db_url, tmp_path):
    """R7 date fulfilled = as-of date: SO-1 was fulfilled on the 21st; on the 22nd it comes back
    with a new line, which is provisioned — it is fulfilled again, and order_status_updates.csv
    (what D365 imports) says the 22nd, as the report does (it said the 21st)."""
    reference = write_reference(tmp_path / "ref", [("Contoso", TENANT)])
    first_line = line("SO-1", "Contoso", "M365-BB-M", "10", "6.00", number=1)
    first = run([write_flat_csv(tmp_path / "a.csv", [first_line])], reference=reference, as_of=dt.date(2026, 11, 21))
    assert first["orders"]["fulfilled"] == 1
    second = run([write_flat_csv(tmp_path / "b.csv", [first_line, line("SO-1", "Contoso", "SUP-STD-M", "1", "99.50",
                                                                      number=2)])], as_of=dt.date(2026, 11, 22))
    assert second["lines"]["provisioned"] == 1 and second["lines"]["already_provisioned"] == 1
    assert second["orders"]["fulfilled"] == 1
    updates = pd.read_csv(Path(second["report_folder"]) / "order_status_updates.csv", dtype=str)
    assert updates[["order_number", "date_fulfilled"]].values.tolist() == [["SO-1", "2026-11-22"]]
    # the run that first fulfilled it stays on record (its history still shows it fulfilled)
    assert rows(db_url, select(t.Order.fulfilled_run_id, t.Order.fulfilled_date)) == [
        (first["run_id"], dt.date(2026, 11, 22))]
    # a third night with nothing new: already fulfilled, the date stays
    third = run([write_flat_csv(tmp_path / "c.csv", [first_line])], as_of=dt.date(2026, 11, 23))
    assert third["orders"]["already_fulfilled"] == 1
    updates = pd.read_csv(Path(third["report_folder"]) / "order_status_updates.csv", dtype=str)
    assert updates[["order_number", "date_fulfilled"]].values.tolist() == [["SO-1", "2026-11-22"]]


def test_r6_a_line_bought_under_its_guid_is_recognised_without_it(run, db_url, tmp_path):
    reference = write_reference(tmp_path / "ref", [("Contoso", TENANT), ("Fabrikam", TENANT)])
    orders = two_orders(tmp_path)
    run([orders], reference=reference)
    without_guid = write_flat_csv(tmp_path / "again.csv", pd.read_csv(orders, dtype=str).fillna("").to_dict("records"),
                                  drop=("(Do Not Modify) Order Product",))
    second = run([without_guid])
    assert second["lines"]["already_provisioned"] == 4
    assert count(db_url, t.Subscription.__table__) == 3


def test_r6_a_changed_quantity_after_provisioning_is_rejected(run, db_url, tmp_path):
    reference = write_reference(tmp_path / "ref", [("Contoso", TENANT), ("Fabrikam", TENANT)])
    run([two_orders(tmp_path)], reference=reference)
    changed = write_flat_csv(tmp_path / "changed.csv", [
        line("SO-2", "Fabrikam", "M365-BP-A", "7", "264.00", guid="22222222-0000-0000-0000-000000000001", number=1,
             unit="Annual"),
    ])
    second = run([changed])
    assert second["lines"]["rejected"] == 1
    assert {code: n for code, n in second["exceptions_by_reason"].items() if n} == {
        "LINE_CHANGED_AFTER_PROVISIONING": 1}
    quantities = rows(db_url, select(t.Subscription.quantity).where(t.Subscription.product_number == "M365-BP-A"))
    assert [row[0] for row in quantities] == ["5"]


def test_r5_existing_adds_quantity_to_the_subscription_and_records_the_change(run, db_url, tmp_path):
    reference = write_reference(tmp_path / "ref", [("Contoso", TENANT), ("Fabrikam", TENANT)])
    run([two_orders(tmp_path)], reference=reference)
    more = write_flat_csv(tmp_path / "more.csv", [
        line("SO-3", "Contoso", "M365-BB-M", "2.00000", "6.00", number=1, provision_as="Existing"),
        line("SO-3", "Contoso", "M365-BB-M", "3", "6.00", number=2, provision_as="Existing"),
    ])
    second = run([more])
    assert second["lines"]["provisioned"] == 2
    assert second["subscriptions"] == {"created": 0, "updated": 1}
    assert second["billing_contracts"] == {"created": 0, "reused": 1}
    quantity = rows(db_url, select(t.Subscription.quantity).where(t.Subscription.product_number == "M365-BB-M"))
    assert [row[0] for row in quantity] == ["15"]
    changes = rows(db_url, select(t.SubscriptionChange.quantity_before, t.SubscriptionChange.quantity_after)
                   .order_by(t.SubscriptionChange.line_pk))
    assert changes == [("10", "12"), ("12", "15")]


def test_dry_run_writes_nothing_to_the_database(run, db_url, tmp_path):
    reference = write_reference(tmp_path / "ref", [("Contoso", TENANT), ("Fabrikam", TENANT)])
    orders = two_orders(tmp_path)
    dry = run([orders], reference=reference, dry_run=True)
    assert dry["dry_run"] is True
    assert dry["lines"]["provisioned"] == 4
    assert dry["notices"][0].startswith("DRY RUN")
    folder = Path(dry["report_folder"])
    assert not (folder / "order_status_updates.csv").exists()
    if db_url.startswith("sqlite"):
        assert not Path(db_url.removeprefix("sqlite:///")).exists()
    else:  # the fixture upgraded it (`w365etl db upgrade`): the tables exist and stay empty
        assert all(count(db_url, table) == 0 for table in t.Base.metadata.sorted_tables)
    real = run([orders], reference=reference)
    assert {key: real[key] for key in ("lines", "orders", "billing_contracts", "subscriptions", "one_time_charges")} == {
        key: dry[key] for key in ("lines", "orders", "billing_contracts", "subscriptions", "one_time_charges")}

    # a dry run on a database that exists reads it, and still writes nothing and calls no provider
    before = {table.name: count(db_url, table) for table in t.Base.metadata.sorted_tables}
    more = write_flat_csv(tmp_path / "more.csv", [line("SO-9", "Contoso", "M365-BB-M", "4", "6.00", number=1)])
    again = run([orders, more], dry_run=True)
    assert again["lines"]["already_provisioned"] == 4 and again["lines"]["provisioned"] == 1
    assert {table.name: count(db_url, table) for table in t.Base.metadata.sorted_tables} == before


def test_reports_are_written_and_summary_is_complete(run, db_url, tmp_path):
    reference = write_reference(tmp_path / "ref", [("Contoso", TENANT)])
    summary = run([two_orders(tmp_path)], reference=reference)
    folder = Path(summary["report_folder"])
    for name in ("summary.json", "fulfilment_report.xlsx", "exceptions.csv", "needs_provider_mapping.csv",
                 "order_status_updates.csv"):
        assert (folder / name).is_file(), name
    stored = json.loads((folder / "summary.json").read_text())
    assert stored["lines"]["input"] == sum(stored["lines"][key] for key in stored["lines"] if key != "input")
    exceptions = pd.read_csv(folder / "exceptions.csv")
    assert list(exceptions.columns) == ["run_id", "severity", "reason_code", "file", "row", "sheet", "order_number",
                                        "line_key", "customer_name", "column", "value", "message", "suggested_action"]
    held = exceptions[exceptions["reason_code"] == "NEEDS_PROVIDER_MAPPING"]
    assert held["row"].tolist() == [5] and held["severity"].tolist() == ["warning"]
    assert count(db_url, t.ExceptionRecord.__table__) == len(exceptions)
    assert rows(db_url, select(t.Run.status)) == [("completed",)]


def test_r3_a_held_order_is_released_by_its_mapping_without_its_file(run, db_url, tmp_path):
    """Held orders are re-evaluated from the database every run (they count in lines.input)."""
    orders = two_orders(tmp_path)
    first = run([orders], reference=write_reference(tmp_path / "ref1", [("Contoso", TENANT)]))
    assert first["lines"]["held"] == 1 and first["lines"]["reevaluated"] == 0

    other = write_flat_csv(tmp_path / "other.csv", [line("SO-7", "Contoso", "SUP-STD-M", "1", "99", number=1)])
    still_waiting = run([other])
    assert still_waiting["lines"]["input"] == 2 and still_waiting["lines"]["reevaluated"] == 1
    assert still_waiting["lines"]["held"] == 1 and still_waiting["customers_needing_provider_mapping"] == 1

    released = run([], reference=write_reference(tmp_path / "ref2", [("Fabrikam", "9a9a9a9a-0000-4000-8000-000000000000")]))
    assert released["lines"] == {"input": 1, "provisioned": 1, "already_provisioned": 0, "skipped": 0, "held": 0,
                                 "rejected": 0, "failed": 0, "reevaluated": 1}
    assert released["orders"]["fulfilled"] == 1
    updates = pd.read_csv(Path(released["report_folder"]) / "order_status_updates.csv")
    assert updates["order_number"].tolist() == ["SO-2"]

    nothing_left = run([])
    assert nothing_left["lines"]["input"] == 0


def test_r2_an_order_held_for_a_rejected_line_is_not_released_without_a_new_export(run, db_url, tmp_path):
    orders = write_flat_csv(tmp_path / "orders.csv", [
        line("SO-1", "Fabrikam", "M365-BB-M", "2", "6.00", number=1),
        line("SO-1", "Fabrikam", "NO-SUCH-PRODUCT", "1", "5", number=2),
    ])
    first = run([orders], reference=write_reference(tmp_path / "ref1", []))
    assert first["lines"]["rejected"] == 1 and first["lines"]["held"] == 1
    later = run([], reference=write_reference(tmp_path / "ref2", [("Fabrikam", TENANT)]))
    assert later["lines"]["input"] == 0  # the order waits for a corrected export, not for a mapping
