"""R1–R9 (SPEC §3) through the pure plan: one or more tests per rule, named after the rule.

Each test builds normalised lines (ingest's contract) and a stored state with the factories,
runs ``build_plan`` and checks the line buckets, the exception rows and what would be created.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from tests.unit import factories as f
from w365etl.domain import outcomes
from w365etl.domain.validation import validate_line_values
from w365etl.provisioning import apply_results, execute, planned_for_dry_run
from w365etl.reasons import Severity, severity_of
from w365etl.report.build import build_needs_provider_mapping, build_summary

STORED_CONTOSO = f.customers({"customer_pk": 7, "customer_name": "Contoso Ltd"})


def _rows_for(result, line_index: int) -> pd.DataFrame:
    return result.issues[result.issues["line_index"] == line_index]


def _dry_run(result):
    """Final buckets of a dry run (every provider accepts)."""
    planned = planned_for_dry_run(result)
    results = execute("run", result, planned, {}, None)
    lines, issues = apply_results(result, planned, results, keep_line_ids=False)
    return lines, issues


def _summary(result):
    lines, issues = _dry_run(result)
    orders = outcomes.summarise_orders(lines)
    return build_summary(
        run_id="run", as_of=f.AS_OF, is_dry_run=True, files=[], lines=lines, orders=orders,
        exceptions=issues, needs_mapping=build_needs_provider_mapping(lines),
        new_contracts=result.new_contracts, provider_modes={},
    )


# --------------------------------------------------------------------------------------------
# R1 order state


@pytest.mark.parametrize("state", [f.ACTIVE, f.SUBMITTED])
def test_r1_active_and_submitted_orders_are_provisioned(state):
    result = f.plan([f.line(order_state_code=state), f.line(product_number=f.SETUP)])

    assert f.buckets(result) == ["planned", "planned"]
    assert result.issues.empty


@pytest.mark.parametrize(
    ("state", "code", "label"),
    [(f.CANCELED, "ORDER_CANCELED", "Canceled"), (f.FULFILLED, "ORDER_ALREADY_FULFILLED", "Fulfilled"),
     (f.INVOICED, "ORDER_INVOICED", "Invoiced")],
)
def test_r1_canceled_fulfilled_and_invoiced_orders_are_skipped_with_one_warning_per_line(state, code, label):
    result = f.plan([f.line(order_state_code=state), f.line(order_state_code=state, product_number=f.SETUP)])

    assert f.buckets(result) == ["skipped", "skipped"]
    assert result.lines["bucket_reason"].tolist() == [code, code]
    assert result.issues["reason_code"].tolist() == [code, code]
    assert sorted(result.issues["line_index"].tolist()) == [0, 1]
    assert result.issues["field"].tolist() == ["order_state", "order_state"]
    assert result.issues["value"].tolist() == [label, label]
    assert severity_of(code) == Severity.WARNING
    assert result.new_contracts.empty


def test_r1_a_canceled_order_with_bad_lines_skips_every_line_and_reports_no_other_problem():
    rows = [
        f.line(order_state_code=f.CANCELED, product_number="NOPE"),                       # unknown product
        f.line(order_state_code=f.CANCELED, quantity="2", extended_amount="99"),          # amount mismatch
        f.line(order_state_code=f.CANCELED, write_in_product="Consulting", product_number=None),
        f.line(order_state_code=f.CANCELED, currency_code="EUR", quantity="1.5"),         # currency, fraction
    ]
    value_issues = f.value_issue(1, "INVALID_VALUE", "payment_terms", "Net 99")

    result = f.plan(rows, value_issues=value_issues)

    assert f.buckets(result) == ["skipped"] * 4
    assert result.issues["reason_code"].tolist() == ["ORDER_CANCELED"] * 4
    assert sorted(result.issues["line_index"].tolist()) == [0, 1, 2, 3]


def test_r1_a_skipped_order_is_skipped_even_for_a_customer_without_mapping():
    result = f.plan([f.line(order_state_code=f.FULFILLED)], f.state(provider_accounts=f.provider_accounts()))

    assert f.buckets(result) == ["skipped"]
    assert result.issues["reason_code"].tolist() == ["ORDER_ALREADY_FULFILLED"]
    assert build_needs_provider_mapping(result.lines).empty


def test_r1_only_the_state_decides_not_the_status_reason():
    # Active with status reason "Complete" (100001) and Fulfilled with "New" (1)
    result = f.plan([
        f.line(order_number="SO-1", order_status_reason_code=100001),
        f.line(order_number="SO-2", order_state_code=f.FULFILLED, order_status_reason_code=1),
    ])

    assert f.buckets(result) == ["planned", "skipped"]
    assert f.issue_codes(result) == ["ORDER_ALREADY_FULFILLED"]


def test_r1_an_unreadable_state_is_invalid_value_and_rejects_the_line():
    frame = f.lines_frame([f.line(order_state_code=None), f.line(order_state_code=None, product_number=f.SETUP)])
    value_issues = validate_line_values(frame)

    result = f.plan(frame, value_issues=value_issues)

    assert f.buckets(result) == ["rejected", "rejected"]
    assert result.issues["reason_code"].tolist() == ["INVALID_VALUE", "INVALID_VALUE"]
    assert set(result.issues["field"]) == {"order_state"}


def test_r1_skips_do_not_count_as_held_orders():
    summary = _summary(f.plan([
        f.line(order_number="SO-1", order_state_code=f.CANCELED),
        f.line(order_number="SO-2"),
    ]))

    assert summary["orders"]["skipped"] == 1
    assert summary["orders"]["fulfilled"] == 1
    assert summary["orders"]["held"] == 0
    assert summary["lines"]["skipped"] == 1


# --------------------------------------------------------------------------------------------
# R2 orders are atomic


def test_r2_an_order_with_a_rejected_line_provisions_nothing():
    result = f.plan([
        f.line(order_number="SO-1"),
        f.line(order_number="SO-1", product_number="NOPE"),
        f.line(order_number="SO-1", product_number=f.SETUP),
        f.line(order_number="SO-2"),
    ])

    assert f.buckets(result) == ["held", "rejected", "held", "planned"]
    assert f.reason_of(result, 0) == "ORDER_HAS_REJECTED_LINES"
    assert f.reason_of(result, 2) == "ORDER_HAS_REJECTED_LINES"
    assert f.issue_codes(result, 1) == ["UNKNOWN_PRODUCT"]
    assert f.issue_codes(result, 0) == ["ORDER_HAS_REJECTED_LINES"]
    assert f.issue_codes(result, 2) == ["ORDER_HAS_REJECTED_LINES"]
    assert f.issue_codes(result, 3) == []
    # only SO-2's contract is created; SO-1's lines wait
    assert len(result.new_contracts) == 1


def test_r2_a_rejected_line_gets_one_row_per_problem_and_one_bucket():
    result = f.plan([
        f.line(quantity="1.5", extended_amount="100", currency_code="EUR"),
        f.line(),
        f.line(),
    ])

    assert f.bucket_of(result, 0) == "rejected"
    assert f.issue_codes(result, 0) == ["AMOUNT_MISMATCH", "CURRENCY_MISMATCH", "INVALID_QUANTITY"]
    assert (result.lines["line_index"] == 0).sum() == 1


def test_r2_a_value_issue_from_ingest_rejects_its_line_and_holds_the_order():
    value_issues = f.value_issue(0, "INVALID_VALUE", "payment_terms", "Net 99", "Payment Terms 'Net 99' is not valid")

    result = f.plan([f.line(), f.line(product_number=f.SETUP)], value_issues=value_issues)

    assert f.buckets(result) == ["rejected", "held"]
    rejected_rows = _rows_for(result, 0)
    assert rejected_rows[["reason_code", "field", "value"]].values.tolist() == [["INVALID_VALUE", "payment_terms", "Net 99"]]


def test_r2_rejection_wins_over_mapping_as_the_hold_reason():
    # no mapping for Contoso, and one line of the order is rejected
    result = f.plan(
        [f.line(), f.line(product_number=f.SETUP), f.line(product_number="NOPE")],
        f.state(provider_accounts=f.provider_accounts()),
    )

    assert f.buckets(result) == ["held", "held", "rejected"]
    assert result.lines["bucket_reason"].tolist()[:2] == ["ORDER_HAS_REJECTED_LINES"] * 2
    held_rows = result.issues[result.issues["line_index"].isin([0, 1])]
    assert held_rows["reason_code"].tolist() == ["ORDER_HAS_REJECTED_LINES"] * 2
    # the customer still needs a mapping for its Partner Center line (SPEC §5)
    needs = build_needs_provider_mapping(result.lines)
    assert needs[["customer_name", "provider"]].values.tolist() == [["Contoso Ltd", "partner_center"]]


def test_r2_exactly_one_row_per_held_or_skipped_line_and_none_for_planned_lines():
    result = f.plan([
        f.line(order_number="SO-1"), f.line(order_number="SO-1", product_number="NOPE"),
        f.line(order_number="SO-2", order_state_code=f.INVOICED),
        f.line(order_number="SO-3"),
    ])

    per_line = result.issues.groupby("line_index").size()
    assert per_line.to_dict() == {0: 1, 1: 1, 2: 1}
    assert severity_of(result.issues.set_index("line_index").loc[0, "reason_code"]) == Severity.WARNING
    assert severity_of(result.issues.set_index("line_index").loc[1, "reason_code"]) == Severity.ERROR


def test_r2_summary_counts_the_held_order_once():
    summary = _summary(f.plan([
        f.line(order_number="SO-1"), f.line(order_number="SO-1", product_number="NOPE"),
        f.line(order_number="SO-2"),
    ]))

    assert summary["lines"] == {"input": 3, "provisioned": 1, "already_provisioned": 0, "skipped": 0,
                                "held": 1, "rejected": 1, "failed": 0, "reevaluated": 0}
    assert summary["orders"]["held"] == 1
    assert summary["orders"]["fulfilled"] == 1
    assert summary["orders"]["input"] == 2


# --------------------------------------------------------------------------------------------
# R3 provider mapping


def test_r3_an_automatic_line_without_mapping_holds_its_order():
    result = f.plan(
        [f.line(), f.line(product_number=f.SUPPORT)],
        f.state(provider_accounts=f.provider_accounts()),
    )

    assert f.buckets(result) == ["held", "held"]
    assert result.lines["bucket_reason"].tolist() == ["NEEDS_PROVIDER_MAPPING"] * 2
    assert result.issues["reason_code"].tolist() == ["NEEDS_PROVIDER_MAPPING"] * 2
    assert result.issues["value"].tolist() == ["partner_center", "manual"]
    assert result.new_contracts.empty


def test_r3_manual_lines_need_no_mapping():
    result = f.plan(
        [f.line(product_number=f.SUPPORT), f.line(product_number=f.SETUP)],
        f.state(provider_accounts=f.provider_accounts()),
    )

    assert f.buckets(result) == ["planned", "planned"]
    assert result.lines["provider_customer_id"].isna().all()


def test_r3_provision_on_manual_overrides_the_catalog_provider_and_needs_no_mapping():
    result = f.plan([f.line(provision_on="manual")], f.state(provider_accounts=f.provider_accounts()))

    assert f.buckets(result) == ["planned"]
    assert result.lines["effective_provider_code"].tolist() == ["manual"]


def test_r3_the_mapping_is_found_by_name_case_and_whitespace_insensitive():
    result = f.plan([f.line(customer_name="  CONTOSO    ltd ")])

    assert f.buckets(result) == ["planned"]
    assert result.lines["provider_customer_id"].tolist() == ["tenant-contoso"]


def test_r3_the_mapping_is_found_by_customer_id_when_both_sides_have_one():
    accounts = f.provider_accounts(
        {"customer_name": "Contoso Holdings", "customer_id": "aaaa-1", "provider_customer_id": "tenant-by-id"},
        {"customer_name": "Contoso Ltd", "customer_id": "bbbb-2", "provider_customer_id": "tenant-other"},
    )

    result = f.plan([f.line(customer_id="aaaa-1")], f.state(provider_accounts=accounts))

    assert f.buckets(result) == ["planned"]
    assert result.lines["provider_customer_id"].tolist() == ["tenant-by-id"]


def test_r3_a_mapping_of_another_account_id_with_the_same_name_does_not_map():
    accounts = f.provider_accounts(
        {"customer_name": "Contoso Ltd", "customer_id": "bbbb-2", "provider_customer_id": "tenant-other"},
    )

    result = f.plan([f.line(customer_id="aaaa-1")], f.state(provider_accounts=accounts))

    assert f.buckets(result) == ["held"]
    assert f.reason_of(result, 0) == "NEEDS_PROVIDER_MAPPING"


def test_r3_a_mapping_for_another_provider_does_not_map():
    accounts = f.provider_accounts({"customer_name": "Contoso Ltd", "provider_code": "other_cloud",
                                    "provider_customer_id": "x"})

    result = f.plan([f.line()], f.state(provider_accounts=accounts))

    assert f.reason_of(result, 0) == "NEEDS_PROVIDER_MAPPING"


def test_r3_a_name_mapped_to_two_provider_accounts_is_ambiguous_customer():
    accounts = f.provider_accounts(
        {"customer_name": "Contoso Ltd", "provider_customer_id": "tenant-1"},
        {"customer_name": "contoso  LTD", "provider_customer_id": "tenant-2"},
    )

    result = f.plan([f.line(), f.line(product_number=f.SUPPORT)], f.state(provider_accounts=accounts))

    assert f.buckets(result) == ["rejected", "held"]
    assert f.issue_codes(result, 0) == ["AMBIGUOUS_CUSTOMER"]
    assert f.reason_of(result, 1) == "ORDER_HAS_REJECTED_LINES"


def test_r3_two_rows_of_the_same_name_and_tenant_are_not_ambiguous():
    accounts = f.provider_accounts(
        {"customer_name": "Contoso Ltd", "provider_customer_id": "tenant-1"},
        {"customer_name": "CONTOSO LTD", "provider_customer_id": "tenant-1"},
    )

    result = f.plan([f.line()], f.state(provider_accounts=accounts))

    assert f.buckets(result) == ["planned"]


@pytest.mark.parametrize("stored_customers", [f.customers(), STORED_CONTOSO])
def test_r3_every_line_of_one_customer_finds_the_same_mapping_even_without_the_crm_id(stored_customers):
    # one row carries the CRM id, the other only the name; the mapping is keyed by that id
    accounts = f.provider_accounts(
        {"customer_name": "Contoso Holdings", "customer_id": "id-a", "provider_customer_id": "tenant-by-id"})

    result = f.plan([f.line(customer_id="id-a"), f.line()],
                    f.state(provider_accounts=accounts, customers=stored_customers))

    assert result.lines["customer_key"].nunique() == 1
    assert result.lines["provider_customer_id"].tolist() == ["tenant-by-id", "tenant-by-id"]
    assert f.buckets(result) == ["planned", "planned"]


def test_r3_a_customer_needing_mapping_appears_once_per_provider_with_its_held_orders():
    result = f.plan(
        [f.line(order_number="SO-1"), f.line(order_number="SO-2"), f.line(order_number="SO-2"),
         f.line(order_number="SO-3", customer_name="Fabrikam")],
        f.state(provider_accounts=f.provider_accounts()),
    )
    needs = build_needs_provider_mapping(result.lines)

    assert needs["customer_name"].tolist() == ["Contoso Ltd", "Fabrikam"]
    assert needs["provider"].tolist() == ["partner_center", "partner_center"]
    assert needs["held_orders"].tolist() == ["SO-1; SO-2", "SO-3"]
    assert _summary(result)["customers_needing_provider_mapping"] == 2


def test_r3_held_lines_counts_the_lines_of_the_orders_held_for_that_mapping_only():
    result = f.plan(
        [f.line(order_number="SO-1"), f.line(order_number="SO-1", product_number=f.SUPPORT),   # waits for mapping
         f.line(order_number="SO-2", product_number=f.SUPPORT),                               # held: rejected line
         f.line(order_number="SO-2", product_number=f.SETUP, quantity="1", extended_amount="99"),
         f.line(order_number="SO-3", customer_name="Fabrikam")],
        f.state(provider_accounts=f.provider_accounts()),
    )
    needs = build_needs_provider_mapping(result.lines)

    assert f.buckets(result) == ["held", "held", "held", "rejected", "held"]
    assert needs[["customer_name", "held_orders", "held_lines"]].values.tolist() == [
        ["Contoso Ltd", "SO-1", 2], ["Fabrikam", "SO-3", 1]]


def test_r3_a_mapping_added_later_releases_the_held_order():
    rows = [f.line(), f.line(product_number=f.SUPPORT)]
    before = f.plan(rows, f.state(provider_accounts=f.provider_accounts()))
    after = f.plan(rows, f.state(provider_accounts=f.contoso_mapping()))

    assert f.buckets(before) == ["held", "held"]
    assert f.buckets(after) == ["planned", "planned"]


def test_r3_a_mapped_account_the_provider_does_not_know_holds_the_order_as_mapping_invalid():
    result = f.plan([f.line(), f.line(product_number=f.SUPPORT), f.line(order_number="SO-2", customer_name="Fabrikam")],
                    f.state(provider_accounts=f.provider_accounts(
                        {"customer_name": "Contoso Ltd", "provider_customer_id": "tenant-gone"},
                        {"customer_name": "Fabrikam", "provider_customer_id": "tenant-fab"})),
                    invalid_accounts=frozenset({("partner_center", "tenant-gone")}))

    assert f.buckets(result) == ["held", "held", "planned"]
    assert result.lines["bucket_reason"].tolist()[:2] == ["PROVIDER_MAPPING_INVALID"] * 2
    needs = build_needs_provider_mapping(result.lines)
    assert needs[["customer_name", "provider", "reason_code"]].values.tolist() == [
        ["Contoso Ltd", "partner_center", "PROVIDER_MAPPING_INVALID"]]


# --------------------------------------------------------------------------------------------
# R4 billing contract


def test_r4_lines_with_the_same_key_share_one_new_contract_for_the_run():
    result = f.plan([
        f.line(order_number="SO-1"), f.line(order_number="SO-1", product_number=f.LICENCE, quantity="2"),
        f.line(order_number="SO-2"),
    ])

    assert result.lines["contract_number"].nunique() == 1
    assert result.lines["is_new_contract"].all()
    assert len(result.new_contracts) == 1
    contract = result.new_contracts.iloc[0]
    assert (contract["contract_type"], contract["contract_product_type"], contract["billing_frequency"],
            contract["currency_code"]) == ("Recurring", "CSP", "Monthly", "USD")
    assert contract["start_date"] == f.AS_OF
    assert contract["end_date"] == f.END
    assert contract["payment_terms"] == "Net 30"
    assert contract["process_refunds"] == "Use Global Setting"


def test_r4_one_order_may_land_in_several_contracts():
    result = f.plan([f.line(), f.line(product_number=f.SUPPORT), f.line(product_number=f.SETUP)])

    assert result.lines["contract_number"].nunique() == 3
    assert sorted(result.new_contracts["contract_product_type"]) == ["CSP", "Managed Services", "Support Contract"]


def test_r4_the_key_uses_the_billing_frequency_not_the_provisioning_unit():
    same_frequency = f.plan([f.line(provisioning_unit="Monthly"), f.line(provisioning_unit="Annual")])
    other_frequency = f.plan([f.line(billing_frequency="Monthly"), f.line(billing_frequency="Quarterly")])

    assert len(same_frequency.new_contracts) == 1
    assert same_frequency.lines["effective_provisioning_unit"].tolist() == ["Monthly", "Annual"]
    assert len(other_frequency.new_contracts) == 2
    assert sorted(other_frequency.new_contracts["billing_frequency"]) == ["Monthly", "Quarterly"]


def test_r4_currency_and_customer_are_part_of_the_key():
    result = f.plan([
        f.line(order_number="SO-1", currency_code="USD"),
        f.line(order_number="SO-2", currency_code="EUR"),
        f.line(order_number="SO-3", customer_name="Fabrikam", provision_on="manual"),
    ])

    assert result.lines["contract_number"].nunique() == 3
    assert len(result.new_contracts) == 3


def test_r4_a_non_recurring_contract_has_no_billing_frequency():
    result = f.plan([f.line(product_number=f.SETUP, billing_frequency="Quarterly")])

    contract = result.new_contracts.iloc[0]
    assert contract["contract_type"] == "Non-Recurring"
    assert pd.isna(contract["billing_frequency"])
    assert result.lines["action"].tolist() == ["one_time_charge"]


def test_r4_line_column_beats_catalog_beats_settings():
    result = f.plan([
        f.line(order_number="SO-1", product_number=f.M365_ANNUAL, billing_frequency="Triennial"),  # line column
        f.line(order_number="SO-2", product_number=f.M365_ANNUAL),                              # catalog
        f.line(order_number="SO-3", product_number=f.M365_ANNUAL, payment_terms="Net 60"),
    ])

    assert result.lines["effective_billing_frequency"].tolist() == ["Triennial", "Annually", "Annually"]
    assert result.lines["effective_payment_terms"].tolist() == ["Net 30", "Net 30", "Net 60"]


def test_r4_an_existing_active_contract_with_the_key_is_reused_the_oldest_first():
    stored = f.state(
        customers=STORED_CONTOSO,
        contracts=f.contracts(
            {"contract_pk": 2, "contract_number": "BC-NEWER", "customer_pk": 7, "created_at": "2025-06-01T00:00:00Z"},
            {"contract_pk": 3, "contract_number": "BC-OLDEST", "customer_pk": 7, "created_at": "2024-01-01T00:00:00Z"},
            {"contract_pk": 4, "contract_number": "BC-EUR", "customer_pk": 7, "currency_code": "EUR",
             "created_at": "2023-01-01T00:00:00Z"},
        ),
    )

    result = f.plan([f.line(order_number="SO-1"), f.line(order_number="SO-2")], stored)

    assert result.lines["contract_number"].tolist() == ["BC-OLDEST", "BC-OLDEST"]
    assert result.lines["contract_key"].tolist() == ["pk:3", "pk:3"]
    assert not result.lines["is_new_contract"].any()
    assert result.new_contracts.empty
    summary = _summary(result)
    assert summary["billing_contracts"] == {"created": 0, "reused": 1}


def test_r4_an_inactive_contract_is_not_reused():
    stored = f.state(customers=STORED_CONTOSO,
                     contracts=f.contracts({"contract_pk": 3, "contract_number": "BC-OLD", "customer_pk": 7,
                                            "status": "Inactive"}))

    result = f.plan([f.line()], stored)

    assert result.lines["is_new_contract"].tolist() == [True]
    assert len(result.new_contracts) == 1


def test_r4_another_customers_contract_is_not_reused():
    stored = f.state(customers=f.customers({"customer_pk": 8, "customer_name": "Fabrikam"}),
                     contracts=f.contracts({"contract_pk": 3, "contract_number": "BC-FAB", "customer_pk": 8}))

    result = f.plan([f.line()], stored)

    assert result.lines["contract_number"].tolist() != ["BC-FAB"]
    assert len(result.new_contracts) == 1


@pytest.mark.parametrize("pin", ["BC-PINNED", "bc-pinned", "Contoso  Special"])
def test_r4_a_billing_contract_column_pins_an_existing_contract_by_number_or_name(pin):
    stored = f.state(
        customers=STORED_CONTOSO,
        contracts=f.contracts(
            {"contract_pk": 3, "contract_number": "BC-DEFAULT", "customer_pk": 7, "created_at": "2020-01-01T00:00:00Z"},
            {"contract_pk": 5, "contract_number": "BC-PINNED", "contract_name": "Contoso Special",
             "customer_pk": 7, "billing_frequency": "Quarterly"},
        ),
    )

    result = f.plan([f.line(billing_contract=pin), f.line()], stored)

    assert result.lines["contract_number"].tolist() == ["BC-PINNED", "BC-DEFAULT"]
    assert f.buckets(result) == ["planned", "planned"]
    assert result.new_contracts.empty


def test_r4_an_unknown_billing_contract_pin_is_rejected():
    stored = f.state(
        customers=f.customers({"customer_pk": 7, "customer_name": "Contoso Ltd"},
                              {"customer_pk": 8, "customer_name": "Fabrikam"}),
        contracts=f.contracts({"contract_pk": 9, "contract_number": "BC-FAB", "customer_pk": 8}),
    )

    result = f.plan([f.line(billing_contract="BC-NOWHERE"), f.line(billing_contract="BC-FAB"), f.line()], stored)

    assert f.buckets(result) == ["rejected", "rejected", "held"]
    assert f.issue_codes(result, 0) == ["UNKNOWN_BILLING_CONTRACT"]
    assert f.issue_codes(result, 1) == ["UNKNOWN_BILLING_CONTRACT"]
    assert _rows_for(result, 0)["value"].tolist() == ["BC-NOWHERE"]
    assert result.new_contracts.empty


# --------------------------------------------------------------------------------------------
# R5 subscriptions


def _existing_state(quantity: str = "10", **subscription) -> object:
    return f.state(
        customers=STORED_CONTOSO,
        contracts=f.contracts({"contract_pk": 3, "contract_number": "BC-1", "customer_pk": 7}),
        subscriptions=f.subscriptions(
            {"subscription_pk": 11, "customer_pk": 7, "contract_pk": 3, "product_number": f.M365,
             "quantity": quantity, **subscription},
        ),
    )


def test_r5_a_recurring_new_line_creates_a_subscription_and_a_one_time_line_a_charge():
    result = f.plan([f.line(), f.line(product_number=f.SETUP)])

    assert result.lines["action"].tolist() == ["create_subscription", "one_time_charge"]
    assert result.lines["target_subscription_pk"].isna().all()
    summary = _summary(result)
    assert summary["subscriptions"] == {"created": 1, "updated": 0}
    assert summary["one_time_charges"] == {"created": 1}


def test_r5_existing_adds_to_the_active_subscription_that_existed_before_the_run():
    result = f.plan([f.line(provision_as="Existing", quantity="5")], _existing_state("10"))

    assert f.buckets(result) == ["planned"]
    row = result.lines.iloc[0]
    assert row["action"] == "increase_subscription"
    assert row["target_subscription_pk"] == 11
    assert row["quantity_before_units"] == 10 * 10**5
    assert row["quantity_after_units"] == 15 * 10**5


def test_r5_existing_picks_the_oldest_of_several_matching_subscriptions():
    stored = _existing_state("10")
    older = f.subscriptions(
        {"subscription_pk": 12, "customer_pk": 7, "contract_pk": 3, "product_number": f.M365, "quantity": "1",
         "created_at": "2024-01-01T00:00:00Z"},
        {"subscription_pk": 11, "customer_pk": 7, "contract_pk": 3, "product_number": f.M365, "quantity": "10"},
    )
    result = f.plan([f.line(provision_as="Existing")], dataclasses.replace(stored, subscriptions=older))

    assert result.lines["target_subscription_pk"].tolist() == [12]


def test_r5_two_increases_of_one_subscription_chain_and_count_as_one_update():
    result = f.plan([f.line(provision_as="Existing", quantity="5"), f.line(provision_as="Existing", quantity="3")],
                    _existing_state("10"))

    assert result.lines["quantity_before_units"].tolist() == [10 * 10**5, 15 * 10**5]
    assert result.lines["quantity_after_units"].tolist() == [15 * 10**5, 18 * 10**5]
    assert _summary(result)["subscriptions"] == {"created": 0, "updated": 1}


def test_r5_existing_with_no_active_subscription_is_existing_subscription_not_found():
    result = f.plan([f.line(provision_as="Existing"), f.line(product_number=f.SETUP)],
                    f.state(customers=STORED_CONTOSO,
                            contracts=f.contracts({"contract_pk": 3, "contract_number": "BC-1", "customer_pk": 7})))

    assert f.buckets(result) == ["rejected", "held"]
    assert f.issue_codes(result, 0) == ["EXISTING_SUBSCRIPTION_NOT_FOUND"]


@pytest.mark.parametrize("change", [{"status": "Suspended"}, {"provisioning_unit": "Annual"},
                                    {"provider_code": "manual"}, {"product_number": f.LICENCE}])
def test_r5_existing_matches_only_an_active_subscription_with_the_same_identity(change):
    result = f.plan([f.line(provision_as="Existing")], _existing_state("10", **change))

    assert f.issue_codes(result, 0) == ["EXISTING_SUBSCRIPTION_NOT_FOUND"]


def test_r5_existing_never_matches_a_subscription_created_in_the_same_run():
    result = f.plan([f.line(provision_as="New"), f.line(provision_as="Existing")])

    assert f.buckets(result) == ["held", "rejected"]
    assert f.issue_codes(result, 1) == ["EXISTING_SUBSCRIPTION_NOT_FOUND"]


@pytest.mark.parametrize(("before", "added", "ok"), [("295", "5", True), ("295", "6", False), ("290", "5", True)])
def test_r5_quantity_bounds_apply_to_the_resulting_total(before, added, ok):
    result = f.plan([f.line(provision_as="Existing", quantity=added)], _existing_state(before))

    assert f.buckets(result) == (["planned"] if ok else ["rejected"])
    assert f.issue_codes(result) == ([] if ok else ["INVALID_QUANTITY"])


def test_r5_bounds_apply_to_the_total_of_several_increases():
    result = f.plan([f.line(provision_as="Existing", quantity="3"), f.line(provision_as="Existing", quantity="3")],
                    _existing_state("295"))

    assert f.buckets(result) == ["rejected", "rejected"]
    assert f.issue_codes(result) == ["INVALID_QUANTITY", "INVALID_QUANTITY"]


@pytest.mark.parametrize(("product", "contract_type"), [(f.M365, "Non-Recurring"), (f.SETUP, "Recurring")])
def test_r5_a_contract_type_contradicting_the_catalog_is_invalid_value(product, contract_type):
    result = f.plan([f.line(product_number=product, contract_type=contract_type), f.line(product_number=f.SUPPORT)])

    assert f.buckets(result) == ["rejected", "held"]
    rows = _rows_for(result, 0)
    assert rows[["reason_code", "field", "value"]].values.tolist() == [["INVALID_VALUE", "contract_type", contract_type]]


def test_r5_a_contract_type_agreeing_with_the_catalog_is_fine():
    result = f.plan([f.line(contract_type="Recurring"), f.line(product_number=f.SETUP, contract_type="Non-Recurring")])

    assert f.buckets(result) == ["planned", "planned"]


def test_r5_a_non_recurring_line_is_a_one_time_charge_even_when_marked_existing():
    result = f.plan([f.line(product_number=f.SETUP, provision_as="Existing")])

    assert f.buckets(result) == ["planned"]
    assert result.lines["action"].tolist() == ["one_time_charge"]
    assert result.lines["effective_contract_type"].tolist() == ["Non-Recurring"]


# --------------------------------------------------------------------------------------------
# R6 exactly once (bucket behaviour; identifiers and matching are in test_keys.py)

GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def _provisioned_before(**line_values) -> tuple[list[dict], object]:
    """A line provisioned in an earlier run, and the stored state that remembers it."""
    rows = [f.line(line_id=GUID, **line_values)]
    first = f.plan(rows)
    return rows, f.stored_state_after(first, f.state())


def test_r6_a_line_provisioned_before_is_already_provisioned_with_no_exception_row():
    rows, stored = _provisioned_before()

    result = f.plan(rows, stored)

    assert f.buckets(result) == ["already_provisioned"]
    assert result.issues.empty
    assert result.new_contracts.empty
    assert _summary(result)["orders"]["already_fulfilled"] == 1


def test_r6_a_line_provisioned_under_its_guid_is_recognised_in_an_export_without_it():
    rows, stored = _provisioned_before()

    result = f.plan([f.line()], stored)

    assert f.buckets(result) == ["already_provisioned"]


def test_r6_the_same_key_with_different_content_is_line_changed_after_provisioning():
    rows, stored = _provisioned_before(quantity="5")

    result = f.plan([f.line(line_id=GUID, quantity="6"), f.line(product_number=f.SETUP)], stored)

    assert f.buckets(result) == ["rejected", "held"]
    assert f.issue_codes(result, 0) == ["LINE_CHANGED_AFTER_PROVISIONING"]
    assert _rows_for(result, 0)[["field", "value"]].values.tolist() == [["quantity", "6"]]


@pytest.mark.parametrize(("change", "field", "value"), [
    ({"price_per_unit": "11"}, "price_per_unit", "11"),
    ({"product_number": f.LICENCE, "quantity": "5"}, "product_number", f.LICENCE),
    ({"product_number": f.LICENCE, "quantity": "7", "price_per_unit": "11"}, "product_number", f.LICENCE),
    ({"quantity": "7", "price_per_unit": "11"}, "quantity", "7"),
    ({"product_number": None, "product_name": f.products().set_index("product_number").loc[f.LICENCE, "product_name"]},
     "product_name", f.products().set_index("product_number").loc[f.LICENCE, "product_name"]),
])
def test_r6_price_and_product_are_part_of_the_provisioned_content(change, field, value):
    """One row per changed line, naming the first of product, quantity, price that changed."""
    rows, stored = _provisioned_before(quantity="5")

    result = f.plan([f.line(line_id=GUID, **{"quantity": "5", **change})], stored)

    assert f.issue_codes(result, 0) == ["LINE_CHANGED_AFTER_PROVISIONING"]
    assert _rows_for(result, 0)[["field", "value"]].values.tolist() == [[field, value]]


def test_r6_a_trailing_zero_is_not_a_change():
    rows, stored = _provisioned_before(quantity="5", price_per_unit="10.5")

    result = f.plan([f.line(line_id=GUID, quantity="5.000", price_per_unit="10.50")], stored)

    assert f.buckets(result) == ["already_provisioned"]


def test_r6_comes_before_r2_an_already_provisioned_line_stays_so_in_a_held_order():
    rows, stored = _provisioned_before()

    result = f.plan([f.line(line_id=GUID), f.line(product_number="NOPE"), f.line(product_number=f.SETUP)], stored)

    assert f.buckets(result) == ["already_provisioned", "rejected", "held"]
    assert f.issue_codes(result, 0) == []


def test_r6_an_already_provisioned_line_stays_so_when_its_order_waits_for_a_mapping():
    rows, stored = _provisioned_before()
    unmapped = dataclasses.replace(stored, provider_accounts=f.provider_accounts())
    result = f.plan([f.line(line_id=GUID), f.line()], unmapped)

    assert f.buckets(result) == ["already_provisioned", "held"]
    assert f.reason_of(result, 1) == "NEEDS_PROVIDER_MAPPING"


def test_r6_r1_still_comes_first_for_a_provisioned_line_of_a_fulfilled_order():
    rows, stored = _provisioned_before()

    result = f.plan([f.line(line_id=GUID, order_state_code=f.FULFILLED)], stored)

    assert f.buckets(result) == ["skipped"]


def test_r6_a_stored_line_that_failed_is_provisioned_again():
    rows = [f.line(line_id=GUID)]
    stored = f.stored_state_after(f.plan(rows), f.state(), status="failed")

    result = f.plan(rows, stored)

    assert f.buckets(result) == ["planned"]


def test_r6_every_copy_of_a_repeated_line_id_is_duplicate_line():
    result = f.plan([f.line(line_id=GUID, line_number=1), f.line(line_id=GUID, line_number=2), f.line(line_number=3)])

    assert f.buckets(result) == ["rejected", "rejected", "held"]
    assert f.issue_codes(result, 0) == ["DUPLICATE_LINE"]
    assert f.issue_codes(result, 1) == ["DUPLICATE_LINE"]
    # the exception names the column that repeats, and its value
    duplicates = result.issues[result.issues["reason_code"] == "DUPLICATE_LINE"]
    assert duplicates["field"].tolist() == ["line_id", "line_id"]
    assert duplicates["value"].str.lower().tolist() == [GUID.lower()] * 2


def test_r6_every_copy_of_a_repeated_order_and_line_number_is_duplicate_line():
    result = f.plan([
        f.line(order_number="SO-1", line_number=1), f.line(order_number="SO-1", line_number=1, quantity="2"),
        f.line(order_number="SO-2", line_number=1),
    ])

    assert f.buckets(result) == ["rejected", "rejected", "planned"]
    assert f.issue_codes(result) == ["DUPLICATE_LINE", "DUPLICATE_LINE"]
    # no line id repeats (the file may have none): the exception names the line number
    assert result.issues["field"].tolist() == ["line_number", "line_number"]
    assert result.issues["value"].tolist() == ["1", "1"]
    assert result.issues["message"].str.contains("SO-1, line 1").all()


def test_r6_identical_lines_without_numbers_are_not_duplicates():
    result = f.plan([f.line(line_number=None), f.line(line_number=None)])

    assert f.buckets(result) == ["planned", "planned"]
    assert result.lines["key_content"].nunique() == 2


# --------------------------------------------------------------------------------------------
# R7 fulfilment (order buckets)


def _orders(*rows: tuple[str, str, bool | None]) -> dict[str, str]:
    frame = pd.DataFrame({
        "order_key": [r[0] for r in rows], "bucket": [r[1] for r in rows],
        "effective_fulfill_order": pd.array([r[2] for r in rows], dtype="boolean"),
    })
    summary = outcomes.summarise_orders(frame)
    return dict(zip(summary["order_key"], summary["order_bucket"]))


def test_r7_an_order_with_every_line_provisioned_is_fulfilled():
    assert _orders(("A", "provisioned", True), ("A", "provisioned", True)) == {"A": "fulfilled"}


def test_r7_an_order_provisioned_partly_before_and_partly_now_is_fulfilled():
    assert _orders(("A", "provisioned", True), ("A", "already_provisioned", True)) == {"A": "fulfilled"}


def test_r7_an_order_with_every_line_provisioned_earlier_is_already_fulfilled():
    assert _orders(("A", "already_provisioned", True), ("A", "already_provisioned", None)) == {"A": "already_fulfilled"}


@pytest.mark.parametrize("blocked", ["held", "rejected"])
def test_r7_an_order_with_a_held_or_rejected_line_is_held(blocked):
    assert _orders(("A", "already_provisioned", True), ("A", blocked, True), ("A", "failed", True)) == {"A": "held"}


def test_r7_a_skipped_order_is_skipped():
    assert _orders(("A", "skipped", True), ("A", "skipped", False)) == {"A": "skipped"}


def test_r7_an_order_with_a_failed_line_and_none_held_is_failed():
    assert _orders(("A", "provisioned", True), ("A", "failed", True)) == {"A": "failed"}


def test_r7_fulfill_order_no_on_any_line_means_provisioned_not_fulfilled():
    assert _orders(("A", "provisioned", True), ("A", "provisioned", False)) == {"A": "provisioned_not_fulfilled"}
    assert _orders(("B", "already_provisioned", False)) == {"B": "provisioned_not_fulfilled"}


def test_r7_fulfilment_is_due_for_fulfilled_and_already_fulfilled_orders_only():
    frame = pd.DataFrame({
        "order_key": ["A", "B", "C", "D"],
        "bucket": ["provisioned", "already_provisioned", "provisioned", "held"],
        "effective_fulfill_order": pd.array([True, True, False, True], dtype="boolean"),
    })
    summary = outcomes.summarise_orders(frame).set_index("order_key")

    assert summary["is_fulfilment_due"].to_dict() == {"A": True, "B": True, "C": False, "D": False}
    assert summary["is_fulfilled_now"].to_dict() == {"A": True, "B": False, "C": False, "D": False}


def test_r7_fulfill_order_is_read_per_order_through_the_plan():
    result = f.plan([
        f.line(order_number="SO-1", fulfill_order=False), f.line(order_number="SO-1"),
        f.line(order_number="SO-2"),
    ])
    summary = _summary(result)

    assert summary["orders"]["provisioned_not_fulfilled"] == 1
    assert summary["orders"]["fulfilled"] == 1


def test_r7_a_provider_refusal_makes_the_line_failed_and_the_order_failed():
    result = f.plan([f.line(order_number="SO-1"), f.line(order_number="SO-1", product_number=f.SETUP),
                     f.line(order_number="SO-2")])
    planned = planned_for_dry_run(result)
    results = pd.DataFrame({
        "line_pk": planned["line_pk"].to_numpy(),
        "is_success": [True, False, True],
        "provider_subscription_id": pd.NA, "provider_order_id": pd.NA,
        "error_code": [pd.NA, "E42", pd.NA], "error_message": [pd.NA, "refused", pd.NA],
    })

    lines, issues = apply_results(result, planned, results, keep_line_ids=False)
    orders = outcomes.summarise_orders(lines).set_index("order_key")["order_bucket"].to_dict()

    assert lines.sort_values("line_index")["bucket"].tolist() == ["provisioned", "failed", "provisioned"]
    assert orders == {"SO-1": "failed", "SO-2": "fulfilled"}
    failed_rows = issues[issues["line_index"] == 1]
    assert failed_rows[["reason_code", "value"]].values.tolist() == [["PROVIDER_ERROR", "E42"]]


# --------------------------------------------------------------------------------------------
# R8 amounts


# q × (price − volume discount) − manual discount + tax = 3 × (10 − 1) − 2 + 0.5 = 25.5
_AMOUNT = {"quantity": "3", "price_per_unit": "10", "volume_discount": "1", "manual_discount": "2", "tax": "0.5"}


@pytest.mark.parametrize("extended", ["25.5", "25.51", "25.49", "25.510000", "25.490000"])
def test_r8_an_extended_amount_within_one_cent_passes(extended):
    result = f.plan([f.line(**_AMOUNT, extended_amount=extended)])

    assert f.buckets(result) == ["planned"]
    assert result.issues.empty


@pytest.mark.parametrize("extended", ["25.52", "25.48", "25.510001", "25.489999", "27.5", "-25.5"])
def test_r8_an_extended_amount_more_than_one_cent_off_is_amount_mismatch(extended):
    result = f.plan([f.line(**_AMOUNT, extended_amount=extended), f.line(product_number=f.SETUP)])

    assert f.buckets(result) == ["rejected", "held"]
    rows = _rows_for(result, 0)
    assert rows["reason_code"].tolist() == ["AMOUNT_MISMATCH"]
    assert rows["field"].tolist() == ["extended_amount"]
    assert rows["message"].item().endswith("= 25.5")


def test_r8_missing_discounts_and_tax_count_as_zero_and_a_blank_extended_amount_is_not_checked():
    result = f.plan([
        f.line(quantity="4", price_per_unit="12.5", extended_amount="50"),
        f.line(quantity="4", price_per_unit="12.5", extended_amount=None),
        f.line(order_number="SO-2", quantity="4", price_per_unit="12.5", extended_amount="50.02"),
    ])

    assert f.buckets(result) == ["planned", "planned", "rejected"]


def test_r8_exact_decimals_with_fractional_quantities_and_six_place_prices():
    # 2.5 × 3.333333 = 8.3333325 ; a float would not get this exactly
    result = f.plan([
        f.line(product_number=f.LICENCE, quantity="2.5", price_per_unit="3.333333", extended_amount="8.343332"),
        f.line(order_number="SO-2", product_number=f.LICENCE, quantity="2.5", price_per_unit="3.333333",
               extended_amount="8.343333"),
    ])

    assert f.buckets(result) == ["planned", "rejected"]
    assert f.issue_codes(result) == ["AMOUNT_MISMATCH"]


def test_r8_a_line_in_another_currency_than_the_order_is_currency_mismatch():
    result = f.plan([
        f.line(currency_code="USD"), f.line(currency_code="EUR"), f.line(currency_code="USD"),
        f.line(order_number="SO-2", currency_code="EUR"),
    ])

    assert f.buckets(result) == ["held", "rejected", "held", "planned"]
    rows = _rows_for(result, 1)
    assert rows[["reason_code", "field", "value"]].values.tolist() == [["CURRENCY_MISMATCH", "currency_code", "EUR"]]


@pytest.mark.parametrize(("currencies", "flagged"), [(["USD", "EUR"], [1]), (["EUR", "USD"], [1]),
                                                     (["GBP", "EUR", "USD", "EUR"], [0, 2])])
def test_r8_the_order_currency_is_the_most_common_and_ties_go_to_the_first_seen(currencies, flagged):
    result = f.plan([f.line(currency_code=c) for c in currencies])

    mismatched = sorted(result.issues.loc[result.issues["reason_code"] == "CURRENCY_MISMATCH", "line_index"])
    assert mismatched == flagged


# --------------------------------------------------------------------------------------------
# R9 values


def test_r9_a_fractional_quantity_for_partner_center_is_invalid_quantity():
    result = f.plan([f.line(quantity="2.5"), f.line(product_number=f.LICENCE, quantity="2.5")])

    assert f.buckets(result) == ["rejected", "held"]
    rows = _rows_for(result, 0)
    assert rows[["reason_code", "field"]].values.tolist() == [["INVALID_QUANTITY", "quantity"]]


def test_r9_a_fractional_quantity_is_fine_for_a_manual_provider():
    result = f.plan([f.line(product_number=f.LICENCE, quantity="2.5"), f.line(quantity="2.5", provision_on="manual")])

    assert f.buckets(result) == ["planned", "planned"]


@pytest.mark.parametrize(("product", "quantity", "ok"), [
    (f.M365, "300", True), (f.M365, "301", False), (f.M365, "1", True),
    (f.LICENCE, "2", True), (f.LICENCE, "1.99999", False), (f.LICENCE, "10", True), (f.LICENCE, "10.00001", False),
])
def test_r9_a_quantity_outside_the_products_bounds_is_invalid_quantity(product, quantity, ok):
    result = f.plan([f.line(product_number=product, quantity=quantity)])

    assert f.issue_codes(result) == ([] if ok else ["INVALID_QUANTITY"])


@pytest.mark.parametrize("quantity", ["0", "-1"])
def test_r9_a_quantity_that_is_not_positive_is_invalid_quantity(quantity):
    frame = f.lines_frame([f.line(quantity=quantity), f.line(product_number=f.SETUP)])

    result = f.plan(frame, value_issues=validate_line_values(frame))

    assert f.buckets(result) == ["rejected", "held"]
    assert _rows_for(result, 0)[["reason_code", "field"]].values.tolist() == [["INVALID_QUANTITY", "quantity"]]


def test_r9_an_unknown_product_is_unknown_product_naming_the_column_given():
    result = f.plan([
        f.line(order_number="SO-1", product_number="NOPE"),
        f.line(order_number="SO-2", product_number=None, product_name="No Such Thing"),
    ])

    assert f.buckets(result) == ["rejected", "rejected"]
    assert result.issues[["line_index", "reason_code", "field", "value"]].values.tolist() == [
        [0, "UNKNOWN_PRODUCT", "product_number", "NOPE"],
        [1, "UNKNOWN_PRODUCT", "product_name", "No Such Thing"],
    ]


def test_r9_a_product_is_found_by_name_when_there_is_no_number():
    result = f.plan([f.line(product_number=None, product_name="  premier   SUPPORT ")])

    assert f.buckets(result) == ["planned"]
    assert result.lines["catalog_product_number"].tolist() == [f.SUPPORT]


def test_r9_a_write_in_product_is_write_in_product_and_nothing_else():
    result = f.plan([f.line(product_number=None, write_in_product="Consulting hours", quantity="1.5"),
                     f.line()])

    assert f.buckets(result) == ["rejected", "held"]
    assert _rows_for(result, 0)[["reason_code", "field", "value"]].values.tolist() == [
        ["WRITE_IN_PRODUCT", "write_in_product", "Consulting hours"]]


def test_r9_an_unconfigured_provider_is_invalid_value_naming_the_column():
    result = f.plan([f.line(provision_on="acme_cloud")])

    assert f.buckets(result) == ["rejected"]
    assert _rows_for(result, 0)[["reason_code", "field", "value"]].values.tolist() == [
        ["INVALID_VALUE", "provision_on", "acme_cloud"]]


def test_r9_any_other_bad_value_is_invalid_value_naming_column_and_value():
    frame = f.lines_frame([f.line(payment_terms="Net 99", provisioning_unit="Weekly")])

    issues = validate_line_values(frame)
    result = f.plan(frame, value_issues=issues)

    assert f.buckets(result) == ["rejected"]
    rows = result.issues.sort_values("field")
    assert rows[["reason_code", "field", "value"]].values.tolist() == [
        ["INVALID_VALUE", "payment_terms", "Net 99"], ["INVALID_VALUE", "provisioning_unit", "Weekly"]]


def test_r4_an_existing_non_recurring_contract_is_reused_for_a_one_time_line():
    stored = f.state(customers=STORED_CONTOSO, contracts=f.contracts(
        {"contract_pk": 3, "contract_number": "BC-RECURRING", "customer_pk": 7, "contract_product_type": "Managed Services"},
        {"contract_pk": 4, "contract_number": "BC-ONE-TIME", "customer_pk": 7, "contract_type": "Non-Recurring",
         "contract_product_type": "Managed Services", "billing_frequency": None},
    ))

    result = f.plan([f.line(product_number=f.SETUP)], stored)

    assert result.lines["contract_number"].tolist() == ["BC-ONE-TIME"]
    assert result.new_contracts.empty


def test_r4_a_stored_customer_is_found_by_crm_id_whatever_the_name_says():
    stored = f.state(
        customers=f.customers({"customer_pk": 7, "customer_name": "Contoso (old name)", "crm_customer_id": "aaaa-1"}),
        contracts=f.contracts({"contract_pk": 3, "contract_number": "BC-1", "customer_pk": 7}),
    )

    result = f.plan([f.line(customer_id="aaaa-1")], stored)

    assert result.lines["customer_key"].tolist() == ["pk:7"]
    assert result.lines["contract_number"].tolist() == ["BC-1"]


def test_r1_one_closed_row_skips_the_whole_order_even_when_other_rows_say_active():
    """The state is the order's: rows of one order that disagree never half-provision it."""
    result = f.plan([f.line(order_state_code=0), f.line(order_state_code=f.CANCELED, product_number=f.SETUP)])

    assert f.buckets(result) == ["skipped", "skipped"]
    assert f.issue_codes(result) == ["ORDER_CANCELED", "ORDER_CANCELED"]


def test_r9_an_unknown_product_number_is_not_guessed_from_a_known_name():
    known_name = f.products().iloc[0]["product_name"]
    result = f.plan([f.line(product_number="NOT-IN-CATALOG", product_name=known_name)])

    assert f.buckets(result) == ["rejected"]
    assert f.issue_codes(result) == ["UNKNOWN_PRODUCT"]


def test_r9_a_line_with_only_a_product_name_resolves_by_name():
    known = f.products().iloc[0]
    result = f.plan([f.line(product_number=None, product_name=known["product_name"].upper())])

    assert f.buckets(result) == ["planned"]
    assert result.lines.loc[0, "catalog_product_number"] == known["product_number"]


def test_r9_a_name_two_catalog_rows_share_once_compared_is_not_guessed():
    """SPEC §2.2 compares names case-insensitively with whitespace collapsed: a catalog that
    holds two such names (a renamed product loaded beside an older one) cannot say which one a
    line means — UNKNOWN_PRODUCT, never a crash; lines naming a product number are unaffected."""
    known = f.products().iloc[0]
    twin = {**known.to_dict(), "product_number": "TWIN-1", "product_name": "  " + known["product_name"].lower() + " "}
    catalog = f.products(extra=[twin])
    result = f.plan([f.line(product_number=None, product_name=known["product_name"]),
                     f.line(product_number=known["product_number"], order_number="SO-2")],
                    stored=f.state(products=catalog))

    assert f.buckets(result) == ["rejected", "planned"]
    assert f.issue_codes(result) == ["UNKNOWN_PRODUCT"]
