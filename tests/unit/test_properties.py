"""Properties of the plan over random runs (hypothesis):

1. conservation — every line ends in exactly one bucket, every order in exactly one order
   bucket, and ``build_summary``'s two equations hold (SPEC §5); R1/R2 hold on every order;
2. a re-run changes nothing — with the first run's result stored, the same input plans nothing
   new and creates no contract (R6);
3. the amount rule — an extended amount computed exactly never mismatches; one more than
   0.01 off always does (R8).
"""

from __future__ import annotations

import dataclasses
import os
from decimal import Decimal, localcontext

import pandas as pd
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from tests.unit import factories as f
from w365etl.domain import outcomes
from w365etl.domain.validation import validate_line_values
from w365etl.plan import build_plan
from w365etl.provisioning import apply_results, planned_for_dry_run
from w365etl.reasons import HOLD_CODES, SKIP_CODES
from w365etl.report.build import build_needs_provider_mapping, build_summary

# example counts sized for the suite (CI budget): each example plans a whole run, ~0.3 s;
# the integration properties of whole re-runs are tests/integration/test_rerun_properties.py
PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    phases=[Phase.explicit, Phase.reuse, Phase.generate] if os.environ.get("NOSHRINK") else tuple(Phase))

CUSTOMERS = [("Contoso Ltd", None), ("Contoso Ltd", "id-a"), ("contoso  LTD", None), ("Fabrikam", "id-b"),
             ("Fabrikam", None), ("Northwind", None)]
MAPPINGS = [
    {"customer_name": "Contoso Ltd", "provider_customer_id": "tenant-1"},
    {"customer_name": "CONTOSO LTD", "provider_customer_id": "tenant-2"},            # makes Contoso ambiguous
    {"customer_name": "Contoso Holdings", "customer_id": "id-a", "provider_customer_id": "tenant-3"},
    {"customer_name": "Fabrikam", "customer_id": "id-b", "provider_customer_id": "tenant-4"},
    {"customer_name": "Fabrikam", "customer_id": "id-z", "provider_customer_id": "tenant-5"},
    {"customer_name": "Northwind", "provider_customer_id": "tenant-6"},
]
PRODUCTS = [f.M365, f.M365, f.M365_ANNUAL, f.SUPPORT, f.SETUP, f.LICENCE, "NOPE", None]
GUIDS = [None, None, "g-1", "g-2", "g-3", "g-4"]
OFTEN = [True, False, True, True]
SELDOM = [False, True, False, False, False]
GOOD_PRODUCTS = [f.M365, f.M365, f.M365_ANNUAL, f.SUPPORT, f.SETUP, f.LICENCE]


@st.composite
def order_lines(draw, order_number: str) -> list[dict]:
    """One order: a clean one (valid values, unique keys) or a messy one (random bad values,
    repeated GUIDs and line numbers, mixed currencies)."""
    messy = draw(st.booleans())
    state = draw(st.sampled_from([0, 0, 0, 1, 2, 3, 4] if messy else [0, 0, 0, 0, 1, 2]))
    name, customer_id = draw(st.sampled_from(CUSTOMERS))
    currency = draw(st.sampled_from(["USD", "USD", "EUR"]))
    count = draw(st.integers(1, 4))
    rows = []
    for position in range(1, count + 1):
        if messy:
            product = draw(st.sampled_from(PRODUCTS))
            quantity = draw(st.sampled_from(["1", "2", "3", "2.5", "301", "0"]))
            line_id = draw(st.sampled_from(GUIDS))
            line_number = draw(st.sampled_from([None, 1, 2, 3, 4]))
            line_currency = currency if draw(st.integers(0, 5)) else "GBP"
            provision_as = draw(st.sampled_from([None, None, "New", "Existing"]))
            extended = draw(st.sampled_from(["none", "exact", "off"]))
        else:
            product = draw(st.sampled_from(GOOD_PRODUCTS))
            quantity = draw(st.sampled_from(["1", "2", "3"]))
            line_id = draw(st.sampled_from([None, f"{order_number}-guid-{position}"]))
            line_number = draw(st.sampled_from([None, position]))
            line_currency = currency
            provision_as = draw(st.sampled_from([None, None, None, "New", "Existing"]))
            if provision_as == "Existing":   # an increase of the stored Contoso subscription, if any
                product = f.M365
            extended = draw(st.sampled_from(["none", "exact"]))
        price = draw(st.sampled_from(["10", "12.5", "0.333333"]))
        row = f.line(
            order_number=order_number, order_state_code=state, customer_name=name,
            customer_id=customer_id if draw(st.booleans()) or customer_id is None else None,
            currency_code=line_currency, product_number=product, quantity=quantity, price_per_unit=price,
            line_id=line_id, line_number=line_number, provision_as=provision_as,
            fulfill_order=draw(st.sampled_from([None, None, True, False])),
            unit=draw(st.sampled_from(["Monthly", "Monthly", None])),
        )
        if product is None:
            row["write_in_product"] = "Consulting"
        if extended != "none":
            total = Decimal(quantity) * Decimal(price) + (Decimal("0.02") if extended == "off" else 0)
            row["extended_amount"] = str(total.quantize(Decimal("0.000001")))
        rows.append(row)
    return rows


@st.composite
def runs(draw) -> tuple[pd.DataFrame, pd.DataFrame, object, object]:
    """(lines, value issues, stored state, plan options) of a random run."""
    count = draw(st.integers(1, 5))
    rows = []
    for i in range(count):
        rows.extend(draw(order_lines(f"SO-{i + 1}")))
    frame = f.lines_frame(rows)
    value_issues = validate_line_values(frame)
    # a random unreadable cell reported by ingest
    if not draw(st.integers(0, 3)):
        extra = f.value_issue(draw(st.integers(0, len(frame) - 1)), "INVALID_VALUE", "payment_terms", "Net 99")
        value_issues = pd.concat([value_issues[extra.columns], extra], ignore_index=True)
    # each mapping present or not; the second Contoso tenant (which makes the name ambiguous) seldom
    mappings = [m for m in MAPPINGS
                if draw(st.sampled_from(SELDOM if m["provider_customer_id"] == "tenant-2" else OFTEN))]
    stored = f.state(provider_accounts=f.provider_accounts(*mappings))
    if draw(st.sampled_from(OFTEN)):   # a customer known from an earlier run, with a contract and a subscription
        stored = dataclasses.replace(
            stored,
            customers=f.customers({"customer_pk": 7, "customer_name": "Contoso Ltd"}),
            contracts=f.contracts({"contract_pk": 3, "contract_number": "BC-1", "customer_pk": 7}),
            subscriptions=f.subscriptions({"subscription_pk": 11, "customer_pk": 7, "contract_pk": 3,
                                           "product_number": f.M365, "quantity": draw(st.sampled_from(["1", "299"]))}),
        )
    # now and then the provider says it does not know a mapped account (PROVIDER_MAPPING_INVALID)
    invalid = frozenset(("partner_center", m["provider_customer_id"]) for m in mappings if not draw(st.sampled_from(OFTEN)))
    return frame, value_issues, stored, f.options(invalid_accounts=invalid)


def _final(plan, accepted: list[bool] | None = None):
    planned = planned_for_dry_run(plan)
    ok = [True] * len(planned) if accepted is None else (accepted * (len(planned) + 1))[:len(planned)]
    results = pd.DataFrame({
        "line_pk": planned["line_pk"].to_numpy(), "is_success": ok,
        "provider_subscription_id": pd.NA, "provider_order_id": pd.NA,
        "error_code": ["E1" if not s else pd.NA for s in ok], "error_message": pd.NA,
    })
    return apply_results(plan, planned, results, keep_line_ids=False)


# --------------------------------------------------------------------------------------------
# 1. conservation


@settings(PROPERTY, max_examples=20)
@given(run=runs(), accepted=st.lists(st.booleans(), min_size=1, max_size=6))
def test_every_line_and_every_order_lands_in_exactly_one_bucket(run, accepted):
    frame, value_issues, stored, options = run
    plan = build_plan(frame, value_issues, stored, options)

    # the plan: one row per input line, each in one plan bucket
    assert sorted(plan.lines["line_index"]) == list(range(len(frame)))
    assert plan.lines["bucket"].isin(["planned", "skipped", "already_provisioned", "rejected", "held"]).all()

    lines, issues = _final(plan, accepted)
    orders = outcomes.summarise_orders(lines)
    summary = build_summary(
        run_id="r", as_of=f.AS_OF, is_dry_run=True, files=[], lines=lines, orders=orders, exceptions=issues,
        needs_mapping=build_needs_provider_mapping(lines), new_contracts=plan.new_contracts, provider_modes={},
    )

    line_counts = summary["lines"]
    assert line_counts["input"] == len(frame)
    assert line_counts["input"] == sum(line_counts[b] for b in outcomes.LINE_BUCKETS)
    order_counts = summary["orders"]
    assert order_counts["input"] == frame["order_number"].nunique()
    assert order_counts["input"] == sum(order_counts[b] for b in outcomes.ORDER_BUCKETS)
    assert orders["order_key"].is_unique
    assert orders["order_bucket"].isin(outcomes.ORDER_BUCKETS).all()
    assert sum(summary["exceptions_by_reason"].values()) == len(issues)

    by_order = lines.groupby("order_key")["bucket"].unique()
    for order, values in by_order.items():
        found = set(values)
        # R1: an order is skipped as a whole; R2: nothing provisioned next to a held/rejected line
        assert "skipped" not in found or found == {"skipped"}, order
        assert not ({"provisioned", "failed"} & found and {"held", "rejected"} & found), order

    # exception rows: every problem of a rejected line, one row per skipped/held/failed line,
    # none for provisioned or already provisioned lines
    rows_per_line = issues.groupby("line_index").size()
    per_bucket = lines.set_index("line_index")["bucket"]
    count = per_bucket.index.map(rows_per_line).fillna(0).astype(int)
    count = pd.Series(count, index=per_bucket.index)
    assert (count[per_bucket.isin(["provisioned", "already_provisioned"])] == 0).all()
    assert (count[per_bucket.isin(["skipped", "held", "failed"])] == 1).all()
    assert (count[per_bucket == "rejected"] >= 1).all()
    codes = issues.set_index("line_index")["reason_code"]
    held_codes = {str(c) for c in HOLD_CODES}
    rejected_codes = codes[codes.index.map(per_bucket) == "rejected"]
    assert not rejected_codes.isin(held_codes | {str(c) for c in SKIP_CODES}).any()
    # the bucket reason is the row of a held or skipped line
    for bucket in ("held", "skipped"):
        reasons = lines.loc[lines["bucket"] == bucket].set_index("line_index")["bucket_reason"].sort_index()
        own_rows = codes[codes.index.isin(reasons.index)].sort_index()
        assert own_rows.tolist() == reasons.tolist()


# --------------------------------------------------------------------------------------------
# 2. a re-run changes nothing


@settings(PROPERTY, max_examples=15)
@given(run=runs())
def test_a_rerun_of_the_same_input_plans_nothing_new(run):
    frame, value_issues, stored, options = run
    first = build_plan(frame, value_issues, stored, options)
    after = f.stored_state_after(first, stored)

    second = build_plan(frame, value_issues, after, options)

    one = first.lines.set_index("line_index")
    two = second.lines.set_index("line_index").reindex(one.index)
    was_planned = one["bucket"] == "planned"
    assert (two.loc[was_planned, "bucket"] == "already_provisioned").all()
    assert not (two["bucket"] == "planned").any()
    assert second.new_contracts.empty
    # the lines that were not provisioned keep their bucket and reason
    assert (two.loc[~was_planned, "bucket"] == one.loc[~was_planned, "bucket"]).all()
    assert two.loc[~was_planned, "bucket_reason"].fillna("-").tolist() == \
        one.loc[~was_planned, "bucket_reason"].fillna("-").tolist()


# --------------------------------------------------------------------------------------------
# 3. the amount rule (R8)

QUANTITIES = st.decimals(min_value=Decimal("0.00001"), max_value=Decimal("99999"), places=5)
MONEY = st.decimals(min_value=Decimal("0"), max_value=Decimal("99999"), places=6)
SMALL_MONEY = st.decimals(min_value=Decimal("0"), max_value=Decimal("999"), places=6)


def _amount_line(quantity, price, volume, manual, tax, extended) -> pd.DataFrame:
    return f.lines_frame([f.line(
        product_number=f.SETUP, quantity=str(quantity), price_per_unit=str(price), volume_discount=str(volume),
        manual_discount=str(manual), tax=str(tax), extended_amount=str(extended),
    )])


def _expected(quantity, price, volume, manual, tax) -> Decimal:
    return quantity * (price - volume) - manual + tax


@settings(PROPERTY, max_examples=20)
@given(quantity=QUANTITIES, price=MONEY, volume=SMALL_MONEY, manual=SMALL_MONEY, tax=SMALL_MONEY,
       shift=st.decimals(min_value=Decimal("-0.01"), max_value=Decimal("0.01"), places=6))
def test_an_extended_amount_computed_exactly_never_mismatches(quantity, price, volume, manual, tax, shift):
    exact = _expected(quantity, price, volume, manual, tax)
    # the money column keeps 6 places; a value within 0.01 after rounding to them must pass
    given_amount = (exact + shift).quantize(Decimal("0.000001"))
    assume(abs(given_amount - exact) <= Decimal("0.01"))
    assume(abs(given_amount) < Decimal("1e11"))

    plan = f.plan(_amount_line(quantity, price, volume, manual, tax, given_amount))

    assert "AMOUNT_MISMATCH" not in set(plan.issues["reason_code"])
    assert f.buckets(plan) == ["planned"]


@settings(PROPERTY, max_examples=20)
@given(quantity=QUANTITIES, price=MONEY, volume=SMALL_MONEY, manual=SMALL_MONEY, tax=SMALL_MONEY,
       shift=st.decimals(min_value=Decimal("0.010001"), max_value=Decimal("1000"), places=6),
       negative=st.booleans())
def test_an_extended_amount_more_than_a_cent_off_always_mismatches(quantity, price, volume, manual, tax, shift, negative):
    exact = _expected(quantity, price, volume, manual, tax)
    given_amount = exact + (-shift if negative else shift)
    # keep the extended amount representable (6 places) and more than 0.01 away after rounding
    given_amount = given_amount.quantize(Decimal("0.000001"))
    assume(abs(given_amount - exact) > Decimal("0.01"))
    assume(abs(given_amount) < Decimal("1e11"))

    plan = f.plan(_amount_line(quantity, price, volume, manual, tax, given_amount))

    assert plan.issues["reason_code"].tolist() == ["AMOUNT_MISMATCH"]
    assert f.buckets(plan) == ["rejected"]


#: every value the parser lets through (SPEC §2.1: money 12 integer digits and 6 places,
#: quantities 13 and 5), negative discounts included
ANY_MONEY = st.decimals(min_value=Decimal("-999999999999.999999"), max_value=Decimal("999999999999.999999"), places=6)
ANY_QUANTITY = st.decimals(min_value=Decimal("0.00001"), max_value=Decimal("9999999999999.99999"), places=5)


@settings(PROPERTY, max_examples=12)
@given(cases=st.lists(st.tuples(ANY_QUANTITY, ANY_MONEY, ANY_MONEY, ANY_MONEY, ANY_MONEY, ANY_MONEY),
                      min_size=1, max_size=25))
def test_the_amount_rule_is_exact_over_every_value_a_cell_may_hold(cases):
    """R8 over the parser's whole range: never an overflow (a price of 999 999 999 999.50 less
    a discount of −0.60 once crashed the run), and each line's verdict is the exact decimal
    one. Each case is an order of its own, all planned at once."""
    rows, expected = [], []
    for position, (quantity, price, volume, manual, tax, extended) in enumerate(cases):
        with localcontext() as exact_context:
            exact_context.prec = 60
            expected.append(abs(extended - _expected(quantity, price, volume, manual, tax)) > Decimal("0.01"))
        rows.append(f.line(order_number=f"SO-{position}", product_number=f.SETUP, quantity=str(quantity),
                           price_per_unit=str(price), volume_discount=str(volume), manual_discount=str(manual),
                           tax=str(tax), extended_amount=str(extended)))
    lines = f.lines_frame(rows)

    plan = f.plan(lines)

    mismatched = set(plan.issues.loc[plan.issues["reason_code"] == "AMOUNT_MISMATCH", "line_index"])
    assert [line_index in mismatched for line_index in lines["line_index"]] == expected
