"""Crash matrix: a `w365etl run` killed (real SIGKILL) anywhere is recovered by the next run.

Business step: every one — the product contract's promise that "re-running any input is
always safe: nothing is provisioned twice, nothing is lost" (SPEC §1, R6 exactly once), after
the worst kind of stop.

One database and one Partner Center sandbox *process* (what was bought outlives a killed run,
as Microsoft's Partner Center outlives ours) serve every scenario: each scenario has customers
of its own (a tag in every customer name and order number, a prefix in every GUID and tenant),
so their states never meet and a difference points at one kill.

- the **control** scenario ``P00`` runs once, uninterrupted;
- every other scenario runs in a run that is SIGKILLed — at a named fail point
  (``W365_FAILPOINTS=<point>=kill``: every point of ``w365etl.failpoints.FAILPOINTS``, the
  per-provider ones once per provider) or after a random time — and then its file runs again
  without fail points.

Right after each named kill, the leftovers are checked (the kill happened where its name says:
e.g. after ``after_provider_call:partner_center`` the sandbox has the purchases and the database
does not). After recovery, each scenario's final state must equal the control's, with the tag,
run ids, timestamps and generated ids normalised away: customers, billing contracts (R4),
subscriptions with their quantities and subscription changes (R5), one-time charges, orders and
their fulfilment (R7), lines with their final status, reason and every identifier (R6) — so
nothing is left ``planned`` and nothing is stored twice; on the sandbox, exactly one subscription
per Partner Center line, with the same quantities, each named by the database's
``provider_subscription_id``. Every Partner Center submission of the journal is closed, and the
recovering run completes with every line of its files in a bucket.

The scenario (R1–R9 in one file): a Partner Center customer with a new subscription, an
``Existing`` quantity increase on Partner Center (absolute quantity, R5) and manual lines; a
second Partner Center customer with two lines in one cart; a manual-only customer whose lines
have no GUID; an unmapped customer (held, R3); an order with an unknown product (rejected, and
its other line held, R2); a manual ``Existing`` increase in an order not to be fulfilled (R7).
A first uninterrupted "base" run creates, for every scenario, the subscriptions its increases need.

Runs: real processes started by ``tests.support.crash_runs.RunLauncher`` against one Prefect
server for the module. ``W365_KILL_RUNS`` (default 3) random-time kills run in ``make test``;
``make stress`` runs 100 (``W365_KILL_SEED`` repeats a sequence). ``W365_CRASH_BACKENDS``
(default ``sqlite``; ``sqlite,postgresql`` for both) chooses the databases;
``W365_CRASH_RECOVERY`` (``together`` by default, ``each`` in ``make stress``) when the named
matrix runs its files again; ``W365_CRASH_POINTS=a,b`` runs only those points (debugging).
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.crash_runs import PrefectServer, RunLauncher, SandboxProcess, base_environment
from tests.support.exports import line, write_flat_csv, write_reference
from w365etl.adapters import tables as t
from w365etl.adapters.store_sql import create_store_engine
from w365etl.failpoints import FAILPOINTS, PER_PROVIDER

AS_OF = "2026-11-29"
PROVIDERS = ("manual", "partner_center")
KILL_RUNS = int(os.environ.get("W365_KILL_RUNS", "3"))
KILL_SEED = int(os.environ.get("W365_KILL_SEED", str(random.SystemRandom().randrange(1_000_000))))
BACKENDS = [name.strip() for name in os.environ.get("W365_CRASH_BACKENDS", "sqlite").split(",") if name.strip()]

#: the matrix: every named point; per-provider points once per provider batch
NAMED_POINTS = tuple(f"{name}:{code}" if name in PER_PROVIDER else name
                     for name in FAILPOINTS for code in (PROVIDERS if name in PER_PROVIDER else (None,)))
assert len(NAMED_POINTS) == len(FAILPOINTS) + len(PER_PROVIDER) * (len(PROVIDERS) - 1)
#: ``W365_CRASH_POINTS=a,b`` runs only those points (while debugging one); the default is all
ONLY_POINTS = [name.strip() for name in os.environ.get("W365_CRASH_POINTS", "").split(",") if name.strip()]
RECOVERY = os.environ.get("W365_CRASH_RECOVERY", "together")


# ------------------------------------------------------------------------------ scenarios
@dataclass(frozen=True)
class Scenario:
    tag: str      # in every customer name and order number: "P03", "R017"
    index: int

    @property
    def prefix(self) -> str:
        """The first 8 hex digits of the scenario's GUIDs and tenants."""
        return f"{0xC0000000 + self.index:08x}"

    def guid(self, number: int) -> str:
        return f"{self.prefix}-0000-4000-8000-{number:012x}"

    def tenant(self, number: int) -> str:
        return f"{self.prefix}-1111-4111-8111-{number:012x}"

    def customer(self, name: str) -> str:
        return f"{name} {self.tag}"

    def order(self, number: str) -> str:
        return f"SO-{self.tag}-{number}"

    def normalise(self, value):
        """Scenario-specific text made comparable between scenarios."""
        if isinstance(value, str):
            return re.sub(r"^w365:\d+ ", "w365:<pk> ", value).replace(self.tag, "<T>").replace(self.prefix, "<G>")
        return value

    def mappings(self) -> list[tuple[str, str]]:
        return [(self.customer("Contoso"), self.tenant(1)), (self.customer("Fabrikam"), self.tenant(2))]

    def base_rows(self) -> list[dict[str, str]]:
        """What the base run provisions: subscriptions the scenario's `Existing` lines increase."""
        contoso = self.customer("Contoso")
        return [
            line(self.order("B"), contoso, "M365-BB-M", "5", "6.00", guid=self.guid(0xB1), number=1),
            line(self.order("B"), contoso, "SUP-STD-M", "1", "99.50", guid=self.guid(0xB2), number=2),
        ]

    def rows(self) -> list[dict[str, str]]:
        contoso, fabrikam = self.customer("Contoso"), self.customer("Fabrikam")
        northwind, unmapped = self.customer("Northwind"), self.customer("Unmapped")
        return [
            # Partner Center new + Existing (absolute quantity 5 + 3 = 8), manual subscription and charge
            line(self.order("1"), contoso, "M365-BB-M", "10", "6.00", guid=self.guid(1), number=1),
            line(self.order("1"), contoso, "M365-BB-M", "3", "6.00", guid=self.guid(2), number=2,
                 provision_as="Existing"),
            line(self.order("1"), contoso, "SUP-STD-M", "1", "99.50", guid=self.guid(3), number=3),
            line(self.order("1"), contoso, "ONB-SETUP", "1", "500.00", guid=self.guid(4), number=4),
            # two Partner Center lines in one cart, and a charge
            line(self.order("2"), fabrikam, "M365-BP-A", "5", "264.00", guid=self.guid(5), number=1, unit="Annual"),
            line(self.order("2"), fabrikam, "M365-BB-M", "4", "6.00", guid=self.guid(6), number=2),
            line(self.order("2"), fabrikam, "ONB-SETUP", "2", "250.00", guid=self.guid(7), number=3),
            # manual only, no GUIDs: known by order number + line number (R6)
            line(self.order("3"), northwind, "SUP-STD-M", "1", "99.50", number=1),
            line(self.order("3"), northwind, "ONB-SETUP", "1", "500.00", number=2),
            # R3: no provider account → held
            line(self.order("4"), unmapped, "M365-BB-M", "2", "6.00", guid=self.guid(8), number=1),
            # R2/R9: an unknown product rejects its line and holds the other
            line(self.order("5"), contoso, "NOPE-1", "1", "1.00", guid=self.guid(9), number=1),
            line(self.order("5"), contoso, "SUP-STD-M", "2", "99.50", guid=self.guid(10), number=2),
            # R5 Existing on a manual subscription, in an order not to be fulfilled (R7)
            line(self.order("6"), contoso, "SUP-STD-M", "2", "99.50", guid=self.guid(11), number=1,
                 provision_as="Existing", fulfill="No"),
        ]


#: the scenario run once, uninterrupted: every other scenario must end in its (normalised) state
CONTROL = Scenario("P00", 0)
#: the scenario whose file comes through the inbox (the nightly path)
INBOX = Scenario("I01", 500)
BASE = "base"

#: what a scenario's file gives in an uninterrupted run (checked on the control scenario)
SCENARIO_LINES = 13
SCENARIO_PROVISIONED = 10
SCENARIO_PC_PURCHASES = 3     # new Partner Center subscriptions (the increase changes the base one)


def write_inputs(root: Path, scenarios: list[Scenario]) -> tuple[Path, dict[str, Path]]:
    """The reference folder (every scenario's mappings) and the files: ``base`` and one per scenario."""
    reference = write_reference(root / "reference",
                                [mapping for scenario in scenarios for mapping in scenario.mappings()])
    inputs = root / "inputs"
    inputs.mkdir()
    files = {scenario.tag: write_flat_csv(inputs / f"orders-{scenario.tag}.csv", scenario.rows())
             for scenario in scenarios}
    files[BASE] = write_flat_csv(inputs / "base.csv", [row for scenario in scenarios for row in scenario.base_rows()])
    return reference, files


# ------------------------------------------------------------------------------ the world
@dataclass
class Harness:
    """One database and one sandbox process for every scenario (their customers never meet)."""

    launcher: RunLauncher
    db_url: str
    sandbox: SandboxProcess
    folder: Path
    reference_dir: Path
    files: dict[str, Path]
    scenarios: dict[str, Scenario]
    expected: dict[str, list] = field(default_factory=dict)   # the control scenario's state
    clean_run_seconds: float = 0.0
    timings: dict[str, list[float]] = field(default_factory=dict)
    runs: int = 0

    def environment(self, **extra: str) -> dict[str, str]:
        return {"W365_DB_URL": self.db_url, "W365_PROVIDERS__PARTNER_CENTER__ADAPTER": "sandbox",
                "W365_PROVIDERS__PARTNER_CENTER__SANDBOX_URL": self.sandbox.url,
                # the sandbox has no throttling: Partner Center's request budgets would only add waiting
                "W365_PROVIDERS__PARTNER_CENTER__PARTNER_REQUESTS_PER_MINUTE": "60000",
                "W365_PROVIDERS__PARTNER_CENTER__CUSTOMER_REQUESTS_PER_MINUTE": "60000",
                "W365_PROVIDERS__PARTNER_CENTER__MAX_WORKERS": "16"} | extra

    def run(self, tags: list[str], *, failpoint: str | None = None, kill_after: float | None = None,
            label: str = "run", inbox: Path | None = None):
        """``w365etl run`` of these scenarios' files (or ``base``), or of the inbox, in a process of its own."""
        self.runs += 1
        name = f"{self.runs:03d}-{label.replace(':', '-')}"
        extra = {"W365_FAILPOINTS": f"{failpoint}=kill"} if failpoint else {}
        sources = [str(self.files[tag]) for tag in tags] if inbox is None else ["--inbox", str(inbox)]
        result = self.launcher.run(
            ["run", *sources, "--reference", str(self.reference_dir),
             "--out", str(self.folder / "out" / name), "--as-of", AS_OF],
            cwd=self.folder, log_path=self.folder / f"{name}.log", environment=self.environment(**extra),
            kill_after=kill_after)
        kind = "killed" if result.returncode == -signal.SIGKILL else "completed"
        self.timings.setdefault(kind, []).append(result.seconds)
        result.folder = self.folder / "out" / name
        print(f"  run {name}: exit {result.returncode} in {result.seconds:.2f} s", flush=True)
        return result


def _database_url(backend: str, request, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'w365etl.sqlite'}"
    from tests.conftest import _reset_postgres

    url = request.getfixturevalue("pg_server_url")
    _reset_postgres(url)  # empty, then `w365etl db upgrade`: runs never create a PostgreSQL schema
    return url


@pytest.fixture(scope="module", params=[pytest.param(name, marks=[pytest.mark.postgres] if name == "postgresql" else [])
                                        for name in BACKENDS])
def harness(request, tmp_path_factory):
    started = time.monotonic()
    root = tmp_path_factory.mktemp(f"crash-{request.param}")
    named = [Scenario(f"P{number:02d}", number) for number, _ in enumerate(NAMED_POINTS, start=1)]
    randoms = [Scenario(f"R{number:03d}", 1000 + number) for number in range(1, KILL_RUNS + 1)]
    scenarios = {scenario.tag: scenario for scenario in [CONTROL, INBOX, *named, *randoms]}
    reference_dir, files = write_inputs(root, list(scenarios.values()))
    (root / "prefect").mkdir()
    stack = []
    try:
        server = PrefectServer.start(root / "prefect")
        stack.append(server.stop)
        sandbox = SandboxProcess.start(reference_dir, root / "sandbox.log")
        stack.append(sandbox.stop)
        environment = base_environment(PREFECT_HOME=str(root / "prefect"), PREFECT_API_URL=server.api_url)
        launcher = RunLauncher(environment, warm_up_reference=reference_dir, warm_up_orders=files[BASE])
        stack.append(launcher.close)
        harness = Harness(launcher, _database_url(request.param, request, root), sandbox, root, reference_dir, files,
                          scenarios)
        base = harness.run([BASE], label="base")
        assert base.returncode == 0, base.log
        clean = harness.run([CONTROL.tag], label="uninterrupted")
        assert clean.returncode == 0, clean.log
        harness.clean_run_seconds = clean.seconds
        harness.expected = snapshot(harness, CONTROL)
        _check_control(harness.expected)
        print(f"\ncrash matrix on {request.param}: set-up {time.monotonic() - started:.1f} s "
              f"(the uninterrupted run: {clean.seconds:.1f} s)")
        yield harness
        for kind, seconds in sorted(harness.timings.items()):
            print(f"crash matrix on {request.param}: {len(seconds)} {kind} run(s), "
                  f"mean {sum(seconds) / len(seconds):.2f} s, max {max(seconds):.2f} s")
    finally:
        for stop in reversed(stack):
            stop()


def _check_control(state: dict[str, list]) -> None:
    """The uninterrupted run did what the scenario is built for (else the matrix proves little)."""
    statuses = Counter(row[2] for row in state["lines"])  # the base order's 2 lines included
    assert statuses == {"provisioned": SCENARIO_PROVISIONED + 2, "held": 2, "rejected": 1}, statuses
    # Contoso: the base subscription raised to 5 + 3 = 8 and a new 10; Fabrikam: 5 and 4; one each
    assert sorted(row[2:] for row in state["partner_center"]) == [(4, 1), (5, 1), (8, 1), (10, 1)], state
    assert sum(1 for row in state["orders"] if row[2]) == 3 + 1, state["orders"]  # and the base order
    assert len(state["subscription_changes"]) == 2 and len(state["one_time_charges"]) == 3, state


# ------------------------------------------------------------------------------ state
def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (Decimal, int, float)) or re.fullmatch(r"-?\d+(\.\d+)?", str(value)):
        return str(Decimal(str(value)).normalize())
    return str(value)


def snapshot(harness: Harness, scenario: Scenario) -> dict[str, list]:
    """The scenario's final state, normalised: no generated ids, run ids or times."""
    n = scenario.normalise
    engine = create_store_engine(harness.db_url)
    try:
        with engine.connect() as connection:
            customers = {pk: name for pk, name in connection.execute(
                select(t.Customer.customer_pk, t.Customer.customer_name)) if name.endswith(f" {scenario.tag}")}
            pks = list(customers)
            lines = connection.execute(select(t.Line).where(t.Line.order_number.like(f"SO-{scenario.tag}-%"))).all()
            line_key = {row.line_pk: row.line_key for row in lines}
            base_lines = connection.execute(select(t.Line.line_pk, t.Line.line_key).where(
                t.Line.customer_pk.in_(pks))).all()
            line_key |= dict(base_lines)
            contracts = connection.execute(select(t.BillingContract).where(
                t.BillingContract.customer_pk.in_(pks))).all()
            contract = {row.contract_pk: (customers[row.customer_pk], row.contract_type, row.contract_product_type,
                                          row.billing_frequency, row.currency_code) for row in contracts}
            subscriptions = connection.execute(select(t.Subscription).where(
                t.Subscription.customer_pk.in_(pks))).all()
            changes = connection.execute(select(t.SubscriptionChange).where(t.SubscriptionChange.subscription_pk.in_(
                [row.subscription_pk for row in subscriptions]))).all()
            charges = connection.execute(select(t.OneTimeCharge).where(
                t.OneTimeCharge.customer_pk.in_(pks))).all()
            orders = connection.execute(select(t.Order).where(t.Order.customer_pk.in_(pks))).all()
            identifiers = connection.execute(select(t.LineIdentifier).where(
                t.LineIdentifier.line_pk.in_(list(line_key)))).all()
    finally:
        engine.dispose()
    source = {row.subscription_pk: line_key[row.source_line_pk] for row in subscriptions}
    state = {
        "customers": sorted(n(name) for name in customers.values()),
        "contracts": sorted(tuple(map(n, (*contract[row.contract_pk], row.status, str(row.start_date),
                                          str(row.end_date), row.payment_terms, row.process_refunds,
                                          row.contract_name))) for row in contracts),
        "subscriptions": sorted(tuple(map(n, (*contract[row.contract_pk], line_key[row.source_line_pk],
                                              row.product_number, row.provider_code, _text(row.quantity),
                                              _text(row.price_per_unit), row.provisioning_unit, row.term_duration,
                                              str(row.start_date), row.status,
                                              row.provider_subscription_id is not None))) for row in subscriptions),
        "subscription_changes": sorted(tuple(map(n, (source[row.subscription_pk], line_key[row.line_pk],
                                                     _text(row.quantity_before), _text(row.quantity_after))))
                                       for row in changes),
        "one_time_charges": sorted(tuple(map(n, (*contract[row.contract_pk], line_key[row.source_line_pk],
                                                 row.product_number, row.provider_code, _text(row.quantity),
                                                 _text(row.price_per_unit), _text(row.extended_amount),
                                                 str(row.charge_date)))) for row in charges),
        "orders": sorted(tuple(map(n, (row.order_number, customers.get(row.customer_pk), row.is_fulfilled,
                                       str(row.fulfilled_date), row.currency_code, row.order_id))) for row in orders),
        "lines": sorted(tuple(map(n, (row.line_key, row.order_number, row.status, row.status_reason, row.action,
                                      row.product_number, row.provider_code, _text(row.quantity),
                                      _text(row.price_per_unit), _text(row.extended_amount), row.error_code,
                                      row.provider_subscription_id is not None))) for row in lines),
        "identifiers": sorted((n(line_key[row.line_pk]), row.level, n(row.identifier)) for row in identifiers),
    }
    # the provider's side: one subscription per line, quantities, and the database naming it
    purchases = []
    stored_ids = {row.provider_subscription_id for row in subscriptions if row.provider_code == "partner_center"}
    seen_ids = set()
    for tenant in (scenario.tenant(1), scenario.tenant(2)):
        items = harness.sandbox.subscriptions(tenant)
        seen_ids |= {item["id"] for item in items}
        names = Counter(item["friendlyName"] for item in items)
        for item in items:
            purchases.append((n(tenant), n(item["friendlyName"]), int(item["quantity"]), names[item["friendlyName"]]))
    state["partner_center"] = sorted(purchases)
    state["partner_center_ids_unknown_to_the_provider"] = sorted(
        n(line_key[row.source_line_pk]) for row in subscriptions
        if row.provider_code == "partner_center" and row.provider_subscription_id not in seen_ids)
    state["partner_center_ids_not_stored"] = len(seen_ids - stored_ids)
    return state


def leftovers(harness: Harness, scenario: Scenario) -> dict[str, object]:
    """What a run of the scenario left behind: counts that say how far it got (the base order aside)."""
    base = scenario.order("B")
    engine = create_store_engine(harness.db_url)
    try:
        with engine.connect() as connection:
            statuses = Counter(connection.execute(select(t.Line.status).where(
                t.Line.order_number.like(f"SO-{scenario.tag}-%"), t.Line.order_number != base)).scalars())
            charges = len(connection.execute(select(t.OneTimeCharge.charge_pk).join(
                t.Line, t.Line.line_pk == t.OneTimeCharge.source_line_pk).where(
                t.Line.order_number.like(f"SO-{scenario.tag}-%"))).all())
            fulfilled = len(connection.execute(select(t.Order.order_pk).where(
                t.Order.order_number.like(f"SO-{scenario.tag}-%"), t.Order.order_number != base,
                t.Order.is_fulfilled.is_(True))).all())
            journal = Counter(connection.execute(select(t.ProviderSubmission.status).where(
                t.ProviderSubmission.provider_customer_id.in_([scenario.tenant(1), scenario.tenant(2)]))).scalars())
    finally:
        engine.dispose()
    bought = sum(len(harness.sandbox.subscriptions(tenant)) for tenant in (scenario.tenant(1), scenario.tenant(2)))
    return {"stored": sum(statuses.values()), "planned": statuses.get("planned", 0),
            "provisioned": statuses.get("provisioned", 0), "charges": charges,
            "purchases": bought - 1, "fulfilled": fulfilled, "journal": dict(journal)}  # 1: the base subscription


#: what must be true right after a kill at each named point (the kill happened where it says)
def _expected_leftovers(point: str, left: dict, reports: list[str]) -> list[str]:
    manual_done = {"planned": SCENARIO_PROVISIONED - 6, "provisioned": 6, "charges": 3}
    nothing_done = {"planned": SCENARIO_PROVISIONED, "provisioned": 0, "charges": 0, "purchases": 0}
    all_done = {"planned": 0, "provisioned": SCENARIO_PROVISIONED, "purchases": SCENARIO_PC_PURCHASES}
    expected: dict[str, object] = {
        "after_run_started": {"stored": 0},
        "after_plan_stored": {"stored": SCENARIO_LINES} | nothing_done,
        "after_cart_created": manual_done | {"purchases": 0},
        "after_checkout": manual_done,
        "after_provider_call:manual": nothing_done,
        "before_marking_lines_done:manual": nothing_done,
        "after_recording_results:manual": manual_done | {"purchases": 0},
        "after_provider_call:partner_center": manual_done | {"purchases": SCENARIO_PC_PURCHASES},
        "before_marking_lines_done:partner_center": manual_done | {"purchases": SCENARIO_PC_PURCHASES},
        "after_recording_results:partner_center": all_done | {"fulfilled": 0},
        "before_fulfilment": all_done | {"fulfilled": 0},
        "after_fulfilment": all_done | {"fulfilled": 3},
        "while_writing_reports": all_done | {"fulfilled": 3},
        "before_finish_run": all_done | {"fulfilled": 3},
        "after_finish_run": all_done | {"fulfilled": 3},
    }[point]
    problems = [f"{key}: {left[key]} (expected {value})" for key, value in expected.items() if left[key] != value]
    if point == "after_checkout" and not left["purchases"] >= 1:
        problems.append(f"no purchase at the sandbox after a checkout: {left}")
    if point == "after_cart_created" and left["journal"].get("cart_created", 0) < 1:
        problems.append(f"no journalled cart: {left['journal']}")
    has_workbook = any(name.endswith("fulfilment_report.xlsx") for name in reports)
    has_summary = any(name.endswith("summary.json") for name in reports)
    if point == "while_writing_reports" and not (has_summary and not has_workbook):
        problems.append(f"reports half-written expected: {reports}")
    if point in ("before_finish_run", "after_finish_run") and not has_workbook:
        problems.append(f"every report expected: {reports}")
    return problems


def compare(harness: Harness, scenario: Scenario) -> list[str]:
    """Differences between the scenario's state and the uninterrupted control scenario's."""
    actual, expected = snapshot(harness, scenario), harness.expected
    problems = []
    for part in expected:
        if actual[part] != expected[part]:
            if isinstance(expected[part], list):
                missing = dict(Counter(expected[part]) - Counter(actual[part]))
                extra = dict(Counter(actual[part]) - Counter(expected[part]))
                problems.append(f"{scenario.tag} {part}: missing {missing}, extra {extra}")
            else:
                problems.append(f"{scenario.tag} {part}: {actual[part]} instead of {expected[part]}")
    left = leftovers(harness, scenario)
    open_journal = {status: count for status, count in left["journal"].items() if status not in ("completed", "failed")}
    if open_journal:
        problems.append(f"{scenario.tag}: Partner Center submissions left open: {open_journal}")
    return problems


def _recovered(result, scenarios: list[Scenario]) -> list[str]:
    """The recovering run itself: completed, every line of its files in one bucket."""
    tags = ",".join(scenario.tag for scenario in scenarios)
    if result.returncode != 0:
        return [f"{tags}: the run after the kill ended {result.returncode}: {result.log[-3000:]}"]
    summary = json.loads(next(result.folder.glob("*/summary.json")).read_text())
    lines, orders = summary["lines"], summary["orders"]
    problems = []
    # other scenarios' held orders come back into every run (re-evaluated) and stay held
    if lines["input"] - lines["reevaluated"] != SCENARIO_LINES * len(scenarios) \
            or lines["provisioned"] + lines["already_provisioned"] != SCENARIO_PROVISIONED * len(scenarios):
        problems.append(f"{tags}: the recovering run's lines {lines}")
    if orders["fulfilled"] + orders["already_fulfilled"] != 3 * len(scenarios):
        problems.append(f"{tags}: the recovering run's orders {orders}")
    # R7: a fulfilment the killed run made but never reported still reaches D365
    with next(result.folder.glob("*/order_status_updates.csv")).open(encoding="utf-8") as handle:
        updates = sorted(row["order_number"] for row in csv.DictReader(handle))
    wanted = sorted(scenario.order(number) for scenario in scenarios for number in ("1", "2", "3"))
    if updates != wanted:
        problems.append(f"{tags}: order_status_updates.csv lists {updates}, not {wanted}")
    return problems


# ------------------------------------------------------------------------------ tests
def test_a_run_killed_at_any_named_point_is_recovered_by_the_next_run(harness):
    """For each named point: a run SIGKILLed there (exit -9) leaves what the point's name says;
    then the same files again, without fail points, end every scenario in the uninterrupted
    run's state (R6: nothing twice, nothing lost).

    ``W365_CRASH_RECOVERY=together`` (the default) kills at every point first, each scenario in
    a run of its own, then runs all their files again in one run — a night after many crashes;
    ``each`` runs the same file again right after each kill."""
    problems: list[str] = []
    killed_scenarios: list[Scenario] = []
    for number, point in enumerate(NAMED_POINTS, start=1):
        if ONLY_POINTS and point not in ONLY_POINTS:
            continue
        scenario = harness.scenarios[f"P{number:02d}"]
        killed = harness.run([scenario.tag], failpoint=point, label=f"kill-{point}")
        if killed.returncode != -signal.SIGKILL:
            problems.append(f"{point}: the run was not killed (exit {killed.returncode}): {killed.log[-2000:]}")
            continue
        reports = [str(path) for path in killed.folder.rglob("*") if path.is_file()]
        problems += [f"{point} ({scenario.tag}) leftovers: {problem}"
                     for problem in _expected_leftovers(point, leftovers(harness, scenario), reports)]
        killed_scenarios.append(scenario)
        if RECOVERY == "each":
            again = harness.run([scenario.tag], label=f"after-{point}")
            problems += [f"{point}: {problem}" for problem in _recovered(again, [scenario])]
    if RECOVERY != "each" and killed_scenarios:
        again = harness.run([scenario.tag for scenario in killed_scenarios], label="after-every-point")
        problems += _recovered(again, killed_scenarios)
    for point, scenario in zip(NAMED_POINTS, [harness.scenarios[f"P{n:02d}"] for n in range(1, len(NAMED_POINTS) + 1)]):
        if scenario in killed_scenarios:
            problems += [f"{point}: {problem}" for problem in compare(harness, scenario)]
    assert len(killed_scenarios) == (len(ONLY_POINTS) if ONLY_POINTS else len(NAMED_POINTS)), problems
    assert not problems, "\n".join(problems)


def test_runs_killed_at_random_times_are_recovered_by_the_next_run(harness):
    """``W365_KILL_RUNS`` runs SIGKILLed after a random time (0.3–1 × an uninterrupted run's length),
    each followed by the same file again: every final state equals the uninterrupted run's."""
    chooser = random.Random(KILL_SEED)
    limit = max(harness.clean_run_seconds, 1.0)
    problems, stages = [], Counter()
    tags = sorted(tag for tag in harness.scenarios if tag.startswith("R"))
    started = time.monotonic()
    for tag in tags:
        scenario = harness.scenarios[tag]
        # the first third of a run reads and plans (nothing stored yet): kill mostly after it
        delay = round(chooser.uniform(0.3 * limit, limit), 3)
        killed = harness.run([tag], kill_after=delay, label=f"random-{tag}")
        if killed.returncode == -signal.SIGKILL:
            stages[_stage_of(leftovers(harness, scenario))] += 1
        elif killed.returncode == 0:
            stages["finished before the kill"] += 1
        else:
            problems.append(f"{tag}: the run ended {killed.returncode} before its kill: {killed.log[-2000:]}")
            continue
        again = harness.run([tag], label=f"after-random-{tag}")
        problems += [f"{tag} (killed after {delay} s): {problem}" for problem in _recovered(again, [scenario])]
        problems += [f"{tag} (killed after {delay} s): {problem}" for problem in compare(harness, scenario)]
    print(f"\nrandom kills: {len(tags)} run(s) in {time.monotonic() - started:.0f} s, seed {KILL_SEED}, "
          f"delays {0.3 * limit:.1f}–{limit:.1f} s; killed: {dict(sorted(stages.items()))}; "
          f"final states different from the uninterrupted run: {len(problems)}")
    assert not problems, "\n".join(problems)


def test_a_run_killed_holding_inbox_files_gives_them_back_to_the_next_run(harness):
    """The nightly path: a run killed after storing its plan still holds its inbox file in
    ``processing/<run_id>/``; the next inbox run takes it back, provisions it, archives it, and
    the scenario ends in the uninterrupted run's state."""
    inbox = harness.folder / "inbox"
    inbox.mkdir()
    shutil.copyfile(harness.files[INBOX.tag], inbox / "orders.csv")
    killed = harness.run([], inbox=inbox, failpoint="after_plan_stored", label="kill-inbox-after_plan_stored")
    assert killed.returncode == -signal.SIGKILL, killed.log
    assert [path.parent.parent.name for path in inbox.rglob("orders.csv")] == ["processing"]
    assert leftovers(harness, INBOX)["planned"] == SCENARIO_PROVISIONED

    again = harness.run([], inbox=inbox, label="after-kill-inbox")
    problems = _recovered(again, [INBOX]) + compare(harness, INBOX)
    assert not problems, "\n".join(problems)
    assert [path.relative_to(inbox).as_posix() for path in inbox.rglob("*.csv")] == [f"archive/{AS_OF}/orders.csv"]
    assert not list((inbox / "processing").glob("*"))  # the dead run's claim is gone


def _stage_of(left: dict) -> str:
    if left["stored"] == 0:
        return "before the plan was stored"
    if left["fulfilled"]:
        return "after fulfilment"
    if left["planned"] == SCENARIO_PROVISIONED and left["purchases"] == 0:
        return "plan stored, nothing provisioned"
    if left["planned"] == 0:
        return "provisioned, not fulfilled"
    return "while provisioning"
