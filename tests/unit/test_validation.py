"""Value rules of a line (R9, SPEC §2.1) as exception rows: ValidLineValues + validate_line_values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest

from schemas.sales_orders import NormalisedLines, ValidLineValues
from w365etl.domain.validation import validate_line_values
from w365etl.adapters.order_files import read_order_files
from w365etl.ingest.result import ISSUE_COLUMNS

HEADER = "Order ID,Customer,Currency,Status,Product ID,Product Name,Quantity,Price Per Unit,Billing Frequency\n"


def read(tmp_path: Path, rows: str, name: str = "orders.csv"):  # noqa: ANN201
    path = tmp_path / name
    path.write_text(HEADER + rows, encoding="utf-8")
    return read_order_files([path])


def issues_of(tmp_path: Path, rows: str) -> pd.DataFrame:
    result = read(tmp_path, rows)
    return validate_line_values(result.lines, result.issues, result.headers)


def test_clean_lines_have_no_issues(tmp_path: Path) -> None:
    found = issues_of(tmp_path, "SO-1,Contoso,USD,Active,P1,,1,10,Monthly\nSO-1,Contoso,USD,Active,,Support,2.5,0,\n")
    assert found.empty
    assert tuple(found.columns) == ISSUE_COLUMNS


@pytest.mark.parametrize("quantity", ["0", "-1", "-0.00001"])
def test_r9_quantity_not_above_zero_is_invalid_quantity(tmp_path: Path, quantity: str) -> None:
    found = issues_of(tmp_path, f"SO-1,Contoso,USD,Active,P1,,{quantity},10,\n")
    assert found[["reason_code", "field", "row", "column"]].values.tolist() == [
        ["INVALID_QUANTITY", "quantity", 2, "Quantity"]
    ]
    assert found.loc[0, "message"] == f"Quantity '{quantity.rstrip('0') if '.' in quantity else quantity}' must be greater than 0"


def test_r9_missing_required_value_is_invalid_value_naming_the_column(tmp_path: Path) -> None:
    found = issues_of(tmp_path, "SO-1,,USD,Active,P1,,1,10,\n")
    issue = found.iloc[0].to_dict()
    assert (issue["reason_code"], issue["field"], issue["column"], issue["line_index"]) == (
        "INVALID_VALUE",
        "customer_name",
        "Customer",
        0,
    )
    assert issue["message"] == "Customer is blank; it is required"


def test_r9_a_line_needs_a_product_number_or_a_product_name(tmp_path: Path) -> None:
    found = issues_of(tmp_path, "SO-1,Contoso,USD,Active,,,1,10,\n")
    assert len(found) == 1  # one row, although the frame-wide check fails on every column
    assert found.loc[0, "reason_code"] == "INVALID_VALUE"
    assert "Product ID" in found.loc[0, "message"] and "Product Name" in found.loc[0, "message"]


def test_a_cell_that_did_not_parse_is_not_reported_twice(tmp_path: Path) -> None:
    result = read(tmp_path, "SO-1,Contoso,USD,Open,P1,,1.0000001,abc,\n")
    assert set(result.issues["field"]) == {"order_state", "quantity", "price_per_unit"}
    assert validate_line_values(result.lines, result.issues, result.headers).empty
    # without the parse issues each NA would be reported again as missing
    assert set(validate_line_values(result.lines)["field"]) == {"order_state", "quantity", "price_per_unit"}


def test_one_row_per_line_per_field_per_reason(tmp_path: Path) -> None:
    found = issues_of(tmp_path, "SO-1,,,Active,,,0,,\nSO-2,Contoso,USD,Active,P1,,1,1,\n")
    keys = found[["line_index", "field", "reason_code"]]
    assert not keys.duplicated().any()
    assert set(found["field"]) == {"customer_name", "currency", "product_number", "quantity", "price_per_unit"}
    assert set(found["line_index"]) == {0}


def test_order_fields_of_header_and_lines_name_the_orders_row(tmp_path: Path) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text("Order Number,Potential Customer,Currency,Status\nSO-1,,USD,Active\n", encoding="utf-8")
    lines = tmp_path / "lines.csv"
    lines.write_text("Order Number,Product,Quantity,Price Per Unit\nSO-1,E3,1,1\nSO-1,E5,2,1\n", encoding="utf-8")
    result = read_order_files([orders, lines])
    found = validate_line_values(result.lines, result.issues, result.headers)
    assert found["line_index"].tolist() == [0, 1]
    assert set(found["file"]) == {str(orders)}
    assert set(found["row"]) == {2}
    assert set(found["column"]) == {"Potential Customer"}  # the header of the orders file


def test_a_line_without_its_order_is_not_also_reported_field_by_field(tmp_path: Path) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text("Order Number,Customer,Currency,Status\nSO-1,Contoso,USD,Active\n", encoding="utf-8")
    lines = tmp_path / "lines.csv"
    lines.write_text("Order Number,Product,Quantity,Price Per Unit\nSO-1,E3,1,1\nSO-9,E5,2,1\n", encoding="utf-8")
    result = read_order_files([orders, lines])
    assert result.issues["field"].tolist() == ["order_number"]
    assert validate_line_values(result.lines, result.issues, result.headers).empty


def test_option_values_outside_the_schema_are_invalid_value(tmp_path: Path) -> None:
    result = read(tmp_path, "SO-1,Contoso,USD,Active,P1,,1,1,Monthly\n")
    lines = result.lines.copy()
    lines.loc[0, "order_state_code"] = 7
    lines.loc[0, "billing_frequency"] = "Weekly"
    found = validate_line_values(lines, result.issues, result.headers)
    assert set(found["field"]) == {"order_state", "billing_frequency"}
    assert set(found["reason_code"]) == {"INVALID_VALUE"}
    weekly = found[found["field"] == "billing_frequency"].iloc[0]
    assert weekly["value"] == "Weekly" and "Billing Frequency 'Weekly'" in weekly["message"]


def test_valid_line_values_is_lazy_and_names_the_quantity_check(tmp_path: Path) -> None:
    result = read(tmp_path, "SO-1,,USD,Active,P1,,0,1,\n")
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        ValidLineValues.validate(result.lines, lazy=True)
    checks = set(caught.value.failure_cases["check"])
    assert "not_nullable" in checks and "greater_than(0)" in checks


def test_normalised_lines_rejects_object_text_columns(tmp_path: Path) -> None:
    result = read(tmp_path, "SO-1,Contoso,USD,Active,P1,,1,1,\n")
    broken = result.lines.assign(customer_name=result.lines["customer_name"].astype(object))
    with pytest.raises(pa.errors.SchemaError):
        NormalisedLines.validate(broken)


def test_a_frame_that_breaks_the_contract_is_a_bug_not_bad_data(tmp_path: Path) -> None:
    result = read(tmp_path, "SO-1,Contoso,USD,Active,P1,,0,1,\n")
    with pytest.raises(pa.errors.SchemaErrors):
        validate_line_values(result.lines.drop(columns="currency_code"))
