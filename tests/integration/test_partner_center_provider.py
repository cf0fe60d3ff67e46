"""Partner Center lines through the whole pipeline, against the sandbox over real HTTP.

The sandbox runs on 127.0.0.1 in this test process (its state outlives each flow run, as the
real Partner Center outlives ours); the pipeline reaches it through ``sandbox_url`` with the
real client. What was bought is checked through the sandbox's own GET endpoints.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from tests.support.exports import line, write_flat_csv, write_reference
from w365etl.adapters import tables as t
from w365etl.sandbox.partner_center import start_sandbox

AS_OF = dt.date(2026, 11, 29)
CONTOSO = "0b7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e01"
FABRIKAM = "1c7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e02"
NORTHWIND = "2d7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e03"

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def reference(tmp_path):
    return write_reference(tmp_path / "ref", [("Contoso", CONTOSO), ("Fabrikam", FABRIKAM), ("Northwind", NORTHWIND)])


@pytest.fixture
def sandbox_factory(reference):
    handles = []

    def start(**options):
        handle = start_sandbox(reference=reference, order_completion_polls=1, retry_after_seconds=0, **options)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("W365_DB_URL", db_url)
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "sandbox")
    from flows.provision_orders import provision_orders

    def _run(files, sandbox, reference=None):
        monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__SANDBOX_URL", sandbox.url)
        return provision_orders(files=[str(path) for path in files], reference_dir=str(reference) if reference else None,
                                out_dir=str(tmp_path / "out"), as_of=AS_OF)

    return _run


def assert_recovered_without_buying_again(sandbox, summary: dict, purchased: dict[str, set]) -> None:
    """After a crash: all 9 lines are provisioned now, and each tenant holds exactly what the
    crashed run bought, once each (R6: nothing provisioned twice)."""
    assert summary["lines"]["provisioned"] + summary["lines"]["already_provisioned"] == 9
    for tenant in (CONTOSO, FABRIKAM, NORTHWIND):
        assert set(bought(sandbox, tenant)) == purchased[tenant]
        assert set(sandbox.state.friendly_name_counts(tenant).values()) == {1}


def bought(sandbox, tenant: str) -> dict[str, list[dict]]:
    """What the customer has, read through the sandbox's public GET endpoint like anyone would."""
    token = httpx.post(f"{sandbox.url}/partner/oauth2/v2.0/token",
                       data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"}).json()
    answer = httpx.get(f"{sandbox.url}/v1/customers/{tenant}/subscriptions",
                       headers={"Authorization": f"Bearer {token['access_token']}"})
    answer.raise_for_status()
    found: dict[str, list[dict]] = {}
    for item in answer.json()["items"]:
        found.setdefault(item["friendlyName"], []).append(item)
    return found


def orders_file(tmp_path, count: int = 3):
    rows = []
    for number, (customer, product, unit) in enumerate([("Contoso", "M365-BB-M", "Monthly"), ("Fabrikam", "M365-BP-A", "Annual"),
                                                         ("Northwind", "M365-BB-M", "Monthly")][:count], start=1):
        rows.append(line(f"SO-{number}", customer, product, str(number * 5), "6.00", number=1, unit=unit))
        rows.append(line(f"SO-{number}", customer, "M365-BB-M", "2", "6.00", number=2))
        rows.append(line(f"SO-{number}", customer, "SUP-STD-M", "1", "99", number=3))
    return write_flat_csv(tmp_path / "orders.csv", rows)


def test_partner_center_lines_are_bought_through_the_sandbox_once(run, sandbox_factory, reference, tmp_path, db_url):
    sandbox = sandbox_factory()
    orders = orders_file(tmp_path)
    first = run([orders], sandbox, reference)
    assert first["lines"]["provisioned"] == 9 and first["orders"]["fulfilled"] == 3
    assert first["notices"][0].startswith("SANDBOX")
    for tenant in (CONTOSO, FABRIKAM, NORTHWIND):
        subscriptions = bought(sandbox, tenant)
        assert len(subscriptions) == 2 and all(len(items) == 1 for items in subscriptions.values())
        assert all(name.startswith("w365:") for name in subscriptions)
    engine = create_engine(db_url)
    with engine.connect() as connection:
        ids = connection.execute(select(t.Subscription.provider_subscription_id)
                                 .where(t.Subscription.provider_code == "partner_center")).scalars().all()
    engine.dispose()
    assert len(ids) == 6 and all(ids)

    second = run([orders], sandbox)
    assert second["lines"]["already_provisioned"] == 9
    assert sum(len(bought(sandbox, tenant)) for tenant in (CONTOSO, FABRIKAM, NORTHWIND)) == 6


def test_under_30_percent_faults_two_runs_buy_each_line_exactly_once(run, sandbox_factory, reference, tmp_path):
    sandbox = sandbox_factory(fault_rate=0.3, seed=7, slow_ms=0)
    orders = orders_file(tmp_path)
    first = run([orders], sandbox, reference)
    second = run([orders], sandbox)
    # every line provisioned or failed with a reason; nothing lost
    for summary in (first, second):
        lines = summary["lines"]
        assert lines["provisioned"] + lines["already_provisioned"] + lines["failed"] == 9
        assert summary["exceptions_by_reason"]["PROVIDER_ERROR"] == lines["failed"]
    assert second["lines"]["failed"] == 0
    with sandbox.faults_paused():
        for tenant in (CONTOSO, FABRIKAM, NORTHWIND):
            assert {name: len(items) for name, items in bought(sandbox, tenant).items()} == {
                name: 1 for name in bought(sandbox, tenant)}
            assert len(bought(sandbox, tenant)) == 2
            assert set(sandbox.state.friendly_name_counts(tenant).values()) == {1}
    assert len(sandbox.state.faults) > 0


def test_a_crash_between_checkout_and_recording_buys_nothing_new(run, sandbox_factory, reference, tmp_path, db_url,
                                                                 monkeypatch):
    sandbox = sandbox_factory()
    orders = orders_file(tmp_path)
    monkeypatch.setenv("W365_FAILPOINTS", "after_provider_call:partner_center")
    with pytest.raises(Exception, match="fail point after_provider_call"):
        run([orders], sandbox, reference)
    # bought at Partner Center, never recorded by us
    purchased = {tenant: set(bought(sandbox, tenant)) for tenant in (CONTOSO, FABRIKAM, NORTHWIND)}
    assert sum(len(names) for names in purchased.values()) == 6
    monkeypatch.delenv("W365_FAILPOINTS")
    second = run([orders], sandbox)
    assert_recovered_without_buying_again(sandbox, second, purchased)
    engine = create_engine(db_url)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(t.Subscription)
                                  .where(t.Subscription.provider_code == "partner_center")).scalar_one() == 6
    engine.dispose()


def test_a_crash_right_after_checkout_is_reconciled_and_its_journal_closed(run, sandbox_factory, reference, tmp_path,
                                                                          db_url, monkeypatch):
    """Stopped between the checkout and the journal's "checked_out" (fail point ``after_checkout``):
    the next run finds the lines bought, buys nothing again and closes the crashed run's
    submissions — an open one would be read, and its orders polled, by every later run."""
    sandbox = sandbox_factory()
    orders = orders_file(tmp_path)
    monkeypatch.setenv("W365_FAILPOINTS", "after_checkout:partner_center")
    first = run([orders], sandbox, reference)
    assert first["lines"]["failed"] == 6  # the stop is inside each customer's purchase: its lines fail
    purchased = {tenant: set(bought(sandbox, tenant)) for tenant in (CONTOSO, FABRIKAM, NORTHWIND)}
    assert sum(len(names) for names in purchased.values()) == 6

    def open_submissions() -> int:
        engine = create_engine(db_url)
        with engine.connect() as connection:
            count = connection.execute(select(func.count()).select_from(t.ProviderSubmission).where(
                t.ProviderSubmission.status.not_in(["completed", "failed"]))).scalar_one()
        engine.dispose()
        return count

    assert open_submissions() == 3
    monkeypatch.delenv("W365_FAILPOINTS")
    second = run([orders], sandbox)
    assert_recovered_without_buying_again(sandbox, second, purchased)
    assert open_submissions() == 0


def test_r5_existing_sets_the_new_absolute_quantity_at_partner_center(run, sandbox_factory, reference, tmp_path):
    sandbox = sandbox_factory()
    run([orders_file(tmp_path, count=1)], sandbox, reference)
    more = write_flat_csv(tmp_path / "more.csv", [
        line("SO-9", "Contoso", "M365-BB-M", "3", "6.00", number=1, provision_as="Existing")])
    summary = run([more], sandbox)
    assert summary["subscriptions"] == {"created": 0, "updated": 1}
    quantities = sorted(item[0]["quantity"] for item in bought(sandbox, CONTOSO).values())
    assert quantities == [2, 8]  # the oldest matching subscription (5 seats) became 8


def test_r3_an_account_partner_center_does_not_know_holds_the_order(run, sandbox_factory, tmp_path):
    sandbox = sandbox_factory()
    reference = write_reference(tmp_path / "other", [("Contoso", CONTOSO), ("Fabrikam", "9f9f9f9f-0000-4000-8000-000000000000")])
    summary = run([orders_file(tmp_path, count=2)], sandbox, reference)
    assert summary["orders"]["held"] == 1 and summary["orders"]["fulfilled"] == 1
    assert summary["exceptions_by_reason"]["PROVIDER_MAPPING_INVALID"] == 3
    assert summary["customers_needing_provider_mapping"] == 1
