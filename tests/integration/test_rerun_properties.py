"""Properties of sequences of real runs (hypothesis, on a real SQLite database): SPEC §5 and R6.

Random order sets (customers, Partner Center and manual lines, one-time charges, orders with an
unknown product), then a random sequence of runs: each exports a random subset of the orders
again (some quantities changed in D365 since, line GUIDs shown or not), and customers gain
their Partner Center mapping between runs. After every run:

1. conservation — ``lines.input`` and ``orders.input`` are the sums of their buckets (SPEC §5);
2. the counts are what a small independent model of the SPEC says (R2 atomic orders, R3 holds
   that come back by themselves, R6 ``already_provisioned`` / ``LINE_CHANGED_AFTER_PROVISIONING``,
   R7 ``fulfilled`` / ``already_fulfilled``);
3. exactly once — the database holds one line per (order, product) whatever identifiers it was
   seen with, one subscription or one-time charge per provisioned line and none for any other,
   with the quantity of the export that provisioned it (a later changed export never alters it).

Runs call the flow's stages without Prefect (``tests.support.stages``). ``W365_PROPERTY_EXAMPLES``
sets the number of examples (``make stress`` runs more).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.support.database import rows
from tests.support.exports import line, write_flat_csv, write_reference
from tests.support.stages import run_stages
from w365etl.adapters import tables as t
from w365etl.adapters.store_sql import SqlStore
from w365etl.reference import read_reference_dir
from w365etl.settings import Settings

AS_OF = dt.date(2026, 11, 29)
EXAMPLES = int(os.environ.get("W365_PROPERTY_EXAMPLES", "8"))
CUSTOMERS = ["Contoso", "Fabrikam", "Northwind"]
TENANTS = {name: str(uuid.uuid5(uuid.NAMESPACE_DNS, name)) for name in CUSTOMERS}
#: product → (price, is Partner Center, is recurring)
PRODUCTS = {"M365-BB-M": ("6", True, True), "SUP-STD-M": ("99.5", False, True), "ONB-SETUP": ("500", False, False)}
UNKNOWN = "NOPE-1"


@dataclass
class Order:
    customer: str
    quantities: dict[str, int]  # product → quantity, in line order (line number = position + 1)
    has_guids: bool

    @property
    def is_bad(self) -> bool:
        return UNKNOWN in self.quantities

    def needs_mapping(self) -> bool:
        return any(product in PRODUCTS and PRODUCTS[product][1] for product in self.quantities)


@dataclass
class Night:
    exported: list[str]
    changes: list[tuple[str, int, int]]  # (order, line position, new quantity) made in D365 before the export
    mapped: set[str]                     # customers whose mapping is loaded before this run
    shows_guids: bool


@dataclass
class Scenario:
    orders: dict[str, Order]
    nights: list[Night]


@st.composite
def scenarios(draw) -> Scenario:
    orders = {}
    for i in range(draw(st.integers(1, 5))):
        products = draw(st.lists(st.sampled_from(sorted(PRODUCTS)), min_size=1, max_size=3, unique=True))
        if draw(st.integers(0, 4)) == 0:  # an order with an unknown product: rejected whenever it comes
            products = products[:2] + [UNKNOWN]
        orders[f"SO-{i + 1}"] = Order(draw(st.sampled_from(CUSTOMERS)),
                                      {product: draw(st.integers(1, 5)) for product in products}, draw(st.booleans()))
    numbers = sorted(orders)
    # most nights export most orders again; some leave out an order waiting for its mapping
    nights = [Night(exported=[n for n in numbers if draw(st.sampled_from([True, True, False]))],
                    changes=draw(st.lists(st.tuples(st.sampled_from(numbers), st.integers(0, 2), st.integers(1, 5)),
                                          max_size=3)),
                    mapped=draw(st.one_of(st.just(set()), st.sets(st.sampled_from(CUSTOMERS), max_size=1))),
                    shows_guids=draw(st.booleans()))
              for _ in range(draw(st.integers(2, 4)))]
    return Scenario(orders, nights)


@dataclass
class Model:
    """What the SPEC says the database holds between runs, for this small universe."""

    provisioned: dict[str, dict[str, int]] = field(default_factory=dict)  # order → product → quantity bought
    waiting: dict[str, tuple[str, dict[str, int]]] = field(default_factory=dict)  # held for a mapping (R3)
    mapped: set[str] = field(default_factory=set)

    def run(self, exported: dict[str, tuple[str, dict[str, int]]]) -> dict:
        """The counts of one run over ``exported`` (order → (customer, quantities))."""
        lines = dict.fromkeys(("input", "provisioned", "already_provisioned", "skipped", "held", "rejected", "failed",
                               "reevaluated"), 0)
        orders = dict.fromkeys(("input", "fulfilled", "already_fulfilled", "provisioned_not_fulfilled", "held",
                                "skipped", "failed"), 0)
        reasons: dict[str, int] = {}
        needing: set[str] = set()
        subscriptions = charges = 0
        coming = dict(exported)
        for number, content in self.waiting.items():  # R3: they come back without their file
            if number not in coming:
                coming[number] = content
                lines["reevaluated"] += len(content[1])
        for number, (customer, quantities) in sorted(coming.items()):
            lines["input"] += len(quantities)
            orders["input"] += 1
            bought = self.provisioned.get(number)
            if bought is not None:  # R6: every line of it was provisioned before (orders are atomic)
                changed = [p for p, q in quantities.items() if bought.get(p) != q]
                lines["already_provisioned"] += len(quantities) - len(changed)
                lines["rejected"] += len(changed)
                _add(reasons, "LINE_CHANGED_AFTER_PROVISIONING", len(changed))
                orders["held" if changed else "already_fulfilled"] += 1
            elif UNKNOWN in quantities:  # R9 + R2: the order waits for a new export
                lines["rejected"] += 1
                lines["held"] += len(quantities) - 1
                _add(reasons, "UNKNOWN_PRODUCT", 1)
                _add(reasons, "ORDER_HAS_REJECTED_LINES", len(quantities) - 1)
                orders["held"] += 1
                if customer not in self.mapped and any(PRODUCTS.get(p, (0, False))[1] for p in quantities):
                    needing.add(customer)  # SPEC §5: listed even when the order is also held for a rejected line
            elif customer not in self.mapped and any(PRODUCTS[p][1] for p in quantities):  # R3 + R2
                lines["held"] += len(quantities)
                _add(reasons, "NEEDS_PROVIDER_MAPPING", len(quantities))
                orders["held"] += 1
                needing.add(customer)
                self.waiting[number] = (customer, dict(quantities))
            else:  # R5, R7
                lines["provisioned"] += len(quantities)
                orders["fulfilled"] += 1
                subscriptions += sum(PRODUCTS[p][2] for p in quantities)
                charges += sum(not PRODUCTS[p][2] for p in quantities)
                self.provisioned[number] = dict(quantities)
                self.waiting.pop(number, None)
        return {"lines": lines, "orders": orders, "exceptions": reasons,
                "customers_needing_provider_mapping": len(needing),
                "subscriptions": {"created": subscriptions, "updated": 0}, "one_time_charges": {"created": charges}}


def _add(counts: dict[str, int], reason: str, n: int) -> None:
    if n:
        counts[reason] = counts.get(reason, 0) + n


@pytest.fixture(scope="module")
def template_database(tmp_path_factory) -> Path:
    """An upgraded SQLite database with the catalog, copied for every example (migrations run once)."""
    folder = tmp_path_factory.mktemp("template")
    path = folder / "w365etl.sqlite"
    store = SqlStore(f"sqlite:///{path}")
    reference = read_reference_dir(write_reference(folder / "ref", []))
    store.upsert_reference(reference.products, None)
    store.dispose()
    return path


def _export(folder: Path, night_number: int, scenario: Scenario, current: dict[str, dict[str, int]],
            night: Night) -> list[Path]:
    rows = []
    for number in night.exported:
        order = scenario.orders[number]
        for position, (product, quantity) in enumerate(current[number].items(), start=1):
            guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{number}/{product}")) \
                if order.has_guids and night.shows_guids else ""
            price = PRODUCTS.get(product, ("1",))[0]
            rows.append(line(number, order.customer, product, str(quantity), price, guid=guid, number=position))
    if not rows:
        return []
    return [write_flat_csv(folder / f"night-{night_number}.csv", rows)]


def _mappings(folder: Path, customers: set[str]):
    if not customers:
        return None
    reference = folder / f"mappings-{len(list(folder.glob('mappings-*')))}"
    write_reference(reference, [(name, TENANTS[name]) for name in sorted(customers)])
    return read_reference_dir(reference)


def _check_database(url: str, model: Model, scenario: Scenario) -> None:
    """Exactly once: one stored line per (order, product); one subscription or charge per
    provisioned line, with the quantity bought; nothing for any other line."""
    stored = rows(url, select(t.Line.line_pk, t.Line.order_number, t.Line.product_number, t.Line.status))
    keys = [(order, product) for _, order, product, _ in stored]
    assert len(keys) == len(set(keys)), "a line was stored twice"
    by_pk = {pk: (order, product) for pk, order, product, _ in stored}
    bought = {(order, product): quantity for order, products in model.provisioned.items()
              for product, quantity in products.items()}
    assert {key for pk, *key_status in stored for key in [tuple(key_status[:2])] if key_status[2] == "provisioned"} \
        == set(bought)
    subscriptions = rows(url, select(t.Subscription.source_line_pk, t.Subscription.quantity))
    charges = rows(url, select(t.OneTimeCharge.source_line_pk, t.OneTimeCharge.quantity))
    made = [(by_pk[pk], quantity) for pk, quantity in subscriptions + charges]
    assert len(made) == len({key for key, _ in made}), "a line was provisioned twice"
    assert {key: int(quantity) for key, quantity in made} == bought
    assert {key for key, _ in [(by_pk[pk], q) for pk, q in subscriptions]} == {
        key for key in bought if PRODUCTS[key[1]][2]}
    assert rows(url, select(func.count()).select_from(t.SubscriptionChange))[0][0] == 0


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_random_reruns_conserve_every_line_and_provision_each_exactly_once(template_database, scenario):
    with tempfile.TemporaryDirectory(prefix="w365-prop-") as temp:
        folder = Path(temp)
        database = folder / "w365etl.sqlite"
        shutil.copyfile(template_database, database)
        url = f"sqlite:///{database}"
        configured = Settings(db_url=url, providers={"partner_center": {"adapter": "record"}})
        model = Model()
        current = {number: dict(order.quantities) for number, order in scenario.orders.items()}
        store = SqlStore(url)
        try:
            for number, night in enumerate(scenario.nights, start=1):
                for order_number, position, quantity in night.changes:  # edited in D365 since the last export
                    products = list(current[order_number])
                    if position < len(products) and products[position] != UNKNOWN:
                        current[order_number][products[position]] = quantity
                newly_mapped = night.mapped - model.mapped
                model.mapped |= night.mapped
                files = _export(folder, number, scenario, current, night)
                summary = run_stages(store, configured, files, run_id=f"prop-{number}-{uuid.uuid4().hex[:6]}",
                                     as_of=AS_OF, reference=_mappings(folder, newly_mapped))
                expected = model.run({n: (scenario.orders[n].customer, current[n]) for n in night.exported})

                got_lines, got_orders = summary["lines"], summary["orders"]
                assert got_lines["input"] == sum(got_lines[b] for b in ("provisioned", "already_provisioned",
                                                                        "skipped", "held", "rejected", "failed"))
                assert got_orders["input"] == sum(got_orders[b] for b in expected["orders"] if b != "input")
                assert got_lines == expected["lines"], night
                assert got_orders == expected["orders"], night
                assert {code: n for code, n in summary["exceptions_by_reason"].items() if n} == expected["exceptions"]
                assert summary["customers_needing_provider_mapping"] == expected["customers_needing_provider_mapping"]
                assert summary["subscriptions"] == expected["subscriptions"]
                assert summary["one_time_charges"] == expected["one_time_charges"]
                _check_database(url, model, scenario)
                for outcome in ("provisioned", "already_provisioned", "held", "rejected", "reevaluated"):
                    if got_lines[outcome]:
                        event(f"a run with {outcome} lines")
                if expected["exceptions"].get("LINE_CHANGED_AFTER_PROVISIONING"):
                    event("a run with a line changed after provisioning")
        finally:
            store.dispose()
