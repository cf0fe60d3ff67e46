"""Header matching of order files (SPEC §2.1 "Header matching" and the alias tables)."""

from __future__ import annotations

import pytest

from w365etl.ingest.headers import (
    FIELDS,
    ORDER_LEVEL_FIELDS,
    REQUIRED_FIELDS,
    field_of,
    is_ignored,
    match_headers,
    normalise_header,
)

# SPEC §2.1, transcribed: field → every accepted spelling (logical and display names).
SPEC_ALIASES = {
    "order_id": ["salesorderid", "(Do Not Modify) Order"],
    "order_number": ["ordernumber", "Order ID", "Order Number"],
    "order_name": ["name", "Name", "Order Name"],
    "customer_id": ["customerid", "_customerid_value"],
    "customer_name": [
        "customeridname",
        "_customerid_value@OData.Community.Display.V1.FormattedValue",
        "Customer",
        "Potential Customer",
    ],
    "currency": [
        "isocurrencycode",
        "transactioncurrencyidname",
        "_transactioncurrencyid_value@OData.Community.Display.V1.FormattedValue",
        "Currency",
    ],
    "order_state": ["statecode", "Status"],
    "order_status_reason": ["statuscode", "Status Reason"],
    "payment_terms": ["paymenttermscode", "Payment Terms"],
    "line_id": ["salesorderdetailid", "(Do Not Modify) Order Product"],
    "line_number": ["lineitemnumber", "Line Item Number"],
    "product_number": ["productnumber", "Product ID", "Product Number"],
    "product_name": ["productidname", "productname", "Existing Product", "Product", "Product Name"],
    "write_in_product": ["productdescription", "Write-In Product"],
    "quantity": ["quantity", "Quantity"],
    "unit": ["uomidname", "_uomid_value@OData.Community.Display.V1.FormattedValue", "Unit"],
    "price_per_unit": ["priceperunit", "Price Per Unit"],
    "volume_discount": ["volumediscountamount", "Volume Discount"],
    "manual_discount": ["manualdiscountamount", "Manual Discount"],
    "tax": ["tax", "Tax"],
    "extended_amount": ["extendedamount", "Extended Amount"],
    "contract_type": ["Contract Type"],
    "billing_frequency": ["Billing Frequency"],
    "contract_product_type": ["Contract Product Type"],
    "process_refunds": ["Process Refunds"],
    "billing_contract": ["Billing Contract"],
    "provision_as": ["Provision As"],
    "provisioning_unit": ["Provisioning Unit"],
    "provision_on": ["Provision On"],
    "fulfill_order": ["Fulfill Order"],
}


@pytest.mark.parametrize(
    ("field", "header"), [(field, header) for field, headers in SPEC_ALIASES.items() for header in headers]
)
def test_every_spec_alias_names_its_field(field: str, header: str) -> None:
    assert field_of(header) == field


def test_alias_table_covers_exactly_the_spec_fields() -> None:
    assert set(FIELDS) == set(SPEC_ALIASES)


def test_required_fields_are_those_of_the_spec() -> None:
    assert set(REQUIRED_FIELDS) == {"order_number", "customer_name", "currency", "order_state", "quantity", "price_per_unit"}


def test_order_level_fields_are_the_order_columns() -> None:
    assert set(ORDER_LEVEL_FIELDS) == {
        "order_id",
        "order_number",
        "order_name",
        "customer_id",
        "customer_name",
        "currency",
        "order_state",
        "order_status_reason",
        "payment_terms",
    }


@pytest.mark.parametrize(
    ("header", "normalised"),
    [
        ("Status (Order)", "status"),
        ("  PRICE   per\tUnit ", "price per unit"),
        ("Product (Existing Product)", "product"),
        ("Quantity (Order Product)", "quantity"),
        ("Status(Order)", "status"),
        ("\ufeffOrder ID", "order id"),
        ("(Do Not Modify) Order", "(do not modify) order"),
    ],
)
def test_header_normalisation_folds_case_whitespace_and_entity_suffix(header: str, normalised: str) -> None:
    assert normalise_header(header) == normalised


def test_related_entity_suffix_is_removed_before_matching() -> None:
    assert field_of("Status (Order)") == "order_state"
    assert field_of("Status Reason (Order)") == "order_status_reason"
    assert field_of("Order ID (Order)") == "order_number"
    assert field_of("Name (Order)") == "order_name"


def test_do_not_modify_order_product_is_the_line_id_not_the_order_id() -> None:
    assert field_of("(Do Not Modify) Order Product") == "line_id"
    assert field_of("(Do Not Modify) Order") == "order_id"


def test_status_and_status_reason_are_different_fields() -> None:
    assert field_of("Status") == "order_state"
    assert field_of("Status Reason") == "order_status_reason"


@pytest.mark.parametrize("header", ["Statuses", "Quantity Ordered", "Price", "Order", "Product Numbers", "Cust"])
def test_no_fuzzy_or_prefix_matching(header: str) -> None:
    assert field_of(header) is None


def test_salesorderid_value_is_an_order_id_alias() -> None:
    assert field_of("_salesorderid_value") == "order_id"


def test_d365_bookkeeping_columns_are_ignored_not_unknown() -> None:
    match = match_headers(
        ["(Do Not Modify) Order Product", "(Do Not Modify) Row Checksum", "(Do Not Modify) Modified On", "Quantity"]
    )
    assert is_ignored("(Do Not Modify) Row Checksum")
    assert match.unknown == []
    assert match.positions == {"line_id": 0, "quantity": 3}


def test_unknown_columns_are_listed_as_written_and_blank_headers_skipped() -> None:
    match = match_headers(["Quantity", "Sales Rep", "", None, "  Region "])
    assert match.unknown == ["Sales Rep", "  Region "]


def test_match_records_positions_and_header_text() -> None:
    match = match_headers(["Order ID (Order)", "Quantity", "Price Per Unit"])
    assert match.positions == {"order_number": 0, "quantity": 1, "price_per_unit": 2}
    assert match.headers["order_number"] == "Order ID (Order)"
    assert match.has_quantity


def test_two_columns_for_one_field_are_ambiguous() -> None:
    match = match_headers(["Product ID", "Quantity", "Product Number"])
    assert match.ambiguous == {"product_number": ["Product ID", "Product Number"]}


def test_same_header_twice_is_ambiguous() -> None:
    match = match_headers(["Quantity", "quantity"])
    assert "quantity" in match.ambiguous


def test_dialect_is_logical_when_most_headers_are_logical_names() -> None:
    match = match_headers(["salesorderdetailid", "_salesorderid_value", "quantity", "priceperunit", "productnumber"])
    assert match.dialect == "logical"


def test_dialect_is_display_for_display_names() -> None:
    match = match_headers(["Order ID", "Customer", "Quantity", "Price Per Unit", "Product"])
    assert match.dialect == "display"


def test_names_shared_by_both_dialects_do_not_decide_the_dialect() -> None:
    # "quantity", "tax" and "name" are logical and display names at once.
    assert match_headers(["quantity", "tax", "name", "Price Per Unit"]).dialect == "display"
    assert match_headers(["Quantity", "Tax", "Name", "priceperunit"]).dialect == "logical"
