"""Reference data (SPEC §2.2): checked on load, and loading is an upsert."""

from __future__ import annotations


import pandas as pd
import pytest

from tests.support.exports import write_reference
from w365etl.reference import (
    ReferenceDataError, merge_products, merge_provider_accounts, read_products, read_provider_accounts,
    read_reference_dir,
)


def accounts(rows: list[tuple[str, str | None, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_name", "customer_id", "provider_customer_id"]).assign(
        provider_code="partner_center")


def test_a_reference_folder_reads_both_files_with_types(tmp_path):
    reference = read_reference_dir(write_reference(tmp_path / "ref", [("Contoso", "t-1")]))
    products = reference.products.set_index("product_number")
    assert bool(products.loc["M365-BB-M", "is_recurring"]) is True
    assert bool(products.loc["ONB-SETUP", "is_recurring"]) is False
    assert products.loc["M365-BB-M", "max_quantity"] == 300
    assert pd.isna(products.loc["ONB-SETUP", "billing_frequency"])
    assert reference.provider_accounts["provider_code"].tolist() == ["partner_center"]


def test_a_bad_product_type_names_the_file_row_and_column(tmp_path):
    folder = write_reference(tmp_path / "ref", [])
    path = folder / "products.csv"
    path.write_text(path.read_text().replace("Support Contract", "Support Plan"))
    with pytest.raises(ReferenceDataError) as error:
        read_products(path)
    assert "products.csv" in str(error.value) and "row 4" in str(error.value) and "product_type" in str(error.value)


def test_a_missing_required_column_is_named(tmp_path):
    path = tmp_path / "provider_accounts.csv"
    path.write_text("customer_name,provider\nContoso,partner_center\n")
    with pytest.raises(ReferenceDataError, match="provider_customer_id"):
        read_provider_accounts(path)


def test_an_unfilled_template_row_is_not_a_mapping(tmp_path):
    path = tmp_path / "provider_accounts.csv"
    path.write_text("customer_name,customer_id,provider,provider_customer_id,held_orders\n"
                    "Contoso,,partner_center,,SO-1\nFabrikam,,partner_center,t-2,SO-2\n")
    assert read_provider_accounts(path)["customer_name"].tolist() == ["Fabrikam"]


def test_an_empty_folder_is_an_error(tmp_path):
    with pytest.raises(ReferenceDataError, match="neither"):
        read_reference_dir(tmp_path)


def test_upsert_by_customer_id_replaces_that_mapping_only():
    stored = accounts([("Contoso", "id-1", "t-old"), ("Fabrikam", None, "t-fab")])
    merged = merge_provider_accounts(stored, accounts([("Contoso Ltd", "id-1", "t-new")]))
    assert sorted(merged["provider_customer_id"]) == ["t-fab", "t-new"]


def test_upsert_by_name_replaces_every_name_only_row_of_that_name():
    """Two name-only rows of one name are ambiguous (R3); a later file that gives one row for
    the name resolves it instead of adding a third."""
    stored = accounts([("Blue Yonder", None, "t-a"), ("blue  yonder", None, "t-b"), ("Contoso", "id-1", "t-c")])
    merged = merge_provider_accounts(stored, accounts([("BLUE YONDER", None, "t-right")]))
    assert sorted(merged["provider_customer_id"]) == ["t-c", "t-right"]


def test_products_upsert_by_product_number(tmp_path):
    products = read_reference_dir(write_reference(tmp_path / "ref", [])).products
    changed = products[products["product_number"] == "M365-BB-M"].assign(max_quantity=pd.array([500], dtype="Int64"))
    merged = merge_products(products, changed)
    assert len(merged) == len(products)
    assert merged.set_index("product_number").loc["M365-BB-M", "max_quantity"] == 500


def test_product_names_that_differ_only_in_case_or_spacing_are_refused(tmp_path):
    """SPEC §2.2: product_name is unique — as names are compared (case-insensitive, whitespace
    collapsed); the message names the file, both rows and the column."""
    folder = write_reference(tmp_path / "ref", [])
    path = folder / "products.csv"
    lines = path.read_text().splitlines()
    first = lines[1].split(",")
    twin = ["TWIN-1", "  " + first[1].upper().replace(" ", "  ") + " "] + first[2:]
    path.write_text("\n".join(lines + [",".join(twin)]) + "\n")
    with pytest.raises(ReferenceDataError) as error:
        read_products(path)
    message = str(error.value)
    assert "products.csv" in message and "product_name" in message
    assert "row 2" in message and f"row {len(lines) + 1}" in message
