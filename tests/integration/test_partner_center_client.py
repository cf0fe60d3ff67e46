"""The Partner Center client against the local sandbox, over real HTTP (nothing mocked).

The last test is the one the design hangs on: with 30 % of requests faulted (429, 5xx, slow,
dropped, and writes applied but their answer lost), a caller that creates a cart with a persisted
request id, retries checkout on the same cart and reconciles by ``friendlyName`` after an
ambiguous write ends with exactly one subscription per line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from w365etl.adapters.partner_center import (
    AmbiguousWrite,
    CatalogItemUnavailable,
    Conflict,
    CustomerNotFound,
    EtagMismatch,
    NoResellerRelationship,
    PartnerCenterClient,
    PartnerCenterError,
    QuantityOutOfRange,
    RateLimiter,
    ResourceNotFound,
    SandboxTokenProvider,
    Throttled,
    TransientError,
    Unauthorized,
    error_from_response,
    run_per_customer,
)
from w365etl.sandbox.partner_center import start_sandbox

CONTOSO = "c58a0e62-6101-5b2d-a094-461c8670b69d"
FABRIKAM = "109d8317-0000-5f8c-9277-6a6b6953c895"
NORTHWIND = "efe62682-ccb3-5c6e-9cbf-ea7e0e820d11"
UNRELATED = "0b5e7c1a-8d7e-4f5e-9b7a-3c2d1e0f9a8b"
UNKNOWN = "00000000-0000-0000-0000-000000000000"
PRODUCTS = [
    {"product_number": "BB-M", "product_name": "Microsoft 365 Business Basic (Monthly)", "provider": "partner_center",
     "provider_sku": "CFQ7TTC0LH18:0001", "term_duration": "P1M", "billing_frequency": "Monthly",
     "min_quantity": "1", "max_quantity": "300"},
    {"product_number": "BB-A", "product_name": "Microsoft 365 Business Basic (Annual)", "provider": "partner_center",
     "provider_sku": "CFQ7TTC0LH18:0001", "term_duration": "P1Y", "billing_frequency": "Annually",
     "min_quantity": "1", "max_quantity": "300"},
    {"product_number": "E5-3Y", "product_name": "Microsoft 365 E5 (3 Year)", "provider": "partner_center",
     "provider_sku": "CFQ7TTC0LFLZ:0002", "term_duration": "P3Y", "billing_frequency": "Triennial",
     "min_quantity": "1", "max_quantity": ""},
    {"product_number": "SUP", "product_name": "Premium Support", "provider": "manual", "provider_sku": "",
     "term_duration": "P1M", "billing_frequency": "Monthly", "min_quantity": "1", "max_quantity": "1"},
]
CUSTOMERS = {CONTOSO: "Contoso Pharmaceuticals", FABRIKAM: "Fabrikam, Inc.", NORTHWIND: "Northwind Traders",
             UNRELATED: "Someone Else's Customer"}


class RecordingSleep:
    """Really sleeps, and remembers how long it was asked to (to check Retry-After was honoured)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        time.sleep(seconds)


@pytest.fixture(scope="module")
def sandbox():
    handle = start_sandbox(customers=CUSTOMERS, products=PRODUCTS, no_relationship=[UNRELATED],
                           retry_after_seconds=1)
    yield handle
    handle.stop()


def make_client(handle, **options) -> PartnerCenterClient:
    options.setdefault("limiter", RateLimiter.unlimited())
    options.setdefault("backoff_seconds", 0.01)
    return PartnerCenterClient(handle.url, SandboxTokenProvider(handle.url, "partner", "app-id", "app-secret"),
                               **options)


@pytest.fixture()
def client(sandbox):
    with make_client(sandbox) as partner_center:
        yield partner_center


def line(catalog_item_id: str, friendly_name: str, quantity: int = 5, term: str = "P1M", cycle: str = "monthly") -> dict:
    return {"catalogItemId": catalog_item_id, "quantity": quantity, "termDuration": term, "billingCycle": cycle,
            "friendlyName": friendly_name}


def key() -> str:
    return f"line-{uuid.uuid4().hex[:12]}"


# ----------------------------------------------------------------------------- catalog
def test_a_provider_sku_resolves_to_the_availability_offering_the_term(client, sandbox):
    monthly = client.resolve_catalog_item("CFQ7TTC0LH18:0001", "P1M", "Monthly")
    annual = client.resolve_catalog_item("cfq7ttc0lh18:0001", "p1y", "Annually")
    product, sku, availability = monthly.split(":")
    assert (product, sku) == ("CFQ7TTC0LH18", "0001") and availability
    assert annual == monthly  # one availability offers both terms
    before = sandbox.state.request_count
    assert client.resolve_catalog_item("CFQ7TTC0LH18:0001", "P1Y", "annual") == annual
    assert sandbox.state.request_count == before  # cached
    assert client.sku_quantity_bounds("CFQ7TTC0LH18:0001") == (1, 300)
    assert client.sku_quantity_bounds("CFQ7TTC0LFLZ:0002") == (1, 10000)
    assert client.resolve_catalog_item("CFQ7TTC0LFLZ:0002", "P3Y", "Triennial").startswith("CFQ7TTC0LFLZ:0002:")


def test_a_catalog_item_that_cannot_be_bought_is_unavailable(client):
    with pytest.raises(CatalogItemUnavailable) as unknown_product:
        client.resolve_catalog_item("NOSUCHPRODUCT:0001", "P1M", "monthly")
    assert unknown_product.value.code == "400013"
    with pytest.raises(CatalogItemUnavailable) as unknown_sku:
        client.resolve_catalog_item("CFQ7TTC0LH18:0099", "P1M", "monthly")
    assert unknown_sku.value.code == "400018"
    with pytest.raises(CatalogItemUnavailable) as no_such_term:
        client.resolve_catalog_item("CFQ7TTC0LH18:0001", "P3Y", "triennial")
    assert no_such_term.value.code == "400019"
    with pytest.raises(CatalogItemUnavailable):
        client.resolve_catalog_item("CFQ7TTC0LH18", "P1M", "monthly")


def test_the_catalog_is_browsable_like_partner_center(client):
    products = client.list_products()
    assert {product["id"] for product in products} == {"CFQ7TTC0LH18", "CFQ7TTC0LFLZ"}  # the manual row is not PC
    skus = client.list_skus("CFQ7TTC0LH18")
    assert [(sku["id"], sku["minimumQuantity"], sku["maximumQuantity"]) for sku in skus] == [("0001", 1, 300)]
    terms = client.list_availabilities("CFQ7TTC0LH18", "0001")[0]["terms"]
    assert {(term["duration"], term["billingCycle"]) for term in terms} == {("P1M", "Monthly"), ("P1Y", "Annual")}


# ----------------------------------------------------------------------------- buying
def test_cart_checkout_order_and_subscriptions_carry_the_friendly_name(client, sandbox):
    monthly = client.resolve_catalog_item("CFQ7TTC0LH18:0001", "P1M", "monthly")
    e5 = client.resolve_catalog_item("CFQ7TTC0LFLZ:0002", "P3Y", "triennial")
    first, second = key(), key()
    cart = client.create_cart(CONTOSO, [line(monthly, first, 3),
                                        {"catalog_item_id": e5, "quantity": 2, "term_duration": "P3Y",
                                         "billing_cycle": "Triennial", "friendly_name": second}],
                              request_id=str(uuid.uuid4()))
    assert cart["status"] == "Active"
    assert [item["friendlyName"] for item in cart["lineItems"]] == [first, second]
    assert client.get_cart(CONTOSO, cart["id"])["lineItems"][1]["billingCycle"] == "triennial"

    result = client.checkout(CONTOSO, cart["id"], request_id=str(uuid.uuid4()))
    orders = result["orders"]
    assert len(orders) == 2  # one order per billing cycle
    assert sorted(item["friendlyName"] for order in orders for item in order["lineItems"]) == sorted([first, second])
    order_id = orders[0]["id"]
    statuses = [client.get_order(CONTOSO, order_id)["status"] for _ in range(3)]
    assert statuses[0] == "pending" and statuses[-1] == "completed"
    assert client.get_cart(CONTOSO, cart["id"])["status"] == "Ordered"
    assert order_id in {order["id"] for order in client.list_orders(CONTOSO)}

    bought = client.subscriptions_by_friendly_name(CONTOSO)
    assert len(bought[first]) == 1 and len(bought[second]) == 1
    subscription = client.get_subscription(CONTOSO, bought[first][0]["id"])
    assert (subscription["quantity"], subscription["termDuration"], subscription["billingCycle"]) == (3, "P1M", "monthly")
    assert subscription["offerId"] == monthly and subscription["orderId"] in {order["id"] for order in orders}
    assert subscription["attributes"]["etag"]

    again = client.checkout(CONTOSO, cart["id"], request_id=str(uuid.uuid4()))  # same cart: buys nothing
    assert {order["id"] for order in again["orders"]} == {order["id"] for order in orders}
    assert sandbox.state.friendly_name_counts(CONTOSO)[first] == 1


def test_requests_are_read_whatever_the_casing_of_their_keys(client, sandbox):
    catalog_item = client.resolve_catalog_item("CFQ7TTC0LH18:0001", "P1M", "monthly")
    token = SandboxTokenProvider(sandbox.url).get_token()
    created = httpx.post(f"{sandbox.url}/v1/customers/{CONTOSO}/carts", headers={"Authorization": f"Bearer {token}"},
                         json={"LineItems": [{"Id": 0, "CatalogItemId": catalog_item, "Quantity": 2,
                                              "TermDuration": "P1M", "BillingCycle": "Monthly",
                                              "FriendlyName": "pascal-case"}]})
    assert created.status_code == 201
    assert created.json()["lineItems"][0]["friendlyName"] == "pascal-case"  # camelCase out


def test_the_same_request_id_never_creates_a_second_cart(client, sandbox):
    catalog_item = client.resolve_catalog_item("CFQ7TTC0LH18:0001", "P1M", "monthly")
    request_id = str(uuid.uuid4())
    first = client.create_cart(FABRIKAM, [line(catalog_item, key())], request_id=request_id)
    second = client.create_cart(FABRIKAM, [line(catalog_item, key())], request_id=request_id)
    assert first["id"] == second["id"]


def test_quantity_changes_are_read_modify_write_with_the_etag(client):
    catalog_item = client.resolve_catalog_item("CFQ7TTC0LH18:0001", "P1Y", "annual")
    name = key()
    cart = client.create_cart(NORTHWIND, [line(catalog_item, name, 10, "P1Y", "annual")])
    client.checkout(NORTHWIND, cart["id"])
    subscription_id = client.subscriptions_by_friendly_name(NORTHWIND)[name][0]["id"]
    before = client.get_subscription(NORTHWIND, subscription_id)

    updated = client.set_subscription_quantity(NORTHWIND, subscription_id, 15)
    assert updated["quantity"] == 15
    assert updated["attributes"]["etag"] != before["attributes"]["etag"]
    assert client.set_subscription_quantity(NORTHWIND, subscription_id, 15)["attributes"] == updated["attributes"]

    with pytest.raises(QuantityOutOfRange) as too_many:
        client.set_subscription_quantity(NORTHWIND, subscription_id, 301)
    assert too_many.value.code == "2002"


def test_a_stale_etag_is_refused_and_the_client_rereads(client, sandbox):
    catalog_item = client.resolve_catalog_item("CFQ7TTC0LH18:0001", "P1M", "monthly")
    name = key()
    client.checkout(NORTHWIND, client.create_cart(NORTHWIND, [line(catalog_item, name, 4)])["id"])
    subscription = client.subscriptions_by_friendly_name(NORTHWIND)[name][0]
    client.get_subscription(NORTHWIND, subscription["id"])  # settles the order: the subscription is active

    stale = client.get_subscription(NORTHWIND, subscription["id"])
    client.set_subscription_quantity(NORTHWIND, subscription["id"], 6)
    token = SandboxTokenProvider(sandbox.url).get_token()
    raw = httpx.patch(f"{sandbox.url}/v1/customers/{NORTHWIND}/subscriptions/{subscription['id']}",
                      json={**stale, "Quantity": 9}, headers={"Authorization": f"Bearer {token}"})
    assert raw.status_code == 412
    assert isinstance(error_from_response(raw.status_code, raw.content), EtagMismatch)

    sandbox.queue_fault("concurrent_update", method="GET", path_contains=subscription["id"])
    assert client.set_subscription_quantity(NORTHWIND, subscription["id"], 7)["quantity"] == 7
    assert client.get_subscription(NORTHWIND, subscription["id"])["quantity"] == 7


def test_carts_expire():
    with start_sandbox(customers=CUSTOMERS, products=PRODUCTS, cart_ttl_seconds=0) as handle, \
            make_client(handle) as short_lived:
        catalog_item = short_lived.resolve_catalog_item("CFQ7TTC0LH18:0001", "P1M", "monthly")
        cart = short_lived.create_cart(CONTOSO, [line(catalog_item, key())])
        with pytest.raises(ResourceNotFound) as gone:
            short_lived.checkout(CONTOSO, cart["id"])
        assert gone.value.code == "800008"


# ----------------------------------------------------------------------------- refusals
def test_an_unknown_customer_is_customer_not_found(client):
    with pytest.raises(CustomerNotFound) as missing:
        client.get_customer(UNKNOWN)
    assert (missing.value.status, missing.value.code) == (404, "60003")
    with pytest.raises(CustomerNotFound):
        client.create_cart(UNKNOWN, [line("CFQ7TTC0LH18:0001:X", key())])
    assert client.get_customer(CONTOSO)["companyProfile"]["companyName"] == "Contoso Pharmaceuticals"


def test_a_customer_without_reseller_relationship_is_refused(client):
    with pytest.raises(NoResellerRelationship) as refused:
        client.create_cart(UNRELATED, [line("CFQ7TTC0LH18:0001:X", key())])
    assert (refused.value.status, refused.value.code) == (403, "20002")


def test_a_quantity_outside_the_sku_bounds_is_quantity_out_of_range(client):
    catalog_item = client.resolve_catalog_item("CFQ7TTC0LH18:0001", "P1M", "monthly")
    with pytest.raises(QuantityOutOfRange) as refused:
        client.create_cart(CONTOSO, [line(catalog_item, key(), 301)])
    assert refused.value.code == "900275"
    with pytest.raises(QuantityOutOfRange):
        client.create_cart(CONTOSO, [line(catalog_item, key(), 0)])


def test_an_unknown_catalog_item_in_a_cart_is_unavailable(client):
    with pytest.raises(CatalogItemUnavailable) as refused:
        client.create_cart(CONTOSO, [line("CFQ7TTC0LH18:0001:NOPE", key())])
    assert refused.value.code == "400019"


# ----------------------------------------------------------------------------- tokens
def test_the_api_needs_a_valid_token(sandbox):
    customer_url = f"{sandbox.url}/v1/customers/{CONTOSO}"
    missing = httpx.get(customer_url)
    assert missing.status_code == 401 and missing.json()["code"] == "800001"
    bogus = httpx.get(customer_url, headers={"Authorization": "Bearer not-a-token"})
    assert bogus.status_code == 401

    class WrongTokens:  # a token provider that never has a good token
        def get_token(self) -> str:
            return "forged"

        def invalidate(self) -> None:
            pass

    with PartnerCenterClient(sandbox.url, WrongTokens(), limiter=RateLimiter.unlimited()) as forged:
        with pytest.raises(Unauthorized) as refused:
            forged.get_customer(CONTOSO)
    assert refused.value.status == 401


def test_an_expired_token_is_replaced_and_the_call_goes_through(sandbox):
    with make_client(sandbox) as partner_center:
        partner_center.get_customer(CONTOSO)
        issued = sandbox.state.tokens_issued
        sandbox.state.expire_tokens()  # the sandbox's tokens die: the next call gets a 401
        assert partner_center.get_customer(CONTOSO)["id"] == CONTOSO
        assert sandbox.state.tokens_issued == issued + 1


def test_tokens_are_refreshed_before_they_expire():
    now = [0.0]
    with start_sandbox(customers=CUSTOMERS, products=PRODUCTS, token_ttl_seconds=120) as handle:
        tokens = SandboxTokenProvider(handle.url, refresh_margin=30, clock=lambda: now[0])
        first = tokens.get_token()
        now[0] = 80.0  # 40 s left, inside the 30 s margin? no: still served from the cache
        assert tokens.get_token() == first and tokens.fetch_count == 1
        now[0] = 95.0  # 25 s left: refreshed before it expires
        second = tokens.get_token()
        assert second != first and tokens.fetch_count == 2
        with PartnerCenterClient(handle.url, tokens, limiter=RateLimiter.unlimited()) as partner_center:
            assert partner_center.get_customer(CONTOSO)["id"] == CONTOSO


# ----------------------------------------------------------------------------- faults
def test_a_429_is_honoured_and_the_call_retried(sandbox):
    sleep = RecordingSleep()
    with make_client(sandbox, sleep=sleep) as partner_center:
        sandbox.queue_fault("throttle", method="GET", path_contains=f"/customers/{CONTOSO}")
        assert partner_center.get_customer(CONTOSO)["id"] == CONTOSO
        assert sleep.calls == [1.0]

        catalog_item = partner_center.resolve_catalog_item("CFQ7TTC0LH18:0001", "P1M", "monthly")
        sandbox.queue_fault("throttle", method="POST", path_contains="/carts")
        name = key()
        cart = partner_center.create_cart(CONTOSO, [line(catalog_item, name)])  # a 429 write was not processed
        assert [item["friendlyName"] for item in cart["lineItems"]] == [name]


def test_throttling_that_does_not_stop_ends_as_throttled(sandbox):
    no_wait = RateLimiter.unlimited(sleep=lambda _: None)
    with make_client(sandbox, max_retries=1, sleep=lambda _: None, limiter=no_wait) as partner_center:
        sandbox.queue_fault("throttle", method="GET", path_contains=f"/customers/{FABRIKAM}", times=2)
        with pytest.raises(Throttled) as throttled:
            partner_center.get_customer(FABRIKAM)
    assert throttled.value.retry_after == 1.0


def test_reads_survive_server_errors_and_dropped_connections(sandbox, client):
    for kind in ("error_500", "error_503", "drop"):
        sandbox.queue_fault(kind, method="GET", path_contains="/subscriptions")
    assert isinstance(client.list_subscriptions(CONTOSO), list)
    with make_client(sandbox, max_retries=0) as impatient:
        sandbox.queue_fault("error_503", method="GET", path_contains="/orders")
        with pytest.raises(TransientError):
            impatient.list_orders(CONTOSO)


def test_a_write_whose_answer_is_lost_is_ambiguous_and_reconciled(sandbox, client):
    catalog_item = client.resolve_catalog_item("CFQ7TTC0LH18:0001", "P1M", "monthly")
    name = key()
    request_id = str(uuid.uuid4())  # persisted before the call
    sandbox.queue_fault("commit_then_500", method="POST", path_contains="/carts")
    with pytest.raises(AmbiguousWrite) as lost:
        client.create_cart(FABRIKAM, [line(catalog_item, name)], request_id=request_id)
    assert lost.value.request_id == request_id and lost.value.status == 500
    cart = client.create_cart(FABRIKAM, [line(catalog_item, name)], request_id=request_id)  # the same cart

    sandbox.queue_fault("commit_then_drop", method="POST", path_contains="/checkout")
    with pytest.raises(AmbiguousWrite):
        client.checkout(FABRIKAM, cart["id"])
    assert len(client.subscriptions_by_friendly_name(FABRIKAM)[name]) == 1  # it was bought…
    client.checkout(FABRIKAM, cart["id"])  # …and checking the same cart out again buys nothing
    assert sandbox.state.friendly_name_counts(FABRIKAM)[name] == 1


def test_a_timeout_on_a_write_is_ambiguous(sandbox):
    with make_client(sandbox, timeout=0.2) as hasty:
        catalog_item = hasty.resolve_catalog_item("CFQ7TTC0LH18:0001", "P1M", "monthly")
        sandbox.state.slow_ms = 600
        sandbox.queue_fault("slow", method="POST", path_contains="/carts")
        with pytest.raises(AmbiguousWrite):
            hasty.create_cart(CONTOSO, [line(catalog_item, key())])


def provision(client: PartnerCenterClient, tenant: str, wanted: dict[str, dict]) -> int:
    """The caller-side loop the provider adapter follows; returns the rounds it took.

    Each round first reconciles (subscriptions by friendlyName); an unfinished cart is checked out
    again (never replaced); a new cart is created only with a request id persisted beforehand,
    which is re-sent until the creation is answered.
    """
    pending_cart: str | None = None
    cart_request_id: str | None = None
    for round_number in range(1, 40):
        try:
            bought = set(client.subscriptions_by_friendly_name(tenant))
            missing = [name for name in wanted if name not in bought]
            if not missing:
                return round_number
            if pending_cart is None:
                cart_request_id = cart_request_id or str(uuid.uuid4())
                pending_cart = client.create_cart(tenant, [wanted[name] for name in missing],
                                                  request_id=cart_request_id)["id"]
            elif client.get_cart(tenant, pending_cart)["status"] == "Ordered":
                pending_cart = cart_request_id = None  # bought: the next round's reconciliation sees it
                continue
            client.checkout(tenant, pending_cart, request_id=str(uuid.uuid4()))
            pending_cart = cart_request_id = None
        except (AmbiguousWrite, TransientError, Throttled):
            continue  # reconcile on the next round
    raise AssertionError(f"{tenant}: not provisioned after 40 rounds")


def change_quantity(client: PartnerCenterClient, tenant: str, name: str, target: int) -> dict:
    """Set an absolute seat count; after an ambiguous answer just ask again (the re-read decides)."""
    for _ in range(40):
        try:
            subscription = client.subscriptions_by_friendly_name(tenant)[name][0]
            return client.set_subscription_quantity(tenant, subscription["id"], target)
        except (AmbiguousWrite, TransientError, Throttled, Conflict):
            continue
    raise AssertionError(f"{tenant}: quantity of {name} not changed after 40 attempts")


def test_under_faults_every_line_is_bought_exactly_once():
    handle = start_sandbox(customers=CUSTOMERS, products=PRODUCTS, fault_rate=0.3, seed=20261129,
                           slow_ms=800, retry_after_seconds=0)
    try:
        with make_client(handle, timeout=0.5, max_retries=6, limiter=RateLimiter(600, 300)) as partner_center:
            with handle.faults_paused():
                items = {term: partner_center.resolve_catalog_item("CFQ7TTC0LH18:0001", term, cycle)
                         for term, cycle in (("P1M", "monthly"), ("P1Y", "annual"))}
                e5 = partner_center.resolve_catalog_item("CFQ7TTC0LFLZ:0002", "P3Y", "triennial")

            def sales_orders(tenant: str) -> list[dict[str, dict]]:
                """Three sales orders per customer, bought one after the other."""
                prefix = tenant[:8]
                return [
                    {f"{prefix}-1-1": line(items["P1M"], f"{prefix}-1-1", 5),
                     f"{prefix}-1-2": line(items["P1Y"], f"{prefix}-1-2", 12, "P1Y", "annual")},
                    {f"{prefix}-2-1": line(e5, f"{prefix}-2-1", 3, "P3Y", "triennial"),
                     f"{prefix}-2-2": line(items["P1M"], f"{prefix}-2-2", 1),
                     f"{prefix}-2-3": line(items["P1Y"], f"{prefix}-2-3", 2, "P1Y", "annual")},
                    {f"{prefix}-3-1": line(items["P1M"], f"{prefix}-3-1", 7)},
                ]

            def provision_customer(tenant: str) -> None:
                for wanted in sales_orders(tenant):
                    provision(partner_center, tenant, wanted)
                change_quantity(partner_center, tenant, f"{tenant[:8]}-1-1", 9)  # an "Existing" line: +4

            tenants = [CONTOSO, FABRIKAM, NORTHWIND]
            handle.queue_fault("commit_then_500", method="POST", path_contains="/carts")
            handle.queue_fault("commit_then_drop", method="POST", path_contains="/checkout")
            handle.queue_fault("commit_then_drop", method="PATCH", path_contains="/subscriptions/")
            outcomes = run_per_customer(provision_customer, tenants, max_workers=3)
            assert not [outcome for outcome in outcomes.values() if isinstance(outcome, BaseException)], outcomes

            with handle.faults_paused():  # inspect through the sandbox's own GET endpoints
                for tenant in tenants:
                    wanted = {name: spec for order in sales_orders(tenant) for name, spec in order.items()}
                    wanted[f"{tenant[:8]}-1-1"] = {**wanted[f"{tenant[:8]}-1-1"], "quantity": 9}
                    bought = partner_center.subscriptions_by_friendly_name(tenant)
                    assert {name: len(subscriptions) for name, subscriptions in bought.items()} == \
                        {name: 1 for name in wanted}
                    assert {name: subscriptions[0]["quantity"] for name, subscriptions in bought.items()} == \
                        {name: spec["quantity"] for name, spec in wanted.items()}
                    assert handle.state.friendly_name_counts(tenant) == {name: 1 for name in wanted}
        injected = [fault["kind"] for fault in handle.state.faults]
        assert {"commit_then_500", "commit_then_drop"} <= set(injected)
        assert len(injected) >= 5
    finally:
        handle.stop()


# ----------------------------------------------------------------------------- standalone
def test_the_sandbox_reads_a_reference_folder(tmp_path: Path):
    (tmp_path / "products.csv").write_text(
        "product_number;product_name;product_type;provider;provider_sku;recurring;billing_frequency;"
        "provisioning_unit;term_duration;min_quantity;max_quantity\n"
        "PBI-M;Power BI Pro (Monthly);CSP;partner_center;CFQ7TTC0LHSF:0001;true;Monthly;Monthly;P1M;1;\n"
        "PBI-A;Power BI Pro (Annual);CSP;partner_center;CFQ7TTC0LHSF:0001;true;Annually;Annual;P1Y;1;\n"
        "SUP;Premium Support;Support Contract;manual;;true;Monthly;Monthly;P1M;1;1\n", encoding="utf-8")
    (tmp_path / "provider_accounts.csv").write_text(
        "customer_name,customer_id,provider,provider_customer_id\n"
        f"Contoso Pharmaceuticals,,partner_center,{CONTOSO}\n"
        "Manual Only Ltd,,manual,\n", encoding="utf-8")
    with start_sandbox(reference=tmp_path) as handle, make_client(handle) as partner_center:
        assert partner_center.get_customer(CONTOSO)["companyProfile"]["companyName"] == "Contoso Pharmaceuticals"
        assert len(handle.state.customers) == 1
        assert partner_center.resolve_catalog_item("CFQ7TTC0LHSF:0001", "P1Y", "Annually")
        with pytest.raises(CatalogItemUnavailable):
            partner_center.resolve_catalog_item("CFQ7TTC0LHSF:0001", "P1Y", "monthly")


def test_the_sandbox_runs_standalone_until_sigterm(tmp_path: Path):
    process = subprocess.Popen([sys.executable, "-m", "w365etl.sandbox.partner_center", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first_line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in first_line, first_line + process.stderr.read()
        url = first_line.split("listening on ")[1].split()[0]
        token = httpx.post(f"{url}/partner/oauth2/v2.0/token",
                           data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"}).json()
        assert token["token_type"] == "Bearer" and token["expires_in"] > 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_cli_command_is_a_typer_sub_app():
    from typer.testing import CliRunner

    from w365etl.sandbox.commands import app

    result = CliRunner().invoke(app, ["partner-center", "--help"])
    assert result.exit_code == 0
    for option in ("--port", "--reference", "--latency-ms", "--fault-rate", "--seed"):
        assert option in result.output


def test_errors_carry_no_secret(sandbox):
    tokens = SandboxTokenProvider(sandbox.url, "partner", "app-id", "very-secret-value")
    with PartnerCenterClient(sandbox.url, tokens, limiter=RateLimiter.unlimited()) as partner_center:
        with pytest.raises(PartnerCenterError) as refused:
            partner_center.get_customer(UNKNOWN)
        token = tokens.get_token()
    for text in (str(refused.value), repr(refused.value), repr(tokens), repr(partner_center)):
        assert "very-secret-value" not in text and token not in text
