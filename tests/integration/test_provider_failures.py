"""A provider that refuses lines (SPEC §5 ``failed``, ``PROVIDER_ERROR``): nothing lost, retried next run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

import pytest
from sqlalchemy import create_engine, func, select

from tests.support.database import rows
from tests.support.exports import line, write_flat_csv, write_reference
from w365etl.adapters import tables as t
from w365etl.adapters.providers import fake

AS_OF = dt.date(2026, 11, 29)
TENANT = "0b7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e01"

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_a_refused_line_fails_its_order_then_goes_through_on_the_next_run(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("W365_DB_URL", db_url)
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "fake")
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__FAKE_REFUSED_PRODUCTS", '["M365-BP-A"]')
    fake.purchases.clear()
    from flows.provision_orders import provision_orders

    reference = write_reference(tmp_path / "ref", [("Contoso", TENANT), ("Fabrikam", TENANT)])
    orders = write_flat_csv(tmp_path / "orders.csv", [
        line("SO-1", "Contoso", "M365-BB-M", "10", "6.00", number=1),
        line("SO-2", "Fabrikam", "M365-BP-A", "5", "264.00", number=1, unit="Annual"),
        line("SO-2", "Fabrikam", "SUP-STD-M", "1", "99", number=2),
    ])
    first = provision_orders(files=[str(orders)], reference_dir=str(reference), out_dir=str(tmp_path / "out"),
                             as_of=AS_OF)
    assert first["lines"]["failed"] == 1 and first["lines"]["provisioned"] == 2
    assert first["orders"]["failed"] == 1
    assert first["orders"]["fulfilled"] == 1
    assert {code: n for code, n in first["exceptions_by_reason"].items() if n} == {"PROVIDER_ERROR": 1}
    # the refusal (800002) travels to the exception report with the provider's message
    exceptions = pd.read_csv(Path(first["report_folder"]) / "exceptions.csv", dtype=str)
    assert exceptions.loc[0, "value"] == fake.REFUSAL_CODE
    assert fake.REFUSAL_MESSAGE in exceptions.loc[0, "message"]

    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__FAKE_REFUSED_PRODUCTS", "[]")
    second = provision_orders(files=[str(orders)], out_dir=str(tmp_path / "out"), as_of=AS_OF)
    assert second["lines"]["provisioned"] == 1  # the failed line, retried
    assert second["lines"]["already_provisioned"] == 2
    assert second["orders"]["fulfilled"] == 1 and second["orders"]["already_fulfilled"] == 1
    assert sorted(fake.purchases["partner_center"]) == ["SO-1 | 1", "SO-2 | 1"]  # each bought once

    engine = create_engine(db_url)
    with engine.connect() as connection:
        subscriptions = connection.execute(select(func.count()).select_from(t.Subscription)).scalar_one()
        statuses = connection.execute(select(t.Line.status).order_by(t.Line.line_pk)).scalars().all()
    engine.dispose()
    assert subscriptions == 3
    assert statuses == ["provisioned", "provisioned", "provisioned"]


def test_r3_a_mapped_account_the_provider_does_not_know_holds_the_order(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("W365_DB_URL", db_url)
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "fake")
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__FAKE_UNKNOWN_ACCOUNTS", f'["{TENANT}"]')
    from flows.provision_orders import provision_orders

    reference = write_reference(tmp_path / "ref", [("Contoso", TENANT), ("Fabrikam", "9a9a9a9a-0000-4000-8000-0000000000aa")])
    orders = write_flat_csv(tmp_path / "orders.csv", [
        line("SO-1", "Contoso", "M365-BB-M", "10", "6.00", number=1),
        line("SO-1", "Contoso", "SUP-STD-M", "1", "99", number=2),
        line("SO-2", "Fabrikam", "M365-BB-M", "2", "6.00", number=1),
    ])
    summary = provision_orders(files=[str(orders)], reference_dir=str(reference), out_dir=str(tmp_path / "out"),
                               as_of=AS_OF)
    assert summary["lines"]["held"] == 2 and summary["lines"]["provisioned"] == 1
    assert summary["customers_needing_provider_mapping"] == 1
    assert summary["exceptions_by_reason"]["PROVIDER_MAPPING_INVALID"] == 2
    template = pd.read_csv(Path(summary["report_folder"]) / "needs_provider_mapping.csv", dtype=str)
    assert template[["customer_name", "reason_code", "held_orders"]].values.tolist() == [
        ["Contoso", "PROVIDER_MAPPING_INVALID", "SO-1"]]


def test_a_failed_line_is_tried_again_on_the_next_run_without_its_file(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("W365_DB_URL", db_url)
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "fake")
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__FAKE_REFUSED_PRODUCTS", '["M365-BP-A"]')
    from flows.provision_orders import provision_orders

    reference = write_reference(tmp_path / "ref", [("Fabrikam", TENANT)])
    orders = write_flat_csv(tmp_path / "orders.csv", [
        line("SO-2", "Fabrikam", "M365-BP-A", "5", "264.00", number=1, unit="Annual"),
        line("SO-3", "Fabrikam", "M365-BB-M", "2", "6.00", number=1)])
    first = provision_orders(files=[str(orders)], reference_dir=str(reference), out_dir=str(tmp_path / "out"), as_of=AS_OF)
    assert first["lines"]["failed"] == 1 and first["lines"]["provisioned"] == 1
    # the refused line keeps its content (written with the refusal); the provisioned one needs none
    kept = dict(rows(db_url, select(t.Line.order_number, t.Line.payload.is_not(None))))
    assert kept == {"SO-2": True, "SO-3": False}

    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__FAKE_REFUSED_PRODUCTS", "[]")
    second = provision_orders(files=[], out_dir=str(tmp_path / "out"), as_of=AS_OF)
    assert second["lines"] == {"input": 1, "provisioned": 1, "already_provisioned": 0, "skipped": 0, "held": 0,
                               "rejected": 0, "failed": 0, "reevaluated": 1}
    assert second["orders"]["fulfilled"] == 1
