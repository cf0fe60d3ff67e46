"""R5 `Existing` with the sandbox adapter started for each run (no ``sandbox_url``, as ``make run``).

Partner Center remembers every subscription it sold; a sandbox started for one run knows
only the catalog and the mappings unless it is seeded with the subscriptions the database
holds. Without that, an `Existing` line for a subscription bought in an earlier run failed
with PROVIDER_ERROR 20003 "Subscription … not found" on every run. Here the sandbox is the
one `flows/wiring.py` starts (real HTTP, the real client), for a whole run and for a run cut
into partitions (the providers are built from the first partition's state).
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import create_engine, select

from tests.support.exports import line, write_flat_csv, write_reference
from w365etl.adapters import tables as t
from w365etl.sandbox.partner_center import start_sandbox

AS_OF = dt.date(2026, 11, 29)
CONTOSO = "0b7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e01"
FABRIKAM = "1c7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e02"


@pytest.fixture
def reference(tmp_path):
    return write_reference(tmp_path / "ref", [("Contoso", CONTOSO), ("Fabrikam", FABRIKAM)])


@pytest.fixture
def run(db_url, reference, tmp_path, monkeypatch):
    """One flow run with a sandbox the run starts itself (and stops at its end)."""
    monkeypatch.setenv("W365_DB_URL", db_url)
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "sandbox")
    monkeypatch.delenv("W365_PROVIDERS__PARTNER_CENTER__SANDBOX_URL", raising=False)
    from flows.provision_orders import provision_orders

    def _run(files):
        return provision_orders(files=[str(path) for path in files], reference_dir=str(reference),
                                out_dir=str(tmp_path / "out"), as_of=AS_OF)

    return _run


def problems(summary: dict) -> dict[str, int]:
    return {reason: count for reason, count in summary["exceptions_by_reason"].items() if count}


def stored(db_url: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(product quantity per customer's subscription, change records before → after)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            quantities = dict(connection.execute(
                select(t.Customer.customer_name, t.Subscription.quantity)
                .join(t.Customer, t.Customer.customer_pk == t.Subscription.customer_pk)).all())
            changes = sorted(connection.execute(
                select(t.SubscriptionChange.quantity_before, t.SubscriptionChange.quantity_after)).all())
    finally:
        engine.dispose()
    return {name: str(quantity) for name, quantity in quantities.items()}, [tuple(map(str, c)) for c in changes]


@pytest.mark.usefixtures("prefect_server")
def test_r5_existing_increases_a_subscription_an_earlier_run_bought(run, db_url, tmp_path):
    first = run([write_flat_csv(tmp_path / "a.csv", [line("ORD-A", "Contoso", "M365-BB-M", "10", "6", number=1)])])
    assert first["subscriptions"] == {"created": 1, "updated": 0}
    second = run([write_flat_csv(tmp_path / "b.csv", [
        line("ORD-B", "Contoso", "M365-BB-M", "2", "6", number=1, provision_as="Existing")])])
    assert second["lines"]["failed"] == 0, problems(second)
    assert second["lines"]["provisioned"] == 1
    assert second["subscriptions"] == {"created": 0, "updated": 1}
    quantities, changes = stored(db_url)
    assert quantities == {"Contoso": "12"}
    assert changes == [("10", "12")]


@pytest.mark.usefixtures("prefect_server")
# the partitioned path adds only the in-process seeding of the sandbox: one backend is enough
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_r5_existing_in_a_later_partition_increases_a_subscription_an_earlier_run_bought(
        run, db_url, tmp_path, monkeypatch):
    run([write_flat_csv(tmp_path / "a.csv", [line("ORD-A", "Contoso", "M365-BB-M", "10", "6", number=1),
                                              line("ORD-F", "Fabrikam", "M365-BB-M", "4", "6", number=1)])])
    # two customers, one line each: two partitions, and the sandbox is started in the first
    monkeypatch.setenv("W365_PARTITION_LINES", "1")
    second = run([write_flat_csv(tmp_path / "b.csv", [
        line("ORD-B", "Contoso", "M365-BB-M", "2", "6", number=1, provision_as="Existing"),
        line("ORD-G", "Fabrikam", "M365-BB-M", "3", "6", number=1, provision_as="Existing"),
        line("ORD-G", "Fabrikam", "M365-BB-M", "1", "6", number=2, provision_as="Existing")])])
    assert second["lines"]["failed"] == 0, problems(second)
    assert second["subscriptions"] == {"created": 0, "updated": 2}
    quantities, changes = stored(db_url)
    assert quantities == {"Contoso": "12", "Fabrikam": "8"}
    assert changes == [("10", "12"), ("4", "7"), ("7", "8")]


# ------------------------------------------------------------------------------------- the sandbox alone
def _token(url: str) -> dict[str, str]:
    answer = httpx.post(f"{url}/partner/oauth2/v2.0/token",
                        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_a_seeded_subscription_is_active_and_can_be_updated_over_http(reference):
    seed = [{"provider_customer_id": CONTOSO, "provider_subscription_id": "sub-1", "provider_sku": "CFQ7TTC0LH18:0001",
             "quantity": "10.00000", "term_duration": "P1M", "billing_frequency": "Monthly"},
            {"provider_customer_id": CONTOSO, "provider_subscription_id": "sub-2", "provider_sku": "CFQ7TTC0LH18:0001",
             "quantity": "2.5"}]  # not a whole seat count: not something Partner Center can hold
    with start_sandbox(reference=reference, subscriptions=seed) as sandbox:
        headers = _token(sandbox.url)
        path = f"{sandbox.url}/v1/customers/{CONTOSO}/subscriptions/sub-1"
        current = httpx.get(path, headers=headers).json()
        assert (current["status"], current["quantity"], current["offerId"].split(":")[:2]) == \
            ("active", 10, ["CFQ7TTC0LH18", "0001"])
        changed = httpx.patch(path, headers=headers, json={**current, "quantity": 12})
        assert changed.status_code == 200 and changed.json()["quantity"] == 12
        half = httpx.get(f"{sandbox.url}/v1/customers/{CONTOSO}/subscriptions/sub-2", headers=headers)
        assert half.status_code == 404
        # seeding again never resets what happened at the sandbox since
        assert sandbox.state.seed_subscriptions([{**seed[0], "quantity": 10}]) == 0
        assert httpx.get(path, headers=headers).json()["quantity"] == 12
        # another customer's subscription is not this one's
        other = httpx.get(f"{sandbox.url}/v1/customers/{FABRIKAM}/subscriptions/sub-1", headers=headers)
        assert other.status_code == 404 and other.json()["code"] == "20003"
